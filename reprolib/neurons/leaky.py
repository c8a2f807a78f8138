"""LIF with snnTorch ``Leaky`` semantics: the LIF baseline of the SRC paper (which used snnTorch).

One step with input current ``I[t]`` (snnTorch 1.0 ``Leaky`` with ``reset_delay=True``, its default)::

    R[t] = stopgrad(Theta(U[t-1] - thr))          reset signal from the PREVIOUS membrane, detached
    "subtract": U[t] = clamp(beta, 0, 1) U[t-1] + I[t] - R[t] thr
    "zero":     U[t] = clamp(beta, 0, 1) (1 - R[t]) U[t-1] + I[t]
    "none":     U[t] = clamp(beta, 0, 1) U[t-1] + I[t]
    S[t] = Theta(U[t] - thr)                      strict ``>``, ATan(alpha=2) surrogate gradient

``beta`` and ``thr`` may be learnable (the SRC paper learns both; snnTorch keeps one scalar per layer).
The threshold gets gradient through ``S`` and, for ``"subtract"``, through ``- R thr`` as in snnTorch.
The SRC paper writes an immediate reset to rest but does not say which snnTorch mode it used (ambiguity
A3 of the reference); ``reset="zero"`` is the closest reading and the default of the SRC builder.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from reprolib.neurons.base import MemoryModule, _check_number, select_backend
from reprolib.surrogate import ATan

__all__ = ["LeakyParameters", "LeakyState", "leaky_step", "leaky_multistep", "Leaky", "LEAKY_RESETS"]

LEAKY_RESETS = ("subtract", "zero", "none")


class LeakyParameters(NamedTuple):
    """``beta`` (decay, clamped to [0, 1] when used), ``threshold``, reset mode and spike function."""

    beta: Tensor | float = 0.9
    threshold: Tensor | float = 1.0
    reset: str = "subtract"
    spike_fn: Callable[[Tensor], Tensor] = ATan(alpha=2.0, strict=True)


class LeakyState(NamedTuple):
    """Membrane potential ``U`` after the last step."""

    mem: Tensor


def leaky_step(input_current: Tensor, state: LeakyState, params: LeakyParameters) -> tuple[Tensor, LeakyState]:
    """One snnTorch-Leaky step: ``(S[t], LeakyState(U[t]))``."""
    mem = state.mem
    reset = params.spike_fn(mem - params.threshold).detach()
    beta = torch.clamp(torch.as_tensor(params.beta, dtype=mem.dtype, device=mem.device), 0.0, 1.0)
    if params.reset == "zero":
        mem = (1.0 - reset) * mem
    mem = beta * mem + input_current
    if params.reset == "subtract":
        mem = mem - reset * params.threshold
    spike = params.spike_fn(mem - params.threshold)
    return spike, LeakyState(mem)


def leaky_multistep(input_seq: Tensor, state: LeakyState, params: LeakyParameters) -> tuple[Tensor, LeakyState]:
    """The time loop over ``input_seq [T, B, ...]``: ``(spikes [T, B, ...], final state)``."""
    if params.reset not in LEAKY_RESETS:
        raise ValueError(f"reset={params.reset!r}; expected one of {LEAKY_RESETS}")
    spikes = []
    for input_current in input_seq:
        spike, state = leaky_step(input_current, state, params)
        spikes.append(spike)
    return torch.stack(spikes), state


class Leaky(MemoryModule):
    """snnTorch-``Leaky``-equivalent LIF node (no weights: feed it ``I = W x``).

    ``beta`` / ``threshold`` are scalars (snnTorch's default shape), learnable when ``learn_beta`` /
    ``learn_threshold``. ``spike_fn`` defaults to ``ATan(alpha=2.0, strict=True)`` (snnTorch's
    ``surrogate.atan()``). The membrane starts at 0 and persists across calls until :meth:`reset`.
    ``backend``: ``"cpp"`` runs the multi-step forward as one C++ scan on CPU float32 tensors, ``"cupy"`` as
    one CUDA kernel, ``"auto"`` the CUDA kernel where it can run and the PyTorch loop elsewhere (ATan / Sigmoid
    surrogates; :mod:`reprolib.kernels.leaky`); single steps always take the PyTorch step.
    """

    #: pure multi-step implementations ``(input_seq, LeakyState, LeakyParameters) -> (spikes, LeakyState)`` by
    #: backend name; ``reprolib.kernels.register_backends`` adds "cpp", "cupy" and "auto" (as for the other neurons)
    multistep_backends: dict[str, Callable] = {"torch": leaky_multistep}

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, *, learn_beta: bool = False,
                 learn_threshold: bool = False, reset: str = "subtract", spike_fn=None, step_mode: str = "s",
                 backend: str = "torch"):
        super().__init__(step_mode)
        if reset not in LEAKY_RESETS:
            raise ValueError(f"Leaky: reset={reset!r}; expected one of {LEAKY_RESETS}")
        # an unknown name, or "cpp" without a compiler, fails here, before any data
        self.backend = select_backend("Leaky", backend, self.multistep_backends)
        # a one-element tensor is taken by value, as float() always did
        beta, threshold = (float(v) if isinstance(v, Tensor) and v.numel() == 1 else v for v in (beta, threshold))
        beta_t = torch.as_tensor(_check_number("beta", beta, "Leaky"))
        thr_t = torch.as_tensor(_check_number("threshold", threshold, "Leaky"))
        if learn_beta:
            self.beta = nn.Parameter(beta_t)
        else:
            self.register_buffer("beta", beta_t)
        if learn_threshold:
            self.threshold = nn.Parameter(thr_t)
        else:
            self.register_buffer("threshold", thr_t)
        self.reset_mode = reset
        self.spike_fn = spike_fn if spike_fn is not None else ATan(alpha=2.0, strict=True)
        if self.backend in ("cpp", "cupy"):  # options the kernels lack fail here too ("auto" falls back instead)
            from reprolib.kernels import leaky  # noqa: PLC0415

            leaky.check_supported(self.spike_fn, reset)
        self.register_memory("mem", None)

    def neuron_parameters(self) -> LeakyParameters:
        return LeakyParameters(self.beta, self.threshold, self.reset_mode, self.spike_fn)

    def _state(self, like: Tensor) -> LeakyState:
        if self.mem is None:
            return LeakyState(torch.zeros_like(like))
        if self.mem.shape != like.shape:
            raise ValueError(f"Leaky: input shape {tuple(like.shape)} does not match the state "
                             f"{tuple(self.mem.shape)}; call reset() before a new batch")
        return LeakyState(self.mem)

    def single_step_forward(self, x: Tensor) -> Tensor:
        spike, (self.mem,) = leaky_step(x, self._state(x), self.neuron_parameters())
        return spike

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        if not isinstance(x_seq, Tensor) or x_seq.dim() < 2 or x_seq.shape[0] < 1:
            raise ValueError(f"Leaky: input {getattr(x_seq, 'shape', x_seq)!r} is invalid; expected [T, B, ...] "
                             "with T >= 1")
        multistep = self.multistep_backends[self.backend]
        spikes, (self.mem,) = multistep(x_seq, self._state(x_seq[0]), self.neuron_parameters())
        return spikes

    def extra_repr(self) -> str:
        return (f"beta={float(self.beta):.4g}, threshold={float(self.threshold):.4g}, reset={self.reset_mode!r}, "
                f"learn_beta={isinstance(self.beta, nn.Parameter)}, "
                f"learn_threshold={isinstance(self.threshold, nn.Parameter)}, step_mode={self.step_mode!r}")
