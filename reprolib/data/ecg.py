"""ECG-QTDB as preprocessed by Yin et al. 2021 (the BRF paper's ECG task): per-step labels.

``<root>/ECG-QTDB/QTDB_{train,test}.mat`` hold ``x`` (N, 1301, 4) level-crossing spikes and ``y``
(N, 1301, 6) one-hot labels. As in brf-neurons the last step (padding, -1 / 0) is dropped: T = 1300.
About 8% of the steps have an all-zero ``y`` (unlabelled). ``unlabelled="mask"`` (the default) gives them label -1,
which the per-step loss and accuracy leave out; ``unlabelled="class0"`` does what the source code does
(brf-neurons ``tools.apply_seq_loss`` / ``count_correct_prediction`` take ``argmax`` of the all-zero one-hot):
they become class 0 (P) in the loss and in the accuracy. Samples are
``(x float [1300, 4], y LongTensor [1300])``; train / val is a seeded 557 / 61 split of the 618
training sequences (``val_fraction=0.1``), test is the 141 official test sequences.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from . import resolve_root
from .base import SplitDataset
from .catalog import CATALOG
from .checksums import EXPECTED_SHA256, DatasetNotFoundError, verify_file

UNLABELLED = -1


UNLABELLED_CHOICES = ("mask", "class0")


def one_hot_to_labels(one_hot: np.ndarray, unlabelled: str = "mask") -> np.ndarray:
    """(..., C) one-hot -> (...) int64 class; where no class is set, ``UNLABELLED`` (``"mask"``) or class 0 as
    ``argmax`` gives it (``"class0"``, the source code's behaviour)."""
    if unlabelled not in UNLABELLED_CHOICES:
        raise ValueError(f"unlabelled={unlabelled!r} is invalid; expected one of {UNLABELLED_CHOICES}")
    labels = one_hot.argmax(axis=-1).astype(np.int64)
    if unlabelled == "mask":
        labels[one_hot.sum(axis=-1) == 0] = UNLABELLED
    return labels


class ECGQTDB(SplitDataset):
    """QT database sequences (see module doc); ``split`` train | val | test."""

    num_classes = 6
    classes = ["P", "PQ", "QR", "RS", "ST", "TP"]

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        transform=None,
        target_transform=None,
        download: bool = False,
        unlabelled: str = "mask",
    ):
        import scipy.io

        if unlabelled not in UNLABELLED_CHOICES:  # before any file is read
            raise ValueError(f"ECGQTDB: unlabelled={unlabelled!r} is invalid; expected one of {UNLABELLED_CHOICES}")
        self.unlabelled = unlabelled
        self._init_split(split, val_fraction, transform, target_transform)
        data_root = resolve_root(root)
        relative = f"ECG-QTDB/QTDB_{'test' if split == 'test' else 'train'}.mat"
        if data_root is None or not (data_root / relative).is_file():
            note = "\n(download=True cannot help: neither torchvision nor Tonic provides this file)" if download else ""
            raise DatasetNotFoundError(CATALOG["ecg-qtdb"].missing_message(data_root, [relative]) + note)
        verify_file(data_root / relative, EXPECTED_SHA256[relative])
        mat = scipy.io.loadmat(data_root / relative)
        x = mat["x"][:, :-1].astype(np.float32)  # drop the padding step: (N, 1300, 4)
        y = one_hot_to_labels(mat["y"][:, :-1], unlabelled)  # (N, 1300)
        self.indices = self._split_indices(len(x), split_seed)
        if split != "test":
            x, y = x[self.indices], y[self.indices]
        self.data = torch.from_numpy(np.ascontiguousarray(x))
        self.targets = torch.from_numpy(np.ascontiguousarray(y))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return self._transformed(self.data[index], self.targets[index])
