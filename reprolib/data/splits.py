"""Train / validation / test splits shared by every dataset.

The validation set is a seeded random ``val_fraction`` of the official training set (the sources use
90 / 10: SRC 54k / 6k, BRF ECG 557 / 61, BRF SHD 7,341 / 815); ``floor`` of the fraction goes to
validation, which reproduces all three of those sizes. The permutation comes from a private
``torch.Generator`` seeded with ``split_seed``, so it is the same in every run and process and does
not touch the global RNG.
"""

from __future__ import annotations

import math

import torch

SPLITS = ("train", "val", "test")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {', '.join(SPLITS)}.")
    return split


def check_val_fraction(val_fraction: float, split: str) -> float:
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction!r} must be a number in [0, 1).")
    if split == "val" and val_fraction == 0:
        raise ValueError("split='val' needs val_fraction > 0 (val_fraction=0 puts the whole training set in 'train').")
    return float(val_fraction)


def validation_size(n_train_official: int, val_fraction: float) -> int:
    # The small epsilon keeps e.g. 60000 * 0.1 = 6000.000000000001 from flooring differently on any platform.
    return int(math.floor(n_train_official * val_fraction + 1e-9))


def split_indices(n_train_official: int, split: str, val_fraction: float = 0.1, split_seed: int = 0) -> list[int]:
    """Indices into the official training set for ``split`` in train | val (sorted, deterministic)."""
    check_split(split)
    check_val_fraction(val_fraction, split)
    if split == "test":
        raise ValueError("split_indices is for train/val; the test split is the official test set.")
    n_val = validation_size(n_train_official, val_fraction)
    if n_val == 0:
        return list(range(n_train_official)) if split == "train" else []
    order = torch.randperm(n_train_official, generator=torch.Generator().manual_seed(int(split_seed)))
    chosen = order[:n_val] if split == "val" else order[n_val:]
    return sorted(chosen.tolist())
