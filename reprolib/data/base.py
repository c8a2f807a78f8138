"""What every dataset class shares: the ``split`` / ``val_fraction`` options, the split's indices and the
``transform`` / ``target_transform`` of a sample (see :mod:`reprolib.data.splits` for the split rule)."""

from __future__ import annotations

import warnings

from torch.utils.data import Dataset

from .splits import check_split, check_val_fraction, split_indices


def import_tonic():
    """Import Tonic and return it, where a data set needs it (``import reprolib`` does not). Tonic imports
    ``tqdm.auto``, which in a Jupyter kernel without ipywidgets warns "IProgress not found" although nothing here
    draws a Tonic bar; a book page whose first Tonic import happened in a cell showed that notice in its output.
    The notice is raised once per process, at that first import, so every module here that uses Tonic calls this
    before its ``from tonic... import``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import tonic  # noqa: PLC0415  (imports tonic.datasets, .io, .transforms and their tqdm.auto)
    return tonic


def check_positive_int(name: str, value) -> int:
    """``value`` if it is an ``int`` >= 1 (not a bool), else ValueError naming the option ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer.")
    return value


class SplitDataset(Dataset):
    """Base of the dataset classes: checked split options, split indices, sample transforms."""

    def _init_split(self, split: str, val_fraction: float, transform, target_transform) -> None:
        """Check and store ``split`` and ``val_fraction`` (before any file is touched) and the transforms."""
        self.split = check_split(split)
        self.val_fraction = check_val_fraction(val_fraction, split)
        self.transform, self.target_transform = transform, target_transform

    def _split_indices(self, n_official: int, split_seed: int) -> list[int]:
        """Indices of this split in the official train or test set: all of the test set, or the seeded
        train / val part of the training set."""
        if self.split == "test":
            return list(range(n_official))
        return split_indices(n_official, self.split, self.val_fraction, split_seed)

    def _transformed(self, x, y):
        """``(transform(x), target_transform(y))``, each only when set."""
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y
