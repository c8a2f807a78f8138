"""Pages over several experiments: the BRF paper's tasks (S-MNIST, PS-MNIST, ECG, SHD), one preset each; its
Table 1 (accuracy, SOPs, parameters) and Table 2 (epochs to converge) beside ours; and the comparison that looks
for the cause of our ECG ALIF's miss."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from reprolib.notebook.findings import compare_variants, convergence_epochs
from reprolib.notebook.notes import dataset_note, settings_dropdown, show_markdown
from reprolib.notebook.parameters import Parameters, check_subset
from reprolib.notebook.probes import committed_probe, probe_line
from reprolib.notebook.runs import Runs, root_preset, axis_choices, gather_runs
from reprolib.notebook.tables import NOT_AVAILABLE, NOT_RUN, is_missing, paper_vs_ours, paper_vs_summary, value_range


#: The BRF paper's tasks, named as its tables (and :mod:`reprolib.reference`) name them, and their presets.
BRF_TASKS = {"S-MNIST": "brf-smnist", "PS-MNIST": "brf-psmnist", "ECG": "brf-ecg", "SHD": "brf-shd"}


def brf_neurons() -> list[str]:
    """The neuron labels every BRF task compares (``brf``, ``rf``, ``alif``; the paper's model names are the
    labels in upper case), from the presets' ``neuron`` axis."""
    labels = [axis_choices(experiment, "neuron") for experiment in BRF_TASKS.values()]
    if any(other != labels[0] for other in labels):
        raise ValueError(f"the BRF presets {list(BRF_TASKS.values())} compare different neurons: {labels}")
    return labels[0]


def brf_runs(params: Parameters, tasks: Sequence[str], neurons: Sequence[str], labels: str = "source") -> dict[str, Runs]:
    """Task name -> :func:`gather_runs` of its preset for ``neurons``, in the order of ``tasks``. ``tasks``
    (names of :data:`BRF_TASKS`) and ``neurons`` (of :func:`brf_neurons`) are checked first. ``labels``: the
    choice of the ``labels`` axis for the presets that have one (ECG: ``source`` = the paper's protocol,
    ``masked`` = unlabelled steps left out)."""
    check_subset("tasks", tasks, BRF_TASKS)
    check_subset("neurons", neurons, brf_neurons())
    runs = {}
    for task in tasks:
        experiment = BRF_TASKS[task]
        extra = {"labels": [labels]} if "labels" in [a.name for a in root_preset(experiment).axes] else {}
        runs[task] = gather_runs(experiment, params, neuron=list(neurons), **extra)
        table = runs[task].table
        if not table.empty and {"test_activity", "model_options.hidden"} <= set(table.columns):
            # Table 1's SOPs/step: hidden spikes per sample and step = the mean activity times the hidden width
            table["test_sops_per_step"] = (pd.to_numeric(table["test_activity"], errors="coerce")
                                           * pd.to_numeric(table["model_options.hidden"], errors="coerce"))
    return runs


def sop_ratio(summary: pd.DataFrame, metric: str = "test_spikes_per_sample", baseline: str = "ALIF") -> pd.Series:
    """Table 1's SOP ratio: each row's mean ``metric`` over that of the ``baseline`` model of the same task
    (``summary`` has ``task``, ``model`` and ``<metric>_mean``); NaN where either has no runs."""
    lacking = [c for c in ("task", "model", f"{metric}_mean") if c not in summary.columns]
    if lacking:
        raise ValueError(f"sop_ratio needs the columns {lacking}; the summary has {list(summary.columns)}")
    base = summary[summary["model"] == baseline].set_index("task")[f"{metric}_mean"]
    return summary[f"{metric}_mean"] / summary["task"].map(base)


def task_status_table(runs: Mapping[str, Runs]) -> str:
    """Markdown: one row per task of a page over several experiments -- its preset, how many of its runs have a
    record, their provenance, and the command that completes the missing ones -- then the notes on unavailable
    data and failed runs. One compact table instead of a paragraph per task, so the results come first."""
    rows = ["| task | preset | runs with a record | provenance of the records | to complete |", "|---|---|---|---|---|"]
    notes = []
    for task, task_runs in runs.items():
        total, missing = len(task_runs.configs), len(task_runs.missing)
        line = task_runs.provenance_line()
        command = f"`{task_runs.command()}`" if missing else "complete"
        rows.append(f"| {task} | {task_runs.preset_text()} | {total - missing} of {total} | {line} | {command} |")
        notes += [dataset_note(name, status) for name, status in task_runs.unavailable.items()]
        notes += [f"**{task}: run {h[:8]} failed**: {reason}" for h, reason in task_runs.failed.items()]
    scale = next(iter(runs.values())).params.scale if runs else "?"
    train_missing = next(iter(runs.values())).params.train_missing if runs else False
    footer = (f"Cells of runs without a record read *{NOT_RUN}*"
              + (" (`train_missing` is false: this page renders only records that exist; run the command of the row, "
                 "then `make book`)." if not train_missing else "."))
    return "\n".join(rows) + f"\n\n*Scale `{scale}`.* {footer}" + "".join(f"\n\n{n}" for n in notes if n)


def show_task_notes(runs: Mapping[str, Runs]) -> None:
    """Display :func:`task_status_table` for a page over several experiments, and their settings notes."""
    show_markdown(task_status_table(runs))
    show_markdown(settings_dropdown([task_runs.experiment for task_runs in runs.values()]))


def tasks_provenance(runs: Mapping[str, Runs]) -> str:
    """One provenance line per task, for the caption of a figure over several experiments."""
    return "\n".join(f"{task}: {task_runs.provenance_line()}" for task, task_runs in runs.items())


# --- the BRF paper's Table 1 beside ours ----------------------------------------------------------------------

#: Table 1's columns (:func:`reprolib.reference.table`) -> their names beside ours
BRF_TABLE1_COLUMNS = {"architecture": "paper architecture", "test_accuracy": "paper accuracy",
                      "test_accuracy_std": "paper accuracy std", "sops": "paper SOPs",
                      "sops_per_step": "paper SOPs/step", "sop_ratio": "paper SOP ratio",
                      "parameters": "paper parameters"}
#: the columns that name one row of :func:`brf_table1_parts`
BRF_TABLE1_KEYS = ["task", "model", "paper architecture"]


def _beside_table1(runs: Mapping[str, Runs], metrics: list[str]) -> pd.DataFrame:
    """Our summary of ``metrics`` per task and neuron, with ``model`` (the paper's name: our label in upper case)
    and the paper's row of Table 1 (:data:`BRF_TABLE1_COLUMNS`) beside it."""
    from reprolib import reference  # noqa: PLC0415

    paper = reference.table("brf-table1").rename(columns=BRF_TABLE1_COLUMNS)[
        ["task", "model", *BRF_TABLE1_COLUMNS.values()]]
    summary = pd.concat([task_runs.summary(metrics, by=["neuron"]).assign(task=task)
                         for task, task_runs in runs.items()], ignore_index=True)
    return summary.assign(model=summary["neuron"].str.upper()).merge(paper, on=["task", "model"], how="left")


def brf_table1_summary(runs: Mapping[str, Runs]) -> pd.DataFrame:
    """Our summary per task and neuron (accuracy, SOPs per sample and per step, parameters, the SOP ratio to the
    task's ALIF) beside the paper's row of Table 1 (its model names are our labels in upper case)."""
    summary = _beside_table1(runs, ["test_accuracy", "test_spikes_per_sample", "test_sops_per_step", "n_parameters"])
    summary["paper architecture"] = summary["paper architecture"].fillna(NOT_AVAILABLE)
    summary["sop_ratio_mean"] = sop_ratio(summary)  # SOPs over the same task's ALIF, as the paper's ratio
    return summary


def sop_findings(summary: pd.DataFrame, tolerance: float = 0.2) -> str:
    """Markdown bullets from :func:`brf_table1_summary`, one per task with our SOPs beside the paper's: each
    model's SOPs per sample against the paper's (relative difference). Where our BRF and RF are within
    ``tolerance`` (relative) of the paper's counts and our ALIF is not, the SOP ratios to ALIF differ from the
    paper's through the ALIF row alone, and the bullet says so, with the reference's note on where the paper's
    ALIF row comes from."""
    from reprolib import reference  # noqa: PLC0415

    notes = reference.table("brf-table1").set_index(["task", "model"])["note"]
    lines = []
    for task, rows in summary.groupby("task", sort=False):
        have = rows.dropna(subset=["test_spikes_per_sample_mean", "paper SOPs"])
        if have.empty:
            continue
        relative = dict(zip(have["model"], have["test_spikes_per_sample_mean"] / have["paper SOPs"] - 1))
        text = f"* {task}, SOPs per sample, ours against the paper's: " + "; ".join(
            f"{row['model']} {row['test_spikes_per_sample_mean']:,.0f} against {row['paper SOPs']:,.0f} "
            f"({100 * relative[row['model']]:+.0f} %)" for row in have.to_dict("records")) + "."
        others = {model: value for model, value in relative.items() if model != "ALIF"}
        if "ALIF" in relative and others:
            close = all(abs(value) <= tolerance for value in others.values())
            # how far each of our ratios to ALIF is from the paper's, as a factor
            ratio_off = [(1 + value) / (1 + relative["ALIF"]) for value in others.values()]
            if close and abs(relative["ALIF"]) > tolerance and all(abs(r - 1) > tolerance for r in ratio_off):
                spread = value_range([100 * v for v in others.values()], "{:+.0f} %")
                note = notes.get((task, "ALIF"))
                text += (f" Our {' and '.join(others)} are within {100 * tolerance:.0f} % of the paper's counts "
                         f"({spread}) and our ALIF is not, so our SOP ratios "
                         f"to ALIF differ from the paper's through the ALIF row alone"
                         + (f" (the paper's ALIF row: {note})" if isinstance(note, str) and note else "") + ".")
        lines.append(text)
    return "\n".join(lines)


def brf_table1_parts(runs: Mapping[str, Runs]) -> dict[str, pd.DataFrame]:
    """Table 1 beside ours, one paper-vs-ours table per quantity (narrow enough to read beside the text), rows
    named by :data:`BRF_TABLE1_KEYS`. The accuracy table also shows the authors' released logs (ECG, SHD) under the
    same selection rule: the like-for-like reference for our ALIF."""
    from reprolib import reference  # noqa: PLC0415

    summary = brf_table1_summary(runs)
    keys = BRF_TABLE1_KEYS
    parts = {
        "test accuracy (%)": paper_vs_summary(summary, "test_accuracy", keys, paper="paper accuracy",
                                              paper_std="paper accuracy std"),
        "SOPs per sample": paper_vs_summary(summary, "test_spikes_per_sample", keys, paper="paper SOPs",
                                            spread=False, decimals=1),
        "SOPs per step": paper_vs_summary(summary, "test_sops_per_step", keys, paper="paper SOPs/step",
                                          spread=False, decimals=2),
        # ours: to our same-size ALIF; the paper's: to its ALIF row, Yin et al.'s larger network except on ECG
        "SOP ratio (to the task's ALIF row; see its architecture)": paper_vs_summary(
            summary, "sop_ratio", keys, paper="paper SOP ratio", spread=False, decimals=2),
        "parameters": paper_vs_summary(summary, "n_parameters", keys, paper="paper parameters", spread=False,
                                       decimals=0),
    }
    accuracy = parts["test accuracy (%)"]
    logged = accuracy[["task", "model"]].merge(reference.brf_log_selection(), on=["task", "model"], how="left")
    accuracy.insert(4, "released logs", [
        NOT_AVAILABLE if pd.isna(mean) else f"{mean:.2f} ± {std:.2f} (n={n:.0f})"
        for mean, std, n in zip(logged.test_accuracy_mean, logged.test_accuracy_std, logged.runs)])
    return parts


def brf_accuracy_table(runs: Mapping[str, Runs]) -> pd.DataFrame:
    """The test accuracy alone, ours beside Table 1's, per task and model (e.g. for the ECG masked variant)."""
    return paper_vs_summary(_beside_table1(runs, ["test_accuracy"]), "test_accuracy", ["task", "model"],
                            paper="paper accuracy", paper_std="paper accuracy std")


#: the variants of the ``brf-ecg-alif-bias`` preset, as the ECG ALIF comparison names them
ALIF_BIAS_VARIANTS = {
    "alif-bias": "ALIF with biases, batch 64 (brf-ecg-alif-bias, alif-bias)",
    "alif-script": "ALIF with biases, the released script's batch 4 (brf-ecg-alif-bias, alif-script)",
}


def alif_bias_comparison(ecg: Runs | None, probe: Runs) -> pd.DataFrame:
    """Why our ECG ALIF misses the paper's: one row per variant (:func:`compare_variants`) -- our ALIF without
    biases (``ecg``: the ``brf-ecg`` runs, or None), with biases at batch 64 and at the released script's batch 4
    (``probe``: the ``brf-ecg-alif-bias`` runs) -- then the authors' released ALIF logs and the paper's reported
    number, which Table 1 takes from Yin et al.'s ALIF network of the same size, not from a run of the paper's
    code (its row's note says so)."""
    from reprolib import reference  # noqa: PLC0415

    plain = ecg.table if ecg is not None else pd.DataFrame()
    plain = plain[plain["neuron"] == "alif"] if not plain.empty else plain
    by_variant = {variant: (probe.table[probe.table["variant"] == variant] if not probe.table.empty else probe.table)
                  for variant in ALIF_BIAS_VARIANTS}
    variants = compare_variants({"ALIF, no biases (brf-ecg, labels=source)": plain,
                                 **{ALIF_BIAS_VARIANTS[v]: table for v, table in by_variant.items()}})
    logs = reference.brf_log_selection().query("task == 'ECG' and model == 'ALIF'")
    for row in logs.itertuples():
        variants.loc["authors' released ALIF logs (selection rule applied by us)"] = [
            row.runs, f"{row.test_accuracy_mean:.2f} ± {row.test_accuracy_std:.2f}", "(not in the logs)", ""]
    variants["runs"] = variants["runs"].astype(object)  # the paper's row has no run count
    paper_alif = reference.table("brf-table1").query("task == 'ECG' and model == 'ALIF'")
    for row in paper_alif.itertuples():
        variants.loc[f"paper's Table 1, reported ({row.note}, {row.parameters:,} parameters)"] = [
            "", f"{row.test_accuracy:.1f}", "", ""]
    return variants


def brf_per_run_table(runs: Mapping[str, Runs]) -> pd.DataFrame:
    """One row per run of every task (task, neuron, seed): the epoch its selection rule picked, the test accuracy
    there, the best and the last test accuracy, and its record hash; empty when no task has a record here."""
    tables = [task_runs.table.assign(task=task) for task, task_runs in runs.items() if not task_runs.table.empty]
    if not tables:
        return pd.DataFrame()
    per_run = pd.concat(tables, ignore_index=True)
    columns = ["task", "neuron", "seed", "selected_epoch", "test_accuracy", "best_test_accuracy", "last_test_accuracy",
               "config_hash"]
    return (per_run[[c for c in columns if c in per_run.columns]].sort_values(["task", "neuron", "seed"])
            .set_index(["task", "neuron", "seed"]).round(2))


def brf_table1_other_models(tasks: Sequence[str]) -> pd.DataFrame:
    """The rows of the paper's Table 1 for ``tasks`` whose models we do not train (other papers' networks and the
    balanced harmonic RF of the paper's Algorithm 2), as reported, for display: parameter counts with thousands
    separators (``~`` where the paper gives an approximate one), *not available* where the paper prints none."""
    rows = _untrained_rows("brf-table1", tasks)[
        ["task", "model", "architecture", "parameters", "test_accuracy", "test_accuracy_std", "sops",
         "sops_per_step", "sop_ratio", "note"]].astype(object)
    approximate = rows["note"].fillna("").str.startswith("approximate parameter count")
    rows["parameters"] = [NOT_AVAILABLE if is_missing(n) else f"{'~' if approx else ''}{int(n):,}"
                          for n, approx in zip(rows["parameters"], approximate)]
    rows["note"] = rows["note"].fillna("")
    return rows.where(rows.notna(), NOT_AVAILABLE)


def _untrained_rows(table: str, tasks: Sequence[str]) -> pd.DataFrame:
    """The rows of the paper's ``table`` for ``tasks`` whose models are none of :func:`brf_neurons`."""
    from reprolib import reference  # noqa: PLC0415

    rows = reference.table(table)
    trained = [neuron.upper() for neuron in brf_neurons()]
    return rows[~rows.model.isin(trained) & rows.task.isin(tasks)]


# --- the BRF paper's Table 2: epochs to a fraction of the final accuracy ----------------------------------------

#: the fractions of the final accuracy Table 2 counts epochs to -> its columns
CONVERGENCE_FRACTIONS = {0.95: "epochs_to_95", 0.98: "epochs_to_98", 1.0: "epochs_to_100"}


def convergence_table(runs: Mapping[str, Runs], logs: pd.DataFrame, tasks: Sequence[str],
                      neurons: Sequence[str]) -> pd.DataFrame:
    """Table 2 beside ours: per task, model and fraction, the epochs the paper reports, those of the mean curve of
    the authors' released logs (``logs``: :func:`reprolib.reference.brf_curves`; ECG and SHD only), and those of
    the mean curve of our runs (:func:`reprolib.notebook.convergence_epochs`), indexed by task, model, fraction."""
    from reprolib import reference  # noqa: PLC0415

    rows = []
    for task in tasks:
        history = runs[task].history()
        for neuron in neurons:
            model = neuron.upper()
            log = logs[(logs.task == task) & (logs.model == model)]
            from_logs = convergence_epochs(log.groupby("epoch")["test_accuracy"].mean()) if len(log) else {}
            ours = history[history["neuron"] == neuron] if len(history) else history
            from_ours = convergence_epochs(ours.groupby("epoch")["test_accuracy"].mean()) if len(ours) else {}
            for fraction, column in CONVERGENCE_FRACTIONS.items():
                rows.append({"task": task, "model": model, "reached": f"{fraction:.0%}",
                             "paper": reference.reported("brf-table2", column=column, task=task, model=model),
                             "released logs": from_logs.get(fraction, float("nan")),
                             "ours": from_ours.get(fraction, float("nan"))})
    frame = pd.DataFrame(rows)
    table = paper_vs_ours(frame, ["task", "model", "reached"], ours_std=None, runs=None, decimals=0)
    table.insert(4, "released logs", frame["released logs"].map(lambda v: NOT_AVAILABLE if pd.isna(v) else f"{v:.0f}"))
    return table.set_index(["task", "model", "reached"])


def brf_table2_other_models(tasks: Sequence[str]) -> pd.DataFrame:
    """The rows of the paper's Table 2 for ``tasks`` whose models we do not train (the balanced harmonic RF), as
    reported."""
    return _untrained_rows("brf-table2", tasks).drop(columns=["source", "section"]).set_index(["task", "model"])


def resonator_probe(runs: Runs, results_dir=None, model: str = "brf") -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """The committed resonator probe (``reprolib probe-resonators``, :mod:`reprolib.training.resonator_probe`) of
    this page's experiment at its scale, joined with the page's runs by record hash: ``(neurons, per_run,
    provenance line)``. ``neurons`` has one row per run, hidden neuron and stage (``initial`` / ``learned``):
    ``omega`` (rad/s), ``damping``, ``dt``, ``model`` and the page's axis columns; ``per_run`` one row per probed run
    (:func:`resonator_runs_table`). Only runs of ``model`` (``brf`` or ``rf``: the paper's figure shows BRF) are
    kept. ``None`` when no probe file is committed or none of its runs of ``model`` is on the page."""
    found = committed_probe(runs, "resonators", results_dir)
    if found is None:
        return None
    payload, axes = found
    probed = pd.DataFrame([{key: value for key, value in run.items() if key not in ("initial", "learned")}
                           for run in payload["runs"]]).rename(columns={"neuron": "model"})
    probed = probed[probed["model"] == model].merge(axes, on="record", how="inner")
    if probed.empty:
        return None
    neurons = pd.DataFrame([
        {"record": run["record"], "stage": stage, "index": i, "omega": omega, "damping": damping, "dt": run["dt"]}
        for run in payload["runs"] for stage in ("initial", "learned")
        for i, (omega, damping) in enumerate(zip(run[stage]["omega"], run[stage]["damping"]))])
    neurons = neurons.merge(probed[["record", "model", *runs.axes]], on="record", how="inner")
    of_model = runs.table[runs.table["neuron"] == model] if "neuron" in runs.table.columns else runs.table
    line = probe_line(payload, len(probed), len(of_model), f"{model.upper()} runs'")
    return neurons, resonator_runs_table(probed, neurons), line


#: below this angular frequency (rad/s) a resonator's period (over 60 s, 6,000 steps of 10 ms) is longer than
#: any sequence here: it acts as a damped integrator, no longer as an oscillator
NON_OSCILLATING = 0.1


def resonator_runs_table(probed: pd.DataFrame, neurons: pd.DataFrame) -> pd.DataFrame:
    """Per probed run: its seed, selected epoch and test accuracy, whether its training repeated the committed
    record's history (the weights are then those behind the page's numbers), the range of its initial
    frequencies and where its learned ones lie (median, 10th-90th percentile, the share below the initial
    range's lower end, the share below :data:`NON_OSCILLATING`)."""
    rows = []
    for _, run in probed.sort_values("seed").iterrows():
        own = neurons[neurons["record"] == run["record"]]
        initial = own.loc[own["stage"] == "initial", "omega"]
        learned = own.loc[own["stage"] == "learned", "omega"]
        committed = run.get("committed")
        same = ("not compared" if not isinstance(committed, dict) else
                "the committed record itself" if committed.get("same_record") else
                "identical" if committed.get("identical") else
                f"differs (up to {committed.get('max_abs_accuracy_diff_pp', float('nan')):.2f} pp)")
        rows.append({
            "model": str(run["model"]).upper(), "seed": run["seed"], "record": run["record"],
            "selected epoch": run["selected_epoch"],
            "test accuracy (%)": round(100 * run["test_accuracy"], 2) if run["test_accuracy"] is not None else None,
            "history vs committed record": same,
            "initial \u03c9 (rad/s)": f"{initial.min():.2f} to {initial.max():.2f}",
            "learned \u03c9 median": round(float(learned.median()), 2),
            "learned \u03c9 10th-90th pct": f"{learned.quantile(0.1):.2f} to {learned.quantile(0.9):.2f}",
            "learned \u03c9 below initial range (%)": round(100 * float((learned < initial.min()).mean()), 1),
            "learned \u03c9 < 0.1 rad/s (%)": round(100 * float((learned < NON_OSCILLATING).mean()), 1),
        })
    return pd.DataFrame(rows)


def resonator_paper_marks(task: str) -> dict[str, float]:
    """The frequencies (rad/s) the BRF paper's parameter analysis names for ``task`` (its Section 4.4), as
    label -> value for :func:`reprolib.plotting.learned_parameters_figure`; empty for a task it says nothing on."""
    from reprolib import reference  # noqa: PLC0415

    frame = reference.table("brf-parameters")
    frame = frame[(frame["task"] == task) & (frame["unit"] == "rad/s")]
    names = {"learned_omega_cluster": "learned cluster, near", "spike_frequency": "input spikes every ~300 steps",
             "stroke_frequency": "stroke frequency", "learned_omega_main_peak_low": "main peak from",
             "learned_omega_main_peak_high": "main peak to", "learned_omega_second_peak_low": "second peak from",
             "learned_omega_second_peak_high": "second peak to"}
    return {names.get(q, q): float(v) for q, v in zip(frame["quantity"], frame["value"])}


def show_resonator_probe(runs: Mapping[str, Runs], task: str = "ECG", results_dir=None) -> None:
    """The BRF paper's Fig. 5 (bottom) for ``task`` from the committed resonator probe of its BRF runs
    (:func:`resonator_probe`): the figure and the per-run table; a note with the commands where none is
    committed at this scale."""
    from IPython.display import display  # noqa: PLC0415

    from reprolib import plotting, reference  # noqa: PLC0415

    if task not in runs:
        return
    probe = resonator_probe(runs[task], results_dir)
    if probe is None:
        experiment = runs[task].experiment
        show_markdown(f"*No resonator probe of the {task} runs committed at scale {runs[task].params.scale}: "
                      "re-train the BRF runs where the probe will run (`reprolib rerun "
                      f"results/{experiment}/HASH.json --results results/reruns/LABEL`), then `reprolib "
                      f"probe-resonators results/reruns/LABEL/{experiment}/*.json --compare-with results "
                      "--skip-other-models`.*")
        return
    neurons, per_run, line = probe
    marks = resonator_paper_marks(task)
    plotting.learned_parameters_figure(neurons, marks, line,
                                       reference.source_label("brf") + ", Section 4.4 (Fig. 5, bottom)")
    display(per_run)
    show_markdown(resonator_summary(neurons, marks))


def resonator_summary(neurons: pd.DataFrame, marks: Mapping[str, float], window: float = 0.5) -> str:
    """Markdown: how many of the probed neurons start and end within ``window`` rad/s of each frequency the paper
    names (``marks``), and how many end below :data:`NON_OSCILLATING`; all runs pooled."""
    initial = neurons.loc[neurons["stage"] == "initial", "omega"]
    learned = neurons.loc[neurons["stage"] == "learned", "omega"]
    if learned.empty:
        return ""
    runs = neurons["record"].nunique()
    lines = [f"Over the {runs} probed run{'s' if runs != 1 else ''} ({len(learned)} neurons):"]

    def near(omega: pd.Series, value: float) -> float:
        return 100 * float(((omega - value).abs() <= window).mean())

    for label, value in marks.items():
        lines.append(f"- within {window:g} rad/s of {value:g} rad/s (*paper*: {label}): {near(initial, value):.0f} % "
                     f"of the neurons before training, {near(learned, value):.0f} % after;")
    lines.append(f"- below {NON_OSCILLATING:g} rad/s after training (no longer oscillating within a sequence): "
                 f"{100 * float((learned < NON_OSCILLATING).mean()):.0f} %.")
    return "\n".join(lines)
