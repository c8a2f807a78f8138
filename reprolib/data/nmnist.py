"""N-MNIST as frames ``[n_time_bins, 2, 34, 34]`` (time, polarity, y, x), framed by Tonic and cached on disk.

Both datasets parse recordings with Tonic's own N-MNIST reader (``tonic.io.read_mnist_file``: 40-bit
events, overflow events dropped) and frame them with ``tonic.transforms.ToFrame(sensor_size=(34, 34, 2),
n_time_bins=200)`` (SRC paper 3.1): equal-duration bins of ``(t_last - t_first) // n_time_bins`` µs from
the first event; values are event counts per bin (``binarize=True`` clamps them to 1, a choice the
paper leaves open).

* ``nmnist``: the full dataset in Tonic's layout ``<root>/NMNIST/{train.zip,Train/,test.zip,Test/}``; the
  file list comes from ``tonic.datasets.NMNIST``, which is only constructed once its own existence check
  passes (it would download otherwise); ``download=True`` lets Tonic download into the reprolib cache.
* ``nmnist-subset``: the 1,000 + 100 real recordings of ``<root>/N-MNIST-subset`` (SLAYER's
  ``NMNISTsmall/<k>.bs2`` names, mapped by ``index.csv``). Tonic's dataset class refuses a folder with
  fewer than 10,000 files, so the files are read with the same Tonic reader; each file's sha256 is checked
  against the list shipped with reprolib.

Framing costs milliseconds per sample and is repeated every epoch, so frames are cached under
``cache_dir("nmnist-frames")``, keyed by the recording's sha256, the number of bins and Tonic's version
(content-addressed: never stale), stored sparsely (indices + counts, ~30 KB instead of 0.9 MB) and written atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from reprolib.paths import cache_dir

if TYPE_CHECKING:  # pandas is imported where a table is built
    import pandas

from . import resolve_root
from .base import SplitDataset, check_positive_int, import_tonic
from .catalog import CATALOG
from .checksums import EXPECTED_SHA256, ChecksumMismatchError, DatasetNotFoundError, verify_file

SENSOR_SIZE = (34, 34, 2)  # tonic.datasets.NMNIST.sensor_size: (x, y, polarity)
SUBSET_FOLDER = "N-MNIST-subset"


def read_events(data: bytes) -> np.ndarray:
    """Events of one N-MNIST recording (structured x, y, t [µs], p) via Tonic's reader."""
    import_tonic()
    from tonic.datasets import NMNIST as TonicNMNIST
    from tonic.io import read_mnist_file

    return read_mnist_file(io.BytesIO(data), dtype=TonicNMNIST.dtype, is_stream=True)


def frame_events(events: np.ndarray, n_time_bins: int = 200) -> np.ndarray:
    """Tonic's ``ToFrame(sensor_size=(34, 34, 2), n_time_bins)``: int16 counts ``[n_time_bins, 2, 34, 34]``."""
    import_tonic()
    from tonic.transforms import ToFrame

    if len(events) == 0:
        raise ValueError("Cannot frame an N-MNIST recording without events.")
    return ToFrame(sensor_size=SENSOR_SIZE, n_time_bins=n_time_bins)(events)


def _frame_cache_path(digest: str, n_time_bins: int) -> Path:
    import_tonic()
    import tonic

    # The key names everything the frames depend on: the recording's bytes, the bin count and Tonic's framing code.
    return cache_dir(f"nmnist-frames/tonic-{tonic.__version__}/T{n_time_bins}") / f"{digest}.npz"


def load_sparse_frames(path: str | os.PathLike, n_time_bins: int = 200, expected_sha256: str | None = None,
                       cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Framed recording ``path`` as ``(flat index int32, count int16)`` of its non-zero bins (row-major over
    ``[n_time_bins, 2, 34, 34]``), from the disk cache when possible; checks ``expected_sha256``."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ChecksumMismatchError(path, expected_sha256, digest)
    target = _frame_cache_path(digest, n_time_bins) if cache else None
    if target is not None and target.is_file():
        try:
            with np.load(target) as stored:
                return stored["index"], stored["count"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: rebuild it below
    flat = frame_events(read_events(data), n_time_bins).reshape(-1)
    index = np.flatnonzero(flat).astype(np.int32)
    count = flat[index]
    if target is not None:
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, index=index, count=count)
            os.replace(temporary, target)  # atomic: readers see the old state or the whole file
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return index, count


def _frame_shape(n_time_bins: int) -> tuple[int, int, int, int]:
    return (n_time_bins, SENSOR_SIZE[2], SENSOR_SIZE[1], SENSOR_SIZE[0])


def load_frames(path: str | os.PathLike, n_time_bins: int = 200, expected_sha256: str | None = None, cache: bool = True) -> np.ndarray:
    """Framed recording ``path`` (int16 counts ``[n_time_bins, 2, 34, 34]``), from the cache when possible;
    checks ``expected_sha256``."""
    index, count = load_sparse_frames(path, n_time_bins, expected_sha256, cache)
    shape = _frame_shape(n_time_bins)
    frames = np.zeros(int(np.prod(shape)), dtype=np.int16)
    frames[index] = count
    return frames.reshape(shape)


#: splits of at most this many recordings keep their sparse frames in memory after the first epoch (the
#: subset: 1,000 recordings, ~25 MB); reading, hashing and unpacking them again cost ~10 % of a CPU epoch
MEMORY_CACHE_MAX_RECORDINGS = 10_000


class _FrameDataset(SplitDataset):
    """Recordings + labels -> ``(x float [T, 2, 34, 34], y int)``; both N-MNIST datasets take these options.

    Subclasses implement :meth:`_recordings`: the split's files, labels and expected sha256s (or ``None``).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        n_time_bins: int = 200,
        binarize: bool = False,
        cache: bool = True,
        transform=None,
        target_transform=None,
        download: bool = False,
    ):
        self._init_split(split, val_fraction, transform, target_transform)
        files, targets, expected_sha256 = self._recordings(root, split_seed, download)
        check_positive_int("n_time_bins", n_time_bins)
        self.files = [Path(f) for f in files]
        self.targets = torch.as_tensor(list(targets), dtype=torch.long)
        self.expected_sha256 = expected_sha256
        self.n_time_bins, self.binarize, self.cache = n_time_bins, bool(binarize), bool(cache)
        # index -> (flat index, count); only for small splits (MEMORY_CACHE_MAX_RECORDINGS) and with ``cache``
        self._in_memory: dict[int, tuple[np.ndarray, np.ndarray]] | None = (
            {} if self.cache and len(self.files) <= MEMORY_CACHE_MAX_RECORDINGS else None)

    def _recordings(self, root, split_seed: int, download: bool):  # pragma: no cover - overridden
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        sparse = self._in_memory.get(index) if self._in_memory is not None else None
        if sparse is None:
            expected = self.expected_sha256[index] if self.expected_sha256 is not None else None
            sparse = load_sparse_frames(self.files[index], self.n_time_bins, expected, self.cache)
            if self._in_memory is not None:
                self._in_memory[index] = sparse
        flat_index, count = sparse
        shape = _frame_shape(self.n_time_bins)
        x = torch.zeros(int(np.prod(shape)), dtype=torch.float32)
        x[torch.from_numpy(flat_index.astype(np.int64))] = 1.0 if self.binarize else torch.from_numpy(count.astype(np.float32))
        return self._transformed(x.view(shape), int(self.targets[index]))


class NMNISTSubset(_FrameDataset):
    """The 1,000 train + 100 test real N-MNIST recordings of ``<root>/N-MNIST-subset`` (see module doc)."""

    def _recordings(self, root, split_seed: int, download: bool):
        from ._nmnist_subset_sha256 import NMNIST_SUBSET_SHA256

        data_root = resolve_root(root)
        info = CATALOG["nmnist-subset"]
        folder = data_root / SUBSET_FOLDER if data_root is not None else None
        if folder is None or not (folder / "index.csv").is_file():
            note = "\n(download=True cannot help: the subset has no download; the full dataset is 'nmnist')" if download else ""
            raise DatasetNotFoundError(info.missing_message(data_root) + note)
        verify_file(folder / "index.csv", EXPECTED_SHA256[f"{SUBSET_FOLDER}/index.csv"])
        with open(folder / "index.csv", newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] == ("test" if self.split == "test" else "train")]
        rows.sort(key=lambda row: int(row["mnist_index"]))
        rows = [rows[i] for i in self._split_indices(len(rows), split_seed)]
        missing = [row["file"] for row in rows if not (folder / row["file"]).is_file()]
        if missing:
            raise DatasetNotFoundError(info.missing_message(data_root, [f"{SUBSET_FOLDER}/{m}" for m in missing[:10]]))
        self.mnist_indices = [int(row["mnist_index"]) for row in rows]
        return (
            [folder / row["file"] for row in rows],
            [int(row["label"]) for row in rows],
            [NMNIST_SUBSET_SHA256[Path(row["file"]).name] for row in rows],
        )


def tonic_cache() -> Path:
    """Where Tonic downloads go (never into the data root)."""
    return cache_dir("tonic")


def _tonic_layout_complete(save_to: Path, train: bool) -> bool:
    """Tonic's own existence check for NMNIST (zip present and >= 10,000 extracted .bin files)."""
    import_tonic()
    from tonic.datasets import NMNIST as TonicNMNIST

    location = save_to / "NMNIST"
    zip_name = TonicNMNIST.train_filename if train else TonicNMNIST.test_filename
    folder = TonicNMNIST.train_folder if train else TonicNMNIST.test_folder
    if not (location / zip_name).is_file():
        return False
    count = 0
    for _ in (location / folder).glob("**/*.bin"):
        count += 1
        if count >= 10_000:
            return True
    return False


class NMNIST(_FrameDataset):
    """Full N-MNIST (60,000 / 10,000) in Tonic's layout under ``<root>/NMNIST`` (see module doc)."""

    def _recordings(self, root, split_seed: int, download: bool):
        import_tonic()
        from tonic.datasets import NMNIST as TonicNMNIST

        train = self.split != "test"
        data_root = resolve_root(root)
        candidates = [p for p in (data_root, tonic_cache()) if p is not None]
        save_to = next((p for p in candidates if _tonic_layout_complete(p, train)), None)
        if save_to is None:
            if not download:
                raise DatasetNotFoundError(CATALOG["nmnist"].missing_message(data_root))
            save_to = tonic_cache()  # explicit opt-in: Tonic downloads (md5-checked) and extracts here
        tonic_dataset = TonicNMNIST(save_to=str(save_to), train=train)
        files, targets = list(tonic_dataset.data), list(tonic_dataset.targets)
        chosen = self._split_indices(len(files), split_seed)
        return [files[i] for i in chosen], [targets[i] for i in chosen], None  # no per-file checksums exist for N-MNIST


def event_centroids(dataset: _FrameDataset) -> pandas.DataFrame:
    """Where each recording's events sit on the sensor: one row per recording with its ``label``, ``x`` and ``y``
    (mean event column and row, pixels from the top-left), ``events`` (count) and ``row_profile`` (the fraction
    of its events in each sensor row, top first), read from the raw files.

    A fully connected network sees pixels, not digits, so a set of recordings that sits a pixel away from the
    training set's looks different to it. :func:`centroid_offsets` compares the splits.
    """
    import pandas as pd  # noqa: PLC0415

    rows = []
    for path, label in zip(dataset.files, dataset.targets.tolist()):
        events = read_events(Path(path).read_bytes())
        if len(events) == 0:  # nothing to place: NaN, which the tables' means skip
            rows.append({"label": label, "x": np.nan, "y": np.nan, "events": 0,
                         "row_profile": np.full(SENSOR_SIZE[1], np.nan)})
            continue
        profile = np.bincount(events["y"], minlength=SENSOR_SIZE[1])[:SENSOR_SIZE[1]] / len(events)
        rows.append({"label": label, "x": float(events["x"].mean()), "y": float(events["y"].mean()),
                     "events": len(events), "row_profile": profile})
    return pd.DataFrame(rows)


def centroid_offsets(root: str | os.PathLike | None = None) -> pandas.DataFrame:
    """Per digit class: the mean event row (``y``) and column (``x``) of the subset's training and test
    recordings, and the test-minus-train offsets; beside them the same offset of the source MNIST digits'
    intensity centroids, which says whether the digits themselves or the recordings differ. A last row
    ``all (class-weighted)`` averages the classes with equal weight, so the two splits' class mixes do not
    enter. ``attrs["row_profiles"]`` holds each split's mean fraction of events per sensor row (``{"train": [34],
    "test": [34]}``, classes weighted equally) for a figure. Raises :class:`DatasetNotFoundError` when the subset
    or MNIST is not there."""
    import pandas as pd  # noqa: PLC0415

    from . import load_dataset  # noqa: PLC0415

    parts = []
    for split in ("train", "test"):
        recordings = NMNISTSubset(root=root, split=split, val_fraction=0.0)
        table = event_centroids(recordings)
        mnist = load_dataset("mnist", split, root=root, val_fraction=0.0)
        images = torch.stack([mnist[i][0].reshape(28, 28) for i in recordings.mnist_indices]).double()
        rows = torch.arange(28, dtype=torch.float64).view(1, 28, 1)
        table["image_y"] = ((images * rows).sum((1, 2)) / images.sum((1, 2))).numpy()
        parts.append(table.assign(split=split))
    both = pd.concat(parts).groupby(["label", "split"])[["x", "y", "image_y"]].mean().unstack("split")
    out = pd.DataFrame({
        "train y": both[("y", "train")], "test y": both[("y", "test")],
        "offset y": both[("y", "test")] - both[("y", "train")],
        "offset x": both[("x", "test")] - both[("x", "train")],
        "MNIST offset y": both[("image_y", "test")] - both[("image_y", "train")],
    })
    out.loc["all (class-weighted)"] = out.dropna().mean()  # over the classes both splits have
    out.index.name = "digit"
    # the row profiles, averaged with equal weight per class as the last row is
    profiles = {}
    for part in parts:
        per_class = part.groupby("label")["row_profile"].apply(lambda p: np.nanmean(np.stack(p.to_list()), axis=0))
        profiles[part["split"].iloc[0]] = np.nanmean(np.stack(per_class.to_list()), axis=0)
    out.attrs["row_profiles"] = profiles
    return out
