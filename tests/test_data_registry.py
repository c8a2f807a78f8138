"""The dataset registry, seeded splits across processes, and the `reprolib data` command."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest
import torch

from reprolib.data import DATASETS, load_dataset
from reprolib.data import cli as data_cli
from reprolib.data.splits import split_indices


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, root=None, split="train", download=False, size=10):
        self.root, self.split, self.download, self.size = root, split, download, size

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        return torch.full((3,), float(index)), index % 2


def test_toy_dataset_can_be_registered(monkeypatch):
    monkeypatch.setitem(DATASETS, "toy", f"{__name__}:ToyDataset")
    dataset = load_dataset("toy", "val", root="/nowhere", size=4)
    assert isinstance(dataset, ToyDataset)
    assert (dataset.root, dataset.split, dataset.download, len(dataset)) == ("/nowhere", "val", False, 4)


def test_registry_names_match_the_contract():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "nmnist", "nmnist-subset", "shd", "ecg-qtdb"}


def test_split_is_identical_in_another_process():
    code = "from reprolib.data.splits import split_indices; print(split_indices(618, 'val', 0.1, 0))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == str(split_indices(618, "val", 0.1, 0))
    assert len(split_indices(618, "val", 0.1, 0)) == 61
    assert split_indices(5, "train", 0.0, 0) == [0, 1, 2, 3, 4]


def run_cli(argv, capsys):
    parser = argparse.ArgumentParser()
    data_cli.configure(parser)
    code = data_cli.main(parser.parse_args(argv))
    return code, capsys.readouterr().out


def test_cli_reports_found_subset_missing(data_root, private_cache, capsys):
    code, out = run_cli(["--root", str(data_root)], capsys)
    assert code == 0
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line and not line.startswith((" ", "data"))}
    assert lines == {
        "mnist": "found", "fashion-mnist": "found", "nmnist": "missing",
        "nmnist-subset": "subset", "shd": "missing", "ecg-qtdb": "found",
    }
    assert "1101 files verified" in out  # 1,100 recordings + index.csv
    assert "shd_train.h5" in out and "zenkelab.org" in out  # what is expected and where to get it


def test_cli_flags_a_checksum_mismatch(data_root, tmp_path, private_cache, capsys):
    folder = tmp_path / "root" / "ECG-QTDB"
    folder.mkdir(parents=True)
    (folder / "QTDB_train.mat").symlink_to(data_root / "ECG-QTDB" / "QTDB_train.mat")
    (folder / "QTDB_test.mat").write_bytes((data_root / "ECG-QTDB" / "QTDB_test.mat").read_bytes()[:-10])
    code, out = run_cli(["--root", str(tmp_path / "root"), "ecg-qtdb"], capsys)
    assert code == 1
    assert "corrupt" in out and "QTDB_test.mat" in out
    assert "916f11e21679a5b61988305bbb7cd1e6df8b34f1ed4a157a7a4e295d400ef232" in out


def test_cli_named_missing_dataset_fails_without_download(empty_root, capsys):
    code, out = run_cli(["--root", str(empty_root), "shd"], capsys)
    assert code == 2 and "missing" in out and "downloading" not in out


def test_cli_rejects_unknown_names(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    data_cli.configure(parser)
    assert data_cli.main(parser.parse_args(["--root", str(tmp_path), "cifar"])) == 2
    assert "unknown dataset(s) cifar" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mnist", "ecg-qtdb", "nmnist-subset"])
def test_samples_follow_the_contract(data_root, name):
    x, y = load_dataset(name, "test", root=data_root)[0]
    assert x.dtype == torch.float32
    if name == "ecg-qtdb":
        assert y.dtype == torch.long and y.shape == (x.shape[0],)
    else:
        assert isinstance(y, int)


def test_a_data_root_that_is_set_but_not_a_folder_is_named(tmp_path, monkeypatch, capsys):
    from reprolib.cli import main
    from reprolib.data import resolve_root
    from reprolib.paths import DataRootNotSet

    monkeypatch.delenv("REPROLIB_DATA", raising=False)
    assert resolve_root(None) is None  # not set: datasets may still be in the cache
    monkeypatch.setenv("REPROLIB_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataRootNotSet, match=r"REPROLIB_DATA='.*missing' does not exist; expected the folder"):
        resolve_root(None)
    assert main(["data"]) == 2
    assert "REPROLIB_DATA=" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["data", "ecg-qtdb", "--root", str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    ({"binarize": "no"}, "binarize='no' is not allowed; expected True or False"),
    ({"cache": 1}, "cache=1 is not allowed; expected True or False"),
    ({"download": "no"}, "download='no' is not allowed; expected True or False"),
    ({"split_seed": 2.7}, "split_seed=2.7 is not allowed; expected an integer"),
    ({"n_time_bins": True}, "n_time_bins=True is not allowed; expected an integer"),
])
def test_dataset_options_of_the_wrong_type_are_named(options, message):
    from reprolib.data import load_dataset

    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset("nmnist-subset", "train", **options)


def test_a_root_that_is_a_file_fails_even_when_the_cache_holds_the_data(tmp_path):
    from reprolib.data import load_dataset
    from reprolib.paths import DataRootNotSet

    (tmp_path / "file").write_text("")
    with pytest.raises(DataRootNotSet, match="is not a directory"):
        load_dataset("mnist", "train", root=tmp_path / "file")


def test_reprolib_data_names_an_unknown_dataset_on_stderr(capsys):
    from reprolib.cli import main

    assert main(["data", "cifar"]) == 2
    captured = capsys.readouterr()
    assert "reprolib data: error: unknown dataset(s) cifar; expected one of" in captured.err and not captured.out
