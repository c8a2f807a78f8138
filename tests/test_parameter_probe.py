"""The parameter probe (reprolib probe-parameters) and the src-activity page's 'What training moved' section."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from reprolib.config import ConfigError, with_overrides
from reprolib.experiments import get_configs
from reprolib.training import train
from reprolib.training.build import initial_model
from reprolib.training.parameter_probe import parameter_summary, probe_parameters


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


def test_the_activity_page_shows_what_training_moved(data_root, results_tmp):
    from reprolib import notebook as nb

    params = nb.check_parameters("ci", [0], "cpu", False)
    records = {model: train(_activity_run(model), results_dir=results_tmp, progress=False) for model in ("src", "lif")}
    runs = nb.gather_runs("src-activity", params, input=["mnist-rate"], layers=[1])
    assert nb.learned_parameters(runs) is None  # no probe committed yet
    probe_parameters([r.path for r in records.values()], results_tmp / "analysis" / "src-table2-ci-parameters.json",
                     progress=False)
    # the LIF's threshold and leak as if training had moved them to seed 1's values at paper scale
    path = results_tmp / "analysis" / "src-table2-ci-parameters.json"
    data = json.loads(path.read_text())
    for run in data["payload"]["runs"]:
        learned = run["learned"]
        if "blocks.0.lif.beta" in learned:
            learned["blocks.0.lif.beta"].update(mean=1.0105, values=[1.0105])
            learned["blocks.0.lif.threshold"].update(mean=6.3657, values=[6.3657])
            learned["blocks.0.linear.weight"]["norm"] = 20 * run["initial"]["blocks.0.linear.weight"]["norm"]
        else:
            values = [-4.0, -4.000005, -4.5, -6.0] * (len(learned["blocks.0.b_h"]["values"]) // 4)
            learned["blocks.0.b_h"].update(values=values, mean=sum(values) / len(values))
    path.write_text(json.dumps(data))
    table, line = nb.learned_parameters(runs)
    assert line.startswith("probe of 2 of 2 runs' kept weights (the selected epoch) · code ")
    rows = table.set_index(["model", "quantity"])
    assert rows.loc[("lif", "threshold"), "learned"] == pytest.approx(6.3657)
    assert rows.loc[("lif", "threshold"), "ratio"] == pytest.approx(6.3657)
    assert rows.loc[("lif", "input weights, norm"), "ratio"] == pytest.approx(20)
    assert rows.loc[("src", "bias b_h, mean"), "initial"] == -6.0
    # -4 and -4.000005 count as at the bound (half the neurons); none started there
    at_bound = rows.loc[("src", nb.AT_BOUND)]
    assert at_bound["initial"] == 0 and at_bound["learned"] == 50 and at_bound["ratio"] != at_bound["ratio"]
    assert list(table.loc[table["model"] == "lif", "quantity"]) == ["input weights, norm", "leak beta", "threshold"]
    text = nb.learned_parameter_findings(table)
    assert text.startswith("* mnist-rate, 1 layer: ")
    assert "LIF (seed 0): input weights ×20.0, leak beta 0.90 → 1.01, threshold 1.00 → 6.37" in text
    assert "input weights per unit threshold ×3.1" in text
    assert "no leak left (beta clamped to 1) in 1 of 1 seeds" in text
    assert "SRC (seed 0): " in text and "bias b_h -6.00 → -4.63" in text
    assert "50 % of b_h within 0.01 of its bound" in text
    # a probe of other runs than the page's: nothing to show
    other = nb.gather_runs("src-activity", params, input=["mnist-latency"], layers=[1])
    assert nb.learned_parameters(other) is None
