"""SRC paper networks (De Geeter et al., arXiv 2306.03623): SRC and snnTorch-LIF stacks with a frozen readout.

Architecture (Sec. 4.2, Appendix A): ``layers`` fully connected spiking layers (``layers - 1`` hidden layers
of ``hidden`` neurons, then a final layer of ``group_size * classes`` neurons), all SRC or all LIF, Xavier
uniform weights, then a **frozen** readout of one leaky integrator per class::

    o[t] = readout_leak * o[t-1] + W_ro s_L[t],  o[-1] = 0
    W_ro[c, j] = readout_exc if j // group_size == c else readout_inh    (contiguous groups; ambiguity A4)

``forward(x_seq [T, B, in]) -> o [T, B, classes]`` for every step; the loss ``final_ce`` uses ``o[-1]``.

Model contract: ``last_activity`` = SRC Eq. 4 (strict ``s > 0``), the mean over **all spiking neurons, hidden
and final layers** (each neuron weighs the same; the readout integrators are not spiking neurons);
``last_spike_count`` = number of (step, neuron, sample) entries with ``s > 0`` over the same neurons (for LIF
the spike count; for SRC the number of spiking steps); ``after_optimizer_step()`` projects the SRC biases.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from reprolib.kernels.readout import leaky_readout_scan, readout_scan_available
from reprolib.metrics import relative_spiking_steps, spike_count
from reprolib.neurons.leaky import LEAKY_RESETS, Leaky
from reprolib.neurons.src import SpikingRecurrentCell

__all__ = ["FrozenLeakyReadout", "readout_matrix", "SpikingStackNetwork", "build_src_network", "build_lif_network",
           "cpu_path", "NETWORK_BACKENDS"]


def readout_matrix(classes: int, group_size: int = 10, excitatory: float = 1.0, inhibitory: float = -0.1) -> Tensor:
    """``W_ro [classes, group_size * classes]``: ``excitatory`` from the class's own contiguous group, else ``inhibitory``."""
    group = torch.arange(classes * group_size) // group_size
    own = group.unsqueeze(0) == torch.arange(classes).unsqueeze(1)
    return torch.where(own, torch.tensor(float(excitatory)), torch.tensor(float(inhibitory)))


class FrozenLeakyReadout(nn.Module):
    """Frozen leaky-integrator readout ``o[t] = leak o[t-1] + W_ro s[t]`` (weights are a buffer, not trained)."""

    def __init__(self, classes: int, group_size: int = 10, leak: float = 0.99, excitatory: float = 1.0,
                 inhibitory: float = -0.1):
        super().__init__()
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"readout leak={leak!r}; expected a number in [0, 1]")
        self.leak = float(leak)
        self.register_buffer("weight", readout_matrix(classes, group_size, excitatory, inhibitory))

    def forward(self, s_seq: Tensor) -> Tensor:
        drive = s_seq @ self.weight.t()
        if readout_scan_available(drive):  # the same bits as the loop below, one C++ call per direction
            return leaky_readout_scan(drive, self.leak)
        o = torch.zeros_like(drive[0])
        outputs = []
        for d in drive:
            o = self.leak * o + d
            outputs.append(o)
        return torch.stack(outputs)


class SpikingStackNetwork(nn.Module):
    """Feed-forward stack ``[Linear ->] spiking layer`` x L, then :class:`FrozenLeakyReadout`.

    ``blocks`` is a list of multi-step modules mapping ``[T, B, in] -> [T, B, out]`` spikes.
    """

    def __init__(self, blocks: list[nn.Module], readout: FrozenLeakyReadout, in_features: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.readout = readout
        self.in_features = in_features
        self.last_activity: Optional[Tensor] = None
        self.last_spike_count: Optional[Tensor] = None
        self.last_spikes: list[Tensor] = []  # detached per-layer output spikes of the last forward

    def reset(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset") and callable(module.reset):
                module.reset()

    def forward(self, x_seq: Tensor) -> Tensor:
        if not isinstance(x_seq, Tensor) or x_seq.dim() != 3 or x_seq.shape[-1] != self.in_features:
            shape = tuple(x_seq.shape) if isinstance(x_seq, Tensor) else type(x_seq).__name__
            raise ValueError(f"input {shape} is invalid; expected [T, B, {self.in_features}] (flatten the features)")
        self.reset()
        s = x_seq
        spikes = []
        for block in self.blocks:
            s = block(s)
            spikes.append(s.detach())
        self.last_spikes = spikes
        self.last_spike_count = spike_count(spikes)
        self.last_activity = relative_spiking_steps(spikes, self.last_spike_count)
        return self.readout(s)

    def after_optimizer_step(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "after_optimizer_step"):
                module.after_optimizer_step()


def _layer_sizes(in_features: int, layers: int, hidden: int, classes: int, group_size: int) -> list[int]:
    for name, value in (("in_features", in_features), ("layers", layers), ("hidden", hidden),
                        ("classes", classes), ("group_size", group_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}={value!r}; expected a positive int")
    return [in_features] + [hidden] * (layers - 1) + [group_size * classes]


NETWORK_BACKENDS = ("torch", "auto", "cupy", "cpp")


def cpu_path(backend: str, neuron: str) -> tuple[str, bool]:
    """``(time-loop backend, sparse input matmuls)`` of a network of ``neuron`` ("SRC" | "LIF") built with ``backend``.

    ``"cpp"`` means the fastest path on a CPU: the input matmuls of every layer take
    :func:`reprolib.kernels.sparse.event_linear` (binned events and spikes are mostly zeros; this halves the
    first layer's cost on N-MNIST); the LIF layers run the C++ scan of :mod:`reprolib.kernels.leaky` and the SRC
    layers the C++ scan of :func:`reprolib.kernels.src.src_multistep_cpp` (time outside, neurons inside,
    vectorised). Measured on N-MNIST batches (64, T = 200, one thread, 2-core machine shared with another run):
    a training step of the 2-layer LIF network 1.30 s -> 0.49 s (3 layers: 2.07 s -> 0.76 s), of the 2-layer SRC
    network 1.29 s -> 0.69 s with PyTorch's SRC loop (what ``"cpp"`` ran for the SRC layers before the SRC scan,
    and so for the N-MNIST SRC records of 2026-11-29/30 up to 2 layers seed 2). The SRC scan then took a step with
    its data loading from 0.88 s to 0.65 s at 2 layers and from 1.86 s to 1.24 s at 5 layers (same conditions).
    """
    if backend not in NETWORK_BACKENDS:
        raise ValueError(f"{neuron} network: backend={backend!r} is invalid; expected one of {NETWORK_BACKENDS}")
    if backend == "cpp":
        return "cpp", True
    return backend, False


def build_src_network(in_features: int, layers: int, hidden: int = 512, classes: int = 10, group_size: int = 10,
                      alpha: float = 0.9, relu_bypass: bool = True, detach_recurrence: bool = True,
                      zs_from: str = "previous", bias_init: float = -6.0, bias_max: float = -4.0,
                      bias_bound: str = "project", noise_sigma: float = 0.0, readout_leak: float = 0.99,
                      readout_exc: float = 1.0, readout_inh: float = -0.1,
                      backend: str = "torch") -> SpikingStackNetwork:
    """SRC network of the paper: ``layers`` :class:`SpikingRecurrentCell` layers and the frozen readout.

    ``alpha`` = 0.9 (rate coding, N-MNIST) or 0.99 (latency coding). Trainable: every ``W_s`` and ``b_h``.
    Options ``relu_bypass`` (Fig. 2 ablation), ``detach_recurrence``, ``zs_from``, ``bias_bound`` and
    ``noise_sigma`` (Figs. 6-7) are those of :class:`reprolib.neurons.src.SpikingRecurrentCell`;
    ``backend`` selects the time loop (``"torch"`` | ``"auto"`` | ``"cupy"``, see :mod:`reprolib.kernels`);
    ``"cpp"`` is the fastest CPU path (see :func:`cpu_path`).
    """
    sizes = _layer_sizes(in_features, layers, hidden, classes, group_size)
    loop_backend, sparse_input = cpu_path(backend, "SRC")
    blocks = [SpikingRecurrentCell(n_in, n_out, alpha=alpha, relu_bypass=relu_bypass,
                                   detach_recurrence=detach_recurrence, zs_from=zs_from, bias_init=bias_init,
                                   bias_max=bias_max, bias_bound=bias_bound, noise_sigma=noise_sigma,
                                   step_mode="m", backend=loop_backend, sparse_input=sparse_input)
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    readout = FrozenLeakyReadout(classes, group_size, readout_leak, readout_exc, readout_inh)
    return SpikingStackNetwork(blocks, readout, in_features)


class LinearLeaky(nn.Module):
    """``nn.Linear`` (Xavier uniform weight, default PyTorch bias init) followed by a multi-step :class:`Leaky`."""

    def __init__(self, n_in: int, n_out: int, bias: bool, sparse_input: bool = False, **leaky_options):
        super().__init__()
        self.sparse_input = bool(sparse_input)  # the matmul as reprolib.kernels.sparse.event_linear
        self.linear = nn.Linear(n_in, n_out, bias=bias)
        nn.init.xavier_uniform_(self.linear.weight)
        self.lif = Leaky(step_mode="m", **leaky_options)

    def forward(self, x_seq: Tensor) -> Tensor:
        if self.sparse_input:
            from reprolib.kernels.sparse import event_linear  # noqa: PLC0415

            return self.lif(event_linear(x_seq, self.linear.weight, self.linear.bias))
        return self.lif(self.linear(x_seq))


def build_lif_network(in_features: int, layers: int, hidden: int = 512, classes: int = 10, group_size: int = 10,
                      beta: float = 0.9, learn_beta: bool = True, threshold: float = 1.0,
                      learn_threshold: bool = True, reset: str = "zero", bias: bool = True,
                      readout_leak: float = 0.99, readout_exc: float = 1.0,
                      readout_inh: float = -0.1, backend: str = "torch") -> SpikingStackNetwork:
    """The SRC paper's LIF baseline: ``layers`` blocks ``Linear -> snnTorch Leaky`` and the same frozen readout.

    ``beta`` 0.9 (0.99 for latency coding) and ``threshold`` 1.0, both learnable scalars per layer (snnTorch's
    shape; the paper does not say per layer or per neuron). ``reset="zero"`` follows the paper's LIF equation
    (immediate reset to rest); ``"subtract"`` is snnTorch's default (ambiguity A3). ``bias=True``: the
    paper's LIF layers are ``nn.Linear`` layers, whose bias PyTorch enables by default (not stated).
    ``backend``: the Leaky time loop (``"torch"`` | ``"auto"`` | ``"cupy"``: the CUDA kernel of
    :mod:`reprolib.kernels.leaky`) or ``"cpp"``, the fastest CPU path (:func:`cpu_path`: sparse input
    matmuls and the C++ scan of the Leaky neuron).
    """
    if reset not in LEAKY_RESETS:
        raise ValueError(f"reset={reset!r}; expected one of {LEAKY_RESETS}")
    loop_backend, sparse_input = cpu_path(backend, "LIF")
    sizes = _layer_sizes(in_features, layers, hidden, classes, group_size)
    blocks = [LinearLeaky(n_in, n_out, bias, sparse_input, backend=loop_backend, beta=beta, threshold=threshold,
                          learn_beta=learn_beta, learn_threshold=learn_threshold, reset=reset)
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    readout = FrozenLeakyReadout(classes, group_size, readout_leak, readout_exc, readout_inh)
    return SpikingStackNetwork(blocks, readout, in_features)
