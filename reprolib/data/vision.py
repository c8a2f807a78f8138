"""MNIST and Fashion-MNIST through torchvision, from the checksummed ``.gz`` files of the data root.

torchvision reads only the uncompressed idx files, and decompresses the ``.gz`` files itself, offline,
when it finds them in its ``raw/`` folder with the right md5 and ``download=True``. The data root is
read-only, so the ``.gz`` files are symlinked into a private temporary folder of the reprolib cache,
torchvision decompresses there, the result is checked against the known sha256 of the uncompressed
files, and the folder is renamed into place in one step (so concurrent processes never see half a
file). Samples are ``(x [1, 28, 28] float, y int)``: pixels in [0, 1] as ``ToTensor`` gives, or
``(x - mean) / std`` with ``normalize=[mean, std]`` (SpikingJelly's Fashion-MNIST uses 0.2860, 0.3530).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from reprolib.paths import cache_dir

from . import resolve_root
from .base import SplitDataset
from .catalog import CATALOG
from .checksums import EXPECTED_SHA256, UNCOMPRESSED_SHA256, DatasetNotFoundError, verify_file

_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
VERIFIED_MARKER = ".reprolib-verified"  # written once the decompressed files match their sha256


def torchvision_cache() -> Path:
    """Where torchvision's decompressed (or, after ``download=True``, downloaded) files live."""
    return cache_dir("torchvision")


def prepare_torchvision_root(name: str, torchvision_class, folder: str, root=None, download: bool = False) -> Path:
    """Return a torchvision ``root`` holding ``<folder>/raw/*-ubyte``, verified; build it if needed."""
    data_root = resolve_root(root)  # first: a root that is set but is not a folder is an error, cache or not
    base = torchvision_cache()
    final = base / folder
    if (final / "raw" / VERIFIED_MARKER).is_file():
        return base
    sources = [data_root / folder / "raw" / f"{stem}.gz" for stem in _STEMS] if data_root else []
    have_sources = bool(sources) and all(path.is_file() for path in sources)
    if have_sources:
        # Check before decompressing: a wrong file must fail with its name and both hashes.
        for stem, path in zip(_STEMS, sources):
            verify_file(path, EXPECTED_SHA256[f"{folder}/raw/{stem}.gz"])
    elif not download:
        missing = [
            f"{folder}/raw/{stem}.gz"
            for stem in _STEMS
            if data_root is None or not (data_root / folder / "raw" / f"{stem}.gz").is_file()
        ]
        raise DatasetNotFoundError(CATALOG[name].missing_message(data_root, missing))

    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
    try:
        raw = staging / folder / "raw"
        raw.mkdir(parents=True)
        for path in sources if have_sources else []:
            (raw / path.name).symlink_to(path)
        # With every md5 matching, download=True only decompresses; without sources it downloads (explicit opt-in).
        torchvision_class(str(staging), train=True, download=True)
        for stem in _STEMS:
            verify_file(raw / stem, UNCOMPRESSED_SHA256[f"{folder}/raw/{stem}"])
            if not have_sources:
                verify_file(raw / f"{stem}.gz", EXPECTED_SHA256[f"{folder}/raw/{stem}.gz"])
            elif (raw / f"{stem}.gz").is_symlink():
                (raw / f"{stem}.gz").unlink()  # the cache must not depend on where the data root is
        (raw / VERIFIED_MARKER).write_text("uncompressed sha256 verified\n")
        if final.exists() and not (final / "raw" / VERIFIED_MARKER).is_file():
            shutil.rmtree(final, ignore_errors=True)  # a stale, unverified leftover
        try:
            os.rename(staging / folder, final)
        except OSError:
            if not (final / "raw" / VERIFIED_MARKER).is_file():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return base


class _TorchvisionImages(SplitDataset):
    """Shared implementation; subclasses name the torchvision class and folder."""

    name: str = ""
    folder: str = ""
    classes: list[str] = []

    @staticmethod
    def _torchvision_class():  # pragma: no cover - overridden
        raise NotImplementedError

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        normalize: tuple[float, float] | list[float] | None = None,
        transform=None,
        target_transform=None,
        download: bool = False,
    ):
        self._init_split(split, val_fraction, transform, target_transform)
        self.split_seed = int(split_seed)
        self.normalize = _check_normalize(normalize)

        torchvision_class = self._torchvision_class()
        base = prepare_torchvision_root(self.name, torchvision_class, self.folder, root=root, download=download)
        official = torchvision_class(str(base), train=split != "test", download=False)
        data, targets = official.data, torch.as_tensor(official.targets, dtype=torch.long)
        self.indices = self._split_indices(len(targets), self.split_seed)
        if split != "test":
            index = torch.as_tensor(self.indices, dtype=torch.long)
            data, targets = data[index], targets[index]
        self.data: torch.Tensor = data  # uint8 [N, 28, 28]
        self.targets: torch.Tensor = targets  # int64 [N]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        # Same values as ToTensor() (uint8 / 255 in float32) without the PIL round trip.
        x = self.data[index].unsqueeze(0).to(torch.float32).div_(255.0)
        if self.normalize is not None:
            mean, std = self.normalize
            x = x.sub_(mean).div_(std)
        return self._transformed(x, int(self.targets[index]))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, n={len(self)}, val_fraction={self.val_fraction}, "
            f"split_seed={self.split_seed}, normalize={self.normalize})"
        )


def _check_normalize(normalize):
    if normalize is None:
        return None
    try:
        mean, std = (float(v) for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"normalize={normalize!r} must be [mean, std] (two numbers) or None.") from None
    if not std > 0:
        raise ValueError(f"normalize={normalize!r}: std must be > 0.")
    return mean, std


class MNIST(_TorchvisionImages):
    """MNIST (60k train / 10k test); ``split`` train | val | test with a seeded 90 / 10 train / val split."""

    name, folder = "mnist", "MNIST"
    classes = [str(digit) for digit in range(10)]

    @staticmethod
    def _torchvision_class():
        from torchvision.datasets import MNIST as TorchvisionMNIST

        return TorchvisionMNIST


class FashionMNIST(_TorchvisionImages):
    """Fashion-MNIST (60k train / 10k test); same options as :class:`MNIST`."""

    name, folder = "fashion-mnist", "FashionMNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    @staticmethod
    def _torchvision_class():
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        return TorchvisionFashionMNIST
