"""Helpers over whole networks and sequences (SpikingJelly's ``functional``).

* :func:`reset_net` -- reset every stateful module (subclass of
  :class:`reprolib.neurons.base.MemoryModule`) of a network; call it before every new batch.
* :func:`seq_to_ann_forward` -- apply a *stateless* module to every step of ``[T, B, ...]`` at once by
  folding time into the batch: ``[T, B, ...] -> [T*B, ...] -> module -> [T, B, ...]``.
* :func:`multi_step_forward` -- apply a single-step (possibly stateful) module step by step and stack.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
from torch import Tensor, nn

from reprolib.neurons.base import MemoryModule, check_sequence

__all__ = ["reset_net", "seq_to_ann_forward", "multi_step_forward"]

Stage = Union[Callable[[Tensor], Tensor], Sequence[Callable[[Tensor], Tensor]]]


def reset_net(net: nn.Module) -> None:
    """Call ``reset()`` on every :class:`MemoryModule` inside ``net`` (``net`` included)."""
    if not isinstance(net, nn.Module):
        raise ValueError(f"reset_net: net of type {type(net).__name__} is invalid; expected a torch.nn.Module")
    for module in net.modules():
        if isinstance(module, MemoryModule):
            module.reset()


def _apply(stage: Stage, x: Tensor) -> Tensor:
    if isinstance(stage, (list, tuple)):
        for module in stage:
            x = module(x)
        return x
    if not callable(stage):
        raise ValueError(f"module {stage!r} is invalid; expected a callable or a list/tuple of callables")
    return stage(x)


def seq_to_ann_forward(x_seq: Tensor, module: Stage) -> Tensor:
    """``[T, B, ...] -> [T*B, ...] -> module -> [T, B, ...]`` for stateless modules (Linear, Conv, BN...).

    Equivalent to applying ``module`` to each step separately, in one batched call.
    """
    check_sequence(x_seq, "seq_to_ann_forward")
    if x_seq.dim() < 2:
        raise ValueError(
            f"seq_to_ann_forward: input shape {tuple(x_seq.shape)} is invalid; expected [T, B, ...] (at least 2 dims)"
        )
    steps, batch = x_seq.shape[0], x_seq.shape[1]
    y = _apply(module, x_seq.flatten(0, 1))
    return y.reshape(steps, batch, *y.shape[1:])


def multi_step_forward(x_seq: Tensor, module: Stage) -> Tensor:
    """Apply ``module`` to ``x_seq[0], x_seq[1], ...`` in order (state carries over) and stack along dim 0."""
    check_sequence(x_seq, "multi_step_forward")
    return torch.stack([_apply(module, x) for x in x_seq])
