"""The N-MNIST subset's train-vs-test position offset: the validation/test gap, the offset, the input-shift probe."""

from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from reprolib.notebook.notes import dataset_note, show_markdown
from reprolib.notebook.probes import committed_probe, probe_line
from reprolib.notebook.run_provenance import code_version
from reprolib.notebook.runs import Runs
from reprolib.notebook.tables import NOT_RUN


def split_gap(table: pd.DataFrame, dataset: str) -> str:
    """One sentence: the mean final validation and test accuracy (percent) of the runs on ``dataset``, or an
    empty string when no run has both."""
    if table.empty or not {"dataset", "val_accuracy", "test_accuracy"} <= set(table.columns):
        return ""
    part = table[table["dataset"] == dataset].dropna(subset=["val_accuracy", "test_accuracy"])
    if part.empty:
        return ""
    val, test = part["val_accuracy"].astype(float).mean(), part["test_accuracy"].astype(float).mean()
    return (f"Over the {len(part)} runs on {dataset} on this page, the final validation accuracy averages {val:.1f} % "
            f"and the test accuracy {test:.1f} % ({test - val:+.1f} pp).")


def show_nmnist_offsets(runs: Runs | None = None, root=None) -> None:
    """The N-MNIST subset's train-vs-test position offset (:func:`reprolib.data.nmnist.centroid_offsets`) as a
    table, after :func:`split_gap` of ``runs``; a dataset note where the subset (or MNIST) is not here."""
    from IPython.display import display  # noqa: PLC0415

    from reprolib.data.checksums import DatasetNotFoundError  # noqa: PLC0415
    from reprolib.data.nmnist import centroid_offsets  # noqa: PLC0415

    if runs is not None:
        show_markdown(split_gap(runs.table, "nmnist-subset"))
    from reprolib import plotting  # noqa: PLC0415

    try:
        table = centroid_offsets(root)  # Tonic imported without tqdm's widget notice (reprolib.data.base)
    except DatasetNotFoundError as error:
        show_markdown(dataset_note("nmnist-subset", "missing") + f"\n\n({str(error).splitlines()[0]})")
        return
    fig, _ = plotting.row_profile_figure(table.attrs["row_profiles"], table)
    plotting.caption(fig, f"computed from the raw N-MNIST subset files · code {code_version()}")
    display(table.round(2))


def shift_probe(runs: Runs, results_dir=None) -> tuple[pd.DataFrame, str] | None:
    """The input-shift probe of this page's runs (:mod:`reprolib.training.shift_probe`) at their scale, if one is
    committed:
    ``(frame, provenance line)`` with one row per probed run, split and shift (accuracy in percent) and the
    page's axis columns joined by record hash (rows of runs not on this page are dropped); ``None`` when
    there is no probe file for the experiment."""
    found = committed_probe(runs, "shift-probe", results_dir)
    if found is None:
        return None
    payload, axes = found
    frame = pd.DataFrame(payload["rows"])
    frame = frame.merge(axes, on="record", how="inner")
    frame["accuracy"] = 100 * frame["accuracy"]
    # the page's runs of the probed data set(s) that the probe has no rows for: their weights were not kept where
    # it ran (the file lists them), or they were recorded after it
    skipped = set(payload.get("skipped_without_weights", []))
    probed = set(frame["record"])
    scope = runs.table
    covered = scope["config_hash"].isin(probed | skipped)
    # the probe's data set(s) where the table says which; else only the runs the probe file names
    scope = scope[scope["dataset"].isin(set(scope.loc[covered, "dataset"]))] if "dataset" in scope else scope[covered]
    columns = [c for c in ("config_hash", "seed", *runs.axes) if c in scope.columns]
    missing = scope.loc[~scope["config_hash"].isin(probed), columns]
    frame.attrs["not_probed"] = [  # plain records: pandas compares attrs when it concatenates frames
        {**row, "reason": "no kept weights where the probe ran" if row["config_hash"] in skipped
         else "recorded after the probe"} for row in missing.to_dict("records")]
    return frame, probe_line(payload, len(probed), len(scope), left_out=len(frame.attrs["not_probed"]), shown=probed)


def shift_probe_summary(frame: pd.DataFrame, by: Sequence[str], name: Callable[[dict], str]) -> str:
    """Markdown bullets from :func:`shift_probe`: per group of ``by``, the mean validation and test accuracy
    with the inputs unmoved and with the shift that helps the test set most, and what that shift does to
    the validation set (which shares the training set's recordings). Rows only (``dx = 0``). A last bullet
    names the page's runs of the probed data that the probe has no rows for (``frame.attrs["not_probed"]``: their
    weights were not kept where it ran, or they were recorded after it)."""
    rows = frame[frame["dx"] == 0]
    lines = []
    for values, group in rows.groupby(list(by), sort=False):
        cell = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        mean = group.groupby(["split", "dy"])["accuracy"].mean().dropna()
        if ("test", 0) not in mean or ("val", 0) not in mean:
            continue
        moved = mean["test"].drop(0, errors="ignore")
        moved = moved[moved.index.isin(mean["val"].index)]
        if moved.empty:  # only the unmoved inputs were probed
            continue
        best = moved.idxmax()
        n = group["record"].nunique()
        where = f"{abs(best)} row{'s' if abs(best) != 1 else ''} {'down' if best > 0 else 'up'}"
        lines.append(f"* {name(cell)} ({n} run{'s' if n != 1 else ''}): test {mean['test', 0]:.1f} % as recorded, "
                     f"{mean['test', best]:.1f} % with the test inputs moved {where} "
                     f"({mean['test', best] - mean['test', 0]:+.1f} pp); the same move takes validation from "
                     f"{mean['val', 0]:.1f} % to {mean['val', best]:.1f} % ({mean['val', best] - mean['val', 0]:+.1f} pp).")
    lines = lines or [f"*{NOT_RUN}*"]
    not_probed = pd.DataFrame(frame.attrs.get("not_probed") or [])
    if len(not_probed) and set(by) <= set(not_probed.columns):
        for reason, left_out in not_probed.groupby("reason", sort=False):
            lines.append(f"* Not probed ({reason}): " + "; ".join(
                f"{name(dict(zip(by, v if isinstance(v, tuple) else (v,))))}"
                + (f" (seed{'s' if len(g) > 1 else ''} {', '.join(map(str, sorted(g['seed'])))})" if "seed" in g
                   else f" ({len(g)} runs)")
                for v, g in left_out.groupby(list(by), sort=False)) + ".")
    return "\n".join(lines)
