"""Notebook helpers: parameter validation, provenance, paper-vs-ours tables, missing-run notes."""

import math
import pathlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from reprolib import notebook as nb


def test_the_package_exports_every_public_helper_of_its_modules_and_hides_no_module():
    """Notebooks call ``nb.<helper>``: a helper added to a module but not to ``reprolib/notebook/__init__.py``, or a
    helper that shadows a module's name (``nb.runs`` must stay the module, for monkeypatching), fails here."""
    import ast
    import importlib
    import pkgutil

    modules = [info.name for info in pkgutil.iter_modules(nb.__path__)]
    assert {"parameters", "runs", "findings", "status"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"reprolib.notebook.{name}")
        assert getattr(nb, name) is module, f"nb.{name} is not the module reprolib.notebook.{name}"
        tree = ast.parse(pathlib.Path(module.__file__).read_text())
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        targets = [t for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
        targets += [node.target for node in tree.body if isinstance(node, ast.AnnAssign)]
        defined |= {name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)}
        public = {n for n in defined if not n.startswith("_")}
        assert public, f"reprolib.notebook.{name} defines no public helper"
        assert public <= set(nb.__all__), f"not exported from reprolib.notebook: {sorted(public - set(nb.__all__))}"
        assert all(getattr(nb, n) is getattr(module, n) for n in public)
    assert len(nb.__all__) == len(set(nb.__all__))


@pytest.fixture
def committed_results(monkeypatch):
    """The repository's committed results folder, read only, whatever REPROLIB_RESULTS says outside the test."""
    from reprolib.paths import REPO_ROOT

    monkeypatch.setenv("REPROLIB_RESULTS", str(REPO_ROOT / "results"))
    yield REPO_ROOT / "results"
    plt.close("all")


def test_check_parameters_accepts_the_book_defaults():
    params = nb.check_parameters(scale="paper", seeds=[0, 1, 2], device="auto", train_missing=False, layers=[1, 2])
    assert params.scale == "paper" and params.seeds == (0, 1, 2)
    assert params.device in ("cpu", "cuda")
    assert params["layers"] == [1, 2]


@pytest.mark.parametrize("kwargs, message", [
    (dict(scale="huge"), "scale='huge'"),
    (dict(seeds="0"), "seeds"),
    (dict(seeds=[]), "seeds"),
    (dict(seeds=[0, 0]), "duplicates"),
    (dict(seeds=[-1]), "seeds"),
    (dict(device="tpu"), "device"),
    (dict(train_missing="yes"), "train_missing"),
])
def test_check_parameters_rejects_bad_values_with_a_clear_message(kwargs, message):
    base = dict(scale="ci", seeds=[0], device="cpu", train_missing=True)
    with pytest.raises(ValueError, match=message):
        nb.check_parameters(**{**base, **kwargs})


def test_knob_checks():
    assert nb.check_choice("encoding", "rate", ["rate", "latency"]) == "rate"
    with pytest.raises(ValueError, match="encoding='phase'"):
        nb.check_choice("encoding", "phase", ["rate", "latency"])
    assert nb.check_subset("layers", [1, 5], [1, 2, 3, 5]) == [1, 5]
    with pytest.raises(ValueError, match=r"\[4\]"):
        nb.check_subset("layers", [1, 4], [1, 2, 3, 5])
    with pytest.raises(ValueError, match="positive integer"):
        nb.check_positive("steps", 0, integer=True)


RECORD = {
    "config": {"scale": "ci", "seed": 0},
    "provenance": {"git_commit": "0123456789abcdef", "git_dirty": True, "device": "cpu",
                   "end": "2026-11-23T13:00:00+00:00"},
}


def test_provenance_line_names_scale_seeds_code_device_date():
    other = {**RECORD, "config": {"scale": "ci", "seed": 1}}
    line = nb.provenance_line([RECORD, other])
    assert "scale ci" in line and "2 seeds" in line and "01234567+dirty" in line
    assert "cpu" in line and "2026-11-23" in line
    assert "no run records" in nb.provenance_line([], scale="paper")


def test_paper_vs_ours_marks_missing_numbers():
    frame = pd.DataFrame({
        "item": ["a", "b", "c"],
        "paper": [90.0, math.nan, 80.0],
        "ours": [91.5, 70.0, math.nan],
        "ours_std": [0.5, math.nan, math.nan],
        "runs": [3, 1, math.nan],
    })
    table = nb.paper_vs_ours(frame, ["item"])
    assert list(table.columns) == ["item", "paper", "ours", "difference"]
    assert table.loc[0, "difference"] == "+1.50" and table.loc[0, "ours"] == "91.50 ± 0.50 (n=3)"
    assert table.loc[1, "paper"] == nb.NOT_AVAILABLE and table.loc[1, "difference"] == nb.NOT_AVAILABLE
    assert table.loc[2, "ours"] == nb.NOT_RUN and table.loc[2, "difference"] == nb.NOT_RUN


def test_missing_runs_note_gives_the_exact_sweep_command():
    note = nb.missing_runs_note("src-table2", "paper", [0, 1, 2], missing=40, total=40, train_missing=False)
    assert "reprolib sweep src-table2 --scale paper --seeds 0 1 2" in note
    assert nb.missing_runs_note("src-table2", "paper", [0], missing=0, total=4, train_missing=False) == ""


def test_dataset_note():
    assert nb.dataset_note("SHD", "found") == ""
    assert "not available" in nb.dataset_note("SHD", "missing", "reprolib sweep brf-shd --scale paper --seeds 0")
    with pytest.raises(ValueError):
        nb.dataset_note("SHD", "gone")


def test_record_info_names_a_non_default_backend():
    from reprolib.notebook import record_info

    base = {"config": {"seed": 0, "scale": "paper"}, "provenance": {"device_name": "cpu (x86_64, 1 threads)"}}
    assert record_info(base)["device"] == "cpu (x86_64, 1 threads)"  # records from before the backend field
    cpp = {**base, "config": {**base["config"], "backend": "cpp"}}
    assert record_info(cpp)["device"] == "cpu (x86_64, 1 threads), cpp backend"
    # a set of runs that mixes backends names the default one too, so the line reads as two kinds of run
    assert nb.provenance([base])["device"] == "cpu (x86_64, 1 threads)"
    assert nb.provenance([base, cpp])["device"] == "cpu (x86_64, 1 threads), cpp backend; cpu (x86_64, 1 threads), torch backend"


def test_record_info_marks_a_stated_commit():
    from reprolib.notebook import record_info

    run = {"config": {"seed": 0}, "provenance": {"git_commit": "0123456789ab", "git_dirty": False}}
    assert record_info(run)["code"] == "01234567"
    run["provenance"]["git_commit_from"] = "$REPROLIB_GIT_COMMIT (no git repository where it ran)"
    assert record_info(run)["code"] == "01234567 (stated)"


def test_run_records_and_benchmark_records_write_a_code_version_alike():
    # run records and benchmark JSONs name the commit fields alike; the book writes both the same way
    assert nb.format_code_version("0123456789ab") == "01234567"
    assert nb.format_code_version("0123456789ab", True) == "01234567+dirty"
    assert nb.format_code_version(None, True) == nb.format_code_version("") == "unknown"
    run = {"config": {"seed": 0}, "provenance": {"git_commit": "0123456789ab", "git_dirty": True}}
    assert nb.record_info(run)["code"] == nb.bench_code_version({"git_commit": "0123456789ab", "git_dirty": True})
    assert nb.bench_code_version({}) == "unknown"


def test_ours_table_writes_each_metric_or_not_run():
    summary = pd.DataFrame({"model": ["src", "lif"], "layers": [5, 5], "loss_mean": [0.12345, math.nan],
                            "loss_std": [0.01, math.nan], "time_mean": [61.25, math.nan], "time_std": [math.nan] * 2,
                            "n_runs": [2, 0]})
    table = nb.ours_table(summary, {"loss": "test loss", "time": "epoch time (s)"}, ["model", "layers"],
                          decimals={"loss": 4, "time": 1})
    assert list(table.columns) == ["model", "layers", "test loss", "epoch time (s)"]
    assert table.iloc[0].tolist() == ["src", 5, "0.1235 ± 0.0100 (n=2)", "61.2 (n=2)"]
    assert table.iloc[1, 2:].tolist() == [nb.NOT_RUN, nb.NOT_RUN]
    indexed = nb.ours_table(summary.set_index(["model", "layers"]), {"loss": "test loss"}, ["model", "layers"],
                            decimals=4)  # a summary indexed by its groups gives the same table
    assert indexed["test loss"].tolist() == table["test loss"].tolist()


def test_paper_vs_summary_reads_one_metric_of_a_run_summary():
    summary = pd.DataFrame({
        "layers": [2, 3, 5],
        "test_accuracy_mean": [91.5, 70.0, math.nan], "test_accuracy_std": [0.5, math.nan, math.nan],
        "val_accuracy_mean": [1.0, 2.0, 3.0], "val_accuracy_std": [0.0, 0.0, 0.0],
        "n_runs": [3, 1, 0],
        "paper": [90.0, math.nan, 80.0],
    })
    table = nb.paper_vs_summary(summary, "test_accuracy", ["layers"])
    assert list(table.columns) == ["layers", "paper", "ours", "difference"]
    assert table["layers"].tolist() == [2, 3, 5] and table["layers"].dtype.kind == "i"  # shown as 2, not 2.0
    assert table["ours"].tolist() == ["91.50 ± 0.50 (n=3)", "70.00 (n=1)", nb.NOT_RUN]
    assert table["difference"].tolist() == ["+1.50", nb.NOT_AVAILABLE, nb.NOT_RUN]
    # the metric picks the columns, and spread=False leaves out the std and the number of runs
    assert nb.paper_vs_summary(summary, "val_accuracy", ["layers"], spread=False, decimals=0)["ours"].tolist() == [
        "1", "2", "3"]
    summary["ref"], summary["ref_std"] = [99.0, math.nan, math.nan], [0.1, math.nan, math.nan]
    table = nb.paper_vs_summary(summary, "test_accuracy", ["layers"], paper="ref", paper_std="ref_std")
    assert table.loc[0, "paper"] == "99.00 ± 0.10" and table.loc[0, "difference"] == "-7.50"
    with pytest.raises(ValueError, match="test_loss_mean"):
        nb.paper_vs_summary(summary, "test_loss", ["layers"])
    with pytest.raises(ValueError, match="'paper'"):
        nb.paper_vs_summary(summary.drop(columns=["paper"]), "test_accuracy", ["layers"])


def test_paper_vs_summary_takes_summarize_output_with_its_groups_as_index():
    from reprolib.results import summarize

    records = pd.DataFrame({"model": ["a", "a", "b"], "test_accuracy": [80.0, 82.0, 70.0]})
    summary = summarize(records, by=["model"], metrics=["test_accuracy"])
    summary["paper"] = [81.0, math.nan]
    table = nb.paper_vs_summary(summary, "test_accuracy", ["model"])
    assert table["model"].tolist() == ["a", "b"]
    assert table["ours"].tolist() == ["81.00 ± 1.41 (n=2)", "70.00 (n=1)"]
    assert table["difference"].tolist() == ["+0.00", nb.NOT_AVAILABLE]


def test_brf_tasks_are_the_brf_presets_and_name_the_papers_tasks():
    from reprolib import reference
    from reprolib.experiments import PRESETS

    # every BRF preset that compares the neurons is a task (probes such as brf-ecg-alif-bias have no neuron axis)
    assert set(nb.BRF_TASKS.values()) == {name for name, p in PRESETS.items() if p.source == "brf-neurons.md"
                                          and any(axis.name == "neuron" for axis in p.axes)}
    assert "brf-ecg-alif-bias" in PRESETS
    assert list(nb.BRF_TASKS) == list(reference.table("brf-table1")["task"].drop_duplicates())
    neurons = nb.brf_neurons()
    assert neurons == ["brf", "rf", "alif"]
    trained = set(reference.table("brf-table1")["model"])
    assert {n.upper() for n in neurons} <= trained   # the paper's names of our models
    with pytest.raises(ValueError, match="no axis 'depth'"):
        nb.axis_choices("brf-ecg", "depth")


def test_brf_runs_checks_tasks_and_neurons_before_gathering():
    params = nb.check_parameters("ci", [0], "cpu", False)
    with pytest.raises(ValueError, match="tasks=\\['MNIST'\\]"):
        nb.brf_runs(params, ["MNIST"], ["brf"])
    with pytest.raises(ValueError, match="neurons=\\['lif'\\]"):
        nb.brf_runs(params, ["ECG"], ["lif"])


def test_brf_runs_gathers_one_experiment_per_task_in_order(results_tmp, monkeypatch):
    monkeypatch.setattr(nb.runs, "dataset_status", lambda name: "found")
    params = nb.check_parameters("ci", [0], "cpu", False)
    runs = nb.brf_runs(params, ["SHD", "ECG"], ["rf", "brf"])
    assert list(runs) == ["SHD", "ECG"]
    assert [r.experiment for r in runs.values()] == ["brf-shd", "brf-ecg"]
    assert sorted(runs["ECG"].grid["neuron"]) == ["brf", "rf"] and not runs["ECG"].grid["has_record"].any()
    assert nb.tasks_provenance(runs) == "SHD: scale ci · no run records yet\nECG: scale ci · no run records yet"


def test_task_status_table_has_one_row_per_task_with_counts_and_commands(results_tmp, monkeypatch):
    monkeypatch.setattr(nb.runs, "dataset_status", lambda name: "missing" if name == "shd" else "found")
    params = nb.check_parameters("ci", [0], "cpu", False)
    runs = nb.brf_runs(params, ["ECG", "SHD"], ["brf", "rf"])
    text = nb.task_status_table(runs)
    rows = [line for line in text.splitlines() if line.startswith("| ECG") or line.startswith("| SHD")]
    assert len(rows) == 2
    # the page runs part of the preset's grid, and says which part (the status page counts the whole grid)
    assert "| `brf-ecg` (neuron = brf, rf, labels = source) | 0 of 2 |" in rows[0]
    assert "reprolib sweep brf-ecg --scale ci --seeds 0" in rows[0]
    assert "shd is not available on this machine" in text  # the unavailable dataset is said once, below
    assert nb.NOT_RUN in text


def test_reproduction_status_counts_records_per_experiment(results_tmp, monkeypatch):
    import shutil

    from reprolib.experiments import get_configs
    from reprolib.paths import REPO_ROOT

    monkeypatch.setattr(nb.status, "dataset_status", lambda name: "missing" if name == "shd" else "found")
    status = nb.reproduction_status("paper", results_tmp).set_index("experiment")
    assert "toy" not in status.index and {"sj-seq-fmnist", "brf-ecg", "src-table2"} <= set(status.index)
    assert (status["with record"] == 0).all() and (status["runs"] > 0).all()
    # src-activity and src-overfit draw on src-table2's runs: the total counts each run once
    activity, table2 = ({c.hash for c in get_configs(e, "paper")} for e in ("src-activity", "src-table2"))
    assert activity & table2
    every_run = {c.hash for experiment in status.index for c in get_configs(experiment, "paper")}
    assert status.attrs["distinct_runs"] == len(every_run) < status["runs"].sum()
    assert status.attrs["distinct_with_record"] == 0
    assert status.loc["brf-shd", "data not here"] == "shd (missing)"
    assert status.loc["brf-ecg", "to complete"].startswith("reprolib sweep brf-ecg --scale paper --seeds 0 1 2 3 4")
    # a committed record counts once it is in the results folder
    shutil.copytree(REPO_ROOT / "results" / "sj-clock-lif-mnist", results_tmp / "sj-clock-lif-mnist")
    status = nb.reproduction_status("paper", results_tmp)
    assert status.attrs["distinct_with_record"] == 1
    row = status.set_index("experiment").loc["sj-clock-lif-mnist"]
    assert (row["runs"], row["with record"], row["to complete"]) == (1, 1, "complete")
    assert row["records"].startswith("scale paper · 1 seed (1 run) ·")


def test_settings_dropdown_folds_each_presets_notes():
    from reprolib.experiments import get_preset

    text = nb.settings_dropdown(["brf-ecg", "sj-seq-fmnist"])
    assert text.startswith("```{dropdown} ") and text.endswith("\n```")
    assert get_preset("brf-ecg").notes in text and "**`sj-seq-fmnist`**" in text


def test_spot_check_retrains_a_cpu_record_identically(tmp_path, monkeypatch):
    import dataclasses

    from reprolib import notebook as nb
    from reprolib.config import with_overrides
    from reprolib.experiments import get_configs
    from reprolib.training import train
    from reprolib.training.rerun import spot_check

    shown = []
    monkeypatch.setattr(nb.status, "show_markdown", shown.append)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    nb.show_spot_check("ci", results_dir=tmp_path)
    assert "nothing to spot-check" in shown[-1]

    fast, slow = (get_configs("toy", "ci", seeds=[0], hidden=[h])[0] for h in (16, 32))
    records = [train(with_overrides(c, {"epochs": 2, "device": "cpu"}), results_dir=tmp_path, progress=False)
               for c in (fast, slow)]
    # the record with the shorter epochs is the one re-trained
    cheap = min(records, key=lambda r: r.final["mean_epoch_time_s"])
    assert nb.spot_check_record("ci", results_dir=tmp_path).hash == cheap.hash
    nb.show_spot_check("ci", results_dir=tmp_path)
    assert f"`toy/{cheap.hash}`" in shown[-1] and "is **identical**" in shown[-1]

    # a record whose first epoch does not come out of its config is reported as such
    history = [dict(h) for h in cheap.history]
    history[0]["test_accuracy"] += 0.01
    table, summary = spot_check(dataclasses.replace(cheap, history=history))
    assert not summary["identical"] and abs(summary["max_abs_accuracy_diff_pp"] - 1.0) < 1e-9
    gpu = dataclasses.replace(cheap, provenance={**cheap.provenance, "device": "cuda:0", "device_name": "H100"})
    with pytest.raises(ValueError, match="re-trains CPU records"):
        spot_check(gpu)

    # a record trained on another kind of CPU gives way to a slower one trained on this kind
    from reprolib.results.records import write_record

    other_cpu = {"model": "Some Other CPU", "torch_capability": "AVX2"}
    write_record(dataclasses.replace(cheap, provenance={**cheap.provenance, "cpu": other_cpu}), tmp_path)
    slower = max(records, key=lambda r: r.final["mean_epoch_time_s"])
    assert nb.spot_check_record("ci", results_dir=tmp_path).hash == slower.hash
    write_record(dataclasses.replace(slower, provenance={**slower.provenance, "cpu": other_cpu}), tmp_path)
    assert nb.spot_check_record("ci", results_dir=tmp_path).hash == cheap.hash  # none here: the shortest again


def test_frozen_since_finds_a_layer_whose_activity_stopped_changing():
    from reprolib.notebook import frozen_since

    learning = [{"epoch": e, "test_activity": 0.2 + 0.001 * math.sin(e)} for e in range(0, 60)]
    assert frozen_since(learning) is None
    stuck = [{"epoch": e, "test_activity": min(0.05 * e, 0.2227) + (1e-6 if e % 2 else 0)} for e in range(0, 60)]
    assert frozen_since(stuck) == 5  # 0.05 * 5 >= 0.2227: constant from epoch 5 to 59
    assert frozen_since(stuck[:20]) is None  # 15 frozen epochs are fewer than min_epochs
    assert frozen_since(stuck[:20], min_epochs=10) == 5
    assert frozen_since([{"epoch": 1}]) is None


def test_accuracy_findings_explain_each_miss_from_the_records():
    from types import SimpleNamespace

    from reprolib.notebook import accuracy_findings

    def run(seed, accuracy, activity_of_epoch):
        history = [{"epoch": e, "test_accuracy": accuracy / 100 - 0.001 * (40 - e) / 40,
                    "test_activity": activity_of_epoch(e)} for e in range(1, 41)]
        return {"neuron": "alif" if seed < 10 else "brf", "seed": seed % 10, "test_accuracy": accuracy,
                "history": history}

    learning = lambda e: 0.1 + 0.01 * (e % 3)  # noqa: E731
    frozen = lambda e: 0.2227 if e >= 12 else 0.01 * e  # noqa: E731
    table = pd.DataFrame([run(0, 60.0, frozen), run(1, 70.0, learning), run(10, 85.5, learning),
                          run(11, 86.0, learning)])
    paper = pd.DataFrame([{"task": "ECG", "model": "ALIF", "test_accuracy": 85.9, "test_accuracy_std": float("nan"),
                           "architecture": "4,36,6", "note": "Yin et al. 2021 network"},
                          {"task": "ECG", "model": "BRF", "test_accuracy": 85.8, "test_accuracy_std": 0.7,
                           "architecture": "4,36,6", "note": None}])
    released = pd.DataFrame([{"task": "ECG", "model": "ALIF", "test_accuracy_mean": 67.83, "test_accuracy_std": 3.23,
                              "runs": 5}])
    text = accuracy_findings({"ECG": SimpleNamespace(table=table)}, paper, released)
    alif, brf = text.splitlines()
    assert alif.startswith("* **ECG ALIF**: ours 65.00 ± 7.07 % (2 runs) against the paper's 85.9 %, 20.90 pp below, "
                           "more than 1 pp.")
    assert "Yin et al. 2021 network (4,36,6)" in alif
    assert "give 67.83 ± 3.23 % (5 runs): ours is 2.83 pp below, within their std" in alif
    assert "In 1 of 2 runs" in alif and "seed 0 from epoch 12" in alif
    assert brf == "* Within the paper's std: ECG BRF (-0.05 pp, 2 runs)."
    empty = accuracy_findings({"ECG": SimpleNamespace(table=pd.DataFrame())}, paper)
    assert "not run" in empty


def test_sop_ratio_divides_by_the_tasks_alif():
    from reprolib.notebook import sop_ratio

    summary = pd.DataFrame({"task": ["ECG", "ECG", "ECG", "SHD"], "model": ["BRF", "RF", "ALIF", "BRF"],
                            "test_spikes_per_sample_mean": [50.0, 120.0, 100.0, 7.0]})
    ratio = sop_ratio(summary)
    assert ratio.tolist()[:3] == [0.5, 1.2, 1.0] and math.isnan(ratio.iloc[3])  # SHD has no ALIF row
    with pytest.raises(ValueError, match="needs the columns"):
        sop_ratio(summary.drop(columns="task"))


def test_findings_name_runs_that_stopped_at_a_non_finite_loss():
    from types import SimpleNamespace

    from reprolib.notebook import accuracy_findings
    from reprolib.results.frame import _hashable

    history = [{"epoch": 0, "test_accuracy": 0.098}]
    stopped = _hashable({"epoch": 1, "batch": 2, "loss": "nan", "reason": "non-finite training loss"})
    table = pd.DataFrame([{"neuron": "rf", "seed": 0, "test_accuracy": 9.8, "history": history, "selected_epoch": 0,
                           "stopped_early": stopped},
                          {"neuron": "rf", "seed": 1, "test_accuracy": 50.0, "history": history, "selected_epoch": 3,
                           "stopped_early": None}])
    paper = pd.DataFrame([{"task": "PS-MNIST", "model": "RF", "test_accuracy": 9.9, "test_accuracy_std": 0.8,
                           "architecture": "1,256,10", "note": None}])
    text = accuracy_findings({"PS-MNIST": SimpleNamespace(table=table)}, paper)
    assert "In 1 of 2 runs the training loss turned non-finite (seed 0 in epoch 1 (reports epoch 0))" in text


def test_table_findings_say_what_bounds_each_comparison():
    from reprolib.notebook import table_findings

    def run(dataset, model, seed, test, train):
        # the subset's runs fit their training set and then their activity settles: that is not a frozen layer
        settles = dataset == "nmnist-subset"
        history = [{"epoch": e, "test_accuracy": test / 100, "train_accuracy": train / 100,
                    "test_activity": 0.2 if settles and e >= 12 else 0.1 + 0.01 * (e % 3)} for e in range(1, 41)]
        return {"dataset": dataset, "input": dataset, "model": model, "seed": seed, "test_accuracy": test,
                "train_accuracy": train, "history": history}

    table = pd.DataFrame([run("nmnist-subset", "src", 0, 80.0, 100.0), run("nmnist-subset", "src", 1, 84.0, 100.0),
                          run("mnist", "src", 0, 97.0, 98.0), run("mnist", "src", 1, 97.4, 98.5),
                          run("mnist", "lif", 0, 90.0, 92.0), run("fashion-mnist", "lif", 0, 80.0, 85.0)])
    paper = {("nmnist-subset", "src"): 97.42, ("mnist", "src"): 97.27, ("mnist", "lif"): 97.18}
    text = table_findings(table, ["input", "model"], lambda c: paper.get((c["input"], c["model"])),
                          lambda c: f"{c['input']} {c['model'].upper()}")
    nmnist, mnist_lif, within = text.splitlines()
    assert nmnist.startswith("* **nmnist-subset SRC**: ours 82.00 ± 2.83 % (2 runs) against the paper's 97.42 %, "
                             "15.42 pp below, more than 1 pp.")
    assert "subset of the data, 1,000 train + 100 test" in nmnist
    assert "test recordings sit higher on the sensor" in nmnist  # the data set's measured caveat
    assert "Every run fits its training set (train accuracy 100.00 ± 0.00 %)" in nmnist
    assert "The test set holds 100 samples: one sample is 1 pp" in nmnist and "error of 3.8 pp" in nmnist
    assert "In 2 of 2 runs the hidden activity stops changing only after the run fits" in nmnist
    assert "surrogate gradient vanishes" not in nmnist
    # a full test set of 10,000 needs no word on its resolution, and a run that does not fit its data is not "fit"
    assert "subset" not in mnist_lif and "test set holds" not in mnist_lif and "fits its training" not in mnist_lif
    assert within == "* Within 1 pp of the paper: mnist SRC (-0.07 pp, 2 runs)."
    # a cell the paper has no number for (fashion-mnist LIF here) is left out, and no records say so
    assert "fashion" not in text
    assert "not run" in table_findings(pd.DataFrame(), ["input"], lambda c: 1.0, str)


def test_unstable_drops_count_falls_beyond_the_test_sets_sampling():
    from reprolib.notebook import unstable_drops

    accuracy = {1: 0.86, 2: 0.90, 3: 0.915, 4: 0.90, 5: 0.60, 6: 0.85, 7: 0.93, 8: 0.90}
    history = [{"epoch": 0, "test_accuracy": 0.95}] + [{"epoch": e, "test_accuracy": a} for e, a in accuracy.items()]
    drops = unstable_drops(history, 10_000)
    # 1.5 pp at epoch 4 is under 2 pp; epoch 0 (untrained, when recorded) is not a fall of training
    assert [e for e, _ in drops] == [5, 8] and abs(drops[0][1] - 0.30) < 1e-9
    # on 100 samples four standard errors are about 17 pp at epoch 8 and 24.5 pp at epoch 5: only the 30 pp fall counts
    assert [e for e, _ in unstable_drops(history, 100)] == [5]
    assert unstable_drops(history, 100, z=0.0) == unstable_drops(history, 10_000, z=0.0)  # min_drop alone
    assert unstable_drops([{"epoch": 1, "test_accuracy": 0.9}], 10_000) == []
    # no fall is read across an epoch without a number (a gap, or NaN), and NumPy integers are sizes too
    gapped = [h for h in history if h["epoch"] != 4] + [{"epoch": 9, "test_accuracy": float("nan")},
                                                          {"epoch": 10, "test_accuracy": 0.5}]
    assert [e for e, _ in unstable_drops(gapped, np.int64(10_000))] == [8]
    with pytest.raises(ValueError, match="test_size = 0 is not allowed"):
        unstable_drops(history, 0)


def test_findings_name_runs_whose_accuracy_fell_between_epochs():
    from reprolib.notebook import table_findings

    steady = [{"epoch": e, "test_accuracy": 0.90 + 0.001 * e} for e in range(1, 21)]
    dipping = [dict(h, test_accuracy=0.70 if h["epoch"] in (6, 20) else h["test_accuracy"]) for h in steady]
    table = pd.DataFrame([{"dataset": "mnist", "input": "mnist", "seed": 0, "test_accuracy": 70.0,
                           "selected_epoch": 20, "history": dipping},
                          {"dataset": "mnist", "input": "mnist", "seed": 1, "test_accuracy": 92.0,
                           "selected_epoch": 20, "history": steady}])
    text = table_findings(table, ["input"], lambda c: 97.0, lambda c: c["input"])
    assert ("In 1 of 2 runs the test accuracy fell from one epoch to the next by more than 2 pp and by more than "
            "four binomial standard errors of the 10,000-sample test set (seed 0: 2 times, first at epoch 6, the "
            "largest 21.90 pp at epoch 20; its best epoch (19) scored 91.90 %, the epoch it reports (20) 70.00 %): "
            "falls far beyond what a test set that size resolves, so the network itself lost ground it had gained."
            ) in text
    # a run that reports its best epoch says no more than the falls
    table.loc[0, "selected_epoch"] = 19
    assert "(seed 0: 2 times, first at epoch 6, the largest 21.90 pp at epoch 20)" in table_findings(
        table, ["input"], lambda c: 97.0, lambda c: c["input"])
    assert "fell from one epoch" not in table_findings(table.iloc[1:], ["input"], lambda c: 97.0, str)
    # evaluated on a test subset of 64 samples, a 22 pp fall is within what that many samples resolve
    subset = table.assign(test_subset=64)
    assert "fell from one epoch" not in table_findings(subset, ["input"], lambda c: 97.0, str)
    assert "The test set holds 64 samples" in table_findings(subset, ["input"], lambda c: 97.0, str)


def test_still_improving_measures_the_gain_of_the_last_eighth():
    from reprolib.notebook import still_improving

    rising = [{"epoch": e, "test_accuracy": 0.5 + 0.001 * e} for e in range(0, 401)]
    assert abs(still_improving(rising) - 0.05) < 1e-9  # 50 epochs x 0.001
    flat = [{"epoch": e, "test_accuracy": 0.8} for e in range(0, 401)]
    assert still_improving(flat) is None
    assert still_improving(rising[:5]) is None  # too short to say


def test_compare_variants_and_preset_seeds():
    from reprolib.notebook import check_parameters, compare_variants, preset_seeds

    history = [{"epoch": e, "test_activity": 0.3} for e in range(1, 40)]
    runs = pd.DataFrame([{"seed": 0, "test_accuracy": 60.0, "history": history},
                         {"seed": 1, "test_accuracy": 70.0, "history": [dict(h, test_activity=0.1 * (h["epoch"] % 2))
                                                                          for h in history]}])
    table = compare_variants({"plain": runs, "probe": pd.DataFrame()})
    assert table.loc["plain"].tolist() == [2, "65.00 ± 7.07", "seed 0 (epoch 1)", "70.00 (1)"]
    assert table.loc["probe", "runs"] == 0 and "not run" in table.loc["probe", "test_accuracy"]

    params = check_parameters("paper", [0, 1, 2, 3, 4], "cpu", False)
    assert preset_seeds(params, "brf-ecg-alif-bias").seeds == (0, 1, 2)
    assert preset_seeds(check_parameters("paper", [4], "cpu", False), "brf-ecg-alif-bias").seeds == (0, 1, 2)


def test_seeds_none_means_each_experiments_own_seeds(results_tmp):
    from reprolib.notebook import check_parameters, gather_runs, preset_seeds

    params = check_parameters("paper", None, "cpu", False)
    assert params.seeds is None
    assert params.seeds_for("src-table2") == [0, 1, 2, 3, 4]
    assert params.seeds_for("sj-seq-fmnist") == [2020]      # the tutorial's one seeded run
    assert params.seeds_for("brf-ecg-alif-bias") == [0, 1, 2]
    assert preset_seeds(params, "brf-ecg-alif-bias") is params
    assert check_parameters("ci", None, "cpu", False).seeds_for("src-table2") == [0]
    # a page run without seeds counts, and asks for, every seed of the preset
    runs = gather_runs("sj-seq-fmnist", check_parameters("paper", None, "cpu", False))
    assert {c.seed for c in runs.configs} == {2020} and len(runs.configs) == 3
    assert "--seeds 2020" in runs.command()
    explicit = gather_runs("sj-seq-fmnist", check_parameters("paper", [1], "cpu", False))
    assert {c.seed for c in explicit.configs} == {1}


def test_run_by_run_names_the_code_of_every_session_behind_each_number(results_tmp):
    import dataclasses

    from reprolib.experiments import get_configs
    from reprolib.notebook import check_parameters, gather_runs
    from reprolib.results import Record, write_record

    configs = get_configs("sj-seq-fmnist", "paper")
    for i, config in enumerate(configs):
        device_name = "cpu | x86_64" if i == 2 else "cpu (x86_64)"  # a | must not split the markdown table
        provenance = {"git_commit": f"{i}" * 40, "git_dirty": False, "device": "cpu", "device_name": device_name,
                      "end_time": "2026-11-30T04:00:00+00:00"}
        if i == 0:  # resumed from a checkpoint made by other code, on another CPU (one session predates the field)
            provenance["earlier_sessions"] = [{"git_commit": "a" * 40, "until_epoch": 3, "cpu": {"model": "Xeon"}},
                                              {"git_commit": "b" * 40, "until_epoch": 5}]
        if i != 1:  # i == 1: a record from before the CPU was recorded
            provenance["cpu"] = {"model": "EPYC", "torch_capability": "AVX512"}
        if i == 2:  # how it computed, stated beside the device
            config = dataclasses.replace(config, flush_denormal=True)
        write_record(Record(config, [{"epoch": 1, "test_accuracy": 0.5}], {"test_accuracy": 0.5 + i / 10}, provenance))
    runs = gather_runs("sj-seq-fmnist", check_parameters("paper", None, "cpu", False))
    table = runs.run_by_run()
    assert len(table) == 3 and list(table.columns[-6:]) == ["seed", "test_accuracy", "code", "device", "date", "record"]
    assert sorted(table["test_accuracy"]) == [50.0, 60.0, 70.0]
    codes = dict(zip(table["test_accuracy"], table["code"]))
    assert codes[50.0] == "00000000 (resumed; earlier aaaaaaaa, bbbbbbbb)" and codes[60.0] == "11111111"
    devices = dict(zip(table["test_accuracy"], table["device"]))
    assert devices == {50.0: "cpu (x86_64) on Xeon then EPYC (AVX512), CPU model of 1 of 3 sessions not recorded, "
                             "torch backend",
                       60.0: "cpu (x86_64), CPU model not recorded, torch backend",
                       70.0: "cpu | x86_64 on EPYC (AVX512), torch backend, subnormals flushed"}
    assert runs.provenance_line().count("EPYC") == 0  # the CPU model is for the run-by-run table, not captions
    # a flat or nested record dict (not a records-table row) keeps its sessions as dicts
    assert nb.session_cpus({"provenance.earlier_sessions": [{"cpu": {"model": "X"}}, {}], "provenance.cpu.model": "Y"}) \
        == ["X", None, "Y"]
    sessions = [{"cpu": {"model": "X"}}, {"cpu": {"model": "Y"}}]
    nested = {"config": {"seed": 0},
              "provenance": {"device_name": "cpu (x86_64)", "cpu": {"model": "X"}, "earlier_sessions": sessions}}
    assert nb.session_cpus(nested) == ["X", "Y", "X"]
    assert nb.device_text(nested, cpu=True) == "cpu (x86_64) on X then Y then X"  # back on X at the end
    # one model with two instruction sets rounds as two CPUs do: the text tells them apart
    nested["provenance"]["earlier_sessions"] = [{"cpu": {"model": "X", "torch_capability": "AVX2"}}]
    nested["provenance"]["cpu"]["torch_capability"] = "AVX512"
    assert nb.device_text(nested, cpu=True) == "cpu (x86_64) on X (AVX2) then X (AVX512)"
    text = runs.run_by_run_dropdown()
    assert text.startswith("```{dropdown} Run by run: the 3 records behind this page") and text.count("\n| ") == 4
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len({line.replace("\\|", "").count("|") for line in rows}) == 1 and "cpu \\| x86_64" in text
    empty = gather_runs("sj-seq-fmnist", check_parameters("paper", [7], "cpu", False))
    assert empty.run_by_run().empty and empty.run_by_run_dropdown() == ""


def test_activity_order_reads_the_shared_table2_records(monkeypatch):
    from reprolib.notebook import check_parameters, gather_runs

    monkeypatch.setattr(nb.runs, "dataset_status", lambda name: "found")
    runs = gather_runs("src-activity", check_parameters("paper", [0, 1], "cpu", False), input="mnist-rate",
                       layers=1)
    # src-activity draws on src-table2's runs: the page points at the folder they are in
    assert "Each record is `results/src-table2/<record>.json`;" in runs.run_by_run_dropdown()
    (row,) = nb.activity_order(runs).to_dict("records")
    per_model = runs.table.groupby("model")["test_activity"].mean()
    assert row["paper"] == "SRC > LIF" and row["ours"] == pytest.approx(per_model["src"] - per_model["lif"])
    wins, paired = row["SRC higher"], row["paired seeds"]
    per_seed = runs.table.pivot_table(index="seed", columns="model", values="test_activity")
    assert paired == 2 and wins == int((per_seed["src"] > per_seed["lif"]).sum())
    assert row["agrees"] == ((row["ours"] > 0) if wins in (0, paired) else None)
    assert not math.isnan(row["after epoch 1"])
    text = nb.activity_order_findings(nb.activity_order(runs))
    assert text.startswith("* mnist-rate, 1 layer: ") and f"{row['ours']:+.4f}" in text
    assert f"SRC higher in {wins} of 2 seeds" in text
    assert ("the opposite of the paper's order" in text) == (row["agrees"] is False)
    assert ("no consistent order across seeds" in text) == (0 < wins < paired)


def test_sop_findings_say_when_the_alif_row_drives_the_ratios():
    summary = pd.DataFrame({"task": ["ECG"] * 3 + ["SHD"] * 3, "model": ["BRF", "RF", "ALIF"] * 2,
                            "test_spikes_per_sample_mean": [90.0, 105.0, 30.0] + [math.nan] * 3,
                            "paper SOPs": [100.0, 100.0, 100.0, 50.0, 60.0, 70.0],
                            "paper architecture": ["4,36,6"] * 3 + ["700,128,20"] * 3,
                            "paper parameters": [1734, 1734, 1776, 1, 1, 1]})
    text = nb.sop_findings(summary)
    assert text.startswith("* ECG, SOPs per sample, ours against the paper's: BRF 90 against 100 (-10 %); ")
    assert ("Our BRF and RF are within 20 % of the paper's counts (-10 % to +5 %) and our ALIF is not" in text
            and "(the paper's ALIF row: Yin et al. 2021 network)" in text)  # the reference's note on the row
    assert "SHD" not in text  # no runs there: nothing to say
    remark = "through the ALIF row alone"
    summary.loc[2, "test_spikes_per_sample_mean"] = 95.0  # ALIF as close as the others: no remark
    assert remark not in nb.sop_findings(summary)
    summary.loc[:2, "test_spikes_per_sample_mean"] = [160.0, 150.0, 190.0]  # every row far off: not ALIF's doing
    assert remark not in nb.sop_findings(summary)


def test_is_missing_reads_none_nan_and_pandas_na_but_not_zero():
    import numpy as np

    assert all(nb.is_missing(v) for v in (None, float("nan"), np.float64("nan"), np.float32("nan"), pd.NA, pd.NaT,
                                          pd.Series([None], dtype="Int64").iloc[0]))
    assert not any(nb.is_missing(v) for v in (0, 0.0, np.int64(0), "", "n/a", [None], (float("nan"),)))


def test_for_display_spells_out_booleans_and_missing_cells():
    table = pd.DataFrame({"gap": [0.123456, None], "agrees": [True, None], "same": [False, True],
                          "count": pd.array([2, None], dtype="Int64"), "accuracy": [97.353333, 96.0]})
    shown = nb.for_display(table, {"accuracy": 2})
    assert shown.to_dict("list") == {"gap": [0.1235, "–"], "agrees": ["yes", "–"], "same": ["no", "yes"],
                                     "count": [2, "–"], "accuracy": [97.35, 96.0]}
    assert nb.for_display(table, 1, missing="not measured")["gap"].tolist() == [0.1, "not measured"]
    assert table["agrees"].tolist() == [True, None]  # a copy: the table itself is left as it was


def test_value_range_reads_one_value_or_low_to_high():
    assert nb.value_range([0.0261, 0.0279, float("nan")]) == "0.026 to 0.028"
    assert nb.value_range(pd.Series([0.0261, 0.02612])) == "0.026"  # equal to the digits shown: one number
    assert nb.value_range([-8.4, 6.0], "{:+.0f} %") == "-8 % to +6 %"
    assert nb.value_range([float("nan")]) == nb.value_range([]) == "n/a"
    assert nb.value_range([-0.002, 0.001], "{:.2f}") == "0.00" and nb.value_range([-0.3, 2], "{:+.0f}") == "+0 to +2"
    assert nb.format_number(-0.00003, "{:+.4f}") == "+0.0000" and nb.format_number(-0.00006, "{:+.4f}") == "-0.0001"
    assert [nb.layers_label(n) for n in (1, 2, 5.0)] == ["1 layer", "2 layers", "5 layers"]
    assert nb.network_label("src", 3) == "SRC, 3 layers"


def test_activity_order_reads_the_papers_order_per_depth():
    from types import SimpleNamespace

    # 1 layer: SRC above LIF (the paper's order); 2 layers: SRC above LIF (the paper has SRC below); 3: equal
    table = pd.DataFrame({"input": "mnist-rate", "layers": [1, 1, 2, 2, 3, 3], "model": ["src", "lif"] * 3,
                          "seed": 0, "test_activity": [0.05, 0.03, 0.05, 0.03, 0.04, 0.04]})
    history = table.assign(epoch=1)
    order = nb.activity_order(SimpleNamespace(table=table, history=lambda: history)).set_index("layers")
    assert order.loc[1, "paper"] == "SRC > LIF" and order.loc[1, "agrees"] is True
    assert order.loc[2, "paper"] == "SRC < LIF" and order.loc[2, "agrees"] is False
    assert order.loc[3, "agrees"] is None and order.loc[2, "after epoch 1"] == pytest.approx(0.02)
    text = nb.activity_order_findings(order.reset_index())
    assert "* mnist-rate, 1 layer: as in the paper in the one paired seed (SRC > LIF)" in text
    assert "* mnist-rate, 2 layers: **the opposite of the paper's order** in the one paired seed (SRC < LIF)" in text
    assert "* mnist-rate, 3 layers: no order (equal activities)" in text
    # two seeds at 1 layer: the SRC higher in one, lower in the other; the mean gap's sign decides nothing
    mixed = pd.DataFrame({"input": "mnist-rate", "layers": 1, "model": ["src", "lif", "src", "lif"],
                          "seed": [0, 0, 1, 1], "test_activity": [0.05, 0.03, 0.02, 0.09]})
    row = nb.activity_order(SimpleNamespace(table=mixed, history=lambda: mixed.assign(epoch=1))).iloc[0]
    assert row["agrees"] is None and (row["SRC higher"], row["paired seeds"]) == (1, 2) and row["ours"] < 0
    assert ("* mnist-rate, 1 layer: no consistent order across seeds (SRC > LIF): SRC minus LIF activity -0.0250, "
            "SRC higher in 1 of 2 seeds") in nb.activity_order_findings(pd.DataFrame([row]))
    tied = mixed.assign(test_activity=[0.05, 0.03, 0.04, 0.04])  # higher in one seed, equal in the other
    row = nb.activity_order(SimpleNamespace(table=tied, history=lambda: tied.assign(epoch=1))).iloc[0]
    assert row["agrees"] is None and (row["SRC higher"], row["LIF higher"]) == (1, 0)
    assert ("no consistent order across seeds (SRC > LIF): SRC minus LIF activity +0.0100, SRC higher in 1 of 2 "
            "seeds (equal in 1)") in nb.activity_order_findings(pd.DataFrame([row]))
    offset = mixed.assign(test_activity=[0.05, 0.03, 0.02, 0.04])  # +0.02 and -0.02: a mean gap of zero
    row = nb.activity_order(SimpleNamespace(table=offset, history=lambda: offset.assign(epoch=1))).iloc[0]
    assert "no consistent order across seeds" in nb.activity_order_findings(pd.DataFrame([row]))
    both = mixed.assign(test_activity=[0.05, 0.03, 0.06, 0.02])  # the SRC higher in both seeds
    order = nb.activity_order(SimpleNamespace(table=both, history=lambda: both.assign(epoch=1)))
    text = nb.activity_order_findings(order)
    assert text.startswith("* mnist-rate, 1 layer: as in the paper in every one of 2 paired seeds (SRC > LIF): "
                           "SRC minus LIF activity +0.0300, SRC higher in 2 of 2 seeds; +0.0300 after the first epoch.")


def test_initial_activity_rebuilds_each_runs_starting_network(data_root):
    from reprolib.notebook import check_parameters, gather_runs

    runs = gather_runs("src-activity", check_parameters("paper", [0, 1], "cpu", False), input="mnist-rate",
                       layers=1)  # the committed records: SRC and LIF, seeds 0 and 1
    with pytest.raises(ValueError, match="samples = 0; expected a positive int"):
        nb.initial_activity(runs, samples=0)
    table = nb.initial_activity(runs, samples=16)
    assert len(nb.initial_activity(runs, samples=16, seeds=[1])) == 3  # SRC, LIF and LIF with the other reset
    assert len(table) == 6 and sorted(table["reset"]) == ["", "", "subtract", "subtract", "zero", "zero"]
    assert table["at initialisation"].between(0, 1).all() and (table["at initialisation"] > 0).all()
    assert table.equals(nb.initial_activity(runs, samples=16))  # the seeds fix weights and input spikes
    # the trained columns come from the records, and only for the runs' own reset
    untrained = table[table["reset"] == "subtract"]
    assert untrained[["after epoch 1", "as recorded"]].isna().all().all()
    own = table[table["reset"] != "subtract"].set_index(["model", "seed"])
    recorded = runs.table.set_index(["model", "seed"])["test_activity"]
    assert own["as recorded"].to_dict() == pytest.approx(recorded.to_dict())
    text = nb.initial_activity_findings(table)
    assert text.startswith("* mnist-rate, 1 layer: at initialisation: SRC ") and "Before training: " in text
    assert "subtracting reset the untrained LIF's activity changes by" in text


@pytest.mark.parametrize("src_start, lif_start, src_end, lif_end, verdict", [
    # two seeds each, values as (seed 0, seed 1)
    ((0.020, 0.021), (0.021, 0.020), (0.05, 0.06), (0.03, 0.03),
     "about equally active (SRC / LIF 1.00, 2 paired seeds: 0, 1), and every seed ends in the same order"),
    ((0.010, 0.012), (0.020, 0.024), (0.01, 0.01), (0.03, 0.04),
     "LIF more active (SRC / LIF 0.50, 2 paired seeds: 0, 1) in every seed, already the recorded order"),
    ((0.010, 0.012), (0.020, 0.024), (0.05, 0.06), (0.03, 0.03), "the opposite of the recorded order: training "
                                                                  "reverses it"),
    # overlapping ranges far apart on average are not 'equally active' (0.03 against 0.12)
    ((0.010, 0.050), (0.045, 0.200), (0.01, 0.01), (0.03, 0.04), "LIF more active (SRC / LIF 0.24"),
    ((0.010, 0.050), (0.045, 0.040), (0.01, 0.01), (0.03, 0.04), "on average, but not in every seed"),
    ((0.020, 0.021), (0.021, 0.020), (0.05, 0.01), (0.03, 0.03), "the recorded order differs between seeds"),
])
def test_initial_activity_findings_name_a_cause_only_where_every_seed_shows_it(src_start, lif_start, src_end,
                                                                              lif_end, verdict):
    table = pd.DataFrame({"input": "x", "layers": 1, "model": ["src", "src", "lif", "lif"], "seed": [0, 1, 0, 1],
                          "reset": ["", "", "zero", "zero"], "at initialisation": [*src_start, *lif_start],
                          "after epoch 1": 0.1, "as recorded": [*src_end, *lif_end]})
    assert verdict in nb.initial_activity_findings(table)
    one_seed = nb.initial_activity_findings(table[table["seed"] == 0])
    assert "too few paired seeds (1) to say what makes the recorded order" in one_seed


def test_paired_gap_compares_the_two_variants_over_shared_seeds():
    table = pd.DataFrame({
        "layers": [1, 1, 1, 1, 1, 2, 2, 2, 2],
        "model": ["src", "src", "src", "lif", "lif", "src", "src", "lif", "lif"],
        "seed": [0, 1, 2, 0, 1, 0, 1, 0, 1],            # seed 2 of SRC at 1 layer has no LIF partner
        "test_accuracy": [80.0, 86.0, 99.0, 84.0, 85.0, 90.0, 91.0, 89.0, 88.0],
    })
    paper = {(1, "src"): 97.0, (1, "lif"): 98.0, (2, "src"): 98.0}  # no LIF number at 2 layers
    gap = nb.paired_gap(table, ["layers"], "model", "src", "lif", lambda c: paper.get((c["layers"], c["model"])))
    one, two = gap.set_index("layers").loc[1], gap.set_index("layers").loc[2]
    assert one["ours"] == pytest.approx((80 + 86) / 2 - (84 + 85) / 2)   # the unpaired seed is left out
    assert (one["paired seeds"], one["src higher"], one["lif higher"]) == (2, 1, 1)
    assert one["paper"] == pytest.approx(-1.0)
    assert one["same order"] is True
    assert two["ours"] == pytest.approx(2.0) and math.isnan(two["paper"]) and two["same order"] is None
    flipped = nb.paired_gap(table, ["layers"], "model", "lif", "src", lambda c: paper.get((c["layers"], c["model"])))
    assert flipped.set_index("layers").loc[1, ["ours", "lif higher"]].tolist() == [pytest.approx(-one["ours"]), 1]
    with pytest.raises(ValueError, match="no column"):
        nb.paired_gap(table.drop(columns="seed"), ["layers"], "model", "src", "lif", lambda c: None)
    # a seed without a number pairs with nothing (the means are over the same seeds); a tie counts for neither
    gaps = table.assign(test_accuracy=[80.0, float("nan"), 99.0, 84.0, 85.0, 90.0, 91.0, 90.0, 88.0])
    gaps = nb.paired_gap(gaps, ["layers"], "model", "src", "lif", lambda c: None).set_index("layers")
    assert gaps.loc[1, ["ours", "paired seeds", "src higher", "lif higher"]].tolist() == [-4.0, 1, 0, 1]
    assert gaps.loc[2, ["ours", "paired seeds", "src higher", "lif higher"]].tolist() == [1.5, 2, 1, 0]


def test_src_minus_lif_is_paired_gap_per_input_and_depth_with_the_pages_names():
    table = pd.DataFrame({"input": "mnist-rate", "layers": 1, "model": ["src", "lif", "src", "lif"],
                          "seed": [0, 0, 1, 1], "test_accuracy": [97.0, 96.0, 97.5, 97.5]})
    (row,) = nb.src_minus_lif(table, lambda cell: {"src": 97.3, "lif": 97.2}[cell["model"]]).to_dict("records")
    assert row["ours"] == pytest.approx(0.5) and row["paper"] == pytest.approx(0.1) and row["same order"] is True
    assert (row["paired seeds"], row["SRC higher"], row["LIF higher"]) == (2, 1, 0)


def test_shift_probe_summary_and_empty_probe(results_tmp):
    import json as _json
    from types import SimpleNamespace

    from reprolib import plotting

    rows = [{"record": h, "seed": s, "split": split, "dy": dy, "dx": 0, "accuracy": acc / 100, "samples": 100}
            for h, s in (("aa", 0), ("bb", 1))
            for split, dy, acc in (("val", 0, 95), ("val", 1, 85), ("test", 0, 85), ("test", 1, 90), ("test", -1, 70))]
    (results_tmp / "analysis").mkdir()
    (results_tmp / "analysis" / "exp-paper-shift-probe.json").write_text(_json.dumps(
        {"payload": {"rows": rows, "skipped_without_weights": ["cc", "elsewhere"],
                     "provenance": {"git_commit": "0123456789abcdef", "device_name": "cpu",
                                    "end_time": "2026-11-30T08:00:00+00:00", "scale": "paper"}}}))
    table = pd.DataFrame({"config_hash": ["aa", "bb", "cc"], "seed": [0, 1, 4], "model": ["lif", "lif", "src"]})
    paper = SimpleNamespace(scale="paper")
    runs = SimpleNamespace(experiment="exp", table=table, axes=["model"], params=paper)
    frame, line = nb.shift_probe(runs)
    assert set(frame["record"]) == {"aa", "bb"} and frame["accuracy"].max() == 95.0
    assert line.startswith("probe of 2 of 3 runs' kept weights (the selected epoch; 1 not probed) · ") and "01234567" in line
    # run aa's rows kept from an earlier probe (its weights were not where this one ran): each probe is named
    probe_file = results_tmp / "analysis" / "exp-paper-shift-probe.json"
    written = probe_file.read_text()
    carried = _json.loads(written)
    earlier = "2026-11-01T08:00:00+00:00"
    carried["payload"].update(carried={"aa": earlier}, earlier_probes={earlier: {
        "git_commit": "fedcba9876543210", "device_name": "cuda", "end_time": earlier}})
    probe_file.write_text(_json.dumps(carried))
    _, carried_line = nb.shift_probe(runs)
    assert carried_line.startswith("probe of 2 of 3 runs' kept weights (the selected epoch; 1 not probed): 1 probed at "
                                   "code fedcba98")
    assert "2026-11-01; 1 at code 01234567" in carried_line and carried_line.endswith("2026-11-30 (the latest probe)")
    # both shown runs carried: the latest probe is still named, as what was not probed is said of it
    carried["payload"]["carried"]["bb"] = earlier
    probe_file.write_text(_json.dumps(carried))
    assert nb.shift_probe(runs)[1].endswith("2 probed at code fedcba98 · cuda · 2026-11-01; 0 at code 01234567 · cpu · "
                                            "2026-11-30 (the latest probe)")
    probe_file.write_text(written)
    text = nb.shift_probe_summary(frame, ["model"], name=lambda c: c["model"].upper())
    # the page's run the probe skipped is named, not left out silently (a skipped run of another page is not)
    assert text.endswith("* Not probed (no kept weights where the probe ran): SRC (seed 4).")
    pd.concat([frame, frame])  # what the frame carries along does not stop pandas from combining it
    # with the data set known, the count covers the probed data set only: a run of another data set is not
    # counted, one of the same data set that the file does not name was recorded after the probe
    mixed = pd.concat([table.assign(dataset="nmnist"),
                       pd.DataFrame({"config_hash": ["dd", "ee"], "seed": [0, 2], "model": ["src", "lif"],
                                     "dataset": ["mnist", "nmnist"]})], ignore_index=True)
    frame2, line2 = nb.shift_probe(SimpleNamespace(experiment="exp", table=mixed, axes=["model"], params=paper))
    assert line2.startswith("probe of 2 of 4 runs' kept weights (the selected epoch; 2 not probed) · ")
    text2 = nb.shift_probe_summary(frame2, ["model"], name=lambda c: c["model"].upper())
    assert "* Not probed (recorded after the probe): LIF (seed 2)." in text2 and "dd" not in text2
    assert "LIF (2 runs): test 85.0 % as recorded, 90.0 % with the test inputs moved 1 row down (+5.0 pp)" in text
    assert "validation from 95.0 % to 85.0 % (-10.0 pp)" in text
    plotting.shift_probe_figure(frame, ["model"], lambda v: v[0])
    # a probe of other runs than this page's: nothing to show, no error
    other = SimpleNamespace(experiment="exp", table=table.assign(config_hash=["x", "y", "z"]), axes=["model"],
                            params=paper)
    empty, _ = nb.shift_probe(other)
    assert empty.empty and nb.shift_probe_summary(empty, ["model"], name=str) == f"*{nb.NOT_RUN}*"
    plotting.shift_probe_figure(empty, ["model"], lambda v: v[0])
    assert nb.shift_probe(SimpleNamespace(experiment="none", table=table, axes=["model"], params=paper)) is None
    # no records on the page (an empty records table has no axis columns): nothing to join, no error
    assert nb.shift_probe(SimpleNamespace(experiment="exp", table=pd.DataFrame(columns=["config_hash", "seed"]),
                                          axes=["model"], params=paper)) is None
    # only the unmoved inputs probed: no shift to report
    unmoved = nb.shift_probe_summary(frame[frame["dy"] == 0], ["model"], name=lambda c: c["model"].upper())
    assert unmoved.startswith(f"*{nb.NOT_RUN}*\n* Not probed")
    # another scale's probe is not this page's
    ci = SimpleNamespace(experiment="exp", table=table, axes=["model"], params=SimpleNamespace(scale="ci"))
    assert nb.shift_probe(ci) is None


def test_paired_gap_averages_a_repeated_seed_and_split_gap_needs_both_splits():
    table = pd.DataFrame({"layers": [1] * 4, "noise": [0, 1, 0, 0], "model": ["src", "src", "lif", "lif"],
                          "seed": [0, 0, 0, 1], "test_accuracy": [80.0, 90.0, 84.0, 70.0]})
    gap = nb.paired_gap(table, ["layers"], "model", "src", "lif", lambda c: None)
    assert gap.loc[0, "ours"] == pytest.approx(85.0 - 84.0)
    assert gap.loc[0, ["paired seeds", "src higher"]].tolist() == [1, 1]
    assert nb.split_gap(table.assign(dataset="x"), "x") == ""  # no val_accuracy: nothing to say
    both = table.assign(dataset="x", val_accuracy=[90.0, 90.0, 95.0, 95.0])
    assert nb.split_gap(both, "x").startswith("Over the 4 runs on x on this page, the final validation accuracy "
                                              "averages 92.5 % and the test accuracy 81.0 % (-11.5 pp)")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, "0.1", True, None])
def test_check_nonnegative_refuses_what_is_not_a_finite_number_at_least_zero(value):
    with pytest.raises(ValueError, match=f"parameter noise_sigma={value!r} must be a finite number >= 0"):
        nb.check_nonnegative("noise_sigma", value)


def test_check_nonnegative_returns_zero_and_positive_numbers():
    import numpy as np

    assert [nb.check_nonnegative("sigma", v) for v in (0, 0.0, 0.2, np.float32(0.5))] == [0, 0.0, 0.2, 0.5]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, -1.0, "2", True])
def test_check_positive_refuses_non_finite_and_non_positive_values(value):
    from reprolib import notebook as nb

    with pytest.raises(ValueError, match="must be a positive number"):
        nb.check_positive("omega", value)


def test_bench_records_reads_a_folder_in_name_order_and_names_a_missing_one(tmp_path, monkeypatch):
    import json

    from reprolib import plotting

    (tmp_path / "b-gpu.json").write_text(json.dumps({"device": "B", "results": []}))
    (tmp_path / "a-cpu.json").write_text(json.dumps({"device": "A", "git_commit": "0123456789", "git_dirty": True,
                                                     "complete": False}))
    (tmp_path / "notes.txt").write_text("not a record")
    records = nb.bench_records(tmp_path)
    assert list(records) == ["a-cpu", "b-gpu"]
    heading = nb.bench_heading("a-cpu", records["a-cpu"])
    assert heading.startswith("### A\n") and "code 01234567+dirty" in heading and "Incomplete record" in heading
    assert "Kernel check" not in heading  # no --check ran
    # two CPU models' records are told apart by their headings
    cpu_record = {"device": "cpu (x86_64, 1 threads)", "device_type": "cpu",
                  "cpu": {"model": "AMD EPYC", "torch_capability": "AVX512"}}
    assert nb.bench_heading("c", cpu_record).startswith("### cpu (x86_64, 1 threads), AMD EPYC (AVX512)\n")
    # CPU records only: the page says that the GPU kernels have neither timings nor checks in the book
    assert nb.no_gpu_bench_note(records).startswith("**No benchmark record from a GPU is committed yet**")
    assert "(fused implementation: `cpp`)" in nb.no_gpu_bench_note({"a": {"kernel_engine": "cpp"}})
    assert nb.no_gpu_bench_note({**records, "h100": {"device_type": "cuda"}}) == ""
    from reprolib.paths import REPO_ROOT

    # a relative folder is the repository's, whatever the working directory
    monkeypatch.chdir(tmp_path)
    assert set(nb.bench_records("results/bench")) == {p.stem for p in (REPO_ROOT / "results/bench").glob("*.json")}
    with pytest.raises(ValueError, match="parameter bench_dir='no/such' is not a folder"):
        nb.bench_records("no/such")
    rows = pd.DataFrame({"neuron": ["lif", "src"], "T": [8, 8], "B": [4, 4], "N": [8, 8],
                         "speedup_vs_torch": [4.0, 0.5]})
    fig = plotting.speedup_figure(rows, "Test GPU")
    ax = fig.axes[0]
    assert [b.get_height() for b in ax.patches] == [4.0, 0.5] and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lif 8,4,8", "src 8,4,8"]
    plt.close(fig)


def test_brf_table1_helpers_put_the_committed_ecg_runs_beside_the_paper_and_the_released_logs(committed_results):
    """On the committed paper-scale ECG records (read only): every trained model has a row per quantity, the
    paper's numbers and the authors' released logs sit beside ours, and the ALIF comparison lists its variants."""
    from reprolib import reference

    params = nb.check_parameters("paper", None, "cpu", False)
    runs = nb.brf_runs(params, ["ECG"], ["brf", "rf", "alif"])
    assert len(runs["ECG"].table) == 15  # five seeds per neuron, as committed
    parts = nb.brf_table1_parts(runs)
    assert list(parts) == ["test accuracy (%)", "SOPs per sample", "SOPs per step",
                           "SOP ratio (to the task's ALIF row; see its architecture)", "parameters"]
    accuracy = parts["test accuracy (%)"].set_index(["task", "model"])
    paper = reference.table("brf-table1").set_index(["task", "model"])
    for model in ("BRF", "RF", "ALIF"):
        assert accuracy.loc[("ECG", model), "paper"].startswith(f"{paper.loc[('ECG', model), 'test_accuracy']:.2f}")
        assert accuracy.loc[("ECG", model), "ours"].endswith("(n=5)")
    logs = reference.brf_log_selection().set_index(["task", "model"])
    released = logs.loc[("ECG", "ALIF"), "test_accuracy_mean"]
    assert accuracy.loc[("ECG", "ALIF"), "released logs"].startswith(f"{released:.2f}")
    ratio = parts["SOP ratio (to the task's ALIF row; see its architecture)"].set_index(["task", "model"])
    assert ratio.loc[("ECG", "ALIF"), "ours"] == "1.00"  # each task's ALIF is its own baseline
    assert list(nb.brf_per_run_table(runs).index.names) == ["task", "neuron", "seed"]
    assert len(nb.brf_per_run_table({})) == 0
    others = nb.brf_table1_other_models(["ECG"])
    assert not others.empty and not others["model"].isin(["BRF", "RF", "ALIF"]).any()
    assert others.set_index("model").loc["BHRF", "parameters"] == "1,734" and not others.isna().any().any()
    shd = nb.brf_table1_other_models(["SHD"]).set_index("model")
    assert shd.loc["DCLS-Delays", "parameters"] == "~200,000" and shd.loc["DCLS-Delays", "sops"] == nb.NOT_AVAILABLE
    probe = nb.gather_runs("brf-ecg-alif-bias", nb.preset_seeds(params, "brf-ecg-alif-bias"))
    comparison = nb.alif_bias_comparison(runs["ECG"], probe)
    assert comparison.index[0] == "ALIF, no biases (brf-ecg, labels=source)" and comparison["runs"].iloc[0] == 5
    assert any(label.startswith("paper's Table 1, reported") for label in comparison.index)
    masked = nb.brf_accuracy_table(nb.brf_runs(params, ["ECG"], ["brf"], labels="masked"))
    assert list(masked["model"]) == ["BRF"] and masked["ours"].iloc[0].endswith("(n=5)")


def test_src_table2_helpers_look_up_the_paper_and_draw_with_or_without_runs(committed_results):
    from reprolib import plotting

    assert nb.src_table2_number({"input": "mnist-rate", "layers": 1, "model": "src"}) == 97.27
    assert nb.src_table2_number({"input": "mnist-rate", "layers": 1, "model": "lif"}) == 97.18
    assert set(nb.SRC_TABLE2_COLUMNS) == set(nb.axis_choices("src-table2", "input"))
    assert nb.network_label("src", 1) == "SRC, 1 layer" and nb.network_label("lif", 5) == "LIF, 5 layers"
    params = nb.check_parameters("paper", None, "cpu", False)
    runs = nb.gather_runs("src-table2", params, input=["mnist-rate"], layers=[1])
    summary = nb.src_table2_summary(runs).set_index("neuron")
    assert summary.loc["SRC", "paper"] == 97.27 and summary.loc["SRC", "n_runs"] >= 1  # seed 0 is committed
    inputs = nb.axis_choices("src-table2", "input")
    fig = plotting.paper_scatter_figure(summary.reset_index(), inputs, "Table 2", "provenance", "source")
    assert len(fig.axes[0].collections) == 2  # one point set per model
    empty = plotting.paper_scatter_figure(summary.reset_index().assign(test_accuracy_mean=float("nan")), inputs,
                                          "Table 2", "provenance", "source")
    assert nb.NOT_RUN in [t.get_text() for t in empty.axes[0].texts]
    depth = nb.gather_runs("src-depth", nb.check_parameters("ci", [0], "cpu", False))
    fig = plotting.depth_figure(depth.history(), depth.summary(["test_loss", "test_accuracy", "mean_epoch_time_s"],
                                                               by=["model", "layers"]),
                                lambda key: nb.network_label(*key), "provenance", "source")
    assert len(fig.axes) == 5  # four panels and the loss axis twinned with the accuracy one
    if depth.table.empty:  # no ci-scale depth record is committed: each of the four panels says so
        assert sum(nb.NOT_RUN in [t.get_text() for t in ax.texts] for ax in fig.axes) == 4


def test_convergence_table_puts_the_released_logs_and_our_ecg_runs_beside_table2(committed_results):
    from reprolib import reference

    params = nb.check_parameters("paper", None, "cpu", False)
    runs = nb.brf_runs(params, ["ECG", "SHD"], ["brf", "alif"])
    table = nb.convergence_table(runs, reference.brf_curves(), ["ECG", "SHD"], ["brf", "alif"])
    assert len(table) == 2 * 2 * 3 and list(table.index.names) == ["task", "model", "reached"]
    paper = reference.reported("brf-table2", column="epochs_to_95", task="ECG", model="BRF")
    assert table.loc[("ECG", "BRF", "95%"), "paper"] == f"{paper:.0f}"
    if not any((committed_results / "brf-shd").glob("*.json")):  # SHD is not here: its logs only
        assert table.loc[("SHD", "BRF", "95%"), "ours"] == nb.NOT_RUN
    assert table.loc[("SHD", "BRF", "95%"), "released logs"] != nb.NOT_AVAILABLE
    assert table.loc[("ECG", "ALIF", "100%"), "ours"] != nb.NOT_RUN  # the committed ECG runs have curves
    others = nb.brf_table2_other_models(["ECG"])
    assert not others.empty and not others.index.get_level_values("model").isin(["BRF", "RF", "ALIF"]).any()


def test_spikingjelly_tables_and_figures_put_the_committed_runs_beside_the_tutorials(committed_results):
    from reprolib import plotting, reference

    params = nb.check_parameters("paper", None, "cpu", False)
    clock = nb.gather_runs("sj-clock-lif-mnist", params)
    table = nb.sj_clock_table(clock).set_index("metric")
    final = reference.reported("spikingjelly", model="2-layer LIF", metric="test_accuracy_final")
    assert table.loc["test accuracy, last epoch (%)", "paper"] == f"{final:.2f}"
    assert table.loc["best test accuracy over epochs (%)", "ours"] != nb.NOT_RUN  # the committed run
    fig = plotting.sj_clock_figure(clock.history(), reference.sj_lif_mnist_curves(), 468, "provenance", "source")
    assert [ax.get_title() for ax in fig.axes] == ["Accuracy on training batches", "Accuracy on the test set"]
    recurrent = nb.gather_runs("sj-seq-fmnist", params)
    table = nb.sj_recurrent_table(recurrent)
    assert len(table) == 3 * len(nb.SJ_RECURRENT_METRICS)
    loss = table[(table["model"] == "plain") & (table["metric"] == "train loss")].iloc[0]
    assert len(loss["paper"].split(".")[1]) == 4  # losses to 4 decimals
    history = recurrent.history().assign(model=lambda f: f["model"].str.removeprefix("sj-"))
    fig = plotting.sj_recurrent_figure(history, reference.sj_recurrent_curves(), ["plain"], "provenance", "source")
    assert [ax.get_title() for ax in fig.axes] == ["train loss", "train accuracy (%)",
                                                   "\"test\" (%) = train set, eval mode"]


def test_source_iteration_times_are_read_from_the_records_rows():
    from reprolib.notebook.benchmarks import _source_times

    rows = pd.DataFrame({"task": ["smnist", "ecg", "smnist"], "source_ms": [1056.0, None, 1056.0]})
    assert _source_times(rows) == "S-MNIST 1056 ms per iteration"
    assert _source_times(rows.assign(source_ms=[900.0, None, 900.0])) == "S-MNIST 900 ms per iteration"
    assert _source_times(rows.drop(columns="source_ms")) == "none in this record"
    assert _source_times(rows.assign(source_ms=None)) == "none in this record"


def test_fixed_lif_activity_pairs_each_variant_with_table2_runs_of_the_same_seed():
    from types import SimpleNamespace

    # Table 2: the 1-layer rate-coded MNIST networks, plus a latency run and a 2-layer run that do not take part
    table2 = pd.DataFrame({"input": ["mnist-rate"] * 6 + ["mnist-latency"], "layers": [1, 1, 1, 1, 1, 2, 1],
                           "model": ["src", "src", "lif", "lif", "src", "lif", "lif"], "seed": [0, 1, 0, 1, 2, 2, 0],
                           "test_activity": [0.03, 0.06, 0.15, 0.07, 0.05, 0.9, 0.9], "test_accuracy": 97.0})
    fixed = pd.DataFrame({"lif_parameters": ["fixed", "fixed", "fixed-no-bias", "fixed-no-bias"],
                          "seed": [0, 1, 5, 2], "test_activity": [0.02, 0.07, 0.01, float("nan")],
                          "test_accuracy": [96.0, 96.5, 95.0, 90.0]})

    def compare(fixed_table):
        return nb.fixed_lif_activity(SimpleNamespace(table=table2), SimpleNamespace(table=fixed_table))

    table = compare(fixed).set_index("network")
    src, learned, frozen, no_bias = nb.FIXED_LIF_NETWORKS.values()
    assert list(table.index) == [src, learned, frozen, no_bias]
    assert table.loc[src, "seeds"] == "0, 1, 2" and table.loc[learned, "test activity"] == pytest.approx(0.11)
    assert table.loc[learned, "seeds"] == "0, 1"  # neither the 2-layer nor the latency LIF
    # seeds 0 and 1 pair: the SRC above the fixed LIF in seed 0 (0.03 > 0.02), below it in seed 1 (0.06 < 0.07)
    assert table.loc[frozen, "SRC minus this"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc[frozen, ["paired seeds", "SRC higher", "SRC lower"]].tolist() == [2, 1, 1]
    assert table.loc[frozen, nb.CHANGE_FROM_LEARNED] == pytest.approx(0.045 - 0.11)
    assert table.loc[learned, "SRC minus this"] == pytest.approx(0.045 - 0.11)
    # the run without an activity (seed 2) pairs with nothing, although the SRC has seed 2
    assert table.loc[no_bias, "test activity"] == pytest.approx(0.01) and table.loc[no_bias, "runs"] == 2
    assert nb.is_missing(table.loc[no_bias, "SRC minus this"]) and table.loc[no_bias, "paired seeds"] == 0
    assert nb.is_missing(table.loc[src, "paired seeds"])  # the SRC does not pair with itself
    text = nb.fixed_lif_findings(table.reset_index())
    assert text.count("\n") == 1 and src not in text  # one line per variant, none for Table 2's networks
    assert (f"* {frozen}: activity 0.0450 over seeds 0, 1, test accuracy 96.25 %; -0.0650 against Table 2's LIF "
            "of the same seeds; SRC minus it +0.0000 on average; no consistent order (SRC higher in 1, lower in 1) "
            "of 2 paired seeds.") in text
    assert (f"* {no_bias}: activity 0.0100 over seed 5 (no activity: seed 2), test accuracy 92.50 %; no SRC run of "
            "the same seed") in text
    fixed.loc[:1, "test_activity"] = [0.01, 0.02]  # below the SRC in both seeds: the paper's order
    assert "the paper's order (SRC more active) in every one of 2 paired seeds" in nb.fixed_lif_findings(compare(fixed))
    fixed.loc[:1, "test_activity"] = [0.2, 0.2]
    assert "**the opposite of the paper's order** in every one of 2" in nb.fixed_lif_findings(compare(fixed))
    assert "in the one paired seed" in nb.fixed_lif_findings(compare(fixed[fixed["seed"] != 1]))
    empty = SimpleNamespace(table=pd.DataFrame())
    assert nb.fixed_lif_activity(empty, empty).empty
    assert nb.fixed_lif_findings(nb.fixed_lif_activity(empty, empty)) == ""
    with pytest.raises(ValueError, match=r"has no column \['lif_parameters'\]"):
        compare(fixed.drop(columns="lif_parameters"))


def test_leak_clamp_note_names_lif_runs_whose_leak_reached_the_clamp():
    from reprolib.notebook import leak_clamp_note

    def rows(seed, beta, threshold, model="lif", layers=1):
        base = {"input": "mnist-latency", "layers": layers, "model": model, "seed": seed, "layer": 1, "ratio": 1.0}
        return [{**base, "quantity": "leak beta", "initial": 0.99, "learned": beta},
                {**base, "quantity": "threshold", "initial": 1.0, "learned": threshold}]

    moved = pd.DataFrame(rows(0, 1.007, 0.157) + rows(1, 0.95, 2.0) + rows(0, 1.2, 3.0, model="src"))
    group = pd.DataFrame({"seed": [0, 1]})
    note = leak_clamp_note((moved, "caption"))
    text = note({"input": "mnist-latency", "layers": 1, "model": "lif"}, group)
    assert text == (" The parameter probe of the runs' kept weights (the activity page's; probed: seeds 0, 1) finds "
                    "the learned leak beta at or above 1 in 1 of 2 (beta 1.007): the neuron uses it as 1, no leak "
                    "left (above 1 the clamp passes no gradient back, so only Adam's momentum moves it); the "
                    "threshold there went from 1.00 to 0.16.")
    # only the cell's own seeds count, the SRC has no leak to clamp, and no probe (or no clamped run) says nothing
    assert note({"input": "mnist-latency", "layers": 1, "model": "lif"}, pd.DataFrame({"seed": [1]})) == ""
    assert note({"input": "mnist-latency", "layers": 1, "model": "src"}, group) == ""
    assert note({"input": "mnist-rate", "layers": 1, "model": "lif"}, group) == ""
    assert leak_clamp_note(None)({"input": "mnist-latency", "layers": 1, "model": "lif"}, group) == ""
    # in a deeper network only the clamped layer's threshold is named
    deep = pd.DataFrame([{**row, "layer": layer} for layer, (beta, threshold) in ((1, (0.95, 5.0)), (2, (1.0, 0.3)))
                         for row in rows(0, beta, threshold, layers=2)])
    text = leak_clamp_note((deep, ""))({"input": "mnist-latency", "layers": 2, "model": "lif"}, group)
    assert "in 1 of 1 (in 1 of its 2 layers) (beta 1.000)" in text and "from 1.00 to 0.30." in text
    assert "no gradient" not in text  # at exactly 1 the clamp still passes it


def test_table_findings_append_what_explain_adds_to_a_miss():
    from reprolib.notebook import table_findings

    history = [{"epoch": e, "test_accuracy": 0.9} for e in range(1, 5)]
    table = pd.DataFrame([{"dataset": "mnist", "input": "mnist", "seed": 0, "test_accuracy": 90.0,
                           "history": history}, {"dataset": "mnist", "input": "fmnist", "seed": 0,
                                                 "test_accuracy": 97.0, "history": history}])
    seen = []

    def explain(cell, group):
        seen.append(cell["input"])
        return f" Seeds: {list(group['seed'])}."

    text = table_findings(table, ["input"], lambda c: 97.0, lambda c: c["input"], explain=explain)
    assert text.splitlines()[0].endswith("more than 1 pp. Seeds: [0].")
    assert seen == ["mnist"]  # a cell within 1 pp is not explained


def test_lif_reset_table_pairs_the_two_resets_seed_by_seed():
    from types import SimpleNamespace

    from reprolib.notebook import SUBTRACT_MINUS_ZERO, lif_reset_findings, lif_reset_table

    def run(input, seed, accuracy, activity, model="lif", layers=1, falls=False):
        history = [{"epoch": e, "test_accuracy": accuracy / 100 - (0.2 if falls and e == 3 else 0.0)}
                   for e in range(1, 6)]
        return {"input": input, "layers": layers, "model": model, "seed": seed, "test_accuracy": accuracy,
                "test_activity": activity, "dataset": "mnist", "history": history}

    table2 = pd.DataFrame([run("mnist-latency", 0, 94.0, 0.43, falls=True), run("mnist-latency", 1, 95.0, 0.40),
                           run("mnist-latency", 0, 96.6, 0.09, model="src"), run("mnist-rate", 0, 97.3, 0.07),
                           run("mnist-latency", 0, 98.0, 0.2, layers=2)])
    probe = pd.DataFrame([run("mnist-latency", 0, 97.0, 0.02), run("mnist-latency", 2, 96.0, 0.02)])
    table = lif_reset_table(SimpleNamespace(table=table2), SimpleNamespace(table=probe))
    assert list(table["input"]) == ["mnist-latency", "mnist-latency"]  # no rate run of the probe yet
    zero, subtract = table.to_dict("records")
    assert (zero["runs"], zero["seeds"], zero["test accuracy (%)"]) == (2, "0, 1", "94.50 ± 0.71")
    assert zero["paper (LIF)"] == 96.98 and abs(zero["ours minus paper"] - (94.5 - 96.98)) < 1e-9
    assert zero["runs with sharp falls"] == 1 and subtract["runs with sharp falls"] == 0
    assert abs(zero["test activity"] - 0.415) < 1e-9
    # only seed 0 has both: 97.0 - 94.0
    assert subtract[SUBTRACT_MINUS_ZERO] == 3.0 and subtract["paired seeds"] == 1 and subtract["subtract higher"] == 1
    assert str(table["paired seeds"].dtype) == "Int64" and pd.isna(zero["paired seeds"])  # shown as 1, not 1.0
    assert lif_reset_findings(table) == (
        "* mnist-latency: the subtractive reset scored 3.00 pp higher than reset to zero over 1 paired seed (higher "
        "in 1 of 1). To zero (Table 2's preset): -2.48 pp from Table 2's LIF; subtract the threshold (snnTorch's "
        "default): -0.48 pp from Table 2's LIF.")
    empty = lif_reset_table(SimpleNamespace(table=table2), SimpleNamespace(table=pd.DataFrame()))
    assert empty.empty and "No input has runs of both" in lif_reset_findings(empty)
    with pytest.raises(ValueError, match="the reset probe runs have no column"):
        lif_reset_table(SimpleNamespace(table=table2), SimpleNamespace(table=probe.drop(columns="history")))


def test_lif_reset_activity_findings_check_fig4s_order_with_each_reset():
    from types import SimpleNamespace

    from reprolib.notebook import lif_reset_activity_findings

    def run(model, seed, activity, layers=1):
        return {"input": "mnist-latency", "layers": layers, "model": model, "seed": seed, "test_activity": activity}

    table2 = pd.DataFrame([run("src", 0, 0.09), run("src", 1, 0.08), run("lif", 0, 0.43), run("lif", 1, 0.40),
                           run("src", 0, 0.5, layers=2)])
    probe = pd.DataFrame([run("lif", 0, 0.02), run("lif", 2, 0.03)])
    text = lif_reset_activity_findings(SimpleNamespace(table=table2), SimpleNamespace(table=probe))
    assert text == ("* mnist-latency, 1 layer, seed 0: SRC 0.0900; LIF with reset to zero 0.4300 (the LIF more "
                    "active, the opposite of Fig. 4's order); LIF with reset by subtraction 0.0200 (the SRC more "
                    "active, Fig. 4's order).")
    assert "No run of the subtractive reset" in lif_reset_activity_findings(SimpleNamespace(table=table2),
                                                                           SimpleNamespace(table=pd.DataFrame()))
    assert "No seed has runs" in lif_reset_activity_findings(
        SimpleNamespace(table=table2), SimpleNamespace(table=pd.DataFrame([run("lif", 3, 0.02)])))
