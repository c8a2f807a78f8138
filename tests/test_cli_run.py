"""``reprolib run`` / ``reprolib sweep``: grids, --set / --select, early errors, exit codes."""

from __future__ import annotations

import json
import re

import pytest

from reprolib.cli import main
from reprolib.experiments import get_configs


def test_run_writes_records_for_the_selected_configs(tmp_path, capsys):
    code = main(["run", "toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=1", "--results",
                 str(tmp_path), "--no-progress", "--device", "cpu"])
    assert code == 0
    records = list((tmp_path / "toy").glob("*.json"))
    assert len(records) == 1
    payload = json.loads(records[0].read_text())["payload"]
    assert payload["config"]["epochs"] == 1 and payload["config"]["model_options"]["hidden"] == 16
    assert payload["config"]["device"] == "cpu"
    out = capsys.readouterr().out
    assert "[1/1] toy/" in out and "test_accuracy" in out

    code = main(["run", "toy", "--list", "--set", "epochs=1", "--results", str(tmp_path)])
    listing = capsys.readouterr().out.splitlines()
    assert code == 0 and len(listing) == 2
    assert sum("record" in line for line in listing) == 1 and sum("missing" in line for line in listing) == 1

    # an unfinished run lists the epochs its checkpoint holds (the next run resumes there); listing creates nothing
    from reprolib.config import config_hash, with_overrides
    from reprolib.training import train

    unfinished = with_overrides(get_configs("toy", "ci", seeds=[0], hidden=[16])[0], {"epochs": 3, "device": "cpu"})
    train(unfinished, results_dir=tmp_path, progress=False, until_epoch=2)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["run", "toy", "--list", "--set", "epochs=3", "--select", "hidden=16", "--set", "device=cpu",
                 "--results", str(tmp_path)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[:3] == [config_hash(unfinished), "2/3", "ep"]
    assert re.search(r"\((val|test) \d+\.\d\d %, about \d+ min to go at \d+\.\d min/epoch\)$", line), line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_checkpoint_progress_gives_the_last_accuracy_and_the_time_left():
    from reprolib.training.cli import PACE_EPOCHS, checkpoint_progress

    def epoch(n, seconds, val=0.5):
        return {"epoch": n, "epoch_time_s": seconds - 30.0, "eval_time_s": 30.0, "val_accuracy": val, "test_accuracy": 0.4}

    # the pace is the mean of the last PACE_EPOCHS epochs only: a first slow epoch (other load) is forgotten
    history = [epoch(1, 6000.0)] + [epoch(n, 120.0) for n in range(2, PACE_EPOCHS + 2)]
    assert checkpoint_progress(history, 100) == f"val 50.00 %, about {(100 - PACE_EPOCHS - 1) * 2 / 60:.1f} h to go at 2.0 min/epoch"
    assert checkpoint_progress(history[:2], 3) == "val 50.00 %, about 51 min to go at 51.0 min/epoch"
    no_val = [{**epoch(1, 60.0), "val_accuracy": None}]
    assert checkpoint_progress(no_val, 2) == "test 40.00 %, about 1 min to go at 1.0 min/epoch"
    assert checkpoint_progress([{"epoch": 1, "test_accuracy": 0.4}], 2) == "test 40.00 %"  # no times: no estimate
    assert checkpoint_progress([epoch(3, 60.0)], 3).endswith("about 0 min to go at 1.0 min/epoch")
    assert checkpoint_progress([], 10) == ""


def test_bad_input_fails_before_training_with_exit_code_2(tmp_path, capsys):
    assert main(["run", "toy", "--set", "optimizer=lbfgs", "--results", str(tmp_path)]) == 2
    assert "'optimizer' = 'lbfgs'" in capsys.readouterr().err
    assert main(["run", "toy", "--select", "colour=red", "--results", str(tmp_path)]) == 2
    assert "'colour' is not a config key" in capsys.readouterr().err
    assert main(["run", "nope", "--results", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert main(["sweep", "toy", "--workers", "0", "--results", str(tmp_path)]) == 2
    assert "--workers 0" in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("arguments, message", [
    # a builder that refuses its options, named with them, at once: before a worker starts, and for --list too
    (["--set", "model_options.hiden=5"], "does not accept model_options = {"),
    (["--select", "hidden=abc", "--list"], "does not accept model_options = {"),
    (["--set", "encoding_options.num_steps=0", "--list"], "encoding_options.num_steps = 0 is not allowed"),
    (["--device", "tpu"], "'device' = 'tpu' is not allowed"),
    (["--set", "experiment=../elsewhere"], "--set experiment='../elsewhere' is not allowed: the preset names it"),
    (["--set", "scale=paper"], "--set scale='paper' is not allowed: use --scale"),
    (["--results", "{file}"], "is a file; expected a folder"),
    (["--results", "{file}/inner", "--list"], "is below the file"),
])
def test_bad_configs_fail_before_any_work_with_a_message_and_no_traceback(tmp_path, capsys, command, arguments, message):
    (tmp_path / "file").write_text("")
    arguments = [a.format(file=tmp_path / "file") for a in arguments]
    if "--results" not in arguments:
        arguments += ["--results", str(tmp_path / "results")]
    assert main([command, "toy", "--set", "epochs=1", "--no-progress", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_an_experiment_name_is_a_folder_name_not_a_path():
    from reprolib.config import ConfigError, with_overrides

    config = get_configs("toy", "ci", seeds=[0])[0]
    for name in ("../elsewhere", "a/b", ".hidden", "a..b"):
        with pytest.raises(ConfigError, match=f"'experiment' = '{re.escape(name)}' is not allowed"):
            with_overrides(config, {"experiment": name})
    assert with_overrides(config, {"experiment": "my-toy_2.1"}).experiment == "my-toy_2.1"


def test_a_config_error_in_a_sweep_is_reported_without_a_traceback(tmp_path):
    from reprolib.config import with_overrides
    from reprolib.sweep import run_sweep

    bad = with_overrides(get_configs("toy", "ci", seeds=[0])[0], {"model_options.hiden": 5, "device": "cpu"})
    report = run_sweep([bad], results_dir=tmp_path, n_workers=1, progress=False)
    (failure,) = report.failed
    assert "ConfigError" in failure.error and "does not accept model_options" in failure.error
    assert "Traceback" not in report.summary() and not failure.traceback


def test_a_failing_run_is_reported_the_loop_goes_on_and_exit_code_is_1(tmp_path, capsys):
    code = main(["run", "toy", "--set", "epochs=1", "--set", "model_options.forward_delay_s=-1", "--results",
                 str(tmp_path), "--no-progress"])
    assert code == 1
    assert capsys.readouterr().err.count("FAILED") == 2


def test_sweep_lists_the_grid(tmp_path, capsys):
    assert main(["sweep", "src-overfit", "--scale", "paper", "--seeds", "0", "1", "--list", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    hashes = {line.split()[0] for line in lines}
    assert hashes == {c.hash for c in get_configs("src-overfit", "paper", seeds=[0, 1])}


def test_backend_option_runs_fused_loops_without_changing_the_run_identity(tmp_path, capsys, data_root):
    """``--backend cpp`` trains the ECG network with the C++ loops; the record states it and answers for the
    same config run with the PyTorch loops (same hash, listed as recorded)."""
    from reprolib.kernels import cpu

    if not cpu.cpp_available():
        pytest.skip("no C++ compiler for the cpp backend")
    args = ["brf-ecg", "--scale", "ci", "--select", "neuron=brf", "--select", "labels=source", "--seed", "0",
            "--results", str(tmp_path)]
    assert main(["run", *args, "--backend", "cpp", "--no-progress", "--device", "cpu"]) == 0
    (record,) = (tmp_path / "brf-ecg").glob("*.json")
    payload = json.loads(record.read_text())["payload"]
    assert payload["config"]["backend"] == "cpp"
    assert record.stem == get_configs("brf-ecg", "ci", seeds=[0], neuron="brf", labels="source")[0].hash
    capsys.readouterr()
    assert main(["run", *args, "--list"]) == 0  # the default (torch) config
    assert "record" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:  # argparse rejects it before anything runs
        main(["run", *args, "--backend", "triton"])
    assert stop.value.code == 2 and "invalid choice: 'triton'" in capsys.readouterr().err


def test_time_limit_pauses_runs_with_its_own_exit_code(tmp_path, capsys):
    from reprolib.training.cli import EXIT_PAUSED

    args = ["toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=1", "--results", str(tmp_path),
            "--no-progress", "--device", "cpu"]
    assert main(["run", *args, "--time-limit", "0"]) == 2
    assert "--time-limit 0.0 is not allowed" in capsys.readouterr().err
    # a limit that has passed before the first epoch: paused, nothing written, exit code 3
    assert main(["run", *args, "--time-limit", "1e-9"]) == EXIT_PAUSED == 3
    assert "PAUSED" in capsys.readouterr().out and not list((tmp_path / "toy").glob("*.json"))
    assert main(["sweep", *args, "--time-limit", "1e-9", "--workers", "1"]) == EXIT_PAUSED
    assert "1 paused at the time limit" in capsys.readouterr().out
    assert main(["run", *args, "--time-limit", "60"]) == 0
    assert len(list((tmp_path / "toy").glob("*.json"))) == 1


def test_rerun_reproduces_a_record_epoch_by_epoch_and_flags_a_difference(tmp_path, capsys):
    import dataclasses

    from reprolib.results import read_record, write_record

    args = ["run", "toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=2", "--results",
            str(tmp_path / "committed"), "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    (path,) = (tmp_path / "committed" / "toy").glob("*.json")
    capsys.readouterr()
    # the first epoch of the run again, with the full run's schedule: identical on the same machine
    assert main(["rerun", str(path), "--epochs", "1", "--results", str(tmp_path / "again"), "--no-progress",
                 "--tolerance", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 epoch compared: identical" in out and "no record written" in out
    assert not list((tmp_path / "again" / "toy").glob("*.json"))  # a prefix is not the run's record

    # a record whose numbers do not come out of its config is caught
    record = read_record(path)
    history = [dict(h) for h in record.history]
    history[1]["test_accuracy"] += 0.05
    write_record(dataclasses.replace(record, history=history), tmp_path / "edited")
    edited = tmp_path / "edited" / "toy" / path.name
    assert main(["rerun", str(edited), "--results", str(tmp_path / "third"), "--no-progress", "--tolerance", "1"]) == 1
    assert "largest accuracy difference 5.000 pp" in capsys.readouterr().out

    assert main(["rerun", str(path), "--epochs", "3"]) == 2
    assert "--epochs 3 is not allowed" in capsys.readouterr().err
    path.write_text(path.read_text().replace('"seed"', '"seeds"', 1))
    assert main(["rerun", str(path)]) == 2
    assert "corrupt run record" in capsys.readouterr().err


def test_rerun_takes_the_record_s_thread_count_unless_told_otherwise(tmp_path, capsys):
    # CPU reductions are split by thread: only the record's thread count can give identical numbers, and a reader
    # who typed `reprolib rerun RECORD` on a machine with more cores used to get PyTorch's count instead
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["run", "toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=1", "--results",
                     str(tmp_path / "committed"), "--no-progress", "--device", "cpu"]) == 0
        (path,) = (tmp_path / "committed" / "toy").glob("*.json")
        assert "1 threads" in json.loads(path.read_text())["payload"]["provenance"]["device_name"]
        torch.set_num_threads(2)
        capsys.readouterr()
        assert main(["rerun", str(path), "--results", str(tmp_path / "a"), "--no-progress", "--tolerance", "0"]) == 0
        out = capsys.readouterr().out
        assert "1 CPU thread, as the record's run used (--threads auto: PyTorch's 2)" in out and "identical" in out
        assert torch.get_num_threads() == 2  # put back after the rerun
        main(["rerun", str(path), "--results", str(tmp_path / "b"), "--no-progress", "--threads", "auto"])
        assert "CPU thread" not in capsys.readouterr().out
        for bad in ("0", "two", "-1"):
            assert main(["rerun", str(path), "--threads", bad]) == 2
            assert f"--threads {bad!r} is not allowed" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_a_cpp_record_reruns_on_a_gpu_with_the_fused_kernels_and_cpp_on_cuda_fails_early(tmp_path, monkeypatch):
    """A reader re-running a CPU record (backend "cpp", the CPU-only C++ loops) on a GPU must not crash at its
    first forward: the rerun takes the default backend "torch"; a config asking for cpp on CUDA fails before data."""
    from types import SimpleNamespace

    import torch

    from reprolib.config import ConfigError, with_overrides
    from reprolib.experiments import get_configs
    from reprolib.training import train
    from reprolib.training.rerun import rerun_config

    config = with_overrides(get_configs("brf-ecg", "ci", seeds=[0], neuron="brf", labels="source")[0],
                            {"backend": "cpp", "device": "cpu"})
    record = SimpleNamespace(config=config)
    assert rerun_config(record).backend == "cpp"               # on the CPU, as recorded
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rerun_config(record, "cuda").backend == "torch"
    assert rerun_config(record, "cuda", "cupy").backend == "cupy"   # what the reader asks for wins
    with pytest.raises(ConfigError, match="'backend' = 'cpp' runs on CPU tensors only"):
        train(with_overrides(config, {"device": "cuda"}), results_dir=tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.json"))


def test_flush_denormal_is_set_for_the_run_only_and_recorded_without_changing_the_identity(tmp_path, monkeypatch):
    import torch

    from reprolib.config import config_hash, with_overrides
    from reprolib.experiments import get_configs
    from reprolib.training import loop

    config = get_configs("toy", "ci", seeds=[0], hidden=[16])[0]
    flushed = with_overrides(config, {"flush_denormal": True, "epochs": 1})
    assert config_hash(flushed) == config_hash(with_overrides(config, {"epochs": 1}))  # how, not what
    seen = []
    original = loop._Run.train_epoch

    def spy(self, epoch):
        seen.append(torch.tensor(1e-39) * torch.tensor(1.0))  # a subnormal float32 product
        return original(self, epoch)

    monkeypatch.setattr(loop._Run, "train_epoch", spy)
    record = loop.train(flushed, tmp_path, progress=False)
    assert seen[0].item() == 0.0  # flushed while the run trains
    assert (torch.tensor(1e-39) * torch.tensor(1.0)).item() > 0.0  # and no longer afterwards
    assert record.config.flush_denormal is True and record.provenance["flush_denormal"] is True
    with pytest.raises(ValueError, match="flush_denormal"):
        with_overrides(config, {"flush_denormal": "yes"})


def test_rerun_refuses_a_results_folder_that_already_holds_the_record(tmp_path, capsys):
    from reprolib.config import with_overrides
    from reprolib.training import train

    record = train(with_overrides(get_configs("toy", "ci", seeds=[0])[0], {"epochs": 1, "device": "cpu"}),
                   results_dir=tmp_path, progress=False)
    # train() would return that record untrained, and the rerun would compare the record with itself
    assert main(["rerun", str(record.path), "--results", str(tmp_path), "--no-progress"]) == 2
    assert "already holds a record of this config" in capsys.readouterr().err
    assert main(["rerun", str(record.path), "--device", "tpu", "--no-progress"]) == 2
    assert "'device' = 'tpu' is not allowed" in capsys.readouterr().err


def test_rerun_names_a_different_or_unknown_cpu():
    from types import SimpleNamespace

    from reprolib.results.provenance import cpu_description
    from reprolib.training.rerun import _same_setting

    here = cpu_description()
    assert here["model"] and here["torch_capability"]

    def record(cpu):
        prov = {"device": "cpu", "device_name": "cpu (x86_64, 1 threads)", "git_commit": "abc", **(
            {"cpu": cpu} if cpu is not None else {})}
        return SimpleNamespace(provenance=prov, config=SimpleNamespace(backend="cpp"))

    assert _same_setting(record(here), record(here)) == []
    other = {"model": "Some Other CPU", "torch_capability": "AVX2"}
    (note,) = _same_setting(record(other), record(here))
    assert note.startswith("CPU: recorded Some Other CPU (AVX2) / rerun ")
    (note,) = _same_setting(record(None), record(here))
    assert "does not name its CPU" in note
    # the one-line form that every table uses, from the records' cpu dicts
    from reprolib.results.provenance import cpu_text

    assert cpu_text(other) == "Some Other CPU (AVX2)" and cpu_text({"model": "X"}) == "X"
    assert cpu_text(None) is None and cpu_text({}) is None and cpu_text({"torch_capability": "AVX2"}) is None


def test_rerun_compares_the_sessions_that_trained_the_compared_epochs():
    """A resumed record's own provenance is its last session's: its first epochs may come from other code."""
    from types import SimpleNamespace

    from reprolib.results.provenance import cpu_description
    from reprolib.training.rerun import _same_setting, compare_runs, recorded_threads, sessions_behind

    here = {"device": "cpu", "device_name": "cpu (x86_64, 1 threads)", "git_commit": "c" * 40,
            "reprolib_source_sha256": "new", "cpu": cpu_description()}
    first = {**here, "git_commit": "a" * 40, "reprolib_source_sha256": "old", "until_epoch": 3,
             "device_name": "cpu (x86_64, 2 threads)"}
    second = {**here, "until_epoch": 6, "backend": "torch"}  # trained epochs 4-6 with another backend
    history = [{"epoch": e, "test_accuracy": 0.5} for e in range(0, 11)]
    resumed = SimpleNamespace(provenance={**here, "earlier_sessions": [first, second]}, history=history,
                              config=SimpleNamespace(backend="cpp", epochs=10, eval_before_training=True))
    rerun = SimpleNamespace(provenance=here, config=SimpleNamespace(backend="cpp"), history=history[:2])

    assert [span for span, _, _ in sessions_behind(resumed)] == ["epochs 0-3", "epochs 4-6", "epochs 7-10"]
    assert [span for span, _, _ in sessions_behind(resumed, 1)] == ["epochs 0-3"]
    assert (recorded_threads(resumed), recorded_threads(resumed, 1)) == (1, 2)  # the spot check needs the first's
    code = "code: the package's files differ (source digest)"
    device = "device: recorded cpu (x86_64, 2 threads) / rerun cpu (x86_64, 1 threads)"
    assert _same_setting(resumed, rerun, 1) == [f"epochs 0-3 of the record: {device}",
                                                f"epochs 0-3 of the record: {code}"]
    assert _same_setting(resumed, rerun, 5)[2:] == ["epochs 4-6 of the record: backend: recorded torch / rerun cpp"]
    # compare_runs looks only at the sessions behind the epochs both runs have (here 0 and 1)
    assert compare_runs(resumed, rerun)[1]["settings_differ"] == _same_setting(resumed, rerun, 1)
    # the last session is compared too, and named by its span
    resumed.provenance["reprolib_source_sha256"] = "newest"
    assert _same_setting(resumed, rerun, 8)[3:] == [f"epochs 7-10 of the record: {code}"]
    resumed.provenance["reprolib_source_sha256"] = "new"
    assert _same_setting(resumed, rerun, 8)[3:] == []
    # a record that stopped early ends its last span where its history ends
    resumed.history = history[:9]
    assert sessions_behind(resumed)[-1][0] == "epochs 7-8"
    # runs without an evaluation before training start at epoch 1
    resumed.history = history[1:]
    assert [span for span, _, _ in sessions_behind(resumed, 1)] == ["epochs 1-3"]
    resumed.history = history
    # an earlier session recorded before sessions kept their CPU and source digest
    old = {"git_commit": "a" * 40, "device_name": here["device_name"], "backend": "cpp", "until_epoch": 3}
    resumed.provenance["earlier_sessions"] = [old]
    notes = _same_setting(resumed, rerun, 2)
    assert notes[0] == "epochs 0-3 of the record: code: recorded commit aaaaaaaa / rerun cccccccc"
    assert "does not name the CPU of this session" in notes[1] and len(notes) == 2
    # a session that reached no new epoch (resumed, then stopped before finishing one) trained nothing of the record
    resumed.provenance["earlier_sessions"] = [first, {**here, "until_epoch": 3}]
    assert [span for span, _, _ in sessions_behind(resumed)] == ["epochs 0-3", "epochs 4-10"]


def test_list_marks_a_truncated_record_corrupt_and_bad_api_arguments_are_named(tmp_path, capsys):
    from reprolib.config import ConfigError, with_overrides
    from reprolib.training import train

    config = with_overrides(get_configs("toy", "ci", seeds=[0], hidden=[16])[0], {"epochs": 1, "device": "cpu"})
    record = train(config, results_dir=tmp_path, progress=False)
    record.path.write_text(record.path.read_text()[:100])
    assert main(["run", "toy", "--select", "hidden=16", "--set", "epochs=1", "--set", "device=cpu", "--list",
                 "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split()[1] == "corrupt"

    assert main(["run", "toy", "--time-limit", "1e308", "--results", str(tmp_path)]) == 2
    assert "--time-limit 1e+308 is not allowed" in capsys.readouterr().err
    for seeds in (1.5, "abc", [0, -1]):
        with pytest.raises(ConfigError, match="seeds = .* is not allowed"):
            get_configs("toy", "ci", seeds=seeds)
    with pytest.raises(ValueError, match=r"experiment \['toy'\] is not allowed; expected a preset name"):
        get_configs(["toy"])
    with pytest.raises(ConfigError, match=r"'eval_splits' = \[\] is not allowed; expected at least one split"):
        with_overrides(config, {"eval_splits": []})


def test_sweep_names_a_bad_or_unreachable_scheduler(tmp_path, capsys, monkeypatch):
    import distributed

    assert main(["sweep", "toy", "--scheduler", "notanaddress", "--results", str(tmp_path)]) == 2
    assert "--scheduler 'notanaddress' is not allowed" in capsys.readouterr().err

    def unreachable(address, *args, **kwargs):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", unreachable)
    assert main(["sweep", "toy", "--scheduler", "tcp://127.0.0.1:1", "--results", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "scheduler 'tcp://127.0.0.1:1' cannot be reached: OSError" in err and "Traceback" not in err
    assert not (tmp_path / "toy").exists()


def test_a_gpu_device_is_listed_on_a_cpu_machine_and_a_builder_bug_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    import sys
    import types

    import torch

    from reprolib.config import with_overrides
    from reprolib.sweep import run_sweep

    # the device's form is checked everywhere, whether it exists only where the run trains (sweeps submit from
    # machines without a GPU)
    assert main(["run", "toy", "--device", "cuda", "--list", "--results", str(tmp_path)]) == 0
    assert "missing" in capsys.readouterr().out

    def buggy_net(in_features, classes, hidden):  # a fork's model with a bug inside: not a user's mistake
        return torch.nn.Linear(in_features, hidden) + 1

    module = types.ModuleType("buggy_models")
    module.buggy_net = buggy_net
    monkeypatch.setitem(sys.modules, "buggy_models", module)
    config = with_overrides(get_configs("toy", "ci", seeds=[0])[0], {"model": "buggy_models:buggy_net", "device": "cpu"})
    (failure,) = run_sweep([config], results_dir=tmp_path, n_workers=1, progress=False).failed
    assert "does not accept model_options" in failure.error and "Traceback" in failure.traceback
    assert "buggy_net" in failure.traceback


def test_numpy_scalars_and_ipv6_scheduler_addresses_are_accepted():
    import argparse

    import numpy as np
    import torch

    from reprolib.data import load_dataset
    from reprolib.encoding import get_encoder
    from reprolib.neurons import Leaky
    from reprolib.sweep_cli import _check_workers

    assert float(Leaky(beta=np.float32(0.5)).beta) == 0.5 and float(Leaky(beta=torch.tensor(0.25)).beta) == 0.25
    assert get_encoder("rate", num_steps=4, gain=np.float32(0.25), flatten=np.bool_(True)).gain == 0.25
    with pytest.raises(ValueError, match="expected an integer"):  # the type check runs before any data is read
        load_dataset("nmnist-subset", "train", split_seed=2.5)
    _check_workers(argparse.Namespace(scheduler="tcp://[::1]:8786", workers=None, workers_per_gpu=1))
    _check_workers(argparse.Namespace(scheduler="10.0.0.5:8786", workers=None, workers_per_gpu=1))
    assert get_configs("toy", "ci", seeds={3}) and get_configs("toy", "ci", seeds=(s for s in [1]))


def test_a_published_rerun_is_placed_among_the_committed_seeds_of_its_config(tmp_path, monkeypatch, capsys):
    """`reprolib rerun RECORD --results results/reruns/LABEL`, the command the reproduction page names, writes a
    whole re-run where `published_reruns` finds it; the table compares it with its record and the other seeds."""
    import dataclasses
    import math
    import statistics

    from reprolib import notebook as nb
    from reprolib.results import read_record, write_record
    from reprolib.training.rerun import published_reruns

    for seed in "012":
        assert main(["run", "toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=2", "--seed", seed,
                     "--results", str(tmp_path), "--no-progress", "--device", "cpu"]) == 0
    # a run of another config in the same folder is no seed of the re-run's config
    assert main(["run", "toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=1", "--seed", "0",
                 "--results", str(tmp_path), "--no-progress", "--device", "cpu"]) == 0
    empty = published_reruns(tmp_path, "ci")
    assert empty.empty and "z vs seeds" in empty.columns  # nothing re-run yet, and still the table's columns
    committed = {read_record(p).config.seed: read_record(p) for p in (tmp_path / "toy").glob("*.json")
                 if read_record(p).config.epochs == 2}
    assert sorted(committed) == [0, 1, 2]
    assert main(["rerun", str(committed[0].path), "--results", str(tmp_path / "reruns" / "here"),
                 "--no-progress"]) == 0
    (row,) = published_reruns(tmp_path, "ci").to_dict("records")
    seeds = sorted(100 * r.final["test_accuracy"] for r in committed.values())
    assert (row["label"], row["experiment"], row["config_hash"], row["seed"]) == ("here", "toy", committed[0].hash, 0)
    assert row["identical"] and row["difference (pp)"] == 0 and row["largest epoch diff (pp)"] == 0
    assert (row["seeds"], sorted(row["seed accuracies (%)"])) == (3, seeds)
    assert (row["seeds' min (%)"], row["seeds' max (%)"]) == (seeds[0], seeds[-1]) and row["inside seeds' range"]
    spread = statistics.stdev(seeds)
    assert math.isclose(row["seeds' std (pp)"], spread)
    assert spread > 0  # the three toy seeds end apart
    recorded = 100 * committed[0].final["test_accuracy"]
    assert math.isclose(row["z vs seeds"], (recorded - statistics.fmean(seeds)) / spread)
    assert row["settings differ"] == "" and row["note"] == ""
    assert row["rerun on"] == row["recorded on"] and row["rerun on"].startswith("cpu (") and "threads), " in row["rerun on"]
    assert row["recorded code"] == str(committed[0].provenance["git_commit"])[:8]
    assert published_reruns(tmp_path, "paper").empty  # another scale's re-runs are not this page's

    # a re-run that ends below every committed seed is outside their range, and its difference says by how much
    again = read_record(tmp_path / "reruns" / "here" / "toy" / committed[0].path.name)
    worse = seeds[0] / 100 - 0.05
    assert worse > 0  # the toy task's runs all learn something
    write_record(dataclasses.replace(again, final={**again.final, "test_accuracy": worse}),
                 tmp_path / "reruns" / "elsewhere")
    rows = published_reruns(tmp_path, "ci").set_index("label")
    assert not rows.loc["elsewhere", "inside seeds' range"] and rows.loc["here", "inside seeds' range"]
    assert math.isclose(rows.loc["elsewhere", "difference (pp)"], 100 * worse - recorded)
    assert math.isclose(rows.loc["elsewhere", "z vs seeds"], (100 * worse - statistics.fmean(seeds)) / spread)

    # a committed record that does not read is left out with a warning; a re-run without a final accuracy is named
    (tmp_path / "toy" / "0000000000000000.json").write_text("{}")
    with pytest.warns(UserWarning, match="left out of the re-runs' comparison"):
        assert published_reruns(tmp_path, "ci").set_index("label").loc["here", "seeds"] == 3
    (tmp_path / "toy" / "0000000000000000.json").unlink()
    final = {k: v for k, v in again.final.items() if k != "test_accuracy"}
    write_record(dataclasses.replace(again, final=final), tmp_path / "reruns" / "broken")
    with pytest.raises(ValueError, match=r"broken.*final test_accuracy = None; expected a finite number"):
        published_reruns(tmp_path, "ci")
    (tmp_path / "reruns" / "broken" / "toy" / again.path.name).unlink()

    # the figure and table render; a re-run whose record is gone is shown without a recorded number
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    nb.show_published_reruns("ci", tmp_path)
    committed[0].path.unlink()
    rows = published_reruns(tmp_path, "ci").set_index("label")
    assert math.isnan(rows.loc["here", "recorded (%)"]) and rows.loc["here", "seeds"] == 2
    committed[2].path.unlink()  # one committed run left: no spread for a re-run to fall inside
    assert published_reruns(tmp_path, "ci").set_index("label").loc["here", "inside seeds' range"] is None
    assert "no committed record toy/" in rows.loc["here", "note"]
    nb.show_published_reruns("ci", tmp_path)
    shown = []
    monkeypatch.setattr(nb.status, "show_markdown", shown.append)
    nb.show_published_reruns("paper", tmp_path)
    assert "No whole re-run is committed at scale `paper`" in shown[-1]


def test_epoch_line_names_the_run_and_reads_the_history_entry():
    from reprolib.training.loop import epoch_line

    entry = {"epoch": 7, "lr": 1e-3, "train_loss": 0.051361, "train_accuracy": 0.98943, "val_loss": 0.57652,
             "val_accuracy": 0.9657, "test_accuracy": 0.9669, "test_activity": 0.34066, "epoch_time_s": 87.9,
             "eval_time_s": 16.8}
    assert epoch_line("exp/abc", entry, 100) == (
        "exp/abc epoch 7/100, train loss 0.05136, val loss 0.5765, train 98.94 %, val 96.57 %, test 96.69 %, "
        "test activity 0.3407 (88 s + 17 s eval)")
    short = {"epoch": 1, "epoch_time_s": 0.26, "eval_time_s": 9.96}
    assert epoch_line("r", short, 1) == "r epoch 1/1 (0.3 s + 10 s eval)"
    # a history without a validation split, activity or timings (e.g. an epoch-0 evaluation)
    assert epoch_line("exp/abc", {"epoch": 0, "test_accuracy": 0.1}, 5) == "exp/abc epoch 0/5, test 10.00 %"


def test_log_epochs_prints_a_line_per_epoch_and_on_resuming(tmp_path, capfd, monkeypatch):
    import reprolib.sweep as sweep
    from reprolib.sweep import run_sweep
    from reprolib.training import train
    from reprolib.config import config_hash

    args = ["toy", "--scale", "ci", "--select", "hidden=16", "--set", "epochs=2", "--results", str(tmp_path),
            "--no-progress", "--device", "cpu"]
    (config,) = get_configs("toy", "ci", hidden=16, epochs=2, device="cpu")
    name = f"toy/{config_hash(config)}"
    train(config, results_dir=tmp_path, progress=False, until_epoch=1)  # the first epoch, checkpoint kept
    assert capfd.readouterr().out == ""  # without log_epochs a run prints nothing
    assert main(["run", *args, "--log-epochs"]) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith(name)]
    assert lines[0] == f"{name} resumed from its checkpoint after epoch 1/2"
    assert len(lines) == 2 and re.fullmatch(rf"{name} epoch 2/2, train loss \S+, val loss \S+, train \S+ %, val \S+ %, "
                                            r"test \S+ %, test activity \S+ \(\d+\.\d s \+ \d+\.\d s eval\)",
                                            lines[1])
    # a sweep's workers print theirs too (spawned processes: read from the file descriptor), on Dask where it is
    # installed and in the process pool that runs where it is not (the lent GPU machine)
    assert main(["sweep", *args, "--set", "epochs=1", "--log-epochs", "--workers", "1"]) == 0
    assert re.search(r"^toy/[0-9a-f]{16} epoch 1/1, ", capfd.readouterr().out, re.MULTILINE)
    monkeypatch.setattr(sweep, "_has_distributed", lambda: False)
    (pooled,) = get_configs("toy", "ci", seeds=[1], hidden=16, epochs=1, device="cpu")
    assert run_sweep([pooled], results_dir=tmp_path, n_workers=1, progress=True, log_epochs=True).ok
    out = capfd.readouterr()
    assert f"toy/{config_hash(pooled)} epoch 1/1, " in out.out and "sweep:" not in out.err  # no bar beside the lines
    with pytest.raises(ValueError, match="log_epochs = 'yes' is not allowed"):
        train(config, results_dir=tmp_path, log_epochs="yes")
    with pytest.raises(ValueError, match="log_epochs = 1 is not allowed"):
        run_sweep([config], results_dir=tmp_path, log_epochs=1)
