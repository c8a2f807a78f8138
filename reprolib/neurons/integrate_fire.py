"""Integrate-and-fire (IF) and leaky integrate-and-fire (LIF) neurons, SpikingJelly semantics.

Per time step, with input ``X[t]`` and membrane ``V[t-1]`` (reference ``spikingjelly-clock-driven.md`` 1
and ``spikingjelly-recurrent.md`` 1.2):

* charge

  * IF:  ``H[t] = V[t-1] + X[t]``
  * LIF, ``decay_input=True`` (SpikingJelly's form, Euler step of ``tau dV/dt = -(V - V_reset) + X``):
    ``H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau``
  * LIF, ``decay_input=False`` (SpikingJelly's later option, the input is not scaled by 1/tau):
    ``H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]``

  (``V_reset`` is taken as 0 in the charge for soft reset);
* fire:  ``S[t] = Theta(H[t] - V_th)``, ``Theta(x) = 1 if x >= 0`` with the default surrogates;
* reset: hard ``V[t] = H[t] (1 - S) + V_reset S``; soft (``v_reset=None``) ``V[t] = H[t] - S V_th``;
  ``S`` detached in the reset when ``detach_reset=True``.

The dynamics are pure functions (``if_step``, ``lif_step`` and the multi-step ``if_multistep``,
``lif_multistep``) over :class:`MembraneState`; :class:`IFNode` / :class:`LIFNode` are thin modules that keep
the state ``v`` between calls. A fused kernel plugs in by registering a function with the signature of
``lif_multistep`` in ``LIFNode.multistep_backends`` (and likewise for IF).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from reprolib import surrogate as _surrogate
from reprolib.checks import is_finite_real
from reprolib.neurons.base import BaseNode, MembraneState, _check_bool, check_sequence, fire, reset_membrane

__all__ = [
    "IFState",
    "LIFState",
    "IFParameters",
    "LIFParameters",
    "if_charge",
    "lif_charge",
    "if_step",
    "lif_step",
    "if_multistep",
    "lif_multistep",
    "simulate_integrate_fire",
    "IFNode",
    "LIFNode",
    "MultiStepIFNode",
    "MultiStepLIFNode",
]

IFState = MembraneState
LIFState = MembraneState


class IFParameters(NamedTuple):
    """Parameters of the IF neuron (SpikingJelly defaults; Sigmoid alpha 1.0 of the tutorials' era)."""

    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = False
    # surrogates are stateless, so one shared default instance is safe
    surrogate_function: Callable[[Tensor], Tensor] = _surrogate.Sigmoid()


class LIFParameters(NamedTuple):
    """Parameters of the LIF neuron; ``tau = 100.0`` is the clock-driven tutorial's (2020) default."""

    tau: float = 100.0
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = False
    surrogate_function: Callable[[Tensor], Tensor] = _surrogate.Sigmoid()


def if_charge(v: Tensor, x: Tensor) -> Tensor:
    """``H = V + X``."""
    return v + x


def lif_charge(v: Tensor, x: Tensor, tau: float, decay_input: bool, v_reset: float | None) -> Tensor:
    """``H = V + (X - (V - V_reset))/tau`` (``decay_input``) or ``H = V - (V - V_reset)/tau + X``."""
    v_rest = 0.0 if v_reset is None else v_reset
    if decay_input:
        return v + (x - (v - v_rest)) / tau
    return v - (v - v_rest) / tau + x


def _fire_and_reset(h: Tensor, p) -> tuple[Tensor, MembraneState]:
    spike = fire(h, p.v_threshold, p.surrogate_function)
    return spike, MembraneState(reset_membrane(h, spike, p.v_threshold, p.v_reset, p.detach_reset))


def if_step(x: Tensor, state: MembraneState, p: IFParameters = IFParameters()) -> tuple[Tensor, MembraneState]:
    """One IF step: returns the spike ``S[t]`` and the new state ``V[t]``."""
    return _fire_and_reset(if_charge(state.v, x), p)


def lif_step(x: Tensor, state: MembraneState, p: LIFParameters = LIFParameters()) -> tuple[Tensor, MembraneState]:
    """One LIF step: returns the spike ``S[t]`` and the new state ``V[t]``."""
    return _fire_and_reset(lif_charge(state.v, x, p.tau, p.decay_input, p.v_reset), p)


def _multistep(step: Callable, x_seq: Tensor, v0: Tensor, p) -> tuple[Tensor, Tensor]:
    """``step`` (``if_step`` / ``lif_step``) over ``x_seq [T, ...]`` from ``v0``: ``(spikes [T, ...], V[T-1])``."""
    state = MembraneState(v0)
    spikes = []
    for x in x_seq:
        spike, state = step(x, state, p)
        spikes.append(spike)
    return torch.stack(spikes), state.v


def if_multistep(x_seq: Tensor, v0: Tensor, p: IFParameters = IFParameters()) -> tuple[Tensor, Tensor]:
    """IF over a sequence ``x_seq [T, ...]`` from membrane ``v0 [...]``: returns ``(spikes [T, ...], V[T-1])``."""
    return _multistep(if_step, x_seq, v0, p)


def lif_multistep(x_seq: Tensor, v0: Tensor, p: LIFParameters = LIFParameters()) -> tuple[Tensor, Tensor]:
    """LIF over a sequence ``x_seq [T, ...]`` from membrane ``v0 [...]``: returns ``(spikes [T, ...], V[T-1])``."""
    return _multistep(lif_step, x_seq, v0, p)


def _check_tau(tau, owner: str) -> None:
    """A LIF time constant: a finite number > 1 (``1/tau`` is the fraction of ``X - (V - V_reset)`` charged)."""
    if not is_finite_real(tau) or tau <= 1:
        raise ValueError(f"{owner}: tau={tau!r} is invalid; expected a finite number > 1")


def simulate_integrate_fire(x_seq, p: IFParameters | LIFParameters) -> dict[str, Tensor]:
    """One IF or LIF neuron (``p`` says which) driven by ``x_seq`` step by step from ``V = V_reset`` (0 for the
    soft reset), keeping what the charge-fire-reset figures show. ``x_seq``: ``[T]`` or ``[T, *shape]`` (each
    trailing element an independent neuron), on any device; a floating-point input keeps its dtype. Returns
    ``[T, *shape]`` tensors without gradient: ``x``; ``h``, the charged potential ``H[t]`` before the reset; ``v``,
    the membrane ``V[t]`` after it; ``s``, the spikes."""
    if isinstance(p, LIFParameters):
        _check_tau(p.tau, "simulate_integrate_fire")
        charge = functools.partial(lif_charge, tau=p.tau, decay_input=p.decay_input, v_reset=p.v_reset)
    elif isinstance(p, IFParameters):
        charge = if_charge
    else:
        raise ValueError(f"p must be IFParameters or LIFParameters, got {type(p).__name__}")
    x_seq = torch.as_tensor(x_seq)
    if not x_seq.is_floating_point():
        x_seq = x_seq.to(torch.get_default_dtype())
    check_sequence(x_seq, "simulate_integrate_fire", layout="[T, ...]")
    v = torch.full_like(x_seq[0], 0.0 if p.v_reset is None else float(p.v_reset))
    trace: dict[str, list[Tensor]] = {"h": [], "v": [], "s": []}
    with torch.no_grad():
        for x in x_seq:
            h = charge(v, x)
            spike, state = _fire_and_reset(h, p)  # what if_step / lif_step do after charging
            v = state.v
            trace["h"].append(h)
            trace["v"].append(v)
            trace["s"].append(spike)
    return {"x": x_seq, **{key: torch.stack(values) for key, values in trace.items()}}


class IFNode(BaseNode):
    """Integrate-and-fire neuron ``H = V + X`` (see the module docstring for fire / reset).

    Args:
        v_threshold: firing threshold ``V_th``.
        v_reset: reset value (hard reset) or ``None`` (soft reset: subtract ``V_th``).
        surrogate_function: surrogate spike module or name; ``None`` = ``Sigmoid(alpha=1.0)``.
        detach_reset: detach the spike inside the reset (gradient does not flow through the reset).
        step_mode: ``"s"`` input ``[B, ...]`` or ``"m"`` input ``[T, B, ...]``.
        backend: implementation of the multi-step path: ``"torch"`` (or ``"auto"``).

    After each call ``node.v`` holds the membrane (``[B, ...]``); ``node.reset()`` clears it.
    """

    # __init__ is BaseNode's: IF has no parameters of its own
    multistep_backends = {"torch": if_multistep}
    single_step_function = staticmethod(if_step)

    def neuron_parameters(self) -> IFParameters:
        return IFParameters(self.v_threshold, self.v_reset, self.detach_reset, self.surrogate_function)


class LIFNode(BaseNode):
    """Leaky integrate-and-fire neuron (SpikingJelly charge, see the module docstring).

    Args:
        tau: membrane time constant, > 1 (default 100.0 as in the clock-driven tutorial;
            later SpikingJelly versions default to 2.0).
        decay_input: ``True``: ``H = V + (X - (V - V_reset))/tau``; ``False``: ``H = V - (V - V_reset)/tau + X``.
        other arguments: as :class:`IFNode`.
    """

    multistep_backends = {"torch": lif_multistep}
    single_step_function = staticmethod(lif_step)

    def __init__(
        self,
        tau: float = 100.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "torch",
    ):
        owner = type(self).__name__
        # checked before anything is built so a bad tau fails fast
        _check_tau(tau, owner)
        _check_bool("decay_input", decay_input, owner)
        super().__init__(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend)
        self.tau = float(tau)
        self.decay_input = decay_input

    def neuron_parameters(self) -> LIFParameters:
        return LIFParameters(
            self.tau, self.decay_input, self.v_threshold, self.v_reset, self.detach_reset, self.surrogate_function
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}, decay_input={self.decay_input}"


class MultiStepIFNode(IFNode):
    """:class:`IFNode` with ``step_mode="m"`` by default (input ``[T, B, ...]``), as SpikingJelly's class."""

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        backend: str = "torch",
    ):
        super().__init__(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend)


class MultiStepLIFNode(LIFNode):
    """:class:`LIFNode` with ``step_mode="m"`` by default (input ``[T, B, ...]``), as SpikingJelly's class."""

    def __init__(
        self,
        tau: float = 100.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        backend: str = "torch",
    ):
        super().__init__(tau, decay_input, v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend)
