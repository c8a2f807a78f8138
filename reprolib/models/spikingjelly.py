"""Networks of the two SpikingJelly tutorials, following the model contract of CONTRIBUTING.md.

Clock-driven tutorial (reference ``spikingjelly-clock-driven.md`` section 3), :func:`build_lif_mlp`::

    Flatten -> Linear(784, 196, bias=False) -> LIF -> Linear(196, 10, bias=False) -> LIF

(tau 100, V_th 1, hard reset to 0, not detached, Sigmoid surrogate alpha 1.0; input Poisson spikes per step).

Recurrent tutorial (reference ``spikingjelly-recurrent.md`` section 2.2), Sequential Fashion-MNIST
(T = 28 columns of 28 pixels); every neuron is IF with V_th 1, hard reset to 0, ``ATan(alpha=2)``,
``detach_reset=True``; every Linear has a bias:

* :func:`build_plain`: ``Linear(28, 32) -> IF -> Linear(32, 10) -> IF`` (1,258 parameters);
* :func:`build_feedback`: ``Linear(28, 32) -> LinearRecurrentContainer(IF, 32, 32) -> Linear(32, 10) -> IF``,
  i.e. ``s1[t] = IF(W_rc [fc1(x[t]); s1[t-1]] + b_rc)`` (3,338 parameters);
* :func:`build_stateful_synapse`: ``Linear(28, 32) -> IF -> SynapseFilter(tau=2, learnable) -> Linear(32, 10) -> IF``
  (1,259 parameters).

Contract: ``forward(x_seq [T, B, F]) -> output spikes [T, B, C]`` (the ``rate_mse`` loss averages them over
T, as the tutorials' mean firing rate); the state is reset at the start of every forward;
``last_activity`` (SRC Eq. 4: mean fraction of time steps in which a hidden neuron spikes) and
``last_spike_count`` (total hidden spikes of the batch) describe the hidden layer (the first spiking
layer; the output neurons are not counted).
"""

from __future__ import annotations

import math
from typing import Optional

from torch import Tensor, nn

from reprolib.functional import reset_net
from reprolib.layers import LinearRecurrentContainer, MultiStepContainer, SeqToANNContainer, SynapseFilter
from reprolib.metrics import relative_spiking_steps, spike_count
from reprolib.neurons import IFNode, MultiStepIFNode, MultiStepLIFNode
from reprolib.surrogate import ATan, get_surrogate

__all__ = [
    "SpikingJellyNet",
    "LIFMLP",
    "PlainNet",
    "FeedbackNet",
    "StatefulSynapseNet",
    "build_lif_mlp",
    "build_plain",
    "build_feedback",
    "build_stateful_synapse",
]


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid; expected a positive integer")
    return value


class SpikingJellyNet(nn.Module):
    """Common forward of the tutorial nets: check the input, reset the state, record hidden activity.

    Subclasses implement :meth:`run` returning ``(hidden_spikes [T, B, H], output_spikes [T, B, C])``.
    """

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = _check_size("in_features", in_features)
        self.last_activity: Optional[Tensor] = None
        self.last_spike_count: Optional[Tensor] = None

    def _features(self, x_seq: Tensor) -> Tensor:
        """``[T, B, ...] -> [T, B, in_features]`` (trailing dims flattened, e.g. images [T, B, 1, 28, 28])."""
        if not isinstance(x_seq, Tensor) or x_seq.dim() < 3 or x_seq.shape[0] == 0:
            shape = tuple(x_seq.shape) if isinstance(x_seq, Tensor) else type(x_seq).__name__
            raise ValueError(
                f"{type(self).__name__}: input {shape} is invalid; expected a time-major tensor "
                f"[T, B, {self.in_features}] with T >= 1"
            )
        if math.prod(x_seq.shape[2:]) != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: input shape {tuple(x_seq.shape)} is invalid; expected [T, B, "
                f"{self.in_features}] (or trailing dims with {self.in_features} elements)"
            )
        return x_seq.flatten(2)

    def run(self, x_seq: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = self._features(x_seq)
        reset_net(self)  # every forward is a new batch of independent samples
        hidden, out = self.run(x_seq)
        self.last_spike_count = spike_count(hidden)
        self.last_activity = relative_spiking_steps(hidden, self.last_spike_count)
        return out


class LIFMLP(SpikingJellyNet):
    """Clock-driven tutorial: ``Linear(F, H, bias=False) -> LIF -> Linear(H, C, bias=False) -> LIF``."""

    def __init__(self, in_features: int, hidden: int, classes: int, lif_options: dict, surrogate: str, alpha: float,
                 backend: str = "torch"):
        super().__init__(in_features)
        hidden, classes = _check_size("hidden", hidden), _check_size("classes", classes)
        self.fc1 = SeqToANNContainer(nn.Linear(in_features, hidden, bias=False))
        self.sn1 = MultiStepLIFNode(surrogate_function=get_surrogate(surrogate, alpha=alpha), backend=backend, **lif_options)
        self.fc2 = SeqToANNContainer(nn.Linear(hidden, classes, bias=False))
        self.sn2 = MultiStepLIFNode(surrogate_function=get_surrogate(surrogate, alpha=alpha), backend=backend, **lif_options)

    def run(self, x_seq: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.sn1(self.fc1(x_seq))
        return hidden, self.sn2(self.fc2(hidden))


def _recurrent_tutorial_if(backend: str = "torch", multi_step: bool = True) -> nn.Module:
    """IF neuron of the recurrent tutorial: V_th 1, hard reset 0, ATan(alpha=2), detach_reset=True."""
    if multi_step:
        return MultiStepIFNode(surrogate_function=ATan(alpha=2.0), detach_reset=True, backend=backend)
    return IFNode(surrogate_function=ATan(alpha=2.0), detach_reset=True)


class PlainNet(SpikingJellyNet):
    """``fc1 -> sn1 (IF) -> fc2 -> sn2 (IF)`` (SpikingJelly ``Net``)."""

    def __init__(self, in_features: int = 28, hidden: int = 32, classes: int = 10, backend: str = "torch"):
        super().__init__(in_features)
        hidden, classes = _check_size("hidden", hidden), _check_size("classes", classes)
        self.fc1 = SeqToANNContainer(nn.Linear(in_features, hidden))
        self.sn1 = _recurrent_tutorial_if(backend)
        self.fc2 = SeqToANNContainer(nn.Linear(hidden, classes))
        self.sn2 = _recurrent_tutorial_if(backend)

    def run(self, x_seq: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.sn1(self.fc1(x_seq))
        return hidden, self.sn2(self.fc2(hidden))


class FeedbackNet(SpikingJellyNet):
    """``fc1 -> sn1 = LinearRecurrentContainer(IF, H, H) (step by step) -> fc2 -> sn2 (IF)`` (``FeedBackNet``)."""

    def __init__(self, in_features: int = 28, hidden: int = 32, classes: int = 10, backend: str = "torch"):
        super().__init__(in_features)
        hidden, classes = _check_size("hidden", hidden), _check_size("classes", classes)
        self.fc1 = SeqToANNContainer(nn.Linear(in_features, hidden))
        self.sn1 = MultiStepContainer(
            LinearRecurrentContainer(_recurrent_tutorial_if(multi_step=False), in_features=hidden, out_features=hidden)
        )
        self.fc2 = SeqToANNContainer(nn.Linear(hidden, classes))
        self.sn2 = _recurrent_tutorial_if(backend)

    def run(self, x_seq: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.sn1(self.fc1(x_seq))
        return hidden, self.sn2(self.fc2(hidden))


class StatefulSynapseNet(SpikingJellyNet):
    """``fc1 -> sn1 (IF) -> syn = SynapseFilter(tau, learnable) -> fc2 -> sn2 (IF)`` (``StatefulSynapseNet``)."""

    def __init__(self, in_features: int = 28, hidden: int = 32, classes: int = 10, tau: float = 2.0,
                 learnable: bool = True, backend: str = "torch"):
        super().__init__(in_features)
        hidden, classes = _check_size("hidden", hidden), _check_size("classes", classes)
        self.fc1 = SeqToANNContainer(nn.Linear(in_features, hidden))
        self.sn1 = _recurrent_tutorial_if(backend)
        self.syn = MultiStepContainer(SynapseFilter(tau=tau, learnable=learnable))
        self.fc2 = SeqToANNContainer(nn.Linear(hidden, classes))
        self.sn2 = _recurrent_tutorial_if(backend)

    def run(self, x_seq: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.sn1(self.fc1(x_seq))
        return hidden, self.sn2(self.fc2(self.syn(hidden)))


def build_lif_mlp(
    in_features: int = 784,
    hidden: int = 196,
    classes: int = 10,
    tau: float = 100.0,
    v_threshold: float = 1.0,
    v_reset: Optional[float] = 0.0,
    surrogate: str = "sigmoid",
    alpha: float = 1.0,
    detach_reset: bool = False,
    decay_input: bool = True,
    backend: str = "torch",
) -> LIFMLP:
    """Clock-driven tutorial MNIST net (defaults = the tutorial's: tau 100, Sigmoid alpha 1.0, hard reset 0).

    Input ``[T, B, 784]`` (or ``[T, B, 1, 28, 28]``, flattened) Poisson spikes; output ``[T, B, 10]`` spikes.
    """
    lif_options = dict(tau=tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset,
                       detach_reset=detach_reset)
    return LIFMLP(in_features, hidden, classes, lif_options, surrogate, alpha, backend)


def build_plain(in_features: int = 28, hidden: int = 32, classes: int = 10, backend: str = "torch") -> PlainNet:
    """Recurrent tutorial ``plain`` net (no recurrence): 1,258 parameters with the defaults."""
    return PlainNet(in_features, hidden, classes, backend)


def build_feedback(in_features: int = 28, hidden: int = 32, classes: int = 10, backend: str = "torch") -> FeedbackNet:
    """Recurrent tutorial ``feedback`` net (hidden spikes fed back through a Linear): 3,338 parameters."""
    return FeedbackNet(in_features, hidden, classes, backend)


def build_stateful_synapse(
    in_features: int = 28,
    hidden: int = 32,
    classes: int = 10,
    tau: float = 2.0,
    learnable: bool = True,
    backend: str = "torch",
) -> StatefulSynapseNet:
    """Recurrent tutorial ``stateful-synapse`` net (SynapseFilter after the hidden IF): 1,259 parameters."""
    return StatefulSynapseNet(in_features, hidden, classes, tau, learnable, backend)
