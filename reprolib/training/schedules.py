"""Optimisers and learning-rate schedules named in the config; schedules are stepped once per epoch.

All schedules are standard ``torch.optim.lr_scheduler`` objects, so their ``state_dict`` holds only numbers
and the checkpoint can be loaded with ``weights_only=True`` (lambdas are rebuilt from the config).
"""

from __future__ import annotations

import math

import torch


def build_optimizer(config, parameters) -> torch.optim.Optimizer:
    params = [p for p in parameters if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; expected one of ['adam', 'adamw', 'sgd']")


def warmup_cosine_factor(epoch: int, epochs: int, warmup_epochs: int) -> float:
    """BP-STA schedule: ``1 / (w - e)`` during the ``w`` warm-up epochs, then a cosine from 1 to 0."""
    if epoch < warmup_epochs:
        return 1.0 / (warmup_epochs - epoch)
    span = max(1, epochs - warmup_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / span))


def linear_decay_factor(epoch: int, epochs: int) -> float:
    """BRF "LinearLR": ``1 - epoch / epochs`` (the lr reaches lr / epochs in the last epoch)."""
    return 1.0 - epoch / epochs


def build_scheduler(config, optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    options, epochs = config.schedule_options, config.epochs
    name = config.schedule
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    if name == "cosine":
        t_max = options["T_max"] if options["T_max"] is not None else epochs
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=options["eta_min"])
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=options["step_size"], gamma=options["gamma"])
    if name == "linear_decay":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: linear_decay_factor(epoch, epochs))
    if name == "warmup_cosine":
        warmup = options["warmup_epochs"]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: warmup_cosine_factor(epoch, epochs, warmup))
    raise ValueError(f"unknown schedule {name!r}; expected one of ['none', 'cosine', 'step', 'linear_decay', 'warmup_cosine']")
