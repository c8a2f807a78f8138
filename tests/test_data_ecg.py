"""ECG-QTDB from the real .mat files: sizes, shapes, per-step labels with -1 for unlabelled steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolib.data import load_dataset
from reprolib.data.ecg import UNLABELLED, one_hot_to_labels

# README: class totals of y over steps 0..1299
TRAIN_CLASS_TOTALS = [100474, 49448, 46481, 35742, 242613, 262945]
TEST_CLASS_TOTALS = [24141, 10135, 9835, 9056, 55849, 55250]
# README: all-zero y rows are 65,785 (train) and 19,056 (test) *counting the padding step 1300*;
# over steps 0..1299 there are 65,697 and 19,034 (the padding step is unlabelled in 88 / 22 sequences).
TRAIN_UNLABELLED, TEST_UNLABELLED = 65_697, 19_034


@pytest.fixture(scope="module")
def ecg(data_root):
    return {split: load_dataset("ecg-qtdb", split, root=data_root) for split in ("train", "val", "test")}


def test_sizes_and_shapes(ecg):
    assert [len(ecg[s]) for s in ("train", "val", "test")] == [557, 61, 141]
    x, y = ecg["train"][0]
    assert x.shape == (1300, 4) and x.dtype == torch.float32
    assert y.shape == (1300,) and y.dtype == torch.long
    assert set(torch.unique(ecg["test"].data).tolist()) <= {0.0, 1.0}  # padding step (-1) dropped
    assert not set(ecg["train"].indices) & set(ecg["val"].indices)


def test_unlabelled_steps_are_minus_one_never_class_zero(ecg):
    train_targets = torch.cat([ecg["train"].targets, ecg["val"].targets])
    assert int((train_targets == UNLABELLED).sum()) == TRAIN_UNLABELLED
    assert int((ecg["test"].targets == UNLABELLED).sum()) == TEST_UNLABELLED
    # class totals equal the one-hot sums: no unlabelled step was counted as class 0
    totals = [int((train_targets == c).sum()) for c in range(6)]
    assert totals == TRAIN_CLASS_TOTALS
    assert [int((ecg["test"].targets == c).sum()) for c in range(6)] == TEST_CLASS_TOTALS
    assert 0.07 < TRAIN_UNLABELLED / train_targets.numel() < 0.09  # "about 8%"


def test_one_hot_conversion():
    one_hot = np.array([[0, 0, 1, 0, 0, 0], [0] * 6, [1, 0, 0, 0, 0, 0]])
    assert one_hot_to_labels(one_hot).tolist() == [2, -1, 0]


def test_split_is_seeded(data_root, ecg):
    again = load_dataset("ecg-qtdb", "val", root=data_root)
    assert again.indices == ecg["val"].indices
    assert load_dataset("ecg-qtdb", "val", root=data_root, split_seed=3).indices != ecg["val"].indices


def test_source_treatment_makes_unlabelled_steps_class_zero(data_root, ecg):
    """unlabelled="class0" is the brf-neurons code's argmax of the all-zero one-hot: the same sequences, and the
    unlabelled steps counted as class 0 (P) on top of the real class-0 steps."""
    source = {split: load_dataset("ecg-qtdb", split, root=data_root, unlabelled="class0") for split in ("train", "test")}
    assert torch.equal(source["train"].data, ecg["train"].data)
    assert int((source["test"].targets == UNLABELLED).sum()) == 0
    assert int((source["test"].targets == 0).sum()) == TEST_CLASS_TOTALS[0] + TEST_UNLABELLED
    masked = ecg["train"].targets == UNLABELLED
    assert (source["train"].targets[masked] == 0).all()
    assert torch.equal(source["train"].targets[~masked], ecg["train"].targets[~masked])
    assert one_hot_to_labels(np.array([[0] * 6, [0, 1, 0, 0, 0, 0]]), "class0").tolist() == [0, 1]


def test_bad_unlabelled_option_names_the_value(data_root):
    with pytest.raises(ValueError, match="unlabelled='zero'.*'mask', 'class0'"):
        load_dataset("ecg-qtdb", "train", root=data_root, unlabelled="zero")
