"""N-MNIST: frames of the real subset against a hand count from the file bytes, cache, checksums, layout."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reprolib.data import ChecksumMismatchError, DatasetNotFoundError, load_dataset

SUBSET_TRAIN_PER_CLASS = [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
SUBSET_TEST_PER_CLASS = [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]


def hand_count(path, n_bins: int = 200) -> np.ndarray:
    """Frames from the raw 40-bit events with numpy only (README's decoding, Tonic's binning rule)."""
    b = np.fromfile(path, np.uint8).reshape(-1, 5).astype(np.int64)
    x, y, p = b[:, 0], b[:, 1], b[:, 2] >> 7
    t = ((b[:, 2] & 127) << 16) | (b[:, 3] << 8) | b[:, 4]
    assert not (y == 240).any()  # no overflow markers in these short recordings
    width = (t[-1] - t[0]) // n_bins  # equal-duration bins of whole µs from the first event
    bins = (t - t[0]) // width
    keep = bins < n_bins  # the remainder after n_bins * width is not framed
    frames = np.zeros((n_bins, 2, 34, 34), dtype=np.int64)
    np.add.at(frames, (bins[keep], p[keep], y[keep], x[keep]), 1)
    return frames


def test_subset_sizes_labels_and_class_balance(data_root, no_network):
    train = load_dataset("nmnist-subset", "train", root=data_root, val_fraction=0)
    test = load_dataset("nmnist-subset", "test", root=data_root)
    assert (len(train), len(test)) == (1000, 100)
    assert torch.bincount(train.targets, minlength=10).tolist() == SUBSET_TRAIN_PER_CLASS
    assert torch.bincount(test.targets, minlength=10).tolist() == SUBSET_TEST_PER_CLASS
    assert train.mnist_indices == list(range(1000)) and test.mnist_indices == list(range(100))
    split_train = load_dataset("nmnist-subset", "train", root=data_root)
    split_val = load_dataset("nmnist-subset", "val", root=data_root)
    assert (len(split_train), len(split_val)) == (900, 100)
    assert not set(split_train.mnist_indices) & set(split_val.mnist_indices)


def test_frames_match_a_hand_count_of_the_file(data_root, private_cache, no_network):
    test = load_dataset("nmnist-subset", "test", root=data_root)
    x, y = test[0]
    path = data_root / "N-MNIST-subset" / "NMNISTsmall" / "60001.bs2"
    assert test.files[0] == path and y == 7  # MNIST test image 0 is a 7
    expected = hand_count(path)
    assert x.shape == (200, 2, 34, 34) and x.dtype == torch.float32
    assert np.array_equal(x.numpy(), expected)
    with open(data_root / "N-MNIST-subset" / "index.csv", newline="") as handle:
        n_events = next(int(r["n_events"]) for r in csv.DictReader(handle) if r["file"].endswith("/60001.bs2"))
    assert 0 < n_events - x.sum().item() <= 5  # only the last bin's remainder events are left out

    # second read comes from the content-addressed cache, written atomically
    cached = list(private_cache.glob("nmnist-frames/tonic-*/T200/*.npz"))
    assert len(cached) == 1 and not list(private_cache.glob("nmnist-frames/**/.tmp-*"))
    assert torch.equal(test[0][0], x)

    binary = load_dataset("nmnist-subset", "test", root=data_root, binarize=True)[0][0]
    assert torch.equal(binary, (x > 0).float()) and x.max() > 1  # counts really were clamped


def test_small_splits_keep_their_frames_in_memory(data_root, private_cache, monkeypatch, no_network):
    from reprolib.data import nmnist

    reads = []
    original = nmnist.load_sparse_frames
    monkeypatch.setattr(nmnist, "load_sparse_frames", lambda *a, **k: reads.append(a[0]) or original(*a, **k))
    test = load_dataset("nmnist-subset", "test", root=data_root)
    first = [test[i][0] for i in range(3)]
    again = [test[i][0] for i in range(3)]
    assert len(reads) == 3  # the second epoch reads no file
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert torch.equal(first[1], torch.from_numpy(nmnist.load_frames(test.files[1]).astype(np.float32)))
    binary = load_dataset("nmnist-subset", "test", root=data_root, binarize=True)
    assert torch.equal(binary[1][0], (first[1] > 0).float()) and binary[1][0].max() == 1

    monkeypatch.setattr(nmnist, "MEMORY_CACHE_MAX_RECORDINGS", 50)  # a split larger than this reads every time
    reads.clear()
    large = load_dataset("nmnist-subset", "test", root=data_root)
    assert torch.equal(large[0][0], first[0]) and torch.equal(large[0][0], first[0])
    assert len(reads) == 2
    reads.clear()
    uncached = load_dataset("nmnist-subset", "test", root=data_root, cache=False)
    uncached[0], uncached[0]
    assert len(reads) == 2


def test_corrupted_recording_is_named_with_both_hashes(data_root, tmp_path, no_network):
    source = data_root / "N-MNIST-subset"
    folder = tmp_path / "root" / "N-MNIST-subset"
    (folder / "NMNISTsmall").mkdir(parents=True)
    shutil.copy(source / "index.csv", folder / "index.csv")
    for recording in (source / "NMNISTsmall").glob("*.bs2"):
        (folder / "NMNISTsmall" / recording.name).symlink_to(recording)
    corrupted = folder / "NMNISTsmall" / "60002.bs2"
    payload = bytearray(corrupted.read_bytes())
    corrupted.unlink()
    payload[7] ^= 0x01
    corrupted.write_bytes(bytes(payload))
    test = load_dataset("nmnist-subset", "test", root=tmp_path / "root")
    test[0]  # intact recordings still load
    with pytest.raises(ChecksumMismatchError) as caught:
        test[1]
    assert str(corrupted) in str(caught.value)
    assert "95d7ff1d758f3ecb8d8f56bd53599b2dbee8ed7356005caa50b5adf5a3f63d56" in str(caught.value)


def test_full_nmnist_missing_gives_the_message_not_a_download(empty_root, no_network):
    with pytest.raises(DatasetNotFoundError, match=r"NMNIST/train\.zip"):
        load_dataset("nmnist", "train", root=empty_root)
    with pytest.raises(DatasetNotFoundError, match="N-MNIST-subset/index.csv"):
        load_dataset("nmnist-subset", "test", root=empty_root)


def test_full_nmnist_reads_tonics_layout(data_root, tmp_path, monkeypatch, private_cache, no_network):
    """A Tonic-layout folder (zip present, >= 10,000 .bin files) built from links to the real recordings."""
    location = tmp_path / "root" / "NMNIST"
    with open(data_root / "N-MNIST-subset" / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    (location / "Train").mkdir(parents=True)
    (location / "train.zip").write_bytes(b"")  # Tonic only checks that the archive exists
    for i in range(10_000):
        row = rows[i % len(rows)]
        digit_folder = location / "Train" / row["label"]
        digit_folder.mkdir(exist_ok=True)
        (digit_folder / f"{i:05d}.bin").symlink_to(data_root / "N-MNIST-subset" / row["file"])
    full = load_dataset("nmnist", "train", root=tmp_path / "root", val_fraction=0)
    assert len(full) == 10_000
    assert torch.bincount(full.targets, minlength=10).sum() == 10_000
    x, y = full[0]
    assert x.shape == (200, 2, 34, 34)
    source = full.files[0].resolve()
    assert np.array_equal(x.numpy(), hand_count(source)) and y == int(full.files[0].parent.name)


# A Jupyter kernel as tqdm.autonotebook tells one (ipykernel's shell imported), without ipywidgets: where it warns
_KERNEL_WITHOUT_WIDGETS = ("import sys, types, warnings\nimport IPython\n"
                           "sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell')\n"
                           "sys.modules['ipywidgets'] = None\n")


def _widget_notices(statement: str) -> int:
    script = (_KERNEL_WITHOUT_WIDGETS + "with warnings.catch_warnings(record=True) as caught:\n"
              "    warnings.simplefilter('always')\n"
              f"    {statement}\n"
              "print(sum('IProgress not found' in str(w.message) for w in caught))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return int(done.stdout.split()[-1])


def test_tonic_is_imported_without_tqdms_widget_notice():
    # a book page reading N-MNIST in such a kernel showed tqdm's "IProgress not found" (Tonic imports tqdm.auto)
    assert _widget_notices("import tonic") == 1
    one_event = "np.zeros(1, dtype=[('x', '<i8'), ('y', '<i8'), ('t', '<i8'), ('p', '<i8')])"
    assert _widget_notices(f"import numpy as np; from reprolib.data.nmnist import frame_events; "
                           f"frame_events({one_event}, 2)") == 0
    assert _widget_notices("from reprolib.data.base import import_tonic; import_tonic()") == 0
