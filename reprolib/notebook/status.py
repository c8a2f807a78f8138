"""The whole book: which experiments have their records, a spot check re-trained at build time, whole re-runs."""

from __future__ import annotations

import math

import pandas as pd

from reprolib.notebook.notes import dataset_status, show_markdown, sweep_command
from reprolib.notebook.parameters import check_choice
from reprolib.notebook.run_provenance import code_version, provenance_line, record_info
from reprolib.notebook.tables import for_display


def reproduction_status(scale: str = "paper", results_dir=None) -> pd.DataFrame:
    """One row per experiment preset (the toy one left out) at ``scale`` with the preset's own seeds: its
    source, how many runs its grid has and how many have a record, their provenance, the data it needs that is
    not here, and the command that completes it. ``attrs["distinct_runs"]`` / ``attrs["distinct_with_record"]``
    count every run once, where the rows count a run shared by two presets twice."""
    from reprolib.experiments import get_configs, get_preset, list_experiments
    from reprolib.results import load_records

    check_choice("scale", scale, ("ci", "paper"))
    rows, every_run, recorded = [], set(), set()
    for experiment in list_experiments():
        preset = get_preset(experiment)
        if experiment == "toy":
            continue
        configs = list(get_configs(experiment, scale))
        table = load_records(configs, results_dir)
        missing = len(table.attrs.get("missing", []))
        every_run |= {c.hash for c in configs}
        recorded |= {c.hash for c in configs} - {c.hash for c in table.attrs.get("missing", [])}
        datasets = sorted({c.dataset for c in configs})
        absent = [f"{name} ({status})" for name, status in ((n, dataset_status(n)) for n in datasets) if status != "found"]
        seeds = sorted({c.seed for c in configs})
        rows.append({
            "experiment": experiment, "title": preset.title, "source": preset.source,
            "shares runs with": preset.derived_from or "",
            "runs": len(configs), "with record": len(configs) - missing,
            "records": provenance_line(table, scale) if not table.empty else "none yet",
            "data not here": ", ".join(absent) or "",
            "to complete": sweep_command(experiment, scale, seeds) if missing else "complete",
        })
    frame = pd.DataFrame(rows)
    # presets that share runs (a figure drawn from a table's runs) list the same records twice: the totals count
    # each run once
    frame.attrs["distinct_runs"], frame.attrs["distinct_with_record"] = len(every_run), len(recorded)
    return frame


def spot_check_record(scale: str = "paper", epochs: int = 1, results_dir=None):
    """The committed record of a CPU run at ``scale``, with its data here, that :func:`show_spot_check` re-trains
    (None if none): one whose first ``epochs`` were trained on this machine's kind of CPU with one thread count if
    there is one (so its re-run should come out identical, and a difference points at the code), else any; the
    shortest epochs among those. Preferring the same CPU can pick a slower record: on the project's machine an
    N-MNIST epoch of about 20 s instead of an ECG epoch of about 1 s."""
    from reprolib.experiments import list_experiments
    from reprolib.paths import results_dir as default_results_dir
    from reprolib.results import read_record
    from reprolib.results.provenance import cpu_description
    from reprolib.training.rerun import sessions_behind, spot_check_threads

    here = cpu_description()
    root = default_results_dir(results_dir)
    best, best_key, status = None, None, {}
    for path in sorted(p for name in list_experiments() for p in (root / name).glob("*.json")):
        record = read_record(path)
        if record.config.scale != scale or spot_check_threads(record, epochs) is None:
            continue
        name = record.config.dataset
        if name not in status:
            try:
                status[name] = dataset_status(name)
            except ValueError:  # not a catalogued data set: generated in memory (the toy one), nothing to find
                status[name] = "found"
        if status[name] == "missing":  # a subset data set is what its records trained on: it re-trains as well
            continue
        behind = [session for _, session, _ in sessions_behind(record, epochs)]
        # one kind of CPU and one thread count behind the re-trained epochs: the re-run can then match them
        same_cpu = all(session.get("cpu") == here for session in behind) and len(
            {session.get("device_name") for session in behind}) == 1
        key = (not same_cpu, record.final["mean_epoch_time_s"])
        if best is None or key < best_key:
            best, best_key = record, key
    return best


def show_spot_check(scale: str = "paper", epochs: int = 1, results_dir=None) -> None:
    """Re-train the first ``epochs`` of one committed CPU record now and show them beside the record."""
    from reprolib.training.rerun import spot_check

    record = spot_check_record(scale, epochs, results_dir)
    if record is None:
        show_markdown(f"*No CPU run record at scale `{scale}` with its data here: nothing to spot-check.*")
        return
    table, summary = spot_check(record, epochs)
    info = record_info({"config": record.config.to_dict(), "provenance": record.provenance})
    verdict = ("**identical** to the record" if summary["identical"] else
               f"**not identical**: the largest accuracy difference is {summary['max_abs_accuracy_diff_pp']:.3f} pp")
    differ = summary["settings_differ"]
    subject = "its first epoch" if epochs == 1 else f"its first {epochs} epochs"
    show_markdown(
        f"Record `{record.config.experiment}/{record.hash}` (seed {record.config.seed}, code {info['code']}, "
        f"{info['device']}, {info['date']}): {subject}, re-trained while this page was built (code "
        f"{code_version()}), {'is' if epochs == 1 else 'are'} {verdict} (every epoch compared, with the "
        "evaluation before training where the run has one)."
        + (f" What differs from the record's run: {'; '.join(differ)}." if differ else ""))
    shown = [c for c in table.columns if c == "epoch" or c.startswith(("test_accuracy", "val_loss"))]
    from IPython.display import display

    display(table[shown].set_index("epoch").round(4))


def show_published_reruns(scale: str = "paper", results_dir=None) -> None:
    """The whole re-runs committed under ``results/reruns/`` at ``scale`` (see
    :func:`reprolib.training.rerun.published_reruns`): a figure with, per re-run, the committed runs of its config
    (every seed), the record it re-trains and the re-run's final test accuracy, then the table."""
    from reprolib import plotting
    from reprolib.training.rerun import RERUNS_FOLDER, published_reruns

    table = published_reruns(results_dir, scale)
    if table.empty:
        show_markdown(f"*No whole re-run is committed at scale `{scale}` yet: `reprolib rerun RECORD --results "
                      f"results/{RERUNS_FOLDER}/LABEL` trains one and writes it there.*")
        return
    # one row of axes per re-run: experiments differ in their accuracy range, so each gets its own x axis
    fig, axes = plotting.figure(len(table), 1, width=6.5, height=0.75 + 1.3 / len(table))  # + legend and caption
    handles = {}  # one legend entry per kind of marker, from whichever row draws it first
    for ax, (_, row) in zip(axes[:, 0], table.iterrows()):
        handles.setdefault("committed runs of the config (all seeds)", ax.scatter(
            row["seed accuracies (%)"], [0] * row["seeds"], color="0.45", alpha=0.5, s=18))  # ties look darker
        if not math.isnan(row["recorded (%)"]):
            handles.setdefault("the re-trained record", ax.scatter(
                [row["recorded (%)"]], [0], facecolors="none", edgecolors="k", s=70))
        handles.setdefault("its re-run", ax.scatter([row["rerun (%)"]], [0], color="C3", marker="x", s=50))
        outcome = ("identical" if row["identical"] else "no record" if math.isnan(row["difference (pp)"])
                   else f"{row['difference (pp)']:+.1f} pp")
        ax.set_yticks([0], [f"{row['experiment']}/{row['config_hash'][:8]} seed {row['seed']}\n"
                            f"({row['label']}: {outcome})"], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.margins(x=0.15)
    # a figure legend above the axes: the layout makes room for it, which it did not for an axes legend placed there
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="outside upper center", ncol=3, frameon=False)
    axes[-1, 0].set_xlabel("final test accuracy (%)", fontsize=8)
    plotting.caption(fig, f"scale {scale} · re-runs: " + ", ".join(sorted(set(table["rerun on"]))))
    from IPython.display import display

    shown = ["label", "experiment", "config_hash", "seed", "recorded (%)", "rerun (%)", "difference (pp)", "seeds",
             "seeds' min (%)", "seeds' max (%)", "inside seeds' range", "seeds' std (pp)", "z vs seeds",
             "identical", "largest epoch diff (pp)", "recorded on", "recorded code",
             "rerun on", "rerun code", "rerun date", "note"]  # settings differ: long, and the columns say it
    with pd.option_context("display.max_colwidth", None):
        display(for_display(table[shown], 2).set_index(["label", "experiment", "config_hash"]))
