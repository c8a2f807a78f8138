"""Layers of the SpikingJelly recurrent tutorial (reference ``spikingjelly-recurrent.md`` section 1).

* :class:`ElementWiseRecurrentContainer` -- ``i[t] = f(x[t], y[t-1])`` (the tutorial's order), ``y[t] = sub_module(i[t])``, ``y[-1] = 0``.
* :class:`LinearRecurrentContainer` -- ``i[t] = rc([x[t], y[t-1]])`` with one ``nn.Linear`` ``rc`` of size
  ``in_features + out_features -> in_features``; ``y[t] = sub_module(i[t])``, ``y[-1] = 0``.
* :class:`SynapseFilter` -- stateful synapse ``I[t] = I[t-1] - (1 - S[t]) I[t-1] / tau + S[t]``, ``I[-1] = 0``;
  learnable: one scalar ``w`` (init ``-ln(tau - 1)``) with ``1/tau = sigmoid(w)``.
* :class:`MultiStepContainer` -- runs single-step modules over ``[T, B, ...]`` step by step.
* :class:`SeqToANNContainer` -- runs stateless modules over ``[T, B, ...]`` in one call (time folded into the batch).

The stateful layers are :class:`~reprolib.neurons.base.MemoryModule` s (reset by
:func:`reprolib.functional.reset_net`) with ``step_mode`` ``"s"`` (default) or ``"m"``; their sub-modules
are always driven one step at a time, so they must be in single-step mode.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from reprolib.checks import is_finite_real
from reprolib.functional import multi_step_forward, seq_to_ann_forward
from reprolib.neurons.base import MemoryModule

__all__ = [
    "ElementWiseRecurrentContainer",
    "LinearRecurrentContainer",
    "synapse_filter_step",
    "SynapseFilter",
    "MultiStepContainer",
    "SeqToANNContainer",
]


def _check_single_step_module(module, owner: str, what: str) -> None:
    if not callable(module):
        raise ValueError(f"{owner}: {what}={module!r} is invalid; expected a callable module")
    for sub in module.modules() if isinstance(module, nn.Module) else ():
        if isinstance(sub, MemoryModule) and sub.step_mode != "s":
            raise ValueError(
                f"{owner}: {what} contains {type(sub).__name__} with step_mode={sub.step_mode!r}; "
                f"expected step_mode='s' (the container feeds it one time step at a time)"
            )


def _check_state_shape(state: Tensor, expected: tuple, owner: str) -> None:
    if tuple(state.shape) != tuple(expected):
        raise ValueError(
            f"{owner}: state shape {tuple(state.shape)} does not match the expected {tuple(expected)} for this input; "
            f"call reprolib.functional.reset_net(net) before a new batch"
        )


class ElementWiseRecurrentContainer(MemoryModule):
    """Feed the previous output back element-wise: ``y[t] = sub_module(f(x[t], y[t-1]))``, ``y[-1] = 0``.

    ``element_wise_function`` is called as the tutorial writes it, ``f(x[t], y[t-1])``: the input first.
    SpikingJelly's code passes the previous output first; for the tutorial's symmetric ``add`` the two agree,
    for another function swap its arguments when porting. ``sub_module`` must keep the shape of its input.
    """

    def __init__(self, sub_module: nn.Module, element_wise_function: Callable[[Tensor, Tensor], Tensor], step_mode: str = "s"):
        super().__init__(step_mode)
        _check_single_step_module(sub_module, type(self).__name__, "sub_module")
        if not callable(element_wise_function):
            raise ValueError(
                f"ElementWiseRecurrentContainer: element_wise_function={element_wise_function!r} is invalid; "
                f"expected a callable f(x, y_prev)"
            )
        self.sub_module = sub_module
        self.element_wise_function = element_wise_function
        self.register_memory("y", None)

    def single_step_forward(self, x: Tensor) -> Tensor:
        if self.y is None:
            y_prev = torch.zeros_like(x)
        else:
            _check_state_shape(self.y, x.shape, type(self).__name__)
            y_prev = self.y
        self.y = self.sub_module(self.element_wise_function(x, y_prev))
        return self.y

    def extra_repr(self) -> str:
        # empty by default, as in the tutorial's printout
        return "" if self.step_mode == "s" else f"step_mode={self.step_mode!r}"


class LinearRecurrentContainer(MemoryModule):
    """``y[t] = sub_module(rc(concat(x[t], y[t-1])))`` with ``rc = nn.Linear(in + out, in, bias)``, ``y[-1] = 0``.

    The external input comes first in the concatenation, the fed-back output second.
    ``sub_module`` maps ``[..., in_features] -> [..., out_features]``.
    """

    def __init__(self, sub_module: nn.Module, in_features: int, out_features: int, bias: bool = True, step_mode: str = "s"):
        super().__init__(step_mode)
        owner = type(self).__name__
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {name}={value!r} is invalid; expected a positive integer")
        if not isinstance(bias, bool):
            raise ValueError(f"{owner}: bias={bias!r} is invalid; expected True or False")
        _check_single_step_module(sub_module, owner, "sub_module")
        self.in_features = in_features
        self.out_features = out_features
        self.rc = nn.Linear(in_features + out_features, in_features, bias=bias)
        self.sub_module = sub_module
        self.register_memory("y", None)

    def single_step_forward(self, x: Tensor) -> Tensor:
        owner = type(self).__name__
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{owner}: input shape {tuple(x.shape)} is invalid; expected [..., {self.in_features}]")
        expected = (*x.shape[:-1], self.out_features)
        if self.y is None:
            y_prev = x.new_zeros(expected)
        else:
            _check_state_shape(self.y, expected, owner)
            y_prev = self.y
        y = self.sub_module(self.rc(torch.cat((x, y_prev), dim=-1)))
        if tuple(y.shape) != expected:
            raise ValueError(
                f"{owner}: sub_module output shape {tuple(y.shape)} is invalid; expected {expected} "
                f"(the sub-module must map in_features={self.in_features} to out_features={self.out_features})"
            )
        self.y = y
        return y

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.rc.bias is not None}"
        return text if self.step_mode == "s" else f"{text}, step_mode={self.step_mode!r}"


def synapse_filter_step(spike: Tensor, current: Tensor, inv_tau) -> Tensor:
    """``I[t] = I[t-1] - (1 - S[t]) I[t-1] / tau + S[t]``: decay by ``1 - 1/tau`` without a spike, ``+1`` on one."""
    return current - (1.0 - spike) * current * inv_tau + spike


class SynapseFilter(MemoryModule):
    """Stateful synapse (low-pass filter of spikes, a LIF neuron with infinite threshold).

    ``I[t] = I[t-1] - (1 - S[t]) I[t-1] / tau + S[t]``, ``I[-1] = 0``; output ``I[t]`` (state ``current``).

    Args:
        tau: time constant, > 1.
        learnable: learn one scalar ``w`` shared by all synapses, ``1/tau = sigmoid(w)``,
            initialised to ``w = -ln(tau - 1)`` (so tau stays in (1, inf)).
        step_mode: ``"s"`` or ``"m"``.
    """

    def __init__(self, tau: float = 100.0, learnable: bool = False, step_mode: str = "s"):
        super().__init__(step_mode)
        owner = type(self).__name__
        if not is_finite_real(tau) or tau <= 1:
            raise ValueError(f"{owner}: tau={tau!r} is invalid; expected a finite number > 1")
        if not isinstance(learnable, bool):
            raise ValueError(f"{owner}: learnable={learnable!r} is invalid; expected True or False")
        self.learnable = learnable
        if learnable:
            self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))
        else:
            self._tau = float(tau)
        self.register_memory("current", None)

    @property
    def inv_tau(self):
        """``1/tau``: ``sigmoid(w)`` (a 0-dim tensor with gradient) when learnable, else a float."""
        return torch.sigmoid(self.w) if self.learnable else 1.0 / self._tau

    @property
    def tau(self) -> float:
        """The current time constant (a plain float, for display)."""
        return 1.0 / float(self.inv_tau.detach()) if self.learnable else self._tau

    def single_step_forward(self, spike: Tensor) -> Tensor:
        if self.current is None:
            previous = torch.zeros_like(spike)
        else:
            _check_state_shape(self.current, spike.shape, type(self).__name__)
            previous = self.current
        self.current = synapse_filter_step(spike, previous, self.inv_tau)
        return self.current

    def extra_repr(self) -> str:
        text = f"tau={self.tau}, learnable={self.learnable}"
        return text if self.step_mode == "s" else f"{text}, step_mode={self.step_mode!r}"


class MultiStepContainer(nn.Sequential):
    """Apply single-step modules (e.g. a recurrent container, a SynapseFilter) to ``[T, B, ...]`` step by step."""

    def __init__(self, *modules: nn.Module):
        super().__init__(*modules)
        for module in self:
            _check_single_step_module(module, type(self).__name__, "module")

    def forward(self, x_seq: Tensor) -> Tensor:
        return multi_step_forward(x_seq, super().forward)


class SeqToANNContainer(nn.Sequential):
    """Apply stateless modules (Linear, Conv, pooling, ...) to ``[T, B, ...]`` in one batched call."""

    def __init__(self, *modules: nn.Module):
        super().__init__(*modules)
        for module in self.modules():
            if isinstance(module, MemoryModule):
                raise ValueError(
                    f"SeqToANNContainer: {type(module).__name__} is stateful; expected stateless modules only "
                    f"(folding time into the batch would mix its time steps; use MultiStepContainer)"
                )

    def forward(self, x_seq: Tensor) -> Tensor:
        return seq_to_ann_forward(x_seq, super().forward)
