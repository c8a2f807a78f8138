"""The input-shift probe (reprolib probe-shift) and the N-MNIST subset's train / test position offset."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from reprolib.config import ConfigError
from reprolib.experiments import get_configs
from reprolib.training import train
from reprolib.training.shift_probe import _parse_shifts, probe_records, shift_frames


def test_shift_frames_moves_content_and_fills_with_zeros():
    x = torch.arange(2 * 4 * 5, dtype=torch.float32).view(2, 4, 5) + 1
    down = shift_frames(x, dy=1)
    assert torch.equal(down[:, 1:], x[:, :-1]) and (down[:, 0] == 0).all()
    up_left = shift_frames(x, dy=-2, dx=-1)
    assert torch.equal(up_left[:, :2, :4], x[:, 2:, 1:]) and (up_left[:, 2:] == 0).all() and (up_left[:, :, 4] == 0).all()
    assert torch.equal(shift_frames(x), x)
    for bad in (dict(dy=4), dict(dx=-5), dict(dy=1.0), dict(dy=True)):
        with pytest.raises(ValueError, match="not allowed"):
            shift_frames(x, **bad)
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W\]"):
        shift_frames(torch.zeros(3))


def test_parse_shifts_reads_rows_and_row_column_pairs():
    assert _parse_shifts("0,-1, 2") == [(0, 0), (-1, 0), (2, 0)]
    assert _parse_shifts("0:1,-1:-2") == [(0, 1), (-1, -2)]

    with pytest.raises(ConfigError, match="'up' is not a shift"):
        _parse_shifts("0,up")


def test_probe_of_a_trained_run_reproduces_its_recorded_accuracy_unshifted(data_root, results_tmp):
    config = get_configs("src-table2", "ci", seeds=[0], input="nmnist", layers=1, model="lif")[0]
    record = train(config, results_dir=results_tmp, progress=False)
    out = probe_records([record.path], [(0, 0), (1, 0)], results_tmp / "probe.json", results_dir=results_tmp,
                        progress=False)
    payload = json.loads(out.read_text())["payload"]
    rows = {(r["split"], r["dy"]): r for r in payload["rows"]}
    assert set(rows) == {("val", 0), ("val", 1), ("test", 0), ("test", 1)}
    # unshifted, the probe is the training loop's own evaluation of the selected weights
    assert rows["val", 0]["accuracy"] == record.final["val_accuracy"]  # the same pass: equal, not close
    assert rows["test", 0]["accuracy"] == record.final["test_accuracy"]
    assert rows["test", 0]["samples"] == min(config.test_subset, 100)  # the subset has 100 test recordings
    assert payload["experiment"] == "src-table2" and payload["scale"] == "ci"
    assert payload["provenance"]["git_commit"] is not None and payload["provenance"]["cpu"]["model"]
    assert len(rows["test", 1]["weights_sha256"]) == 64 and rows["test", 1]["selected_epoch"] == config.epochs
    # shifts that leave nothing of a 34 x 34 frame, and an output that is a folder, fail before any evaluation
    with pytest.raises(ConfigError, match=r"--shifts 34:0 leaves nothing of a 34 x 34 frame"):
        probe_records([record.path], [(0, 0), (34, 0)], results_tmp / "again.json", results_dir=results_tmp,
                      progress=False)
    with pytest.raises(ValueError, match="is a folder; expected a file name"):
        probe_records([record.path], [(0, 0)], results_tmp, results_dir=results_tmp, progress=False)
    assert not (results_tmp / "again.json").exists()


def test_probe_refuses_records_whose_inputs_are_not_frames(results_tmp, monkeypatch):
    from reprolib.training import shift_probe

    config = get_configs("toy", "ci", seeds=[0])[0]  # [B, 16] feature vectors: a 'shift' would move samples
    record = train(config, results_dir=results_tmp, progress=False)
    monkeypatch.setattr(shift_probe, "shifted_accuracy", lambda *a, **k: pytest.fail("evaluated a non-frame run"))
    with pytest.raises(ConfigError, match="probe-shift moves image frames; the records' dataset"):
        probe_records([record.path], [(0, 0), (1, 0)], results_tmp / "probe.json", results_dir=results_tmp,
                      progress=False)
    assert not (results_tmp / "probe.json").exists()


def test_probe_refuses_runs_without_kept_weights(data_root, results_tmp):
    config = get_configs("src-table2", "ci", seeds=[0], input="nmnist", layers=1, model="lif")[0]
    record = train(config, results_dir=results_tmp, progress=False)
    (results_tmp / "src-table2" / ".ckpt" / record.hash / "selected.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no kept weights for 1 record"):
        probe_records([record.path], [(0, 0)], results_tmp / "probe.json", results_dir=results_tmp, progress=False)
    assert not (results_tmp / "probe.json").exists()
    with pytest.raises(FileNotFoundError, match="none of the 1 records has kept weights"):
        probe_records([record.path], [(0, 0)], results_tmp / "probe.json", results_dir=results_tmp, progress=False,
                      skip_missing=True)
    # with a second run that kept its weights, --skip-missing probes it and names the one it skipped
    other = train(get_configs("src-table2", "ci", seeds=[1], input="nmnist", layers=1, model="lif")[0],
                  results_dir=results_tmp, progress=False)
    out = probe_records([record.path, other.path], [(0, 0)], results_tmp / "probe.json", results_dir=results_tmp,
                        progress=False, skip_missing=True)
    payload = json.loads(out.read_text())["payload"]
    assert {r["record"] for r in payload["rows"]} == {other.hash}
    assert payload["skipped_without_weights"] == [record.hash]
    assert {r["record_end_time"] for r in payload["rows"]} == {other.provenance["end_time"]}  # which run of it
    # refreshed where neither run's weights are kept but a third's are: the other's rows stay, at the same shifts only
    third = train(get_configs("src-table2", "ci", seeds=[2], input="nmnist", layers=1, model="lif")[0],
                  results_dir=results_tmp, progress=False)
    shutil.rmtree(results_tmp / "src-table2" / ".ckpt" / other.hash)
    with pytest.raises(ValueError, match=r"holds a probe at shifts \[\(0, 0\)\], not \[\(0, 0\), \(1, 0\)\]"):
        probe_records([record.path, other.path, third.path], [(0, 0), (1, 0)], out, results_dir=results_tmp,
                      progress=False, skip_missing=True)
    assert json.loads(out.read_text())["payload"] == payload  # nothing written
    probe_records([record.path, other.path, third.path], [(0, 0)], out, results_dir=results_tmp, progress=False,
                  skip_missing=True)
    refreshed = json.loads(out.read_text())["payload"]
    assert [r for r in refreshed["rows"] if r["record"] == other.hash] == payload["rows"]
    assert {r["record"] for r in refreshed["rows"]} == {other.hash, third.hash}
    assert refreshed["carried"] == {other.hash: payload["provenance"]["end_time"]}
    assert refreshed["skipped_without_weights"] == [record.hash]


def test_probe_refuses_stale_or_unreadable_weights_before_evaluating(data_root, results_tmp, monkeypatch):
    from reprolib.training import shift_probe

    good, record = (train(get_configs("src-table2", "ci", seeds=[seed], input="nmnist", layers=1, model="lif")[0],
                          results_dir=results_tmp, progress=False) for seed in (0, 1))
    kept = results_tmp / "src-table2" / ".ckpt" / record.hash / "selected.pt"
    # the good run comes first: a check made only when its turn comes would evaluate it before failing
    monkeypatch.setattr(shift_probe, "shifted_accuracy", lambda *a, **k: pytest.fail("evaluated before checking"))
    state = torch.load(kept, weights_only=True)
    torch.save({**state, "epoch": state["epoch"] + 3}, kept)  # a checkpoint of another run of the same config
    with pytest.raises(ValueError, match=f"holds the weights of epoch {state['epoch'] + 3}, but .* selected epoch"):
        probe_records([good.path, record.path], [(0, 0)], results_tmp / "probe.json", results_dir=results_tmp,
                      progress=False)
    kept.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable checkpoint of selected weights"):
        probe_records([good.path, record.path], [(0, 0)], results_tmp / "probe.json", results_dir=results_tmp,
                      progress=False, skip_missing=True)  # an unreadable file is an error, not a missing one
    assert not (results_tmp / "probe.json").exists()


def test_nmnist_subset_test_recordings_sit_higher_than_training_ones(data_root):
    from reprolib.data.nmnist import centroid_offsets

    table = centroid_offsets(data_root)
    overall = table.loc["all (class-weighted)"]
    assert (table["offset y"].drop("all (class-weighted)") < 0).all()   # every class, not a class-mix effect
    assert overall["offset y"] < -0.5 and abs(overall["offset x"]) < 0.2
    assert abs(overall["MNIST offset y"]) < 0.1                          # the digits themselves are not offset
    profiles = table.attrs["row_profiles"]
    assert set(profiles) == {"train", "test"} and all(abs(p.sum() - 1) < 1e-9 and len(p) == 34 for p in profiles.values())
    rows = range(34)
    mean_row = {k: sum(r * f for r, f in zip(rows, p)) for k, p in profiles.items()}
    assert mean_row["test"] - mean_row["train"] == pytest.approx(overall["offset y"], abs=1e-6)


def test_rows_without_the_record_end_time_are_its_runs_only_where_the_unmoved_test_accuracy_is_recorded():
    from types import SimpleNamespace

    from reprolib.training.shift_probe import _unmoved_as_recorded

    record = SimpleNamespace(final={"test_accuracy": 0.9712})
    rows = [{"split": "test", "dy": 0, "dx": 0, "accuracy": 0.9712},
            {"split": "test", "dy": 1, "dx": 0, "accuracy": 0.9},
            {"split": "val", "dy": 0, "dx": 0, "accuracy": 0.95}]
    assert _unmoved_as_recorded(rows, record)
    assert not _unmoved_as_recorded(rows, SimpleNamespace(final={"test_accuracy": 0.9713}))  # another run's weights
    assert not _unmoved_as_recorded(rows[1:], record)  # nothing to compare: not kept
