"""BPSA networks (Shen, Zhao, Zeng 2022; paper code Brain-Cog-Lab/BP-STA ``ConvNet``), scaled to the input.

Every spiking node is preceded by ``Conv/Linear -> BatchNorm -> ReLU`` except the output node, fed directly by
the last Linear; a ``VotingLayer`` averages consecutive groups of ``voting`` output neurons into one score per
class. The network runs step by step (BatchNorm sees one step's batch, as in the paper code) and returns the
voting scores of every step ``[T, B, classes]``; the loss ``rate_mse`` averages them over time.

``arch="convnet"`` (the N-MNIST net of the paper, ``channels=(128, 128, 256, 512)``)::

    [Conv3x3(C -> c0), BN, ReLU, node, MaxPool2] [Conv(c0 -> c1), BN, ReLU, node, MaxPool2]
    [Conv(c1 -> c2), BN, ReLU, node, AvgPool2] [Conv(c2 -> c3), BN, ReLU, node, global AvgPool]
    Flatten, NDropout(0.5), Linear(c3 -> voting * classes), node, VotingLayer(voting)

The paper's final ``AvgPool4`` is a global average for 34x34 frames (34 -> 17 -> 8 -> 4); a global average
keeps the same net valid for any input of at least 8x8 (e.g. 28x28 MNIST). Input ``[T, B, C, H, W]``.

``arch="mlp"`` (CPU-scale variant, not in the paper): ``[Linear, BN, ReLU, node]`` per hidden size, then
NDropout, Linear, node, VotingLayer; input ``[T, B, F]`` or ``[T, B, *in_shape]`` (flattened).

Model contract: ``last_activity`` / ``last_spike_count`` over the outputs of **all** BPSA nodes (hidden and
output), strict ``out > 0`` (for the graded "braincog" output this counts firing events).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reprolib.neurons.bpsa import BPSANode

__all__ = ["VotingLayer", "NDropout", "BPSANetwork", "build_bpsa_network", "BPSA_ARCHS"]

BPSA_ARCHS = ("mlp", "convnet")


class VotingLayer(nn.Module):
    """Mean over consecutive groups of ``voting`` features: ``[B, voting * C] -> [B, C]``."""

    def __init__(self, voting: int = 10):
        super().__init__()
        self.voting = voting

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % self.voting:
            raise ValueError(f"VotingLayer: {x.shape[-1]} features is not a multiple of voting={self.voting}")
        return x.unflatten(-1, (x.shape[-1] // self.voting, self.voting)).mean(-1)


class NDropout(nn.Module):
    """Dropout whose mask is drawn once per sequence (first step after :meth:`reset`) and reused at every step;
    scaled by ``1/(1-p)`` in training, identity in evaluation (BP-STA ``NDropout``)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"NDropout: p={p!r}; expected a probability in [0, 1)")
        self.p = p
        self.mask: Optional[Tensor] = None

    def reset(self) -> None:
        self.mask = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if self.mask is None or self.mask.shape != x.shape:
            self.mask = F.dropout(torch.ones_like(x), self.p, training=True)
        return x * self.mask


class BPSANetwork(nn.Module):
    """A per-step stack of layers (``self.layers``) run over ``[T, B, ...]``, states reset at each forward."""

    def __init__(self, layers: Sequence[nn.Module], input_dims: int, in_shape: tuple):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_dims = input_dims  # number of per-step feature dims expected after [T, B]
        self.in_shape = tuple(in_shape)
        self.last_activity: Optional[Tensor] = None
        self.last_spike_count: Optional[Tensor] = None

    def reset(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset") and callable(module.reset):
                module.reset()

    def set_warm_up(self, flag: bool) -> None:
        """ANN warm-up (paper code, CIFAR-10): nodes become ReLU / identity."""
        for module in self.modules():
            if isinstance(module, BPSANode):
                module.warm_up = bool(flag)

    def _prepare(self, x_seq: Tensor) -> Tensor:
        if not isinstance(x_seq, Tensor) or x_seq.dim() < 3:
            raise ValueError(f"input {getattr(x_seq, 'shape', x_seq)!r} is invalid; expected [T, B, ...]")
        features = tuple(x_seq.shape[2:])
        if self.input_dims == 1:
            if math.prod(features) != math.prod(self.in_shape):
                raise ValueError(f"input {tuple(x_seq.shape)} is invalid; expected [T, B, {math.prod(self.in_shape)}] "
                                 f"or [T, B, *{self.in_shape}]")
            return x_seq.flatten(2)
        if features != self.in_shape:
            raise ValueError(f"input {tuple(x_seq.shape)} is invalid; expected [T, B, *{self.in_shape}]")
        return x_seq

    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = self._prepare(x_seq)
        self.reset()
        spiking = torch.zeros((), dtype=torch.long, device=x_seq.device)  # on the model's device: no sync per step
        total = 0
        outputs = []
        for x in x_seq:
            for layer in self.layers:
                x = layer(x)
                if isinstance(layer, BPSANode) and not layer.warm_up:
                    spiking = spiking + (x.detach() > 0).sum()
                    total += x.numel()
            outputs.append(x)
        self.last_spike_count = spiking
        self.last_activity = spiking.to(torch.get_default_dtype()) / total if total else None
        return torch.stack(outputs)


def build_bpsa_network(spatial: bool = True, temporal: bool = True, variant: str = "paper", arch: str = "mlp",
                       in_shape=(1, 28, 28), classes: int = 10, voting: int = 10, hidden=(256,),
                       channels=(128, 128, 256, 512), threshold: float = 0.5, decay: float = 0.9,
                       dt: float = 1.0, dropout: float = 0.5) -> BPSANetwork:
    """BPSA ablation network: ``spatial`` / ``temporal`` adjustments on or off (both off = surrogate baseline).

    ``variant``: ``"paper"`` (HTGLIF, binary, decay) or ``"braincog"`` (HTDGLIF, graded, no leak).
    ``arch``: ``"convnet"`` (paper shape, ``channels``) or ``"mlp"`` (``hidden`` sizes). See the module docstring.
    """
    if arch not in BPSA_ARCHS:
        raise ValueError(f"arch={arch!r}; expected one of {BPSA_ARCHS}")
    for name, value in (("classes", classes), ("voting", voting)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}={value!r}; expected a positive int")
    in_shape = tuple(int(v) for v in ((in_shape,) if isinstance(in_shape, int) else in_shape))

    def node() -> BPSANode:
        return BPSANode(variant, spatial, temporal, threshold=threshold, decay=decay, dt=dt)

    layers: list[nn.Module] = []
    if arch == "convnet":
        if len(in_shape) != 3 or min(in_shape[1:]) < 8:
            raise ValueError(f"in_shape={in_shape!r}; convnet expects (C, H, W) with H, W >= 8")
        if len(channels) != 4:
            raise ValueError(f"channels={channels!r}; expected four channel counts (paper: 128, 128, 256, 512)")
        pools = [nn.MaxPool2d(2), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)]
        c_in = in_shape[0]
        for c_out, pool in zip(channels, pools):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), node(), pool]
            c_in = c_out
        layers += [nn.Flatten(), NDropout(dropout), nn.Linear(c_in, voting * classes), node(), VotingLayer(voting)]
        return BPSANetwork(layers, 3, in_shape)
    sizes = [hidden] if isinstance(hidden, int) else list(hidden)
    if not sizes or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in sizes):
        raise ValueError(f"hidden={hidden!r}; expected a positive int or a non-empty list of them")
    n_in = math.prod(in_shape)
    for h in sizes:
        layers += [nn.Linear(n_in, h), nn.BatchNorm1d(h), nn.ReLU(), node()]
        n_in = h
    layers += [NDropout(dropout), nn.Linear(n_in, voting * classes), node(), VotingLayer(voting)]
    return BPSANetwork(layers, 1, in_shape)
