"""Run records: atomic checksummed JSON, corrupt files reported by path, DataFrames and summaries."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from reprolib.config import with_overrides
from reprolib.experiments import get_configs
from reprolib.results import (
    CorruptRecordError,
    Record,
    RecordVersionError,
    find_record,
    history_frame,
    load_records,
    read_record,
    record_path,
    summarize,
    write_record,
)


def fake_record(seed: int, hidden: int, accuracy: float) -> Record:
    config = with_overrides(get_configs("toy", "ci", seeds=[seed], hidden=[hidden])[0], {})
    history = [{"epoch": 1, "train_loss": 0.5, "test_accuracy": accuracy / 2},
               {"epoch": 2, "train_loss": 0.25, "test_accuracy": accuracy}]
    final = {"selected_epoch": 2, "test_accuracy": accuracy, "test_loss": 1 - accuracy}
    provenance = {"git_commit": "abc", "git_dirty": False, "packages": {"torch": "2.x"}, "scale": "ci"}
    return Record(config, history, final, provenance)


def test_round_trip_and_location(tmp_path):
    record = fake_record(0, 16, 0.75)
    path = write_record(record, tmp_path)
    assert path == tmp_path / "toy" / f"{record.hash}.json" == record_path(record.config, tmp_path)
    loaded = read_record(path)
    assert loaded == record and loaded.path == path
    assert find_record(record.config, tmp_path) == record
    assert find_record(get_configs("toy", "ci", seeds=[5])[0], tmp_path) is None
    assert not list(path.parent.glob("*.tmp"))  # no temporary file left behind


def test_truncated_or_edited_record_is_reported(tmp_path):
    record = fake_record(0, 16, 0.75)
    path = write_record(record, tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptRecordError) as info:
        find_record(record.config, tmp_path)
    assert str(path) in str(info.value) and "truncated" in str(info.value)

    document = json.loads(text)
    document["payload"]["final"]["test_accuracy"] = 0.99  # an edit without a new checksum
    path.write_text(json.dumps(document))
    with pytest.raises(CorruptRecordError, match="checksum mismatch"):
        read_record(path)
    with pytest.raises(CorruptRecordError, match=str(path)):
        load_records("toy", tmp_path)
    with pytest.warns(UserWarning, match="corrupt run record"):
        assert load_records("toy", tmp_path, on_corrupt="warn").empty

    renamed = path.with_name("0123456789abcdef.json")  # valid content under another config's name
    renamed.write_text(text)
    with pytest.raises(CorruptRecordError, match="does not match"):
        read_record(renamed)


def test_a_record_of_another_version_is_named_kept_and_not_called_corrupt(tmp_path):
    from reprolib.sweep import run_sweep

    record = fake_record(0, 16, 0.75)
    path = write_record(record, tmp_path)
    document = json.loads(path.read_text())
    document["version"] = 2  # a newer reprolib's record: intact
    path.write_text(json.dumps(document))
    with pytest.raises(RecordVersionError, match="record version 2, and this reprolib reads version 1: it is not corrupt") as info:
        read_record(path)
    assert "delete" not in str(info.value)
    # a sweep keeps it: not moved aside, not trained over
    with pytest.warns(UserWarning, match="not corrupt"):
        report = run_sweep([record.config], results_dir=tmp_path, n_workers=1, progress=False)
    assert report.existing == [record.config] and not report.corrupt and json.loads(path.read_text())["version"] == 2
    # nor do a notebook's ensure_records (it raises with the message) and --list (status v2)
    from reprolib.cli import main
    from reprolib.sweep import ensure_records

    with pytest.raises(RecordVersionError):
        ensure_records([record.config], results_dir=tmp_path, train_missing=True, progress=False)
    assert json.loads(path.read_text())["version"] == 2 and not list(tmp_path.rglob("*.corrupt"))
    assert main(["run", "toy", "--select", "hidden=16", "--seed", "0", "--list", "--results", str(tmp_path)]) == 0


def test_load_records_names_an_unknown_experiment_or_a_bad_argument(tmp_path):
    write_record(fake_record(0, 16, 0.75), tmp_path)
    assert len(load_records("toy", tmp_path)) == 1
    assert load_records("src-depth", tmp_path).empty  # a preset without records yet: an empty table
    with pytest.raises(ValueError, match="unknown experiment 'tyo': no preset of that name and no folder"):
        load_records("tyo", tmp_path)
    with pytest.raises(ValueError, match=r"what = \['toy'\] is not allowed"):
        load_records(["toy"], tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file; expected the folder of the run records"):
        load_records("toy", tmp_path / "file")


def test_frame_summary_and_history(tmp_path):
    accuracies = {(0, 16): 0.70, (1, 16): 0.80, (0, 32): 0.90, (1, 32): 0.94}
    for (seed, hidden), accuracy in accuracies.items():
        write_record(fake_record(seed, hidden, accuracy), tmp_path)
    df = load_records("toy", tmp_path)
    assert len(df) == 4
    for column in ("config_hash", "seed", "model_options.hidden", "test_accuracy", "selected_epoch",
                   "provenance.git_commit", "provenance.packages.torch", "history", "eval_splits"):
        assert column in df.columns, column
    assert isinstance(df["eval_splits"].iloc[0], tuple)  # lists become tuples: hashable for groupby

    summary = summarize(df, by=["model_options.hidden"], metrics=["test_accuracy"])
    assert list(summary.index) == [16, 32]
    assert summary.loc[16, "test_accuracy_mean"] == pytest.approx(0.75)
    assert summary.loc[16, "test_accuracy_std"] == pytest.approx(math.sqrt(0.005))  # sample std of 0.70, 0.80
    assert summary.loc[32, "n_runs"] == 2
    with pytest.raises(ValueError, match="'colour'"):
        summarize(df, by=["colour"])

    curves = history_frame(df)
    assert len(curves) == 8 and {"epoch", "train_loss", "seed", "model_options.hidden"} <= set(curves.columns)

    # by configs: found ones are rows, the others listed in attrs["missing"]
    configs = get_configs("toy", "ci", seeds=[0, 1, 2])
    by_configs = load_records(configs, tmp_path)
    assert len(by_configs) == 4 and len(by_configs.attrs["missing"]) == 2
    assert isinstance(by_configs, pd.DataFrame)


def test_derived_experiment_name_points_to_its_configs(tmp_path):
    with pytest.raises(ValueError, match=r"shares the records of 'src-table2'.*get_configs"):
        load_records("src-overfit", tmp_path)
    assert load_records("src-table2", tmp_path).empty


def test_provenance_names_the_code_without_git(tmp_path, monkeypatch):
    import shutil

    from reprolib.paths import REPO_ROOT
    from reprolib.results import provenance

    # a copy of the tree without .git (a lent machine): the commit comes from the caller, marked as such
    monkeypatch.setattr(provenance, "_git", lambda *args: None)
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    assert provenance.git_state() == {"git_commit": None, "git_dirty": None}
    monkeypatch.setenv(provenance.COMMIT_ENV, "f199bda0")
    monkeypatch.setenv(provenance.DIRTY_ENV, "0")
    state = provenance.git_state()
    assert state["git_commit"] == "f199bda0" and state["git_dirty"] is False
    assert provenance.COMMIT_ENV in state["git_commit_from"]

    # and the source digest checks that statement: the same files give the same digest, one byte changes it
    copy = tmp_path / "reprolib"
    shutil.copytree(REPO_ROOT / "reprolib", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert provenance.source_digest(str(copy)) == provenance.source_digest()
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.py").write_text("cache")  # caches do not count
    assert provenance.source_digest.__wrapped__(str(copy)) == provenance.source_digest()
    target = copy / "neurons" / "integrate_fire.py"
    target.write_text(target.read_text() + "\n")
    assert provenance.source_digest.__wrapped__(str(copy)) != provenance.source_digest()
    assert len(provenance.collect("cpu", "ci")["reprolib_source_sha256"]) == 64
