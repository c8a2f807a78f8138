"""The training loop: determinism, losses, schedules, hooks, NaN guard, early failures, kill-and-resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reprolib.config import ConfigError, ExperimentConfig, with_overrides
from reprolib.experiments import get_configs
from reprolib.training import NonFiniteLossError, load_selected_model, train
from reprolib.training import toy
from reprolib.training.checkpoint import STATE_FILE, checkpoint_dir
from reprolib.training.losses import get_loss
from reprolib.training.schedules import linear_decay_factor, warmup_cosine_factor

REPO = Path(__file__).resolve().parent.parent


def toy_config(**overrides) -> ExperimentConfig:
    config = get_configs("toy", "ci", seeds=[0], hidden=[16])[0]
    return with_overrides(config, {"device": "cpu", **overrides}) if overrides else with_overrides(config, {"device": "cpu"})


def metrics_only(history: list[dict]) -> list[dict]:
    """History without wall-clock timings (the only values allowed to differ between identical runs)."""
    return [{k: v for k, v in entry.items() if not k.endswith("_time_s")} for entry in history]


def test_two_runs_give_identical_metrics(tmp_path):
    config = toy_config(**{"model_options.dropout": 0.2})  # dropout draws from the global torch RNG
    first = train(config, results_dir=tmp_path / "a", progress=False)
    second = train(config, results_dir=tmp_path / "b", progress=False)
    assert metrics_only(first.history) == metrics_only(second.history)
    assert first.final["test_accuracy"] == second.final["test_accuracy"]
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"]  # it learns
    other_seed = train(with_overrides(config, {"seed": 1}), results_dir=tmp_path / "c", progress=False)
    assert metrics_only(other_seed.history) != metrics_only(first.history)


def test_progress_bars_do_not_change_the_numbers(tmp_path, capsys):
    # tqdm.auto's bar called iter() on the DataLoader it wrapped, besides the loop's own iter(); every new
    # DataLoader iterator draws a seed from the shuffling generator, so with bars on the batches came in another
    # order than with --no-progress (the way every record was made), and a reader's rerun could not match it.
    config = toy_config(epochs=2)
    quiet = train(config, results_dir=tmp_path / "quiet", progress=False)
    shown = train(config, results_dir=tmp_path / "shown", progress=True)
    assert "it/s" in capsys.readouterr().err  # the bars were drawn
    assert metrics_only(shown.history) == metrics_only(quiet.history)


def test_record_contents_and_existing_record_is_reused(tmp_path):
    config = toy_config(**{"eval_splits": ["val", "test", "train_eval"], "train_subset": 100, "test_subset": 50,
                           "eval_before_training": True})
    record = train(config, results_dir=tmp_path, progress=False)
    assert record.path == tmp_path / "toy" / f"{config.hash}.json"
    assert [h["epoch"] for h in record.history] == [0, 1, 2, 3]
    assert "train_loss" not in record.history[0] and "val_loss" in record.history[0]
    last = record.history[-1]
    for key in ("lr", "train_loss", "train_accuracy", "train_activity", "train_spikes_per_sample", "epoch_time_s",
                "val_loss", "test_accuracy", "train_eval_accuracy", "test_spikes_per_sample"):
        assert key in last, key
    assert 0 <= last["test_activity"] <= 1 and last["test_spikes_per_sample"] > 0
    val_losses = {h["epoch"]: h["val_loss"] for h in record.history}
    assert record.final["selected_epoch"] == min(val_losses, key=val_losses.get)
    selected = record.history[record.final["selected_epoch"]]
    assert record.final["test_accuracy"] == selected["test_accuracy"]
    assert record.final["n_parameters"] == 16 * 16 + 16 + 16 * 4 + 4
    # subsets: 100 training samples -> 4 batches of 32 (last one partial); test accuracy is a multiple of 1/50
    assert round(last["test_accuracy"] * 50, 6) == int(round(last["test_accuracy"] * 50))
    prov = record.provenance
    for key in ("git_commit", "git_dirty", "packages", "device_name", "start_time", "end_time", "duration_s", "host",
                "reprolib_version", "scale"):
        assert key in prov, key
    assert prov["scale"] == "ci" and "torch" in prov["packages"]
    # the selected epoch's weights can be loaded back for analysis
    model = load_selected_model(config, tmp_path)
    assert model.selected_epoch == record.final["selected_epoch"] and not model.training
    with pytest.raises(FileNotFoundError, match="no run record of toy/"):  # a config never trained here
        load_selected_model(with_overrides(config, {"seed": 99}), tmp_path)
    kept = tmp_path / config.experiment / ".ckpt" / record.hash / "selected.pt"
    original = kept.read_bytes()
    state = torch.load(kept, weights_only=True)
    torch.save({**state, "epoch": state["epoch"] + 1}, kept)  # weights of another epoch than the record's
    with pytest.raises(ValueError, match="the checkpoint is not this record's"):
        load_selected_model(config, tmp_path)
    kept.write_bytes(original)
    torch.manual_seed(config.seed)
    untrained = toy.build_toy_snn(**config.model_options)
    assert not torch.equal(model.fc_in.weight, untrained.fc_in.weight)
    # a second call finds the record and does not train again
    again = train(config, results_dir=tmp_path, progress=False)
    assert again.provenance["end_time"] == prov["end_time"] and again.history == record.history
    # the checkpoint folder ignores itself in git, and the resumable state is removed after the run
    assert (tmp_path / "toy" / ".ckpt" / ".gitignore").read_text() == "*\n"
    assert not (checkpoint_dir(config, tmp_path) / STATE_FILE).exists()


def test_after_optimizer_step_hook_and_registry_names(tmp_path, monkeypatch):
    import reprolib.models as models

    built = []
    original = toy.build_toy_snn

    def build(**options):
        model = original(**options)
        built.append(model)
        return model

    # a registry name (not an import path) goes through reprolib.models.build_model
    monkeypatch.setitem(models.MODEL_BUILDERS, "toy-snn", "reprolib.training.toy:build_toy_snn")
    monkeypatch.setattr(toy, "build_toy_snn", build)
    config = toy_config(model="toy-snn", train_subset=96, epochs=2)
    train(config, results_dir=tmp_path, progress=False)
    assert len(built) == 1
    assert built[0].optimizer_steps == 2 * 3  # 2 epochs x 96/32 batches


def test_nan_loss_stops_with_epoch_and_batch(tmp_path):
    config = toy_config(**{"model_options.nan_after_steps": 14})  # 384 train samples / 32 = 12 batches per epoch
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2/3, batch 3/12"):
        train(config, results_dir=tmp_path, progress=False)
    assert not (tmp_path / "toy" / f"{config.hash}.json").exists()


def test_nan_loss_with_stop_writes_the_epochs_before_as_the_source_does(tmp_path):
    base = {"model_options.nan_after_steps": 14}  # NaN at epoch 2, batch 3 (12 batches per epoch)
    config = toy_config(**base, nonfinite_loss="stop")
    assert config.hash == toy_config(**base).hash  # how a diverged run ends is not part of its identity
    record = train(config, results_dir=tmp_path, progress=False)
    assert record.path is not None and record.path.exists()
    assert record.final["stopped_early"] == {"epoch": 2, "batch": 3, "loss": "nan", "reason": "non-finite training loss"}
    assert [h["epoch"] for h in record.history] == [1] and record.final["epochs_completed"] == 1
    assert record.final["selected_epoch"] == 1
    assert record.final["test_accuracy"] == record.history[0]["test_accuracy"]
    assert not (checkpoint_dir(config, tmp_path) / STATE_FILE).exists()  # finished: no state to resume
    assert train(config, results_dir=tmp_path, progress=False).final == record.final  # found, not trained again
    # the two rules share the hash: an "error" config does not silently take the stopped run's record
    with pytest.raises(NonFiniteLossError, match="turned non-finite at epoch 2.*asks for 'error'"):
        train(toy_config(**base), results_dir=tmp_path, progress=False)
    # a run that stays finite has no such key, and the same history under either rule
    finite = train(toy_config(nonfinite_loss="stop", epochs=1), results_dir=tmp_path / "b", progress=False)
    plain = train(toy_config(epochs=1), results_dir=tmp_path / "c", progress=False)
    assert "stopped_early" not in finite.final and metrics_only(finite.history) == metrics_only(plain.history)
    # stopped inside a prefix (until_epoch) the run has still ended: its record is written
    prefix = train(config, results_dir=tmp_path / "d", progress=False, until_epoch=3)
    assert prefix.path is not None and prefix.final["stopped_early"]["epoch"] == 2


def test_nan_loss_with_stop_before_any_evaluation_is_still_an_error(tmp_path):
    config = toy_config(**{"model_options.nan_after_steps": 2}, nonfinite_loss="stop")
    with pytest.raises(NonFiniteLossError, match=r"epoch 1/3, batch 3/12; it came before any evaluation"):
        train(config, results_dir=tmp_path, progress=False)
    assert not (tmp_path / "toy" / f"{config.hash}.json").exists()
    with pytest.raises(ConfigError, match=r"'nonfinite_loss' = 'skip' is not allowed"):
        toy_config(nonfinite_loss="skip")


def test_bad_names_fail_before_any_data_is_loaded(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(toy, "build_toy_dataset", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="unknown model 'no-such-net'"):
        train(toy_config(model="no-such-net"), results_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="does not accept model_options = .*'widht'.*unexpected keyword argument"):
        train(toy_config(**{"model_options.widht": 3}), results_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="config key 'encoding'.*cannot be imported"):
        train(toy_config(encoding="reprolib.training.toy:nothing_here"), results_dir=tmp_path, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="'device' = 'cuda:3' is not available"):
            train(toy_config(device="cuda:3"), results_dir=tmp_path, progress=False)
    assert calls == []


def test_schedules_step_per_epoch(tmp_path):
    record = train(toy_config(schedule="linear_decay", epochs=4, train_subset=64), results_dir=tmp_path, progress=False)
    assert [h["lr"] for h in record.history] == pytest.approx([0.01 * (1 - e / 4) for e in range(4)])
    record = train(toy_config(schedule="warmup_cosine", epochs=4, schedule_options={"warmup_epochs": 2},
                              train_subset=64), results_dir=tmp_path, progress=False)
    assert [h["lr"] for h in record.history] == pytest.approx([0.005, 0.01, 0.01, 0.005])
    assert warmup_cosine_factor(0, 300, 5) == pytest.approx(0.2) and warmup_cosine_factor(5, 300, 5) == 1.0
    assert warmup_cosine_factor(300, 300, 5) == pytest.approx(0.0, abs=1e-12)
    assert linear_decay_factor(299, 300) == pytest.approx(1 / 300)
    record = train(toy_config(schedule="cosine", epochs=2, train_subset=64, optimizer="sgd", momentum=0.9),
                   results_dir=tmp_path, progress=False)
    assert [h["lr"] for h in record.history] == pytest.approx([0.01, 0.005])


def test_grad_clip_bounds_the_update(tmp_path):
    # with SGD (no momentum) and lr 1, the parameter change of one step equals the clipped gradient
    base = dict(optimizer="sgd", lr=1.0, epochs=1, train_subset=32, batch_size=32, eval_splits=["test"],
                selection="last", val_fraction=0.0, test_subset=8)
    clipped = train(toy_config(**base, grad_clip=1e-3), results_dir=tmp_path / "a", progress=False)
    free = train(toy_config(**base), results_dir=tmp_path / "b", progress=False)
    ckpt_a = torch.load(checkpoint_dir(clipped.config, tmp_path / "a") / "selected.pt", weights_only=True)["model"]
    torch.manual_seed(clipped.config.seed)
    init = toy.build_toy_snn(**clipped.config.model_options).state_dict()
    change = math.sqrt(sum(float(((ckpt_a[k] - init[k]) ** 2).sum()) for k in init))
    assert change == pytest.approx(1e-3, rel=1e-3)
    ckpt_b = torch.load(checkpoint_dir(free.config, tmp_path / "b") / "selected.pt", weights_only=True)["model"]
    assert math.sqrt(sum(float(((ckpt_b[k] - init[k]) ** 2).sum()) for k in init)) > 1e-2


def test_losses_reduce_over_time_as_documented():
    out = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])  # [T=2, B=2, C=2]
    y = torch.tensor([0, 1])
    mse = get_loss("rate_mse")(out, y)
    # mean over T: [[1, 0], [0.5, 0.5]] vs one-hot [[1, 0], [0, 1]] -> squared errors 0, 0, .25, .25
    assert float(mse.loss) == pytest.approx(0.125) and int(mse.correct) == 1 and mse.count == 2
    ce = get_loss("final_ce")(out, y)
    assert float(ce.loss) == pytest.approx(float(torch.nn.functional.cross_entropy(out[-1], y)))
    assert int(ce.correct) == 1
    nll = get_loss("seq_nll")(out, y)
    per_step = [float(torch.nn.functional.cross_entropy(out[t], y)) for t in range(2)]
    assert float(nll.loss) == pytest.approx(sum(per_step))  # summed, not averaged, over steps
    last = get_loss("seq_nll", label_last=True)(out, y)
    assert float(last.loss) == pytest.approx(per_step[1])
    skip = get_loss("seq_nll", skip_steps=1)(out, y)
    assert float(skip.loss) == pytest.approx(per_step[1])
    # per-step labels [B, T] with -1 unlabelled: masked in loss and accuracy
    labels = torch.tensor([[0, -1], [1, 0]])
    step = get_loss("seq_nll")(out, labels)
    expected = float(torch.nn.functional.cross_entropy(out[0], torch.tensor([0, 1]))) + float(
        torch.nn.functional.cross_entropy(out[1, 1:], torch.tensor([0])))
    assert float(step.loss) == pytest.approx(expected)
    assert step.count == 3 and int(step.correct) == 3


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before its first checkpoint: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.01)


def test_killed_run_resumes_to_the_same_record(tmp_path):
    config = toy_config(**{"epochs": 4, "model_options.forward_delay_s": 0.03, "model_options.dropout": 0.1,
                           "encoding_options.num_steps": 6})
    killed_dir = tmp_path / "killed"
    script = ("import json, sys; from reprolib.config import ExperimentConfig; from reprolib.training import train; "
              "train(ExperimentConfig.from_dict(json.loads(sys.argv[1])), results_dir=sys.argv[2], progress=False)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", script, json.dumps(config.to_dict()), str(killed_dir)],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(checkpoint_dir(config, killed_dir) / STATE_FILE, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not (killed_dir / "toy" / f"{config.hash}.json").exists(), "the run finished before it was killed"

    resumed = train(config, results_dir=killed_dir, progress=False)
    assert resumed.provenance["resumed_from_epoch"] >= 1 and resumed.provenance["sessions"] == 2
    (earlier,) = resumed.provenance["earlier_sessions"]  # the killed session's code and the epoch it reached
    assert earlier["until_epoch"] == resumed.provenance["resumed_from_epoch"]
    assert earlier["git_commit"] == resumed.provenance["git_commit"] and "device_name" in earlier
    assert earlier["cpu"] == resumed.provenance["cpu"]  # what rerun needs to tell which CPU trained which epochs
    assert earlier["reprolib_source_sha256"] == resumed.provenance["reprolib_source_sha256"]
    uninterrupted = train(config, results_dir=tmp_path / "whole", progress=False)
    assert metrics_only(resumed.history) == metrics_only(uninterrupted.history)
    assert resumed.final["test_accuracy"] == uninterrupted.final["test_accuracy"]
    assert resumed.final["selected_epoch"] == uninterrupted.final["selected_epoch"]


def test_time_limit_pauses_between_epochs_and_the_run_resumes_to_the_same_record(tmp_path, monkeypatch):
    from reprolib.training import TimeLimitReached
    from reprolib.training import loop

    config = toy_config(**{"epochs": 3, "model_options.dropout": 0.1})
    # after the first epoch, pretend the next one would take an hour: the deadline (10 min away) stops it
    monkeypatch.setattr(loop._Run, "_epoch_estimate_s", lambda self, session: 3600.0 if session else 0.0)
    with pytest.raises(TimeLimitReached, match="after epoch 1 of 3") as stopped:
        train(config, results_dir=tmp_path / "paused", progress=False, stop_at=time.time() + 600)
    assert stopped.value.epochs_done == 1
    assert not (tmp_path / "paused" / "toy" / f"{config.hash}.json").exists()  # no half-done record
    assert (checkpoint_dir(config, tmp_path / "paused") / STATE_FILE).exists()
    monkeypatch.undo()

    # a deadline already past: nothing starts, and the error says how far the checkpoint got
    with pytest.raises(TimeLimitReached, match="after epoch 1 of 3"):
        train(config, results_dir=tmp_path / "paused", progress=False, stop_at=time.time() - 1)
    resumed = train(config, results_dir=tmp_path / "paused", progress=False, stop_at=time.time() + 3600)
    assert resumed.provenance["resumed_from_epoch"] == 1
    whole = train(config, results_dir=tmp_path / "whole", progress=False)
    assert metrics_only(resumed.history) == metrics_only(whole.history)
    assert resumed.final["test_accuracy"] == whole.final["test_accuracy"]

    with pytest.raises(ValueError, match="stop_at = 'soon'"):
        train(config, results_dir=tmp_path / "x", progress=False, stop_at="soon")
    with pytest.raises(ValueError, match="until_epoch = 4 is not allowed"):
        train(config, results_dir=tmp_path / "x", progress=False, until_epoch=4)


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_empty_folder(tmp_path):
    from reprolib.training import checkpoint as ckpt

    config = toy_config(**{"model_options.forward_delay_s": -1})  # fails in the first training forward
    with pytest.raises(ValueError):
        train(config, results_dir=tmp_path, progress=False)
    assert not ckpt.checkpoint_dir(config, tmp_path, create=False).exists()
    assert not list((tmp_path / config.experiment).glob("*.json"))


def test_log_epochs_says_when_a_run_pauses_or_stops_early(tmp_path, capsys, monkeypatch):
    from reprolib.training import TimeLimitReached
    from reprolib.training.loop import _Run

    config = toy_config(epochs=2, eval_before_training=True)
    name = f"toy/{config.hash}"
    train(config, results_dir=tmp_path, progress=False, until_epoch=1, log_epochs=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{name} epoch 0/2, val loss ") and "train loss" not in lines[0]  # untrained
    assert lines[1].startswith(f"{name} epoch 1/2, train loss ") and len(lines) == 2
    # the next epoch would end after the deadline: the log says so before the run pauses
    monkeypatch.setattr(_Run, "_epoch_estimate_s", lambda self, seconds: 1e9)
    with pytest.raises(TimeLimitReached):
        train(config, results_dir=tmp_path, progress=False, stop_at=time.time() + 3600, log_epochs=True)
    assert capsys.readouterr().out.splitlines() == [
        f"{name} resumed from its checkpoint after epoch 1/2",
        f"{name} paused after epoch 1/2: the next would end after the time limit; its checkpoint is kept"]
    stops = toy_config(**{"model_options.nan_after_steps": 14}, nonfinite_loss="stop")  # NaN at epoch 2, batch 3
    train(stops, results_dir=tmp_path / "nan", progress=True, log_epochs=True)  # lines above the bar as well
    out = capsys.readouterr().out
    assert (f"toy/{stops.hash} stopped in epoch 2/3: non-finite training loss nan at batch 3; the record keeps the "
            "epochs before") in out and f"toy/{stops.hash} epoch 1/3, " in out
