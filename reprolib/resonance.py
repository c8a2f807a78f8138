"""Stimuli and measurements of single resonate-and-fire neurons (the BRF page's README still and Figure 3).

Built on :func:`reprolib.neurons.resonate.simulate_resonator`; no training:

* :func:`spike_train` -- evenly spaced input spikes, each moving ``u`` by ``kick``;
* :func:`resonance_demo` -- one RF neuron driven in phase with its rotation and off resonance (README animation);
* :func:`periodic_spike_trains` -- regular spike trains at many frequencies on one time grid;
* :func:`frequency_response` / :func:`response_peaks` -- mean ``|u|`` per input frequency (paper Figure 3)
  and where it peaks.

These are analyses of the neuron model, so they could live in :mod:`reprolib.neurons.resonate`; they are kept
apart so that the neuron module stays the dynamics only.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
import torch
from torch import Tensor

from reprolib.checks import is_finite_real
from reprolib.neurons.resonate import DEFAULT_DT, simulate_resonator

__all__ = ["spike_train", "resonance_demo", "periodic_spike_trains", "check_response_pairs", "frequency_response",
           "response_peaks"]


def spike_train(frequency: float, steps: int, dt: float = DEFAULT_DT, kick: float = 0.5,
                count: int | None = None) -> Tensor:
    """Input current ``[steps]``: a spike of amplitude ``kick / dt`` (so that one Euler step moves ``u`` by
    ``kick``) every ``round(2 pi / frequency / dt)`` steps from step 0, at most ``count`` of them."""
    if not frequency > 0 or steps <= 0:
        raise ValueError(f"frequency={frequency!r}, steps={steps!r}; expected a positive frequency and steps")
    period = max(1, round(2 * math.pi / frequency / dt))
    x = torch.zeros(steps)
    x[::period][:count] = kick / dt
    return x


def resonance_demo(omega: float, b_offset: float, kick: float, n_input_spikes: int, detuning: float,
                   dt: float = DEFAULT_DT) -> tuple[Tensor, dict[str, dict[str, Tensor]]]:
    """One RF neuron (``balanced=False``) receiving ``n_input_spikes`` spikes once per period of ``omega``
    ("in phase") and the same spikes at ``detuning * omega`` ("off resonance"), simulated for
    ``n_input_spikes + 1.5`` periods.

    Returns ``(t, runs)``: the times ``[T]`` in seconds and, per input name, the input ``x`` and the traces of
    :func:`~reprolib.neurons.resonate.simulate_resonator` (``u``, ``v``, ``z``, ...).
    """
    steps = round((n_input_spikes + 1.5) * 2 * math.pi / omega / dt)
    t = torch.arange(steps) * dt
    inputs = {"in phase (ω)": spike_train(omega, steps, dt, kick, n_input_spikes),
              f"off resonance ({detuning:g} ω)": spike_train(detuning * omega, steps, dt, kick, n_input_spikes)}
    runs = {name: {"x": x, **simulate_resonator(x, omega, b_offset, balanced=False, dt=dt)}
            for name, x in inputs.items()}
    return t, runs


def periodic_spike_trains(frequencies: Tensor, steps: int, dt: float, kick: float) -> Tensor:
    """Input currents ``[steps, F]``, one regular spike train per angular frequency of ``frequencies [F]``:
    a spike (amplitude ``kick / dt``) at step 0 and at every step where ``t * frequency / 2 pi`` passes a whole
    number, so every frequency shares one time grid (unlike :func:`spike_train`, whose period is rounded)."""
    frequencies = torch.as_tensor(frequencies, dtype=torch.get_default_dtype())
    t = torch.arange(steps) * dt
    cycles = torch.floor(t[:, None] * frequencies[None, :] / (2 * math.pi))
    return torch.cat([torch.ones(1, len(frequencies)), (cycles[1:] > cycles[:-1]).float()]) * (kick / dt)


def check_response_pairs(pairs: Sequence, dt: float) -> list[tuple[float, float]]:
    """``pairs`` of ``[omega, b']`` as tuples; a ``ValueError`` for an item that is not a pair or whose
    ``omega`` is outside ``(0, 1/dt]`` (the BRF divergence boundary is not real beyond it)."""
    checked = []
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(f"response_pairs={pairs!r}: expected a non-empty list of [omega, b'] pairs")
    for pair in pairs:
        two_numbers = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
            is_finite_real(v) for v in pair)
        if not two_numbers or not 0 < pair[0] <= 1 / dt:
            raise ValueError(f"response_pairs item {pair!r}: expected [omega, b'], two finite numbers with "
                             "0 < omega <= 1/response_dt")
        checked.append((float(pair[0]), float(pair[1])))
    return checked


def frequency_response(frequencies: Tensor, pairs: Sequence, duration_s: float, dt: float,
                       kick: float = 0.05) -> dict[tuple[float, float], Tensor]:
    """Paper Figure 3: for each BRF neuron ``(omega, b')`` of ``pairs``, the mean ``|u|`` over ``duration_s``
    seconds of each :func:`periodic_spike_trains` input. Weak kicks keep the neurons below threshold, so the
    curve is the membrane's own resonance. Returns ``{(omega, b'): response [F]}``."""
    pairs = check_response_pairs(pairs, dt)
    x = periodic_spike_trains(frequencies, round(duration_s / dt), dt, kick)
    return {(w, b): simulate_resonator(x, w, b, balanced=True, dt=dt)["u"].abs().mean(0) for w, b in pairs}


def response_peaks(frequencies: Tensor, responses: dict[tuple[float, float], Tensor], duration_s: float,
                   dt: float, subharmonics: Sequence[int] = (2, 3), kick: float = 0.05) -> pd.DataFrame:
    """One row per neuron of :func:`frequency_response` (run with the same ``duration_s``, ``dt`` and ``kick``):
    its ``ω``, ``b'``, the input frequency of its largest response, and its response at the sub-harmonics
    ``ω/k``, simulated at exactly ``ω/k`` (not read off the grid of ``frequencies``), as a fraction of that
    largest response. A spike train at ``ω/k`` arrives in phase once every ``k`` cycles of the neuron, so the
    resonator also answers there (the BRF paper notes this sensitivity to sub-harmonics)."""
    rows = []
    for (w, b), response in responses.items():
        row = {"ω": w, "b'": b, "peak response at (rad/s)": float(frequencies[response.argmax()])}
        at = frequency_response(torch.tensor([w / k for k in subharmonics]), [(w, b)], duration_s, dt, kick)[(w, b)]
        for k, value in zip(subharmonics, at):
            row[f"at ω/{k} (of the peak)"] = float(value / response.max())
        rows.append(row)
    return pd.DataFrame(rows)
