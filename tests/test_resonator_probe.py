"""The resonator probe (reprolib probe-resonators): initial and learned omega / damping of trained RF / BRF runs."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from reprolib.config import ConfigError, with_overrides
from reprolib.experiments import get_configs
from reprolib.neurons.resonate import (BRFCell, RFCell, RFState, brf_step, divergence_boundary,
                                       frequency_and_damping)
from reprolib.training import train
from reprolib.training.build import initial_model
from reprolib.training.loop import _Run
from reprolib.training.resonator_probe import probe_resonators, resonator_parameters


def _ecg(neuron: str, seed: int = 0, labels: str = "source"):
    # on the CPU, also where a GPU is: the tests compare weights and histories bit for bit
    config = get_configs("brf-ecg", "ci", seeds=[seed], neuron=neuron, labels=labels)[0]
    return with_overrides(config, {"device": "cpu"})


def test_frequency_and_damping_is_what_the_brf_step_uses():
    cell = BRFCell(2, 5, omega_range=(3.0, 90.0), b_offset_range=(0.1, 1.0))
    with torch.no_grad():
        cell.omega[0] = -40.0  # the step uses |omega| and |b'|
        cell.b_offset[1] = -0.5
    params = cell.neuron_parameters()
    omega, b_c = frequency_and_damping(params, balanced=True)
    assert torch.equal(omega, cell.omega.detach().abs())
    assert torch.equal(b_c, divergence_boundary(omega, params.dt) - cell.b_offset.detach().abs())
    assert (b_c < 0).all()  # b' > 0 keeps every BRF neuron below the divergence boundary
    # with q = 0 and v = 0 the step's damping is b_c: u[t] = u + dt (b_c u + x)
    u = torch.ones(1, 5)
    zeros = torch.zeros(1, 5)
    _, state = brf_step(zeros, RFState(zeros, u, zeros, zeros), params)
    torch.testing.assert_close(state.u, u + params.dt * b_c * u)
    rf = RFCell(2, 5, omega_range=(3.0, 5.0), b_offset_range=(0.1, 1.0))
    assert torch.equal(frequency_and_damping(rf.neuron_parameters(), balanced=False)[1], -rf.b_offset.detach().abs())
    # with clamp_omega the step runs at 1 / dt at most, and so does the reported frequency: v[t] = v + dt omega u
    clamped = BRFCell(2, 5, omega_range=(150.0, 160.0), b_offset_range=(0.1, 1.0), clamp_omega=True)
    params = clamped.neuron_parameters()
    omega, b_c = frequency_and_damping(params, balanced=True)
    assert torch.equal(omega, torch.full((5,), 1.0 / params.dt)) and torch.isfinite(b_c).all()
    _, state = brf_step(zeros, RFState(zeros, u, zeros, zeros), params)
    torch.testing.assert_close(state.v, params.dt * omega * u)


def test_initial_model_is_the_model_a_run_starts_from(data_root, results_tmp):
    config = _ecg("brf", seed=3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model = initial_model(config)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone
    run = _Run(config, results_tmp, progress=False)
    assert model.state_dict().keys() == run.model.state_dict().keys()
    for (name, a), (_, b) in zip(model.state_dict().items(), run.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert not torch.equal(initial_model(_ecg("brf", seed=4)).hidden.omega, model.hidden.omega)


def test_probe_reads_the_initial_and_the_selected_parameters_of_trained_runs(data_root, results_tmp, tmp_path):
    records = [train(_ecg("brf", seed), results_dir=results_tmp, progress=False) for seed in (0, 1)]
    # the same configs trained again elsewhere, as `reprolib rerun` does: the probe says they match
    again = tmp_path / "again"
    for record in records:
        train(record.config, results_dir=again, progress=False)
    out = probe_resonators([again / "brf-ecg" / f"{r.hash}.json" for r in records], tmp_path / "probe.json",
                           compare_with=results_tmp, progress=False)
    payload = json.loads(out.read_text())["payload"]
    assert payload["kind"] == "resonator-probe" and payload["experiment"] == "brf-ecg" and payload["scale"] == "ci"
    assert payload["provenance"]["git_commit"] is not None
    runs = {run["seed"]: run for run in payload["runs"]}
    assert set(runs) == {0, 1}
    for record in records:
        run = runs[record.config.seed]
        assert run["record"] == record.hash and run["neuron"] == "brf" and run["dt"] == 0.01
        assert run["committed"] == {"record": f"brf-ecg/{record.hash}.json", "same_record": False, "epochs": 2,
                                    "identical": True, "max_abs_accuracy_diff_pp": 0.0}
        initial = resonator_parameters(initial_model(record.config))
        assert run["initial"] == {"omega": initial["omega"], "damping": initial["damping"]}
        assert len(run["initial"]["omega"]) == 8 and all(3.0 <= w <= 5.0 for w in run["initial"]["omega"])
        state = torch.load(again / "brf-ecg" / ".ckpt" / record.hash / "selected.pt", weights_only=True)
        assert run["selected_epoch"] == state["epoch"] == record.final["selected_epoch"]
        learned = state["model"]["hidden.omega"].abs()
        assert run["learned"]["omega"] == learned.tolist()
        # the untrained network (epoch 0) can be the selected one; after an epoch at lr 0.1 the omegas have moved
        assert (run["learned"]["omega"] == run["initial"]["omega"]) == (run["selected_epoch"] == 0)
    # without --compare-with, nothing is compared
    bare = probe_resonators([records[0].path], tmp_path / "bare.json", progress=False)
    assert json.loads(bare.read_text())["payload"]["runs"][0]["committed"] is None


def test_probe_refuses_other_models_missing_or_stale_weights_before_writing(data_root, results_tmp, tmp_path):
    alif = train(_ecg("alif"), results_dir=results_tmp, progress=False)
    brf = train(_ecg("brf"), results_dir=results_tmp, progress=False)
    out = tmp_path / "probe.json"
    with pytest.raises(ConfigError, match="hidden layer is ALIFCell; expected RF or BRF neurons .*--skip-other-models"):
        probe_resonators([brf.path, alif.path], out, progress=False)
    with pytest.raises(ConfigError, match="none of the 1 records is of an RF or BRF network"):
        probe_resonators([alif.path], out, progress=False, skip_other_models=True)
    assert not out.exists()
    probed = json.loads(probe_resonators([brf.path, alif.path], out, progress=False,
                                         skip_other_models=True).read_text())["payload"]
    assert [r["record"] for r in probed["runs"]] == [brf.hash] and probed["skipped_other_models"] == [alif.hash]
    out.unlink()
    with pytest.raises(ConfigError, match="several experiments / scales"):
        probe_resonators([brf.path, train(get_configs("toy", "ci", seeds=[0])[0], results_dir=results_tmp,
                                          progress=False).path], out, progress=False)
    kept = results_tmp / "brf-ecg" / ".ckpt" / brf.hash / "selected.pt"
    stale = torch.load(kept, weights_only=True)
    shutil.move(kept, tmp_path / "kept.pt")
    with pytest.raises(FileNotFoundError, match="no kept weights for"):
        probe_resonators([brf.path], out, progress=False)
    torch.save({**stale, "epoch": stale["epoch"] + 5}, kept)
    with pytest.raises(ValueError, match=r"holds the weights of epoch \d+, but .* selected epoch"):
        probe_resonators([brf.path], out, progress=False)
    kept.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable checkpoint of selected weights"):
        probe_resonators([brf.path], out, progress=False)
    with pytest.raises(ValueError, match="is not a folder; expected a results folder"):
        probe_resonators([brf.path], out, compare_with=tmp_path / "nowhere", progress=False)
    assert not out.exists()


def test_the_book_page_shows_a_committed_probe_beside_the_paper(data_root, results_tmp, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from reprolib import notebook as nb

    params = nb.check_parameters("ci", [0], "cpu", False)
    shown = []
    monkeypatch.setattr(nb.brf, "show_markdown", shown.append)
    assert nb.resonator_probe(nb.brf_runs(params, ["ECG"], ["brf"])["ECG"]) is None  # nothing committed yet
    nb.show_resonator_probe(nb.brf_runs(params, ["ECG"], ["brf"]), "ECG")
    assert "No resonator probe of the ECG runs committed at scale ci" in shown[-1]
    record = train(_ecg("brf"), results_dir=results_tmp, progress=False)
    masked = train(_ecg("brf", labels="masked"), results_dir=results_tmp, progress=False)  # not on the page
    out = probe_resonators([record.path, masked.path], compare_with=results_tmp, progress=False)
    assert out == results_tmp / "analysis" / "brf-ecg-ci-resonators.json"  # where the page looks
    runs = nb.brf_runs(params, ["ECG"], ["brf"])
    neurons, per_run, line = nb.resonator_probe(runs["ECG"])
    assert len(neurons) == 2 * 8 and set(neurons["stage"]) == {"initial", "learned"}  # the page's run only
    assert set(neurons["record"]) == {record.hash} and (neurons["labels"] == "source").all()
    # probed where it was trained: the weights are the committed record's own, nothing to compare
    assert list(per_run["record"]) == [record.hash] and list(per_run["model"]) == ["BRF"]
    assert per_run["history vs committed record"].tolist() == ["the committed record itself"]
    assert per_run["test accuracy (%)"].iloc[0] == round(100 * record.final["test_accuracy"], 2)
    assert line.startswith("probe of 1 of 1 BRF runs' kept weights (the selected epoch) · code ")
    assert per_run["learned \u03c9 < 0.1 rad/s (%)"].between(0, 100).all()
    nb.show_resonator_probe(runs, "ECG")  # the figure, the table, then the summary under them
    assert shown[-1].startswith("Over the 1 probed run (8 neurons):") and "*paper*: input spikes every" in shown[-1]
    marks = nb.resonator_paper_marks("ECG")
    assert marks == {"learned cluster, near": 2.0, "input spikes every ~300 steps": 2.09}  # Section 4.4, as data
    assert nb.resonator_paper_marks("SHD") == {}
    from reprolib import plotting

    fig = plotting.learned_parameters_figure(neurons, marks, line, "paper")
    scatter, histogram = fig.axes
    assert scatter.get_ylabel() == "b_c = p(\u03c9) \u2212 |b\u2032|" and len(scatter.collections) == 2
    assert sum(1 for text in histogram.get_legend().get_texts() if text.get_text().startswith("paper: ")) == 2
    with pytest.raises(ValueError, match=r"columns \['dt'\] are not in the frame"):
        plotting.learned_parameters_figure(neurons.drop(columns="dt"), marks, line, "paper")
    with pytest.raises(ValueError, match=r"neurons of several models \['brf', 'rf'\]"):
        plotting.learned_parameters_figure(neurons.assign(model=["brf", "rf"] * 8), marks, line, "paper")


def test_resonator_summary_counts_neurons_near_the_papers_frequencies():
    import pandas as pd

    from reprolib import notebook as nb

    rows = [("a", "initial", w) for w in (3.0, 4.0, 5.0, 4.5)] + [("a", "learned", w) for w in (0.01, 2.0, 2.4, 7.0)]
    neurons = pd.DataFrame(rows, columns=["record", "stage", "omega"])
    text = nb.resonator_summary(neurons, {"learned cluster, near": 2.0})
    assert text.startswith("Over the 1 probed run (4 neurons):")
    assert "within 0.5 rad/s of 2 rad/s (*paper*: learned cluster, near): 0 % of the neurons before training, " \
           "50 % after;" in text
    assert text.endswith("below 0.1 rad/s after training (no longer oscillating within a sequence): 25 %.")
    assert nb.resonator_summary(neurons[neurons["stage"] == "initial"], {}) == ""
