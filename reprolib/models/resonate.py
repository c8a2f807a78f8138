"""BRF paper networks (Higuchi et al., ICML 2024): one fully recurrent spiking layer and an LI readout.

``build_rsnn(neuron, ...)`` builds the code's ``SimpleResRNN`` (BRF), ``SimpleVanillaRFRNN`` (RF) or
``SimpleALIFRNN`` (ALIF): hidden neurons get ``W [x[t], z[t-1]]`` from one Xavier-uniform matrix
``W [hidden, in + hidden]`` (no bias), the readout is ``LICell`` (no bias, trainable ``tau_out``).
``forward(x_seq [T, B, in]) -> u_out [T, B, classes]`` at every step; the experiment's loss (``seq_nll``
with ``label_last`` / ``skip_steps``) picks the steps.

Trainable parameters (BRF / RF): ``h (m + h) + 2 h + h C + C`` -> 68,874 (1, 256, 10), 1,734 (4, 36, 6),
108,820 (700, 128, 20) as in the paper's Table 1 (ALIF: the same count, ``tau_mem`` and ``tau_adp``
replacing ``omega`` and ``b'``; with ``bias=True`` ALIF on ECG has Yin et al.'s 1,776).

Model contract: ``last_activity`` = mean over hidden neurons and samples of the fraction of steps with a
spike; ``last_spike_count`` = total hidden spikes of the batch (summed over time, neurons and samples;
divide by the batch size for the BRF paper's SOP per sample, :func:`reprolib.metrics.synaptic_operations`).
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from reprolib.metrics import relative_spiking_steps, spike_count
from reprolib.neurons.resonate import ALIFCell, BRFCell, DEFAULT_DT, LICell, RFCell

__all__ = ["RSNN", "build_rsnn", "RSNN_PRESETS", "RSNN_NEURONS", "RSNN_TASK_SIZES"]

RSNN_NEURONS = ("brf", "rf", "alif")

#: (in_features, hidden, classes) of each task (paper Table 1)
RSNN_TASK_SIZES = {
    "smnist": (1, 256, 10),
    "psmnist": (1, 256, 10),
    "ecg": (4, 36, 6),
    "shd": (700, 128, 20),
}

_RESONATOR_INIT = {  # paper Table 3 / saved-model names; RF uses the BRF settings of its task
    "smnist": dict(omega_range=(15.0, 50.0), b_offset_range=(0.1, 1.0), tau_out=(20.0, 5.0)),
    "psmnist": dict(omega_range=(15.0, 85.0), b_offset_range=(0.1, 1.0), tau_out=(20.0, 1.0)),
    "ecg": dict(omega_range=(3.0, 5.0), b_offset_range=(0.1, 1.0), tau_out=(20.0, 1.0)),
    "shd": dict(omega_range=(5.0, 10.0), b_offset_range=(2.0, 3.0), tau_out=(20.0, 5.0)),
}
_ALIF_INIT = {
    "smnist": dict(tau_mem=(20.0, 5.0), tau_adp=(200.0, 50.0), tau_out=(20.0, 5.0)),
    "psmnist": dict(tau_mem=(20.0, 5.0), tau_adp=(200.0, 50.0), tau_out=(20.0, 5.0)),
    "ecg": dict(tau_mem=(20.0, 0.5), tau_adp=(7.0, 0.2), tau_out=(20.0, 0.5)),
    "shd": dict(tau_mem=(20.0, 5.0), tau_adp=(150.0, 10.0), tau_out=(20.0, 5.0)),
}


def _preset(task: str, neuron: str) -> dict:
    in_features, hidden, classes = RSNN_TASK_SIZES[task]
    init = _ALIF_INIT[task] if neuron == "alif" else _RESONATOR_INIT[task]
    return dict(neuron=neuron, in_features=in_features, hidden=hidden, classes=classes, **init)


#: ``build_rsnn(**RSNN_PRESETS[(task, neuron)])`` builds the paper's network with its initialisation.
#: Tasks: smnist, psmnist, ecg, shd; neurons: brf, rf, alif. (Training settings such as lr, label-last or the
#: ALIF sub-sequence of 10 steps belong to the experiment configs, not here.)
RSNN_PRESETS = {(task, neuron): _preset(task, neuron) for task in RSNN_TASK_SIZES for neuron in RSNN_NEURONS}


class RSNN(nn.Module):
    """One recurrent spiking layer (``hidden``) and a leaky-integrator readout (``out``)."""

    def __init__(self, hidden: nn.Module, out: LICell):
        super().__init__()
        self.hidden = hidden
        self.out = out
        self.last_activity: Optional[Tensor] = None
        self.last_spike_count: Optional[Tensor] = None
        self.last_spikes: Optional[Tensor] = None  # detached hidden spikes [T, B, hidden] of the last forward

    def reset(self) -> None:
        self.hidden.reset()
        self.out.reset()

    def forward(self, x_seq: Tensor) -> Tensor:
        self.reset()
        z_seq = self.hidden(x_seq)
        u_seq = self.out(z_seq)
        self.last_spikes = z_seq.detach()
        self.last_spike_count = spike_count(self.last_spikes)
        self.last_activity = relative_spiking_steps(self.last_spikes, self.last_spike_count)
        return u_seq


def build_rsnn(neuron: str = "brf", in_features: int = 1, hidden: int = 256, classes: int = 10,
               omega_range=(15.0, 50.0), b_offset_range=(0.1, 1.0), tau_out=(20.0, 5.0), tau_mem=(20.0, 5.0),
               tau_adp=(200.0, 50.0), dt: float = DEFAULT_DT, clamp_omega: bool = False,
               bias: bool = False, readout_bias_init: str = "uniform", backend: str = "torch") -> RSNN:
    """The BRF paper's RSNN with ``neuron`` in ``"brf" | "rf" | "alif"`` (defaults: S-MNIST BRF).

    ``omega_range`` / ``b_offset_range``: uniform init of ``omega`` and ``b'`` (BRF, RF); ``tau_mem`` /
    ``tau_adp``: ``(mean, std)`` normal init (ALIF); ``tau_out``: ``(mean, std)`` of the readout.
    ``clamp_omega`` clamps ``|omega| <= 1/dt`` in the forward pass (off in the paper code, where
    ``p(omega)`` turns NaN beyond). ``bias`` adds biases to the hidden and readout layers (off in the BRF
    runs; Yin et al.'s ALIF has them); ``readout_bias_init``: ``"uniform"`` or ``"zero"`` (the source's readout,
    see :class:`~reprolib.neurons.resonate.LICell`). ``backend``: ``"torch"`` | ``"auto"`` | ``"cupy"`` | ``"cpp"`` for the time
    loops of the hidden layer and the readout (see :mod:`reprolib.kernels`; "torch" until the kernels pass
    their GPU parity tests; "cpp" runs each whole sequence in one C++ call on the CPU).
    """
    if neuron not in RSNN_NEURONS:
        raise ValueError(f"neuron={neuron!r}; expected one of {RSNN_NEURONS}")
    if neuron == "alif":
        cell = ALIFCell(in_features, hidden, tau_mem=tau_mem, tau_adp=tau_adp, bias=bias, step_mode="m",
                        backend=backend)
    else:
        cls = BRFCell if neuron == "brf" else RFCell
        cell = cls(in_features, hidden, omega_range=omega_range, b_offset_range=b_offset_range, dt=dt,
                   clamp_omega=clamp_omega, bias=bias, step_mode="m", backend=backend)
    out = LICell(hidden, classes, tau_out=tau_out, bias=bias, bias_init=readout_bias_init, step_mode="m",
                 backend=backend)
    return RSNN(cell, out)
