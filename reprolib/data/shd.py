"""Spiking Heidelberg Digits with the BRF / Yin et al. 2021 preprocessing: samples ``[250, 700]`` binary.

Files: ``<root>/SHD/shd_{train,test}.h5`` (Tonic's layout; SHD's HDF5 format: ``spikes/times`` (s),
``spikes/units`` (0..699), ``labels``, ``extra/...``). Recordings are read with Tonic's SHD reader
(``tonic.datasets.hsd.HSD.__getitem__``: times in µs, channel as ``x``), without its constructor, which
would download when the zip is absent; ``download=True`` hands over to ``tonic.datasets.SHD`` (md5-checked
download into the reprolib cache, never the data root).

Binning, as ``binary_image_readout`` in the BRF / Yin code (quirks kept for a faithful reproduction):
``n_bins = 250`` bins of ``4 ms`` covering the first second; bin ``i`` takes the not yet used events with
``time <= i * 0.004`` s (so bin 0 holds events at t = 0 and events after 0.996 s are dropped); channel
``u > 0`` is written at column ``700 - u`` (reversed; unit 0 dropped, column 0 always 0); values are 1
(binary, not counts). The reference compares the times *in the file's float type* (float16 in SHD), so
the bin edges are rounded to that type here too. Tonic's reader truncates times to whole µs; that is
exact for these comparisons except for events in (0, 1) µs, which land in bin 0 instead of bin 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from reprolib.paths import cache_dir

from . import resolve_root
from .base import SplitDataset, check_positive_int, import_tonic
from .catalog import CATALOG
from .checksums import DatasetNotFoundError

N_CHANNELS = 700


def _tonic_reader(h5_path: Path):
    """A Tonic HSD reader bound to one local file, built without Tonic's download-on-init constructor."""
    import_tonic()
    from tonic.dataset import Dataset as TonicDataset
    from tonic.datasets.hsd import HSD

    reader = HSD.__new__(HSD)
    TonicDataset.__init__(reader, str(h5_path.parent))  # no transforms; HSD.__getitem__ reads the file
    reader.location_on_system = str(h5_path.parent)
    reader.data_filename = h5_path.name
    return reader


def bin_events_brf(times_us: np.ndarray, units: np.ndarray, n_bins: int = 250, bin_width_s: float = 0.004, time_dtype=np.float16) -> np.ndarray:
    """BRF / Yin binning (see module doc) of one recording -> float32 ``[n_bins, 700]`` of 0 / 1."""
    times_us = np.asarray(times_us)
    units = np.asarray(units).astype(np.int64)
    if units.size and (units.min() < 0 or units.max() >= N_CHANNELS):
        raise ValueError(f"SHD units must lie in 0..{N_CHANNELS - 1}, got {units.min()}..{units.max()}.")
    # Edge i = i * dt as the reference computes it (Python float), then rounded to the file's time type,
    # in which numpy performs `times <= i * dt`; floor(edge * 1e6) compares like that for integer-µs times.
    edges_s = (np.arange(n_bins) * bin_width_s).astype(time_dtype).astype(np.float64)
    edges_us = np.floor(edges_s * 1e6)
    bins = np.searchsorted(edges_us, times_us, side="left")  # first i with time <= edge_i
    keep = (bins < n_bins) & (units > 0)
    out = np.zeros((n_bins, N_CHANNELS), dtype=np.float32)
    out[bins[keep], N_CHANNELS - units[keep]] = 1.0
    return out


class SHD(SplitDataset):
    """SHD (8,156 train -> 7,341 / 815 with val_fraction 0.1; 2,264 test), samples ``(x [250, 700], y int)``."""

    num_classes = 20

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        n_bins: int = 250,
        bin_width_s: float = 0.004,
        transform=None,
        target_transform=None,
        download: bool = False,
    ):
        self._init_split(split, val_fraction, transform, target_transform)
        check_positive_int("n_bins", n_bins)
        if not bin_width_s > 0:
            raise ValueError(f"bin_width_s={bin_width_s!r} must be > 0 (seconds).")
        self.n_bins, self.bin_width_s = n_bins, float(bin_width_s)

        file_name = f"shd_{'test' if split == 'test' else 'train'}.h5"
        data_root = resolve_root(root)
        candidates = [p / "SHD" / file_name for p in (data_root, cache_dir("tonic")) if p is not None]
        self.path = next((p for p in candidates if p.is_file()), None)
        if self.path is None:
            if not download:
                raise DatasetNotFoundError(CATALOG["shd"].missing_message(data_root, [f"SHD/{file_name}"]))
            import_tonic()
            from tonic.datasets import SHD as TonicSHD

            TonicSHD(save_to=str(cache_dir("tonic")), train=split != "test")  # explicit opt-in download
            self.path = cache_dir("tonic") / "SHD" / file_name

        with h5py.File(self.path, "r") as handle:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in handle:
                    raise ValueError(f"{self.path} is not an SHD file: dataset {key!r} is missing.")
            labels = handle["labels"][()].astype(np.int64)
            time_type = h5py.check_vlen_dtype(handle["spikes/times"].dtype) or handle["spikes/times"].dtype
        self.time_dtype = np.dtype(time_type)
        self._reader = _tonic_reader(self.path)
        self.indices = self._split_indices(len(labels), split_seed)
        self.targets = torch.as_tensor(labels[self.indices], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        events, label = self._reader[self.indices[index]]
        x = torch.from_numpy(bin_events_brf(events["t"], events["x"], self.n_bins, self.bin_width_s, self.time_dtype))
        return self._transformed(x, int(label))
