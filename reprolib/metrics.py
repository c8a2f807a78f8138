"""Activity, spike and size metrics shared by the SRC, BRF and BPSA models.

* Relative number of spiking time steps (SRC paper Eq. 4): ``Tcal(s) = (1/T) sum_t H(s[t])`` with a
  **strict** Heaviside ``H(s) = 1 if s > 0``. SRC outputs ``ReLU(h) >= 0``, so a non-strict ``H`` would count
  every step; for binary spikes it equals the firing rate. Averaged over neurons (each neuron counts once)
  and samples.
* Spike counts: the number of (step, neuron, sample) entries with ``s > 0``. For binary spikes this is
  ``s.sum()``; for SRC's graded multi-step spikes it counts spiking *steps* (use :func:`spike_onset_count`
  to count spike events, i.e. rising edges).
* Synaptic operations as the BRF paper defines them (Eq. 41): the total number of hidden spikes over a
  data set divided by the number of samples (``SOP`` per sample); ``SOP / T`` per step.
* :func:`count_parameters`: number of (trainable) parameter elements.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "spiking_step_fraction", "relative_spiking_steps", "spike_count", "spike_onset_count",
    "synaptic_operations", "sop_per_step", "firing_rate_per_neuron", "count_parameters",
]


def _check_seq(s_seq, name: str = "s_seq") -> Tensor:
    if not isinstance(s_seq, Tensor) or s_seq.dim() < 1 or s_seq.shape[0] == 0:
        shape = tuple(s_seq.shape) if isinstance(s_seq, Tensor) else type(s_seq).__name__
        raise ValueError(f"{name} {shape} is invalid; expected a non-empty time-major tensor [T, ...]")
    return s_seq


def spiking_step_fraction(s_seq: Tensor) -> Tensor:
    """Eq. 4 per neuron and sample: ``mean_t (s[t] > 0)``, shape ``s_seq.shape[1:]``."""
    s_seq = _check_seq(s_seq)
    return (s_seq.detach() > 0).to(torch.get_default_dtype()).mean(dim=0)


def relative_spiking_steps(s_seqs: Tensor | Sequence[Tensor], spiking: Tensor | None = None) -> Tensor:
    """Mean of Eq. 4 over all neurons (each neuron weighs the same, whatever its layer) and samples.

    ``s_seqs`` is one ``[T, B, ...]`` tensor or a list of them (one per layer, same ``T`` and ``B``).
    ``spiking``: their :func:`spike_count` when the caller has it already (a model that reports both), so the
    spikes are not counted twice. Returns a 0-dim tensor.
    """
    seqs = [s_seqs] if isinstance(s_seqs, Tensor) else list(s_seqs)
    if not seqs:
        raise ValueError("s_seqs is empty; expected at least one [T, B, ...] tensor")
    for s in seqs:
        _check_seq(s)
    if len({tuple(s.shape[:2]) for s in seqs}) > 1:
        raise ValueError(f"s_seqs have shapes {[tuple(s.shape) for s in seqs]}; expected the same T and B in every layer")
    total = sum(s.numel() for s in seqs)
    if spiking is None:
        spiking = spike_count(seqs)
    # a given count is not range-checked: reading its value would sync the GPU in every forward
    return spiking.to(torch.get_default_dtype()) / total


def spike_count(s_seqs: Tensor | Iterable[Tensor]) -> Tensor:
    """Number of entries with ``s > 0`` (strict), summed over a tensor or a list of tensors (0-dim)."""
    seqs = [s_seqs] if isinstance(s_seqs, Tensor) else list(s_seqs)
    total = torch.zeros((), dtype=torch.long)
    for s in seqs:
        # count_nonzero of the mask: the same int64 count as (s > 0).sum(), 5x faster on a CPU (the models
        # call this every batch)
        total = total + torch.count_nonzero(s.detach() > 0).cpu()
    return total


def spike_onset_count(s_seq: Tensor) -> Tensor:
    """Number of spike events: steps with ``s[t] > 0`` and ``s[t-1] == 0`` (``s[-1] = 0``), 0-dim."""
    active = _check_seq(s_seq).detach() > 0
    previous = torch.cat([torch.zeros_like(active[:1]), active[:-1]])
    return torch.count_nonzero(active & ~previous).cpu()


def synaptic_operations(total_hidden_spikes, num_samples: int) -> float:
    """BRF Eq. 41: SOP = total hidden spikes over the evaluated set / number of samples."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise ValueError(f"num_samples={num_samples!r}; expected a positive int")
    return float(total_hidden_spikes) / num_samples


def sop_per_step(sop: float, num_steps: int) -> float:
    """SOP per time step (BRF Table 1 column ``SOPs/step`` = SOP / T)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps={num_steps!r}; expected a positive int")
    return float(sop) / num_steps


def firing_rate_per_neuron(total_hidden_spikes, num_samples: int, num_steps: int, hidden_size: int) -> float:
    """BRF code's "firing rate per neuron": spikes / (samples x T x hidden size)."""
    for name, value in (("num_samples", num_samples), ("num_steps", num_steps), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}={value!r}; expected a positive int")
    return float(total_hidden_spikes) / (num_samples * num_steps * hidden_size)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameter elements of ``model`` (only those with ``requires_grad`` by default).

    Buffers (e.g. the frozen SRC readout) are never counted.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model of type {type(model).__name__} is invalid; expected a torch.nn.Module")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
