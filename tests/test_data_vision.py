"""MNIST / Fashion-MNIST from the real .gz files: counts, class balance, splits, checksums, no network."""

from __future__ import annotations

import pytest
import torch

from reprolib.data import ChecksumMismatchError, DatasetNotFoundError, load_dataset

MNIST_TRAIN_PER_CLASS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_PER_CLASS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def class_counts(dataset) -> list[int]:
    return torch.bincount(dataset.targets, minlength=10).tolist()


def test_mnist_counts_and_class_balance(data_root, no_network):
    train = load_dataset("mnist", "train", root=data_root, val_fraction=0)
    test = load_dataset("mnist", "test", root=data_root)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert class_counts(train) == MNIST_TRAIN_PER_CLASS
    assert class_counts(test) == MNIST_TEST_PER_CLASS
    assert abs(train.data.double().mean().item() - 33.318) < 1e-3  # README: mean train pixel
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and (y, test[0][1]) == (5, 7)
    assert 0.0 <= x.min() and x.max() == 1.0


def test_fashion_mnist_counts_and_normalize(data_root, no_network):
    train = load_dataset("fashion-mnist", "train", root=data_root, val_fraction=0)
    test = load_dataset("fashion-mnist", "test", root=data_root)
    assert class_counts(train) == [6000] * 10 and class_counts(test) == [1000] * 10
    assert (train[0][1], test[0][1]) == (9, 9)
    normalized = load_dataset("fashion-mnist", "test", root=data_root, normalize=[0.2860, 0.3530])
    raw, norm = test[0][0], normalized[0][0]
    assert torch.allclose(norm, (raw - 0.2860) / 0.3530)
    assert norm.min() < 0  # SpikingJelly's inputs can be negative


def test_train_val_split_is_seeded_disjoint_and_complete(data_root):
    train = load_dataset("mnist", "train", root=data_root)
    val = load_dataset("mnist", "val", root=data_root)
    assert (len(train), len(val)) == (54_000, 6_000)
    assert not set(train.indices) & set(val.indices)
    assert sorted(train.indices + val.indices) == list(range(60_000))
    assert load_dataset("mnist", "val", root=data_root).indices == val.indices  # same seed, same split
    other = load_dataset("mnist", "val", root=data_root, split_seed=1)
    assert other.indices != val.indices
    # every class is represented roughly in proportion (a random 10%)
    assert min(class_counts(val)) > 450
    assert torch.equal(val[3][0], load_dataset("mnist", "train", root=data_root, val_fraction=0)[val.indices[3]][0])


def test_bad_options_raise_before_loading(data_root):
    with pytest.raises(ValueError, match="split='validation'"):
        load_dataset("mnist", "validation", root=data_root)
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        load_dataset("mnist", "train", root=data_root, val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction > 0"):
        load_dataset("mnist", "val", root=data_root, val_fraction=0)
    with pytest.raises(ValueError, match="normalize="):
        load_dataset("mnist", "test", root=data_root, normalize=[0.5])
    with pytest.raises(ValueError, match=r"Bad options \['normalise'\].*accepted: .*normalize"):
        load_dataset("mnist", "test", root=data_root, normalise=[0.5, 0.5])
    with pytest.raises(ValueError, match="Unknown dataset 'mnsit'"):
        load_dataset("mnsit", "train", root=data_root)


def test_corrupted_file_names_the_file_and_both_hashes(data_root, tmp_path, private_cache, no_network):
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in (data_root / "MNIST" / "raw").glob("*.gz"):
        (raw / source.name).symlink_to(source)
    corrupted = raw / "t10k-labels-idx1-ubyte.gz"
    corrupted.unlink()
    payload = bytearray((data_root / "MNIST" / "raw" / corrupted.name).read_bytes())
    payload[100] ^= 0xFF
    corrupted.write_bytes(bytes(payload))
    with pytest.raises(ChecksumMismatchError) as caught:
        load_dataset("mnist", "test", root=tmp_path / "root")
    message = str(caught.value)
    assert str(corrupted) in message
    assert "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6" in message  # expected
    assert caught.value.actual in message and caught.value.actual != caught.value.expected
    assert not any((tmp_path / "cache").glob("**/t10k-labels-idx1-ubyte"))  # nothing decompressed


def test_missing_files_give_the_message_not_a_download(empty_root, no_network):
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("fashion-mnist", "train", root=empty_root)
    message = str(caught.value)
    assert "FashionMNIST/raw/train-images-idx3-ubyte.gz" in message and "--download" in message


def test_decompressed_cache_is_complete_and_leaves_no_staging(data_root):
    from reprolib.data.vision import torchvision_cache

    load_dataset("mnist", "test", root=data_root)
    cache = torchvision_cache()
    assert (cache / "MNIST" / "raw" / ".reprolib-verified").is_file()
    assert not list(cache.glob(".staging-*"))
    assert not any(p.is_symlink() for p in (cache / "MNIST" / "raw").iterdir())


def test_status_finds_the_decompressed_cache_the_loader_reads(data_root, private_cache, monkeypatch):
    from reprolib.data.catalog import check_availability

    assert check_availability("mnist", None, private_cache).status == "missing"
    load_dataset("mnist", "test", root=data_root)  # leaves the verified, decompressed copy in the cache
    monkeypatch.delenv("REPROLIB_DATA")
    assert len(load_dataset("mnist", "test")) == 10_000  # which loads without a data root ...
    found = check_availability("mnist", None, private_cache)  # ... so the status must find it too
    assert found.status == "found" and "decompressed copy in the reprolib cache" in found.detail
    labels = private_cache / "torchvision" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])
    assert check_availability("mnist", None, private_cache).status == "corrupt"


def test_data_root_is_never_written(data_root):
    load_dataset("mnist", "train", root=data_root)
    # torchvision decompresses next to the .gz it is given: that must be the cache, not the data root.
    assert sorted(p.name for p in (data_root / "MNIST" / "raw").iterdir()) == sorted(
        f"{stem}.gz" for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    )
