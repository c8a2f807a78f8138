"""Pages over several experiments: the BRF paper's tasks (S-MNIST, PS-MNIST, ECG, SHD), one preset each."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from reprolib.notebook.notes import dataset_note, settings_dropdown, show_markdown
from reprolib.notebook.parameters import Parameters, check_subset
from reprolib.notebook.runs import Runs, _root_preset, axis_choices, gather_runs
from reprolib.notebook.tables import NOT_RUN


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
        extra = {"labels": [labels]} if "labels" in [a.name for a in _root_preset(experiment).axes] else {}
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
        rows.append(f"| {task} | `{task_runs.experiment}` | {total - missing} of {total} | {line} | {command} |")
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
