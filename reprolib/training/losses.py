"""Losses named in the experiment config, each reducing a time-major output ``out [T, B, C]``.

Every loss returns a :class:`LossResult`: the scalar loss to backpropagate and the number of correct and
counted predictions, so accuracy follows the same reduction over time as the loss (see CONTRIBUTING.md):

* ``rate_mse``: mean of ``out`` over T, MSE to the one-hot label (SpikingJelly, BPSA voting); accuracy =
  argmax of the mean.
* ``final_ce``: cross-entropy on ``out[-1]`` (SRC readout at the final step); accuracy = argmax of ``out[-1]``.
* ``seq_nll``: per-step ``log_softmax`` + NLL, **summed** over the recorded steps (BRF code); options
  ``label_last`` (only the last step) and ``skip_steps`` (first steps not recorded, ALIF sub-sequence).
  With a class label, accuracy = argmax of the mean over recorded steps (label-last: of the last step);
  with per-step labels ``y [B, T]`` (-1 = unlabelled), each labelled (step, sample) pair counts once.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


class LossResult(NamedTuple):
    loss: torch.Tensor  # 0-dim, differentiable
    correct: torch.Tensor  # 0-dim integer tensor
    count: int  # predictions counted (samples, or labelled steps for per-step labels)


def rate_mse(out: torch.Tensor, y: torch.Tensor) -> LossResult:
    rate = out.float().mean(0)
    target = F.one_hot(y, rate.shape[-1]).to(rate.dtype)
    return LossResult(F.mse_loss(rate, target), (rate.argmax(-1) == y).sum(), y.numel())


def final_ce(out: torch.Tensor, y: torch.Tensor) -> LossResult:
    last = out[-1].float()
    return LossResult(F.cross_entropy(last, y), (last.argmax(-1) == y).sum(), y.numel())


def make_seq_nll(label_last: bool = False, skip_steps: int = 0) -> Callable[[torch.Tensor, torch.Tensor], LossResult]:
    def seq_nll(out: torch.Tensor, y: torch.Tensor) -> LossResult:
        steps = out.shape[0]
        if skip_steps >= steps:
            raise ValueError(f"loss_options.skip_steps = {skip_steps} leaves no step of a {steps}-step output")
        recorded = out[skip_steps:].float()
        if label_last:
            recorded = recorded[-1:]
        log_p = F.log_softmax(recorded, dim=-1)  # [T', B, C]
        if y.dim() == 1:  # one class per sample
            nll_per_step = -log_p.gather(-1, y.view(1, -1, 1).expand(log_p.shape[0], -1, 1)).squeeze(-1).mean(1)
            prediction = recorded.mean(0).argmax(-1)
            return LossResult(nll_per_step.sum(), (prediction == y).sum(), y.numel())
        # per-step labels, collated batch-first [B, T] -> time-major, -1 = unlabelled
        labels = y.transpose(0, 1)[skip_steps:]
        if label_last:
            labels = labels[-1:]
        if labels.shape[0] != log_p.shape[0]:
            raise ValueError(f"per-step labels cover {y.shape[1]} steps but the model output has {steps}")
        mask = labels >= 0
        safe = labels.clamp_min(0)
        nll = -log_p.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * mask  # [T', B]
        # mean over the labelled samples of each step, summed over steps (steps without labels add nothing)
        nll_per_step = nll.sum(1) / mask.sum(1).clamp_min(1)
        correct = ((recorded.argmax(-1) == labels) & mask).sum()
        return LossResult(nll_per_step.sum(), correct, int(mask.sum()))

    return seq_nll


def get_loss(name: str, **options) -> Callable[[torch.Tensor, torch.Tensor], LossResult]:
    """The loss function named in the config (options already validated by :class:`ExperimentConfig`)."""
    if name == "rate_mse":
        return rate_mse
    if name == "final_ce":
        return final_ce
    if name == "seq_nll":
        return make_seq_nll(**options)
    raise ValueError(f"unknown loss {name!r}; expected one of ['rate_mse', 'final_ce', 'seq_nll']")
