"""A tiny synthetic dataset, encoder and spiking model to try the training loop in seconds.

They follow the same contracts as the real ones (CONTRIBUTING.md) and are referenced by import path
(``"reprolib.training.toy:build_toy_dataset"``), which the config accepts wherever a registry name goes, so
they also work in Dask worker processes without touching any registry. The ``toy`` preset of
:mod:`reprolib.experiments` uses them; the tests use them to check the loop, resume and sweeps.

>>> from reprolib.experiments import get_configs
>>> from reprolib.training import train
>>> record = train(get_configs("toy", "ci")[0], results_dir="/tmp/toy-results")  # doctest: +SKIP
"""

from __future__ import annotations

import time

import torch
from torch import nn

DATASET = "reprolib.training.toy:build_toy_dataset"
ENCODER = "reprolib.training.toy:build_toy_encoder"
MODEL = "reprolib.training.toy:build_toy_snn"


def build_toy_dataset(split: str, root=None, *, num_samples: int = 512, num_test: int = 256, num_features: int = 16,
                      classes: int = 4, noise: float = 0.25, data_seed: int = 0, val_fraction: float = 0.0,
                      split_seed: int = 0) -> torch.utils.data.TensorDataset:
    """Noisy copies of ``classes`` random prototypes in ``[0, 1]^num_features``; labels are ints.

    ``train``/``val`` are a ``split_seed`` permutation of one pool (``val_fraction`` held out), ``test`` is an
    independent pool. ``root`` is accepted for signature compatibility with ``load_dataset`` and unused.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split = {split!r} is not allowed; expected 'train', 'val' or 'test'")
    g = torch.Generator().manual_seed(data_seed)
    prototypes = torch.rand(classes, num_features, generator=g)

    def pool(n: int, offset: int):
        gen = torch.Generator().manual_seed(data_seed * 1000 + offset)
        labels = torch.randint(classes, (n,), generator=gen)
        x = (prototypes[labels] + noise * torch.randn(n, num_features, generator=gen)).clamp(0, 1)
        return x, labels

    if split == "test":
        return torch.utils.data.TensorDataset(*pool(num_test, 2))
    x, labels = pool(num_samples, 1)
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(split_seed))
    n_val = int(round(val_fraction * num_samples))
    chosen = order[:n_val] if split == "val" else order[n_val:]
    return torch.utils.data.TensorDataset(x[chosen], labels[chosen])


class ToyEncoder:
    """``poisson`` (Bernoulli(x) per step, drawn from ``generator``) or ``direct`` (x repeated T times)."""

    def __init__(self, num_steps: int = 8, kind: str = "poisson"):
        if kind not in ("poisson", "direct"):
            raise ValueError(f"encoding_options.kind = {kind!r} is not allowed; expected 'poisson' or 'direct'")
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"encoding_options.num_steps = {num_steps!r} is not allowed; expected a positive integer")
        self.num_steps, self.kind = num_steps, kind

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.flatten(1)
        if self.kind == "direct":
            return x.unsqueeze(0).expand(self.num_steps, *x.shape).contiguous()
        noise = torch.rand((self.num_steps, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        return (noise < x).to(x.dtype)

    __call__ = encode  # the reprolib.encoding convention: encoder(x, generator=None)


def build_toy_encoder(**options) -> ToyEncoder:
    return ToyEncoder(**options)


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward, sigmoid-derivative surrogate backward."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        s = torch.sigmoid(4.0 * v)
        return grad * 4.0 * s * (1 - s)


class ToySNN(nn.Module):
    """Linear -> LIF (hard reset) -> linear readout per step: ``[T, B, F] -> [T, B, C]``.

    Test hooks: ``forward_delay_s`` sleeps in each training forward (to kill a run mid-way), ``nan_after_steps``
    makes the output NaN after that many training forwards (to test the NaN guard); ``optimizer_steps`` counts
    calls of :meth:`after_optimizer_step`.
    """

    def __init__(self, in_features: int = 16, hidden: int = 32, classes: int = 4, tau: float = 2.0,
                 dropout: float = 0.0, forward_delay_s: float = 0.0, nan_after_steps: int | None = None):
        super().__init__()
        self.fc_in = nn.Linear(in_features, hidden)
        self.fc_out = nn.Linear(hidden, classes)
        self.dropout = nn.Dropout(dropout)  # uses the global torch RNG: checks that resume restores it
        self.tau = tau
        self.forward_delay_s, self.nan_after_steps = forward_delay_s, nan_after_steps
        self.training_forwards = 0
        self.optimizer_steps = 0
        self.last_activity = None
        self.last_spike_count = None

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.training_forwards += 1
            if self.forward_delay_s:
                time.sleep(self.forward_delay_s)
        current = self.dropout(self.fc_in(x_seq))
        v = torch.zeros_like(current[0])
        spikes = []
        for t in range(current.shape[0]):
            v = v + (current[t] - v) / self.tau
            s = _SpikeFn.apply(v - 1.0)
            v = v * (1 - s)
            spikes.append(s)
        spikes = torch.stack(spikes)
        self.last_activity = spikes.detach().mean()
        self.last_spike_count = spikes.detach().sum()
        out = self.fc_out(spikes)
        if self.nan_after_steps is not None and self.training and self.training_forwards > self.nan_after_steps:
            out = out * float("nan")
        return out

    def after_optimizer_step(self) -> None:
        self.optimizer_steps += 1


def build_toy_snn(**options) -> ToySNN:
    return ToySNN(**options)
