"""The parameter probe (reprolib probe-parameters) and the src-activity page's 'What training moved' section."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from reprolib.config import ConfigError, with_overrides
from reprolib.experiments import get_configs
from reprolib.training import train
from reprolib.training.build import initial_model
from reprolib.training.parameter_probe import parameter_summary, probe_parameters, silent_input_response


def _activity_run(model: str, seed: int = 0):
    # src-activity's configs are src-table2's: 1-layer MNIST rate, one short epoch at ci scale, on the CPU
    config = get_configs("src-activity", "ci", seeds=[seed], input="mnist-rate", layers=[1], model=model)[0]
    return with_overrides(config, {"device": "cpu"})


def test_parameter_summary_describes_every_entry_and_keeps_small_ones_whole():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    model[1].weight.requires_grad_(False)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.0, 4.0, -6.0]]))
    summary = parameter_summary(model, full_values=4)
    assert list(summary) == [name for name, t in model.state_dict().items() if torch.is_floating_point(t)]
    assert "1.num_batches_tracked" not in summary  # an integer counter, not a learned number
    weight = summary["0.weight"]
    assert weight["shape"] == [2, 3] and weight["numel"] == 6 and weight["trainable"] is True
    assert weight["mean"] == 0.0 and weight["min"] == -6.0 and weight["max"] == 4.0
    assert weight["norm"] == pytest.approx(66 ** 0.5) and weight["std"] == pytest.approx(11 ** 0.5)
    assert "values" not in weight  # 6 numbers > full_values
    assert summary["0.bias"]["values"] == model[0].bias.detach().double().tolist()
    assert summary["1.weight"]["trainable"] is False and summary["1.running_mean"]["trainable"] is False
    # a diverged parameter: statistics over the finite numbers, None in place of the others (standard JSON)
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([float("nan"), 2.0]))
        model[1].bias.fill_(float("inf"))
    summary = parameter_summary(model, full_values=4)
    assert summary["0.bias"]["nonfinite"] == 1 and summary["0.bias"]["mean"] == 2.0
    assert summary["0.bias"]["values"] == [None, 2.0]
    assert summary["1.bias"]["nonfinite"] == 2 and summary["1.bias"]["mean"] is None
    json.dumps(summary, allow_nan=False)  # raises where a NaN or an infinity is left


def test_probe_reads_the_initial_and_the_selected_parameters(data_root, results_tmp, tmp_path):
    records = {model: train(_activity_run(model), results_dir=results_tmp, progress=False) for model in ("src", "lif")}
    # the LIF run trained again elsewhere, as `reprolib rerun` does: the probe says it matches the committed one
    again = tmp_path / "again"
    train(records["lif"].config, results_dir=again, progress=False)
    out = probe_parameters([again / "src-table2" / f"{records['lif'].hash}.json"], tmp_path / "again.json",
                           compare_with=results_tmp, progress=False)
    committed = json.loads(out.read_text())["payload"]["runs"][0]["committed"]
    assert committed["identical"] is True and committed["same_record"] is False

    out = probe_parameters([r.path for r in records.values()], tmp_path / "probe.json", progress=False)
    payload = json.loads(out.read_text())["payload"]
    assert payload["kind"] == "parameter-probe" and payload["experiment"] == "src-table2" and payload["scale"] == "ci"
    assert payload["skipped_without_weights"] == [] and payload["provenance"]["git_commit"] is not None
    runs = {run["record"]: run for run in payload["runs"]}
    for model, record in records.items():
        run = runs[record.hash]
        assert run["seed"] == 0 and run["committed"] is None
        state = torch.load(results_tmp / "src-table2" / ".ckpt" / record.hash / "selected.pt", weights_only=True)
        assert run["selected_epoch"] == state["epoch"] == record.final["selected_epoch"]
        start = initial_model(record.config)
        assert run["initial"] == json.loads(json.dumps(parameter_summary(start)))
        start.load_state_dict(state["model"])
        assert run["learned"] == json.loads(json.dumps(parameter_summary(start)))
        assert run["record_end_time"] == record.provenance["end_time"]
        assert run["test_loss"] == record.final["test_loss"] and run["test_activity"] == record.final["test_activity"]
        # the network run once on an input without spikes: untrained, nothing reaches a threshold
        assert run["silent_input"]["initial"] == {"activity": 0.0, "firing_neurons": 0.0}
        assert run["silent_input"]["learned"] == silent_input_response(start, record.config)  # the kept weights
    lif = runs[records["lif"].hash]
    assert lif["initial"]["blocks.0.lif.threshold"]["values"] == [1.0]
    assert lif["initial"]["blocks.0.lif.beta"]["values"] == [pytest.approx(0.9)]
    src = runs[records["src"].hash]
    assert set(src["initial"]["blocks.0.b_h"]["values"]) == {-6.0}
    # one epoch of Adam moves the trained parameters; the frozen readout stays
    assert src["learned"]["blocks.0.b_h"]["values"] != src["initial"]["blocks.0.b_h"]["values"]
    assert src["learned"]["readout.weight"] == src["initial"]["readout.weight"]
    assert src["learned"]["readout.weight"]["trainable"] is False


def test_probe_refuses_missing_or_stale_weights_before_writing(data_root, results_tmp, tmp_path):
    kept_run = train(_activity_run("lif"), results_dir=results_tmp, progress=False)
    other = train(_activity_run("lif", seed=1), results_dir=results_tmp, progress=False)
    shutil.rmtree(results_tmp / "src-table2" / ".ckpt" / other.hash)  # trained on another machine, say
    out = tmp_path / "probe.json"
    with pytest.raises(FileNotFoundError, match=r"no kept weights for 1 of 2 record\(s\).*--skip-missing"):
        probe_parameters([kept_run.path, other.path], out, progress=False)
    assert not out.exists()
    payload = json.loads(probe_parameters([kept_run.path, other.path], out, progress=False,
                                          skip_missing=True).read_text())["payload"]
    assert [r["record"] for r in payload["runs"]] == [kept_run.hash]
    assert payload["skipped_without_weights"] == [other.hash]
    out.unlink()
    with pytest.raises(FileNotFoundError, match="none of the 1 records has kept weights here"):
        probe_parameters([other.path], out, progress=False, skip_missing=True)
    kept = results_tmp / "src-table2" / ".ckpt" / kept_run.hash / "selected.pt"
    state = torch.load(kept, weights_only=True)
    torch.save({**state, "epoch": state["epoch"] + 3}, kept)
    with pytest.raises(ValueError, match=r"holds the weights of epoch \d+, but .* selected epoch"):
        probe_parameters([kept_run.path, other.path], out, progress=False, skip_missing=True)
    with pytest.raises(ValueError, match="is not a folder; expected a results folder"):
        probe_parameters([kept_run.path], out, compare_with=tmp_path / "nowhere", progress=False)
    with pytest.raises(ConfigError, match="several experiments / scales"):
        toy = train(get_configs("toy", "ci", seeds=[0])[0], results_dir=results_tmp, progress=False)
        probe_parameters([kept_run.path, toy.path], out, progress=False)
    assert not out.exists()


def test_silent_input_response_is_what_the_networks_own_parameters_produce():
    from reprolib.models.src import build_lif_network, build_src_network

    config = SimpleNamespace(encoding_options={"num_steps": 40})
    lif = build_lif_network(6, layers=1, hidden=8, classes=2, group_size=5)  # 1 layer: 6 inputs -> 10 neurons
    with torch.no_grad():
        lif.blocks[0].linear.bias.fill_(0.05)
    # leak 0.9: the membrane settles at 0.05 / (1 - 0.9) = 0.5, below the threshold 1
    assert silent_input_response(lif, config) == {"activity": 0.0, "firing_neurons": 0.0}
    with torch.no_grad():
        lif.blocks[0].lif.beta.fill_(1.0)  # no leak: a positive bias is integrated step after step
        lif.blocks[0].linear.bias.copy_(torch.tensor([0.5] * 5 + [-1.0] * 5))
    # half the neurons gain 0.5 per step and reset to zero after crossing 1: a spike every third step
    assert silent_input_response(lif, config) == {"activity": pytest.approx(0.5 * 13 / 40), "firing_neurons": 50.0}
    # the SRC without input: silent at its initial bias -6; at the bound -4 it fires on its own, 3-step spikes
    # every 24 steps after the first at step 15 (the reference's single-neuron simulation): 8 of 200 steps x 3
    src = build_src_network(6, layers=1, hidden=8, classes=2, group_size=5)
    assert silent_input_response(src, SimpleNamespace(encoding_options={"num_steps": 200}))["activity"] == 0.0
    with torch.no_grad():
        src.blocks[0].b_h.copy_(torch.tensor([-4.0] * 5 + [-6.0] * 5))
    response = silent_input_response(src, SimpleNamespace(encoding_options={"num_steps": 200}))
    assert response == {"activity": pytest.approx(0.5 * 0.12), "firing_neurons": 50.0}
    # T from the data set where the encoder has none (N-MNIST frames); none at all: nothing to run
    frames = SimpleNamespace(encoding_options={}, dataset_options={"n_time_bins": 200})
    assert silent_input_response(src, frames) == response
    assert silent_input_response(lif, SimpleNamespace(encoding_options={}, dataset_options={})) is None
    assert silent_input_response(torch.nn.Linear(2, 2), config) is None  # no activity to read


def _page_runs(nb, results_tmp, seeds=(0,)):
    params = nb.check_parameters("ci", list(seeds), "cpu", False)
    return nb.gather_runs("src-activity", params, input=["mnist-rate"], layers=[1])


def test_the_activity_page_shows_what_training_moved(data_root, results_tmp):
    from reprolib import notebook as nb

    records = {model: train(_activity_run(model), results_dir=results_tmp, progress=False) for model in ("src", "lif")}
    runs = _page_runs(nb, results_tmp)
    assert nb.learned_parameters(runs) is None  # no probe committed yet
    path = results_tmp / "analysis" / "src-table2-ci-parameters.json"
    probe_parameters([r.path for r in records.values()], path, progress=False)
    # the LIF's threshold and leak as if training had moved them to seed 1's values at paper scale
    data = json.loads(path.read_text())
    for run in data["payload"]["runs"]:
        learned = run["learned"]
        if "blocks.0.lif.beta" in learned:
            learned["blocks.0.lif.beta"].update(mean=1.0105, values=[1.0105])
            learned["blocks.0.lif.threshold"].update(mean=6.3657, values=[6.3657])
            learned["blocks.0.linear.weight"]["norm"] = 20 * run["initial"]["blocks.0.linear.weight"]["norm"]
            bias = [0.5, -0.5, 0.25, None] * (len(learned["blocks.0.linear.bias"]["values"]) // 4)
            learned["blocks.0.linear.bias"].update(values=bias, mean=0.25 / 3)
        else:
            values = [-4.0, -4.000005, -4.5, -6.0] * (len(learned["blocks.0.b_h"]["values"]) // 4)
            learned["blocks.0.b_h"].update(values=values, mean=sum(values) / len(values))
            run["silent_input"]["learned"] = {"activity": 0.0438, "firing_neurons": 36.0}
    path.write_text(json.dumps(data))
    table, line = nb.learned_parameters(runs)
    assert line.startswith("probe of 2 of 2 runs' kept weights (the selected epoch) · code ")
    assert "not probed" not in line
    rows = table.set_index(["model", "quantity"])
    assert rows.loc[("lif", "threshold"), "learned"] == pytest.approx(6.3657)
    assert rows.loc[("lif", "threshold"), "ratio"] == pytest.approx(6.3657)
    assert rows.loc[("lif", "input weights, norm"), "ratio"] == pytest.approx(20)
    assert rows.loc[("lif", nb.POSITIVE_BIAS), "learned"] == pytest.approx(200 / 3)  # 2 of the 3 finite biases
    bias = rows.loc[("src", "bias b_h, mean")]
    assert bias["initial"] == -6.0 and bias["ratio"] != bias["ratio"]  # no ratio of signed means
    # -4 and -4.000005 count as at the bound (half the neurons); none started there
    at_bound = rows.loc[("src", nb.AT_BOUND)]
    assert at_bound["initial"] == 0 and at_bound["learned"] == 50 and at_bound["ratio"] != at_bound["ratio"]
    recorded = runs.table.set_index("model")["test_activity"]
    assert rows.loc[("src", nb.RECORDED), "learned"] == recorded["src"]
    assert rows.loc[("src", nb.SILENT), "learned"] == 0.0438 and rows.loc[("src", nb.SILENT), "initial"] == 0.0
    assert rows.loc[("src", nb.FIRING), "learned"] == 36.0
    assert list(table.loc[table["model"] == "lif", "quantity"]) == [
        "input weights, norm", "input bias, mean", "leak beta", "threshold", nb.POSITIVE_BIAS, nb.SILENT, nb.FIRING,
        nb.RECORDED]
    assert table.loc[table["quantity"] == nb.SILENT, "layer"].isna().all()
    assert (table.loc[table["quantity"] == "threshold", "layer"] == 1).all()
    text = nb.learned_parameter_findings(table)
    assert text.startswith("* mnist-rate, 1 layer: ")
    start = rows.loc[("lif", "input bias, mean"), "initial"]  # PyTorch's default bias init, near 0
    assert (f"LIF (seed 0): input weights ×20.0, input bias {start:.2f} → 0.08, leak beta 0.90 → 1.01, threshold "
            "1.00 → 6.37, 67 % with input bias > 0, input weights per unit threshold ×3.1, no leak left (beta clamped "
            "to 1) in 1 of 1 seed; trained, without input spikes: activity ") in text
    assert "SRC (seed 0): input weights ×" in text
    assert "SRC (seed 0): " in text and "bias b_h -6.00 → -4.63, 50 % with b_h within 0.01 of its bound" in text
    share = 100 * 0.0438 / recorded["src"]
    assert (f"without input spikes: activity 0.044 from 36 % of its neurons, against {recorded['src']:.3f} recorded "
            f"with its test inputs ({share:.0f} % of it)") in text


def test_the_page_leaves_out_probes_of_other_or_retrained_runs(data_root, results_tmp, tmp_path, monkeypatch):
    from reprolib import notebook as nb

    _stepping_clock(monkeypatch)
    records = [train(_activity_run("lif", seed), results_dir=results_tmp, progress=False) for seed in (0, 1)]
    path = results_tmp / "analysis" / "src-table2-ci-parameters.json"
    probe_parameters([records[1].path], path, progress=False)  # seed 1 only
    assert nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0])) is None  # the page shows seed 0 only
    table, line = nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1]))
    assert set(table["seed"]) == {1} and line.endswith(" · not probed: 1 not given to the probe")  # seed 0: older
    later = train(_activity_run("lif", 2), results_dir=results_tmp, progress=False)
    _, line = nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1, 2]))
    assert line.endswith(" · not probed: 1 not given to the probe; 1 recorded after the probe")
    probe_parameters([records[0].path, records[1].path], path, progress=False)
    original = path.read_text()
    _, line = nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1]))
    assert line.startswith("probe of 2 of 2 runs'") and "not probed" not in line

    def altered(change) -> tuple:
        data = json.loads(original)
        change(data["payload"]["runs"][0])  # seed 0's row
        path.write_text(json.dumps(data))
        return nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1]))

    # a re-run of seed 0's config after the probe: another end time, or other test numbers; the row is left out
    for change in (lambda run: run.update(record_end_time="2099-01-01T00:00:00+00:00"),
                   lambda run: run.update(selected_epoch=run["selected_epoch"] + 1),
                   lambda run: run.update(test_accuracy=run["test_accuracy"] + 0.0001),
                   lambda run: run.update(test_loss=run["test_loss"] * 1.001)):
        table, line = altered(change)
        assert set(table["seed"]) == {1} and line.endswith(" · not probed: 1 trained again after the probe")
    # an older probe file without end times or losses is compared on what it has
    table, _ = altered(lambda run: [run.pop(key) for key in ("record_end_time", "test_loss", "test_activity")])
    assert set(table["seed"]) == {0, 1}
    # every probed run trained again: the caption says so over an empty table
    data = json.loads(original)
    for run in data["payload"]["runs"]:
        run["record_end_time"] = "2099-01-01T00:00:00+00:00"
    path.write_text(json.dumps(data))
    table, line = nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1]))
    assert table.empty and line.startswith("probe of 0 of 2 runs'")
    assert line.endswith(" · not probed: 2 trained again after the probe")
    assert nb.learned_parameter_findings(table) == ""
    assert later.hash not in path.read_text()


def _stepping_clock(monkeypatch):
    # times have whole seconds and a ci run trains in under one: a clock a second further at every reading keeps
    # 'recorded after the probe' from depending on whether a run and the probe fell in the same second
    import datetime
    import itertools

    from reprolib.results import provenance

    start, ticks = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), itertools.count()
    monkeypatch.setattr(provenance, "utc_now", lambda: (start + datetime.timedelta(seconds=next(ticks))).isoformat(
        timespec="seconds"))


def test_a_refreshed_probe_keeps_what_an_earlier_one_measured_of_runs_whose_weights_are_gone(
        data_root, results_tmp, monkeypatch):
    from reprolib import notebook as nb

    _stepping_clock(monkeypatch)
    first, second = (train(_activity_run("lif", seed), results_dir=results_tmp, progress=False) for seed in (0, 1))
    path = results_tmp / "analysis" / "src-table2-ci-parameters.json"
    probe_parameters([first.path, second.path], path, progress=False)
    before = json.loads(path.read_text())["payload"]
    assert before["carried"] == {} and before["earlier_probes"] == {}
    # the machine that trained seed 0 is gone with its checkpoints; seed 2 lands elsewhere and the probe is refreshed
    shutil.rmtree(results_tmp / "src-table2" / ".ckpt" / first.hash)
    third = train(_activity_run("lif", 2), results_dir=results_tmp, progress=False)
    probe_parameters([first.path, second.path, third.path], path, progress=False, skip_missing=True)
    after = json.loads(path.read_text())["payload"]
    assert [run["record"] for run in after["runs"]] == [first.hash, second.hash, third.hash]  # the input's order
    assert after["runs"][0] == before["runs"][0] and after["skipped_without_weights"] == []
    first_probe = before["provenance"]["end_time"]
    assert after["carried"] == {first.hash: first_probe}
    assert after["earlier_probes"] == {first_probe: before["provenance"]}
    # the page names each probe with the runs it measured
    table, line = nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1, 2]))
    assert set(table["seed"]) == {0, 1, 2}
    assert line.startswith("probe of 3 of 3 runs' kept weights (the selected epoch): 1 probed at code ")
    assert "; 2 at code " in line and "not probed" not in line
    # refreshed again where seed 1's weights are gone too: seed 0's row keeps the first probe's provenance
    shutil.rmtree(results_tmp / "src-table2" / ".ckpt" / second.hash)
    probe_parameters([first.path, second.path, third.path], path, progress=False, skip_missing=True)
    again = json.loads(path.read_text())["payload"]
    second_probe = after["provenance"]["end_time"]
    assert again["carried"] == {first.hash: first_probe, second.hash: second_probe}
    assert again["earlier_probes"] == {first_probe: before["provenance"], second_probe: after["provenance"]}
    _, line = nb.learned_parameters(_page_runs(nb, results_tmp, seeds=[0, 1, 2]))
    assert line.count(" probed at code ") == 2 and "; 1 at code " in line
    # a row of another run of the config (here: another end time) is not carried; the record is listed instead
    data = json.loads(path.read_text())
    data["payload"]["runs"][0]["record_end_time"] = "2099-01-01T00:00:00+00:00"
    path.write_text(json.dumps(data))
    probe_parameters([first.path, third.path], path, progress=False, skip_missing=True)
    last = json.loads(path.read_text())["payload"]
    assert last["skipped_without_weights"] == [first.hash] and last["carried"] == {}
    assert [run["record"] for run in last["runs"]] == [third.hash]


def test_a_probe_refuses_to_replace_a_file_it_cannot_keep_rows_from(data_root, results_tmp, tmp_path):
    kept, gone = (train(_activity_run("lif", seed), results_dir=results_tmp, progress=False) for seed in (0, 1))
    shutil.rmtree(results_tmp / "src-table2" / ".ckpt" / gone.hash)
    out = tmp_path / "probe.json"
    for text, match in (("not json", "is there but is not a probe file"),
                        ('{"payload": {"kind": "shift-probe", "experiment": "src-table2", "scale": "ci", '
                         '"provenance": {}, "runs": []}}', "holds a shift-probe of src-table2 at scale ci, not a "
                                                          "parameter-probe of src-table2 at scale ci"),
                        ('{"payload": {"kind": "parameter-probe", "experiment": "src-table2", "scale": "ci"}}',
                         "is there but is not a probe file")):
        out.write_text(text)
        with pytest.raises(ValueError, match=match):
            probe_parameters([kept.path, gone.path], out, progress=False, skip_missing=True)
        assert out.read_text() == text  # nothing written


def test_rows_written_before_probes_stated_the_record_end_time_are_matched_on_time_and_epoch():
    from reprolib.training.probe_files import _same_run

    record = SimpleNamespace(provenance={"end_time": "2026-12-01T10:00:00+00:00"}, final={"selected_epoch": 100})
    probe = {"start_time": "2026-12-02T08:00:00+00:00"}
    assert _same_run({"selected_epoch": 100}, record, probe)
    assert not _same_run({"selected_epoch": 99}, record, probe)  # another epoch's weights
    assert not _same_run({"selected_epoch": 100}, record, {"start_time": "2026-11-30T08:00:00+00:00"})  # run after
    assert not _same_run({"selected_epoch": 100}, record, {})
    assert _same_run({"record_end_time": "2026-12-01T10:00:00+00:00", "selected_epoch": 1}, record, {})
    assert not _same_run({"record_end_time": "2026-12-03T10:00:00+00:00", "selected_epoch": 100}, record, probe)
