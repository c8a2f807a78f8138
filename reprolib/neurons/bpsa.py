"""BPSA neurons: backpropagation with spatiotemporal adjustment (Shen, Zhao, Zeng, Patterns 2022).

Two codes implement BPSA and disagree (reference ``braincog-bpsa.md``); both are here, as ``variant``:

* ``"paper"`` -- ``HTGLIFNode`` of Brain-Cog-Lab/BP-STA (the paper's code): input added as is (the networks
  put a ReLU layer before every node), **binary** output ``a / stopgrad(m)`` (forward 1, gradient ``1/m``),
  leak ``decay`` = 0.9 (the training script's default) applied at the end of the step.
* ``"braincog"`` -- BrainCog's ``HTDGLIFNode`` (shown in the lecture): rectified input ``dt * ReLU(x)``, **graded**
  output ``a`` (the membrane at firing), no leak (``tau`` unused), ``dt`` (default 1) multiplies the state.

One step (threshold ``th`` = 0.5, firing at ``m >= th`` as in both codes; ``G = H(m - th)`` detached)::

    m     = m_prev + x                 ("paper")      m = m_prev + dt ReLU(x)      ("braincog")
    a     = m * G                      spatially clipped membrane: d a / d m = G
    y     = a / stopgrad(m)            ("paper": binary, d y / d m = G / m)   y = a  ("braincog")
    out   = y                          if spatial   else  Theta(m - th) with the ATan(2) surrogate
    m_r   = m * (1 - G)                hard reset to 0; no gradient through fired positions
    m_r  += 0.2 (y - stopgrad(y))      if temporal: backward-only residual across the reset
    m_new = decay * m_r                ("paper")      m_new = dt * m_r             ("braincog")

So the two flags only change gradients (and, for "braincog", ``spatial=False`` also turns the graded
output into a binary spike):

* ``spatial=False``: the output is the plain surrogate spike (Heaviside forward at ``m >= th``, ATan(alpha=2)
  backward, dense: sub-threshold neurons get gradient too) instead of the clipped/normalised membrane.
* ``temporal=False``: no residual; the hard reset is detached exactly as in BrainCog's ``IFNode``, so the
  gradient of a neuron's later outputs stops at its last spike.
* Both off = the baseline of the ablation: a surrogate-gradient LIF (``"paper"``: leak 0.9) or IF
  (``"braincog"``: no leak, rectified input) with ATan(2) and detached hard reset, same shapes, same forward
  spikes (for ``"paper"``).

The residual always carries ``y`` (the variant's normalised spike), whatever ``spatial`` says: it is a
property of the temporal adjustment, its weight is ``0.2`` per unit of ``y``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

from reprolib.checks import is_finite_real
from reprolib.neurons.base import MemoryModule
from reprolib.surrogate import ATan

__all__ = ["BPSA_VARIANTS", "BPSAParameters", "BPSAState", "bpsa_step", "bpsa_multistep", "BPSANode"]

BPSA_VARIANTS = ("paper", "braincog")


class BPSAParameters(NamedTuple):
    """Variant, adjustment flags and constants of a BPSA node (see the module docstring)."""

    variant: str = "paper"
    spatial: bool = True
    temporal: bool = True
    threshold: float = 0.5
    decay: float = 0.9
    dt: float = 1.0
    residual: float = 0.2
    # "spatial off" spike: Heaviside at m >= th (the BPSA nodes' firing condition) with the ATan(2) gradient
    surrogate: Callable[[Tensor], Tensor] = ATan(alpha=2.0, strict=False)


class BPSAState(NamedTuple):
    """Membrane potential after reset and leak (0 at the start)."""

    mem: Tensor


def _check(params: BPSAParameters) -> None:
    if params.variant not in BPSA_VARIANTS:
        raise ValueError(f"variant={params.variant!r}; expected one of {BPSA_VARIANTS}")
    if not isinstance(params.spatial, bool) or not isinstance(params.temporal, bool):
        raise ValueError(f"spatial={params.spatial!r}, temporal={params.temporal!r}; expected True or False")
    for name in ("threshold", "decay", "dt", "residual"):
        if not is_finite_real(getattr(params, name)):
            raise ValueError(f"{name}={getattr(params, name)!r}; expected a finite number")
    if not params.dt > 0:
        raise ValueError(f"dt={params.dt!r}; expected a positive time step")
    # the source fixes no range, but outside [0, 1] the "leak" either grows the potential every step (> 1) or
    # flips its sign (< 0): a typo, not a neuron (1 keeps the whole potential: no leak)
    if not 0.0 <= params.decay <= 1.0:
        raise ValueError(f"decay={params.decay!r}; expected a leak factor in [0, 1] (the fraction of the membrane "
                         "potential kept per step)")


def bpsa_step(x: Tensor, state: BPSAState, params: BPSAParameters) -> tuple[Tensor, BPSAState]:
    """One BPSA step: ``(out[t], state)``."""
    if params.variant == "braincog":
        mem = state.mem + params.dt * torch.relu(x)
    else:
        mem = state.mem + x
    fired = (mem.detach() >= params.threshold).to(mem.dtype)
    clipped = mem * fired
    # divide by 1 where the node did not fire (clipped is 0 there): under float16 autocast the 1e-12 guard
    # rounds to 0 and 0 / 0 would make every silent neuron NaN
    normalised = clipped if params.variant == "braincog" else clipped / torch.where(fired > 0, mem.detach() + 1e-12, 1.0)
    out = normalised if params.spatial else params.surrogate(mem - params.threshold)
    mem = mem * (1.0 - fired)
    if params.temporal:
        mem = mem + params.residual * (normalised - normalised.detach())
    mem = mem * (params.dt if params.variant == "braincog" else params.decay)
    return out, BPSAState(mem)


def bpsa_multistep(x_seq: Tensor, state: BPSAState, params: BPSAParameters) -> tuple[Tensor, BPSAState]:
    """The time loop over ``x_seq [T, B, ...]``: ``(out_seq, final state)``."""
    _check(params)
    outputs = []
    for x in x_seq:
        out, state = bpsa_step(x, state, params)
        outputs.append(out)
    return torch.stack(outputs), state


class BPSANode(MemoryModule):
    """BPSA node (no weights), single- (``[B, ...]``) or multi-step (``[T, B, ...]``); state kept until
    :meth:`reset`. ``warm_up=True`` bypasses the node as the codes do for ANN warm-up epochs (identity for
    ``"paper"``, ``ReLU`` for ``"braincog"``)."""

    def __init__(self, variant: str = "paper", spatial: bool = True, temporal: bool = True, threshold: float = 0.5,
                 decay: float = 0.9, dt: float = 1.0, residual: float = 0.2, surrogate=None, step_mode: str = "s"):
        super().__init__(step_mode)
        params = BPSAParameters(variant, spatial, temporal, float(threshold), float(decay), float(dt),
                                float(residual))
        if surrogate is not None:
            params = params._replace(surrogate=surrogate)
        _check(params)
        self.params = params
        self.surrogate = params.surrogate  # registered as a submodule for printing / device moves
        self.warm_up = False
        self.register_memory("mem", None)

    def neuron_parameters(self) -> BPSAParameters:
        return self.params

    def _state(self, like: Tensor) -> BPSAState:
        if self.mem is None:
            return BPSAState(torch.zeros_like(like))
        if self.mem.shape != like.shape:
            raise ValueError(f"BPSANode: input shape {tuple(like.shape)} does not match the state "
                             f"{tuple(self.mem.shape)}; call reset() before a new batch")
        return BPSAState(self.mem)

    def _bypass(self, x: Tensor) -> Tensor:
        return torch.relu(x) if self.params.variant == "braincog" else x

    def single_step_forward(self, x: Tensor) -> Tensor:
        if self.warm_up:
            return self._bypass(x)
        out, (self.mem,) = bpsa_step(x, self._state(x), self.params)
        return out

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        if not isinstance(x_seq, Tensor) or x_seq.dim() < 2:
            raise ValueError(f"BPSANode: input {getattr(x_seq, 'shape', x_seq)!r} is invalid; expected [T, B, ...]")
        if self.warm_up:
            return self._bypass(x_seq)
        out, (self.mem,) = bpsa_multistep(x_seq, self._state(x_seq[0]), self.params)
        return out

    def extra_repr(self) -> str:
        p = self.params
        return (f"variant={p.variant!r}, spatial={p.spatial}, temporal={p.temporal}, threshold={p.threshold}, "
                f"decay={p.decay}, dt={p.dt}, residual={p.residual}, step_mode={self.step_mode!r}")
