"""Shared machinery of every stateful module: state bookkeeping, step modes, fire and reset.

* :class:`MemoryModule` -- an ``nn.Module`` with named state variables ("memories") that
  :func:`reprolib.functional.reset_net` puts back to their initial values, and a SpikingJelly-style
  ``step_mode``: ``"s"`` (one time step, input ``[B, ...]``) or ``"m"`` (a whole sequence, input
  ``[T, B, ...]``, output ``[T, B, ...]``). Both modes give identical results.
* :class:`MembraneState` -- the explicit state of a one-variable neuron (membrane ``v``).
* :func:`fire` and :func:`reset_membrane` -- the "fire" and "reset" halves of SpikingJelly's
  charge / fire / reset scheme (reference ``spikingjelly-clock-driven.md`` section 1):

  * fire: ``S[t] = Theta(H[t] - V_th)`` (surrogate gradient in backward);
  * hard reset (``v_reset`` a number): ``V[t] = H[t] (1 - S) + V_reset S``;
  * soft reset (``v_reset=None``): ``V[t] = H[t] - S V_th``;

  with ``S = stopgrad(S[t])`` when ``detach_reset`` is set.
* :class:`BaseNode` -- argument checking, lazy state and backend dispatch shared by IF and LIF nodes.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from reprolib import surrogate as _surrogate
from reprolib.checks import is_finite_real

__all__ = [
    "STEP_MODES",
    "check_step_mode",
    "check_sequence",
    "MemoryModule",
    "MembraneState",
    "fire",
    "reset_membrane",
    "resolve_surrogate",
    "BaseNode",
]

#: "s": single step, input [B, ...]; "m": multi step, input [T, B, ...]
STEP_MODES = ("s", "m")


def check_step_mode(step_mode, owner: str = "module") -> str:
    """Return ``step_mode`` if it is ``"s"`` or ``"m"``, else raise ValueError."""
    if step_mode not in STEP_MODES:
        raise ValueError(
            f"{owner}: step_mode={step_mode!r} is invalid; expected 's' (single step, input [B, ...]) "
            f"or 'm' (multi step, input [T, B, ...])"
        )
    return step_mode


def check_sequence(x_seq, owner: str = "module", layout: str = "[T, B, ...]") -> Tensor:
    """Return ``x_seq`` if it is a tensor ``[T, ...]`` with ``T >= 1``, else raise ValueError.

    ``layout`` is what the error message says the caller expects: modules take a batch (``[T, B, ...]``), the
    single-neuron simulators a bare trace (``[T, ...]``).
    """
    if not isinstance(x_seq, Tensor):
        raise ValueError(f"{owner}: input of type {type(x_seq).__name__} is invalid; expected a torch.Tensor {layout}")
    if x_seq.dim() < 1 or x_seq.shape[0] < 1:
        raise ValueError(
            f"{owner}: input shape {tuple(x_seq.shape)} is invalid; expected a time-major sequence {layout} with T >= 1"
        )
    return x_seq


class MemoryModule(nn.Module):
    """An ``nn.Module`` with resettable state variables and a single-/multi-step forward.

    Subclasses call :meth:`register_memory` for each state variable (readable as an attribute, e.g.
    ``node.v``) and implement :meth:`single_step_forward`; the default :meth:`multi_step_forward`
    loops over time, which makes the two modes identical by construction (subclasses may override it
    with a faster path that must give the same result).
    """

    def __init__(self, step_mode: str = "s"):
        super().__init__()
        self._memory_defaults: dict[str, object] = {}
        self.step_mode = step_mode

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self._step_mode = check_step_mode(value, type(self).__name__)

    def register_memory(self, name: str, default=None) -> None:
        """Declare the state variable ``name``; :meth:`reset` sets it back to ``default``."""
        if hasattr(self, name) and name not in self._memory_defaults:
            raise ValueError(f"{type(self).__name__}: memory name {name!r} clashes with an existing attribute")
        self._memory_defaults[name] = default
        setattr(self, name, _fresh(default))

    def memories(self) -> dict[str, object]:
        """The current state variables, by name."""
        return {name: getattr(self, name) for name in self._memory_defaults}

    def reset(self) -> None:
        """Put every state variable back to its initial value (a new sample / batch starts)."""
        for name, default in self._memory_defaults.items():
            setattr(self, name, _fresh(default))

    def detach_memory(self) -> None:
        """Cut the autograd graph of the state (truncated BPTT) while keeping its value."""
        for name in self._memory_defaults:
            value = getattr(self, name)
            if isinstance(value, Tensor):
                setattr(self, name, value.detach())

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "s":
            return self.single_step_forward(x)
        return self.multi_step_forward(x)

    def single_step_forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        check_sequence(x_seq, type(self).__name__)
        return torch.stack([self.single_step_forward(x) for x in x_seq])


def _fresh(default):
    # tensors are cloned so that a reset never hands out the stored default itself
    return default.clone() if isinstance(default, Tensor) else default


class MembraneState(NamedTuple):
    """State of a one-variable neuron: the membrane potential ``v`` after the last step."""

    v: Tensor


def fire(h: Tensor, v_threshold: float, surrogate_function: Callable[[Tensor], Tensor]) -> Tensor:
    """``S = Theta(H - V_th)`` through ``surrogate_function`` (Heaviside forward, surrogate backward)."""
    return surrogate_function(h - v_threshold)


def reset_membrane(h: Tensor, spike: Tensor, v_threshold: float, v_reset: float | None, detach_reset: bool) -> Tensor:
    """Membrane after the spike: hard ``H (1 - S) + V_reset S`` or soft ``H - S V_th`` (``v_reset=None``).

    Written as the product form (not ``where``) so that, without ``detach_reset``, autograd gives the
    SpikingJelly gradients ``dV/dH = 1 - S`` and ``dV/dS = V_reset - H`` (hard) or ``-V_th`` (soft).
    """
    s = spike.detach() if detach_reset else spike
    if v_reset is None:
        return h - s * v_threshold
    return h * (1.0 - s) + v_reset * s


def resolve_surrogate(surrogate_function, owner: str = "node") -> Callable[[Tensor], Tensor]:
    """``None`` -> ``Sigmoid()`` (alpha 1.0, SpikingJelly's default of the tutorials' era);
    a name -> :func:`reprolib.surrogate.get_surrogate`; a callable -> itself."""
    if surrogate_function is None:
        return _surrogate.Sigmoid()
    if isinstance(surrogate_function, str):
        return _surrogate.get_surrogate(surrogate_function)
    if not callable(surrogate_function):
        raise ValueError(
            f"{owner}: surrogate_function={surrogate_function!r} is invalid; expected None, a surrogate name "
            f"{sorted(_surrogate.SURROGATES)} or a callable (e.g. reprolib.surrogate.ATan())"
        )
    return surrogate_function


def _check_number(name: str, value, owner: str) -> float:
    if not is_finite_real(value):
        raise ValueError(f"{owner}: {name}={value!r} is invalid; expected a finite number")
    return float(value)


def _check_bool(name: str, value, owner: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name}={value!r} is invalid; expected True or False")
    return value


#: modules imported (once, lazily) when a backend other than "torch" is asked for; importing them
#: registers their implementations in ``multistep_backends`` (they must not require CuPy to import)
OPTIONAL_BACKEND_MODULES = ("reprolib.kernels",)
_optional_backends_loaded = False


def _load_optional_backends() -> None:
    global _optional_backends_loaded
    if _optional_backends_loaded:
        return
    _optional_backends_loaded = True
    for name in OPTIONAL_BACKEND_MODULES:
        try:
            import_module(name)
        except ImportError:
            # a missing optional package only means its backends stay unavailable
            pass


def select_backend(owner: str, backend, table: dict) -> str:
    """Validate ``backend`` against a module's ``multistep_backends`` table and return the name to use.

    Any name other than ``"torch"`` first imports the optional backend modules once (which register
    their fused implementations). ``"auto"`` picks the best available implementation per call when one
    is registered under that name (a fused kernel with a fallback), otherwise it is the PyTorch path.
    """
    if backend != "torch" and backend not in table:
        _load_optional_backends()
    if backend == "auto" and "auto" not in table:
        backend = "torch"
    if backend not in table:
        raise ValueError(f"{owner}: backend={backend!r} is invalid; expected 'auto' or one of {sorted(table)}")
    if backend == "cpp":
        # fail when the model is built, not at its first forward after the data has been loaded
        from reprolib.kernels import cpu  # noqa: PLC0415

        if not cpu.cpp_available():
            from reprolib.kernels.dispatch import BackendUnavailable  # noqa: PLC0415

            raise BackendUnavailable(f"{owner}: backend='cpp' needs a C++ compiler (g++ or $CXX); none was found")
    return backend


class BaseNode(MemoryModule):
    """Common part of the charge / fire / reset neurons (IF, LIF).

    State ``v`` (membrane after the last step) starts as ``None`` and is created lazily on the first
    input as a tensor of the input's shape filled with ``v_reset`` (0 for soft reset). Subclasses set
    ``multistep_backends`` (name -> pure function ``(x_seq, v0, params) -> (spikes, v_last)``) and
    ``single_step_function`` (the pure step ``(x, MembraneState, params) -> (spike, MembraneState)``, as a
    ``staticmethod``), and implement :meth:`neuron_parameters`.

    Backends: ``"torch"`` is always there. A fused implementation registers itself with
    ``IFNode.multistep_backends["cupy"] = fn`` (and optionally ``["auto"]``, a function choosing per call);
    without an ``"auto"`` entry, ``backend="auto"`` means ``"torch"``. The single-step path is always PyTorch.
    """

    #: pure multi-step implementations by backend name; a fused kernel registers itself here
    multistep_backends: dict[str, Callable] = {}
    #: the pure single-step function (set as a staticmethod by each subclass)
    single_step_function: Callable | None = None

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "torch",
    ):
        owner = type(self).__name__
        super().__init__(step_mode)
        self.v_threshold = _check_number("v_threshold", v_threshold, owner)
        self.v_reset = None if v_reset is None else _check_number("v_reset", v_reset, owner)
        self.detach_reset = _check_bool("detach_reset", detach_reset, owner)
        self.surrogate_function = resolve_surrogate(surrogate_function, owner)
        self.backend = self._check_backend(backend)
        self.register_memory("v", None)

    def _check_backend(self, backend) -> str:
        return select_backend(type(self).__name__, backend, self.multistep_backends)

    def neuron_parameters(self):  # pragma: no cover - abstract
        """The node's parameters as the NamedTuple its pure step functions take."""
        raise NotImplementedError

    def initial_v(self, x: Tensor) -> Tensor:
        """Resting membrane for an input like ``x``: ``v_reset`` (hard reset) or 0 (soft reset)."""
        return torch.full_like(x, 0.0 if self.v_reset is None else self.v_reset)

    def current_v(self, x: Tensor) -> Tensor:
        """The membrane before this step: the stored ``v``, or the resting value on the first step."""
        if not isinstance(x, Tensor):
            raise ValueError(f"{type(self).__name__}: input of type {type(x).__name__} is invalid; expected a torch.Tensor")
        if self.v is None:
            return self.initial_v(x)
        if self.v.shape != x.shape:
            raise ValueError(
                f"{type(self).__name__}: input shape {tuple(x.shape)} does not match the state shape "
                f"{tuple(self.v.shape)}; call reprolib.functional.reset_net(net) before a new batch"
            )
        return self.v

    def single_step_forward(self, x: Tensor) -> Tensor:
        spike, state = self.single_step_function(x, MembraneState(self.current_v(x)), self.neuron_parameters())
        self.v = state.v
        return spike

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        check_sequence(x_seq, type(self).__name__)
        v0 = self.current_v(x_seq[0])
        spikes, self.v = self.multistep_backends[self.backend](x_seq, v0, self.neuron_parameters())
        return spikes

    def extra_repr(self) -> str:
        text = f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, detach_reset={self.detach_reset}"
        # non-default step mode / backend only, so that the tutorial printout is reproduced verbatim
        if self.step_mode != "s":
            text += f", step_mode={self.step_mode!r}"
        if self.backend != "torch":
            text += f", backend={self.backend!r}"
        return text
