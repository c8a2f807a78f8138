"""SHD: the real reader on small files written here in SHD's HDF5 layout (no SHD data exists offline)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from reprolib.data import DatasetNotFoundError, load_dataset
from reprolib.data.splits import split_indices


def write_shd(path, recordings, labels):
    """SHD's layout: vlen float16 spikes/times (s), vlen uint16 spikes/units, uint8 labels, extra/..."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        times = handle.create_dataset("spikes/times", (len(recordings),), dtype=h5py.vlen_dtype(np.float16))
        units = handle.create_dataset("spikes/units", (len(recordings),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(recordings):
            times[i] = np.asarray(t, dtype=np.float16)
            units[i] = np.asarray(u, dtype=np.uint16)
        handle["labels"] = np.asarray(labels, dtype=np.uint8)
        handle["extra/speaker"] = np.zeros(len(labels), dtype=np.uint8)
        handle["extra/keys"] = np.array([f"digit-{k}".encode() for k in range(20)])


def yin_binary_image_readout(times, units, dt=4e-3):
    """Straight port of the BRF / Yin reference loop (the behaviour to reproduce)."""
    image = []
    for i in range(int(1 / dt)):
        idxs = np.argwhere(times <= i * dt).flatten()
        vals = units[idxs]
        vals = vals[vals > 0]
        vector = np.zeros(700)
        vector[700 - vals] = 1
        times = np.delete(times, idxs)
        units = np.delete(units, idxs)
        image.append(vector)
    return np.array(image)


def test_binning_of_a_hand_made_recording(tmp_path, no_network):
    events = [  # (time s, unit) -> expected (bin, column) or None
        (0.0, 5, (0, 695)),  # t = 0 is bin 0 (time <= 0 * dt)
        (0.0, 0, None),  # unit 0 is dropped
        (0.002, 1, (1, 699)),  # (0, 4 ms] -> bin 1; unit u -> column 700 - u
        (0.002, 1, (1, 699)),  # a repeat stays 1 (binary, not counts)
        (0.004, 10, (1, 690)),  # float16(0.004) = 0.0040016 <= float16 edge: bin 1 (float64 would say 2)
        (0.0041, 10, (2, 690)),
        (0.5, 699, (125, 1)),
        (0.999, 3, None),  # after the last edge (0.996 s): dropped
        (1.2, 3, None),  # beyond the first second: dropped
    ]
    write_shd(tmp_path / "SHD" / "shd_test.h5", [([e[0] for e in events], [e[1] for e in events])], [13])
    dataset = load_dataset("shd", "test", root=tmp_path)
    x, y = dataset[0]
    assert x.shape == (250, 700) and x.dtype == torch.float32 and y == 13
    expected = torch.zeros(250, 700)
    for _, _, where in events:
        if where is not None:
            expected[where] = 1.0
    assert torch.equal(x, expected)
    assert x[:, 0].sum() == 0  # column 0 never written


def test_reader_matches_the_reference_loop_on_random_recordings(tmp_path, no_network):
    rng = np.random.default_rng(0)
    recordings = []
    for _ in range(6):
        n = int(rng.integers(50, 1500))
        recordings.append((np.sort(rng.uniform(0, 1.2, n)), rng.integers(0, 700, n)))
    labels = rng.integers(0, 20, len(recordings))
    write_shd(tmp_path / "SHD" / "shd_train.h5", recordings, labels)
    train = load_dataset("shd", "train", root=tmp_path, val_fraction=0)
    assert len(train) == 6 and train.targets.tolist() == labels.tolist()
    with h5py.File(tmp_path / "SHD" / "shd_train.h5", "r") as handle:
        for i in range(len(train)):
            reference = yin_binary_image_readout(handle["spikes/times"][i], handle["spikes/units"][i].astype(np.int64))
            assert np.array_equal(train[i][0].numpy(), reference), f"recording {i}"


def test_split_sizes_follow_brf():
    assert len(split_indices(8156, "train", 0.1, 0)) == 7341
    assert len(split_indices(8156, "val", 0.1, 0)) == 815


def test_missing_shd_gives_the_message_not_a_download(empty_root, no_network):
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("shd", "train", root=empty_root)
    message = str(caught.value)
    assert "SHD/shd_train.h5" in message and "zenkelab.org" in message and "--download" in message


def test_not_an_shd_file_is_rejected(tmp_path):
    path = tmp_path / "SHD" / "shd_test.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as handle:
        handle["labels"] = np.zeros(3, dtype=np.uint8)
    with pytest.raises(ValueError, match="spikes/times"):
        load_dataset("shd", "test", root=tmp_path)


def test_a_previous_download_in_the_cache_is_found(empty_root, private_cache, no_network):
    from reprolib.data.catalog import check_availability

    cache = private_cache
    for split in ("train", "test"):  # where tonic.datasets.SHD(save_to=<cache>/tonic) extracts its files
        write_shd(cache / "tonic" / "SHD" / f"shd_{split}.h5", [([0.1], [7])], [4])
    status = check_availability("shd", empty_root, cache)
    assert status.status == "found" and status.location == str(cache / "tonic")
    x, y = load_dataset("shd", "test", root=empty_root)[0]
    assert y == 4 and x[25, 693] == 1 and x.sum() == 1  # 0.1 s -> bin 25 (float16(0.1) <= float16(0.1))
