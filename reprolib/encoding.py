"""Spike encoders: a collated batch ``x [B, ...]`` -> network input ``[T, B, *features]``.

``get_encoder(name, **options)`` returns a callable ``encode(x, generator=None)``. Random encoders draw
from ``generator`` (a ``torch.Generator`` on the input's device) or, without one, from torch's global
RNG; the output is on the input's device. With ``flatten=True`` (default) the per-step features are
flattened to one dimension (``[T, B, 784]`` for MNIST), otherwise their shape is kept.

========== ===========================================================================================
name       semantics (source)
========== ===========================================================================================
poisson    spike where ``u <= p``, ``u ~ U[0, 1)`` fresh at each of ``num_steps`` steps (SpikingJelly
           ``PoissonEncoder``)
rate       ``Bernoulli(clamp(gain * p + offset, 0, 1))`` per step (snnTorch ``spikegen.rate``; SRC uses
           gain 0.25); draws the same numbers as snnTorch for the same seed
latency    one spike per pixel at most, brighter earlier (snnTorch ``spikegen.latency``: tau, threshold,
           linear, normalize, clip, first_spike_time), deterministic
latency_src ``latency`` preset of the SRC paper: num_steps 200, tau 10, threshold 0.01, linear, normalize,
           clip. With ``normalize=True`` snnTorch replaces tau by ``num_steps - 1 - first_spike_time``, so
           tau = 10 has no effect: ``t = round(min(199 (1 - p), 197.01))``, pixels below 0.01 silent
direct     the input repeated ``num_steps`` times (BPSA / BrainCog "direct")
columns    column ``t`` of the image at step ``t``: ``[B, 1, H, W] -> [W, B, H]`` (SpikingJelly sequential
           Fashion-MNIST; T = 28, 28 inputs)
pixels     one pixel per step, row-major: ``[B, 1, 28, 28] -> [784, B, 1]`` (S-MNIST); with
           ``permutation_seed`` a fixed permutation of the positions (PS-MNIST)
sequence   an already sequential batch ``[B, T, ...] -> [T, B, ...]`` (N-MNIST frames, SHD, ECG)
========== ===========================================================================================
"""

from __future__ import annotations

import numpy as np
import torch

from reprolib.checks import is_finite_real
from reprolib.kernels.bernoulli import bernoulli, uniform_at_most

__all__ = ["ENCODERS", "ENCODER_PRESETS", "get_encoder", "pixel_permutation"]


def _check_generator(x: torch.Tensor, generator: torch.Generator | None) -> None:
    if generator is not None and torch.device(generator.device).type != x.device.type:
        raise ValueError(
            f"generator is on {generator.device} but the input is on {x.device}; "
            f"pass torch.Generator(device={str(x.device)!r})."
        )


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer.")
    return value


def _check_finite(name: str, value) -> float:
    if not is_finite_real(value):
        raise ValueError(f"{name}={value!r} must be a finite number.")
    return float(value)


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} must be True or False.")
    return bool(value)


def _check_first_spike_time(value, num_steps: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= num_steps - 1:
        raise ValueError(f"first_spike_time={value!r} must be an integer in [0, num_steps - 1 = {num_steps - 1}].")
    return value


def _check_batch(x, min_dim: int, encoder: str, finite: bool = False) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{encoder}: expected a torch.Tensor batch, got {type(x).__name__}.")
    if x.dim() < min_dim:
        raise ValueError(f"{encoder}: expected a batch with at least {min_dim} dimensions, got shape {tuple(x.shape)}.")
    if finite and x.is_floating_point() and x.device.type != "meta" and bool(torch.isnan(x).any()):
        # a NaN probability or intensity has no spike train: torch.bernoulli refuses it, a comparison drops it.
        # On CUDA, reading the answer waits for the GPU; in training that costs only the batch's own copy, since
        # the loop has already read the previous batch's loss after its optimizer step (_Meter.add).
        raise ValueError(f"{encoder}: the batch holds NaN values; expected numbers (e.g. pixel intensities in [0, 1]).")
    return x


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.float32)


class Encoder:
    """Base: options are attributes; ``__call__(x, generator=None)`` returns ``[T, B, *features]``."""

    name = ""
    flatten: bool = True

    def _finish(self, spikes: torch.Tensor) -> torch.Tensor:
        # spikes: [T, B, *features]
        return spikes.flatten(2) if self.flatten and spikes.dim() > 3 else spikes

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


class PoissonEncoder(Encoder):
    name = "poisson"

    def __init__(self, num_steps: int, flatten: bool = True):
        self.num_steps = _check_positive_int("num_steps", num_steps)
        self.flatten = _check_flag("flatten", flatten)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _to_float(_check_batch(x, 1, self.name, finite=True))
        _check_generator(x, generator)
        # (torch.rand(T, *x.shape) <= x), drawn on the CPU by the same C++ loop as the rate encoder's Bernoulli
        return self._finish(uniform_at_most(x, self.num_steps, generator))


class RateEncoder(Encoder):
    name = "rate"

    def __init__(self, num_steps: int, gain: float = 1.0, offset: float = 0.0, first_spike_time: int = 0, flatten: bool = True):
        self.num_steps = _check_positive_int("num_steps", num_steps)
        self.first_spike_time = _check_first_spike_time(first_spike_time, num_steps)
        self.gain, self.offset = _check_finite("gain", gain), _check_finite("offset", offset)
        self.flatten = _check_flag("flatten", flatten)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _to_float(_check_batch(x, 1, self.name, finite=True))
        _check_generator(x, generator)
        # Same values and draw order as snnTorch (data.repeat(T, 1, ...) * gain + offset, clamp, torch.bernoulli),
        # so one seed gives identical spikes. The probabilities are element-wise, so they are computed once per
        # pixel and broadcast over time rather than over T copies, and on the CPU the draws replay torch's
        # generator in C++ (kernels.bernoulli): the same spikes, in a fifth of the time. The encoder, not the
        # network, had dominated a CPU epoch of the SRC paper's rate-coded MNIST runs.
        probabilities = torch.clamp(x * self.gain + self.offset, 0, 1)
        spikes = bernoulli(probabilities, self.num_steps, generator)
        if self.first_spike_time > 0:
            spikes[: self.first_spike_time] = 0
        return self._finish(spikes)


class LatencyEncoder(Encoder):
    name = "latency"

    def __init__(
        self,
        num_steps: int,
        tau: float = 1.0,
        threshold: float = 0.01,
        linear: bool = False,
        normalize: bool = False,
        clip: bool = False,
        first_spike_time: int = 0,
        epsilon: float = 1e-7,
        flatten: bool = True,
    ):
        self.num_steps = _check_positive_int("num_steps", num_steps)
        if not 0 < _check_finite("threshold", threshold) < 1:
            raise ValueError(f"threshold={threshold!r} must lie in (0, 1).")
        if not _check_finite("tau", tau) > 0:
            raise ValueError(f"tau={tau!r} must be > 0.")
        if not _check_finite("epsilon", epsilon) > 0:
            raise ValueError(f"epsilon={epsilon!r} must be > 0 (it keeps log(p / (p - threshold)) finite).")
        self.first_spike_time = _check_first_spike_time(first_spike_time, num_steps)
        self.tau, self.threshold, self.epsilon = float(tau), float(threshold), float(epsilon)
        self.linear = _check_flag("linear", linear)
        self.normalize, self.clip = _check_flag("normalize", normalize), _check_flag("clip", clip)
        self.flatten = _check_flag("flatten", flatten)

    def spike_times(self, x: torch.Tensor) -> torch.Tensor:
        """Real-valued spike time per element (before rounding), snnTorch's ``latency_code``."""
        last = self.num_steps - 1
        if self.linear:
            tau = last - self.first_spike_time if self.normalize else self.tau
            return torch.clamp_max(-tau * (x - 1), -tau * (self.threshold - 1)) + self.first_spike_time
        clamped = torch.clamp(x, self.threshold + self.epsilon)  # below threshold: the latest (capped) time
        times = self.tau * torch.log(clamped / (clamped - self.threshold)) + self.first_spike_time
        if self.normalize:
            # As snnTorch: scaled so that the latest time in the whole batch lands on the last step.
            shifted = times - self.first_spike_time
            times = shifted * (last - self.first_spike_time) / torch.max(shifted) + self.first_spike_time
        return times

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _to_float(_check_batch(x, 1, self.name, finite=True))
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                f"latency: inputs must lie in [0, 1] (pixel intensities), got [{x.min().item()}, {x.max().item()}]; "
                "do not combine with normalize=[mean, std]."
            )
        times = torch.round(self.spike_times(x)).long()
        late = times > self.num_steps - 1
        if late.any():
            raise ValueError(
                f"latency: spike time {times.max().item()} exceeds num_steps - 1 = {self.num_steps - 1}; "
                "lower tau or set normalize=True."
            )
        spikes = torch.zeros((self.num_steps, *x.shape), dtype=x.dtype, device=x.device)
        if self.clip:
            # pixels below threshold stay silent: their "spike" is a 0 written at their time. Scattering the mask
            # gives the same tensor as scattering ones and then multiplying by the mask, without a second pass over
            # all T steps (on a CPU that product took a fifth of a training step of the 1-layer latency networks)
            spikes.scatter_(0, times.unsqueeze(0), (x >= self.threshold).to(x.dtype).unsqueeze(0))
        else:
            spikes.scatter_(0, times.unsqueeze(0), 1.0)
        return self._finish(spikes)


class DirectEncoder(Encoder):
    name = "direct"

    def __init__(self, num_steps: int, flatten: bool = True):
        self.num_steps = _check_positive_int("num_steps", num_steps)
        self.flatten = _check_flag("flatten", flatten)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(x, 1, self.name)
        return self._finish(x.unsqueeze(0).expand(self.num_steps, *x.shape).contiguous())


class ColumnsEncoder(Encoder):
    """Image columns left to right; each step is that column top to bottom (``[W, B, H]``)."""

    name = "columns"

    def __init__(self, flatten: bool = True):
        self.flatten = _check_flag("flatten", flatten)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(x, 3, self.name)
        if x.dim() == 4:
            if x.shape[1] != 1:
                raise ValueError(f"columns: expected one channel [B, 1, H, W], got shape {tuple(x.shape)}.")
            x = x[:, 0]
        if x.dim() != 3:
            raise ValueError(f"columns: expected [B, H, W] or [B, 1, H, W], got shape {tuple(x.shape)}.")
        return x.permute(2, 0, 1).contiguous()  # [B, H, W] -> [W, B, H], as SpikingJelly's x.permute(2, 0, 1)


def pixel_permutation(n_pixels: int, seed: int) -> torch.Tensor:
    """The fixed PS-MNIST permutation: ``torch.randperm`` from a private CPU generator seeded with ``seed``.

    A CPU generator makes it identical on every device, run and process (the source, BRF, used an unseeded
    ``torch.randperm(784)`` saved to a file; a seed replaces the file).
    """
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(int(seed)))


class PixelsEncoder(Encoder):
    """One pixel per step in row-major order (S-MNIST), optionally permuted (PS-MNIST): ``[H*W, B, 1]``."""

    name = "pixels"

    def __init__(self, permutation_seed: int | None = None, flatten: bool = True):
        if permutation_seed is not None and (isinstance(permutation_seed, bool) or not isinstance(permutation_seed, int)):
            raise ValueError(f"permutation_seed={permutation_seed!r} must be an integer or None.")
        self.permutation_seed = permutation_seed
        self.flatten = _check_flag("flatten", flatten)
        self._permutations: dict[tuple[int, str], torch.Tensor] = {}

    def permutation(self, n_pixels: int, device) -> torch.Tensor | None:
        if self.permutation_seed is None:
            return None
        key = (n_pixels, str(device))
        if key not in self._permutations:
            self._permutations[key] = pixel_permutation(n_pixels, self.permutation_seed).to(device)
        return self._permutations[key]

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(x, 2, self.name)
        pixels = x.reshape(x.shape[0], -1)  # row-major, as image.view(-1)
        order = self.permutation(pixels.shape[1], x.device)
        if order is not None:
            pixels = pixels[:, order]
        return pixels.t().unsqueeze(-1).contiguous()  # [B, N] -> [N, B, 1]


class SequenceEncoder(Encoder):
    """Batch-first sequences ``[B, T, ...]`` -> time-major ``[T, B, ...]``."""

    name = "sequence"

    def __init__(self, flatten: bool = True):
        self.flatten = _check_flag("flatten", flatten)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(x, 2, self.name)
        return self._finish(x.transpose(0, 1).contiguous())


ENCODERS: dict[str, type[Encoder]] = {
    cls.name: cls
    for cls in (PoissonEncoder, RateEncoder, LatencyEncoder, DirectEncoder, ColumnsEncoder, PixelsEncoder, SequenceEncoder)
}

# name -> (encoder, default options); options given to get_encoder override the preset's.
ENCODER_PRESETS: dict[str, tuple[str, dict]] = {
    "latency_src": ("latency", dict(num_steps=200, tau=10.0, threshold=0.01, linear=True, normalize=True, clip=True)),
}


def get_encoder(name: str, **options) -> Encoder:
    """Build encoder ``name`` (or preset) with ``options``; unknown names or options raise ``ValueError``."""
    if name in ENCODER_PRESETS:
        base, defaults = ENCODER_PRESETS[name]
        options = {**defaults, **options}
        name = base
    if name not in ENCODERS:
        raise ValueError(f"Unknown encoder {name!r}; expected one of {', '.join(sorted([*ENCODERS, *ENCODER_PRESETS]))}.")
    try:
        return ENCODERS[name](**options)
    except TypeError as error:
        raise ValueError(f"Bad options {options!r} for encoder {name!r}: {error}") from None
