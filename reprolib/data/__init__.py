"""Datasets by name: offline, checksummed, one sample ``(x, y)`` each (see CONTRIBUTING.md).

>>> train = load_dataset("mnist", "train")                 # 54,000 images [1, 28, 28] in [0, 1]
>>> test = load_dataset("nmnist-subset", "test")           # 100 frames [200, 2, 34, 34] (Tonic ToFrame counts)

``load_dataset(name, split, root=None, download=False, **options)`` looks ``name`` up in :data:`DATASETS`
(name -> ``"module:callable"``, imported only when used; tests may register toy datasets) and calls
``callable(root=root, split=split, download=download, **options)``. Nothing is ever downloaded unless
``download=True``; then torchvision / Tonic fetch into the reprolib cache, never into the data root.
"""

from __future__ import annotations

import inspect
import numbers
import os
from importlib import import_module
from pathlib import Path

import numpy as np

from .checksums import ChecksumMismatchError, DatasetNotFoundError
from .splits import SPLITS, check_split

DATASETS: dict[str, str] = {
    "mnist": "reprolib.data.vision:MNIST",
    "fashion-mnist": "reprolib.data.vision:FashionMNIST",
    "nmnist": "reprolib.data.nmnist:NMNIST",
    "nmnist-subset": "reprolib.data.nmnist:NMNISTSubset",
    "shd": "reprolib.data.shd:SHD",
    "ecg-qtdb": "reprolib.data.ecg:ECGQTDB",
}

__all__ = [
    "DATASETS", "SPLITS", "load_dataset", "resolve_root", "ChecksumMismatchError", "DatasetNotFoundError",
]


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None, download: bool = False, **options):
    """Build dataset ``name`` for ``split`` (train | val | test); ``options`` go to the dataset class."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {', '.join(sorted(DATASETS))}.")
    check_split(split)
    module_name, _, attribute = DATASETS[name].partition(":")
    factory = getattr(import_module(module_name), attribute)
    try:  # check the options before any loading, so a typo fails fast and by name
        inspect.signature(factory).bind(root=root, split=split, download=download, **options)
    except TypeError as error:
        accepted = [p for p in inspect.signature(factory).parameters if p not in ("self", "root", "split", "download")]
        raise ValueError(f"Bad options {sorted(options)} for dataset {name!r} ({error}); accepted: {', '.join(accepted)}.") from None
    _check_option_types(name, inspect.signature(factory), {"download": download, **options})
    return factory(root=root, split=split, download=download, **options)


def _check_option_types(name: str, signature: inspect.Signature, given: dict) -> None:
    """An option whose default is a bool takes a bool, one whose default is an int an int (a string 'no' is true,
    and 2.7 would silently become seed 2)."""
    for key, value in given.items():
        default = signature.parameters[key].default if key in signature.parameters else None
        if isinstance(default, bool) and not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"dataset {name!r}: {key}={value!r} is not allowed; expected True or False.")
        if (isinstance(default, int) and not isinstance(default, bool)
                and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral))):
            raise ValueError(f"dataset {name!r}: {key}={value!r} is not allowed; expected an integer.")


def resolve_root(root: str | os.PathLike | None) -> Path | None:
    """The data root (``root`` or ``$REPROLIB_DATA``), or ``None`` when neither is set.

    Unlike :func:`reprolib.paths.data_root` this does not raise when neither is set: a dataset may still be
    found in the cache (after an explicit download), and the "not found" message names what is missing either
    way. A root that is set but is not a folder raises :class:`reprolib.paths.DataRootNotSet` naming it.
    """
    from reprolib.paths import DataRootNotSet, data_root

    try:
        return data_root(root)
    except DataRootNotSet:
        if root is not None or os.environ.get("REPROLIB_DATA"):
            raise
        return None
