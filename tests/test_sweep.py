"""Sweeps on a 2-worker LocalCluster give the records of one-by-one runs; finished runs are skipped;
a failing run is reported with its traceback while the others go on; ensure_records for notebooks."""

from __future__ import annotations

import pytest

from reprolib.config import with_overrides
from reprolib.experiments import get_configs
from reprolib.results import find_record, load_records
from reprolib.sweep import MissingRecordsWarning, ensure_records, missing_commands, run_one, run_sweep
from reprolib.training import train


def metrics_only(history):
    return [{k: v for k, v in entry.items() if not k.endswith("_time_s")} for entry in history]


def sweep_configs():
    return [with_overrides(c, {"epochs": 2, "train_subset": 128}) for c in get_configs("toy", "ci", seeds=[0, 1])]


def test_sweep_on_local_cluster_matches_sequential_runs(tmp_path):
    configs = sweep_configs()
    assert len(configs) == 4
    broken = with_overrides(configs[0], {"model_options.no_such_option": 1})
    swept = tmp_path / "swept"

    # another program (or sweep) on Dask's default HTTP port: the sweep's scheduler must pick a free one quietly
    import socket
    import warnings

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # already taken, which is the case under test as well
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = run_sweep(configs + [broken], results_dir=swept, n_workers=2, progress=False)
    finally:
        holder.close()
    assert not [w for w in caught if "already in use" in str(w.message)]
    assert {c.hash for c in report.trained} == {c.hash for c in configs}
    assert [f.config.hash for f in report.failed] == [broken.hash]
    failure = report.failed[0]
    assert "no_such_option" in failure.error and failure.traceback == ""  # a user's mistake: no traceback
    assert broken.hash in report.summary() and not report.ok

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker of a 2-worker cluster on 2 cores
    try:
        for config in configs:
            alone = train(config, results_dir=tmp_path / "alone", progress=False)
            swept_record = find_record(config, swept)
            assert metrics_only(swept_record.history) == metrics_only(alone.history)
            assert swept_record.final["test_accuracy"] == alone.final["test_accuracy"]
    finally:
        torch.set_num_threads(threads)

    again = run_sweep(configs, results_dir=swept, n_workers=2, progress=False)  # nothing left: no cluster started
    assert {c.hash for c in again.existing} == {c.hash for c in configs}
    assert again.trained == [] and again.failed == [] and again.ok


def test_corrupt_record_is_set_aside_and_run_again(tmp_path):
    config = sweep_configs()[0]
    run_one(config.to_dict(), str(tmp_path))
    path = find_record(config, tmp_path).path
    path.write_text(path.read_text()[:100])
    with pytest.warns(UserWarning, match="corrupt run record .*truncated"):
        report = run_sweep([config], results_dir=tmp_path, n_workers=1, progress=False, train_missing=False)
    assert report.missing == [config] and report.corrupt == []
    with pytest.warns(UserWarning, match="moved aside"):
        df = ensure_records([config], train_missing=True, results_dir=tmp_path, progress=False)
    assert len(df) == 1 and path.with_name(path.name + ".corrupt").exists()


def test_ensure_records_lists_missing_runs_with_the_command(tmp_path):
    configs = get_configs("toy", "ci", seeds=[0])
    with pytest.warns(MissingRecordsWarning, match="reprolib sweep toy --scale ci --seeds 0"):
        df = ensure_records(configs, train_missing=False, results_dir=tmp_path)
    assert df.empty and len(df.attrs["missing"]) == 2
    assert df.attrs["missing_commands"] == ["reprolib sweep toy --scale ci --seeds 0"]

    # one missing: trained in this process (no cluster), then everything is found
    one = [with_overrides(configs[0], {"epochs": 1})]
    assert missing_commands(one)[0].startswith("# 1 toy config(s) are not in the preset grid")
    df = ensure_records(one, train_missing=True, results_dir=tmp_path, progress=False)
    assert len(df) == 1 and df.attrs["missing"] == []
    part = missing_commands([configs[1]])[0]
    assert part == f"reprolib sweep toy --scale ci --seeds 0 --select config_hash={configs[1].hash}"
    assert len(load_records(configs + one, tmp_path)) == 1


def test_sweep_without_dask_runs_in_a_process_pool(tmp_path, monkeypatch):
    """The lent GPU machine has no Dask: the same tasks then run in spawned processes, same records."""
    import reprolib.sweep as sweep

    monkeypatch.setattr(sweep, "_has_distributed", lambda: False)
    configs = sweep_configs()[:2]
    report = run_sweep(configs, results_dir=tmp_path / "pool", n_workers=2, progress=False)
    assert {c.hash for c in report.trained} == {c.hash for c in configs} and report.ok
    reference = run_sweep(configs, results_dir=tmp_path / "dask", n_workers=2, progress=False)
    assert reference.ok
    for config in configs:
        pooled, dasked = find_record(config, tmp_path / "pool"), find_record(config, tmp_path / "dask")
        assert metrics_only(pooled.history) == metrics_only(dasked.history)


def test_threads_per_worker_respects_omp_num_threads(monkeypatch):
    """Two sweeps side by side, each told OMP_NUM_THREADS=1, must not each take every core."""
    from reprolib.sweep import threads_per_worker

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_per_worker(1) == 8 and threads_per_worker(3) == 2 and threads_per_worker(16) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads_per_worker(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")   # not a count: ignored
    assert threads_per_worker(2) == 4


def test_a_run_that_crashes_keeps_its_traceback_a_config_error_does_not(tmp_path):
    from reprolib.sweep import run_one

    config = with_overrides(get_configs("toy", "ci", seeds=[0])[0], {"epochs": 1, "device": "cpu"})
    crash = run_one(with_overrides(config, {"model_options.forward_delay_s": -1}).to_dict(), str(tmp_path))
    assert crash["status"] == "failed" and "Traceback" in crash["traceback"]  # raised in the forward pass
    mistake = run_one(with_overrides(config, {"model_options.no_such_option": 1}).to_dict(), str(tmp_path))
    assert mistake["status"] == "failed" and mistake["error"].startswith("ConfigError") and mistake["traceback"] == ""
