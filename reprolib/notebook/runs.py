"""The run records behind one page (:class:`Runs`, from :func:`gather_runs`), labelled by the experiment's grid axes."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from reprolib.notebook.notes import (dataset_note, dataset_status, missing_runs_note, settings_dropdown,
                                     show_markdown, sweep_command)
from reprolib.notebook.parameters import Parameters
from reprolib.notebook.run_provenance import (device_text, earlier_sessions, provenance_line, record_info,
                                              record_rows)
from reprolib.notebook.tables import is_missing, to_percent


@dataclass
class Runs:
    """The run records behind one page: which configs were asked for, which have a record, and the rows.

    ``table`` is :func:`reprolib.results.load_records` of the configs, with accuracies in percent (records store
    fractions; the sources print percent) and one column per grid axis of the experiment holding the axis label
    (``input``, ``layers``, ``model``, ``neuron``, ``variant`` ...; an axis label replaces a config column of the
    same name, e.g. ``model`` reads ``src`` / ``lif`` rather than the builder name). ``grid`` has one row per
    requested config (``config_hash``, ``seed``, the axis columns, ``has_record``), so a table can show the
    configs that have no record yet. ``unavailable`` maps datasets that are not on this machine to their status.
    """

    experiment: str
    params: Parameters
    configs: list
    table: pd.DataFrame
    grid: pd.DataFrame
    missing: list
    unavailable: dict
    failed: dict
    overrides: dict

    @property
    def axes(self) -> list[str]:
        return [c for c in self.grid.columns if c not in ("config_hash", "seed", "has_record")]

    def history(self) -> pd.DataFrame:
        """Learning curves, one row per run and epoch (accuracies in percent), with the axis columns."""
        from reprolib.results import history_frame

        if self.table.empty:
            return pd.DataFrame(columns=["config_hash", "seed", *self.axes, "epoch"])
        return to_percent(history_frame(self.table, columns=["config_hash", "seed", *self.axes]))

    def summary(self, metrics: Sequence[str], by: Sequence[str] | None = None) -> pd.DataFrame:
        """Mean, std and number of runs of ``metrics`` per axis combination, every requested combination
        present (NaN where no run has a record)."""
        by = list(self.axes if by is None else by)
        if not by:  # one row over all runs
            return self._summary_all(metrics)
        keys = self.grid[by].drop_duplicates().reset_index(drop=True)
        if self.table.empty:
            out = keys.copy()
            for metric in metrics:
                out[f"{metric}_mean"] = math.nan
                out[f"{metric}_std"] = math.nan
            out["n_runs"] = 0
            return out
        values = self.table[by].copy()
        for metric in metrics:
            values[metric] = pd.to_numeric(self.table[metric], errors="coerce") if metric in self.table else math.nan
        grouped = values.groupby(by, dropna=False)
        stats = pd.DataFrame({f"{m}_{fn}": getattr(grouped[m], fn)() for m in metrics for fn in ("mean", "std")})
        stats["n_runs"] = grouped.size()
        out = keys.merge(stats.reset_index(), on=by, how="left")
        out["n_runs"] = out["n_runs"].fillna(0).astype(int)
        return out

    def _summary_all(self, metrics: Sequence[str]) -> pd.DataFrame:
        row: dict = {}
        for metric in metrics:
            values = (pd.to_numeric(self.table[metric], errors="coerce") if metric in self.table
                      else pd.Series(dtype=float))
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std() if len(values) > 1 else math.nan
        row["n_runs"] = len(self.table)
        return pd.DataFrame([row])

    def provenance_line(self) -> str:
        return provenance_line(self.table, self.params.scale)

    def command(self) -> str:
        return sweep_command(self.experiment, self.params.scale, self.params.seeds_for(self.experiment),
                             **self._selection())

    def _selection(self) -> dict:
        """The axis restrictions of this page that actually narrow the preset's grid (for the command line)."""
        from reprolib.experiments import get_configs

        full = {c.hash for c in get_configs(self.experiment, self.params.scale, self.params.seeds_for(self.experiment))}
        if full == {c.hash for c in self.configs}:
            return {}
        return {k: v for k, v in self.overrides.items() if k in self.axes}

    def preset_text(self) -> str:
        """Markdown: the preset's name in backticks and, where this page runs only part of its grid, which part,
        e.g. "`brf-ecg` (labels = source)": the reproduction-status page counts the whole grid."""
        chosen = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in self._selection().items()}
        narrowed = ", ".join(f"{k} = {', '.join(map(str, v))}" for k, v in chosen.items()
                             if set(v) != set(axis_choices(self.experiment, k)))  # an axis taken whole says nothing
        return f"`{self.experiment}`" + (f" ({narrowed})" if narrowed else "")

    def note(self) -> str:
        """Markdown: missing datasets, failed runs, and the command that completes the missing runs."""
        # the missing-runs note below gives the command that completes a missing dataset's runs
        parts = [dataset_note(name, status) for name, status in self.unavailable.items()]
        parts += [f"**Run {h[:8]} failed**: {reason}" for h, reason in self.failed.items()]
        parts.append(missing_runs_note(self.experiment, self.params.scale, self.params.seeds_for(self.experiment),
                                       len(self.missing),
                                       len(self.configs), self.params.train_missing, **self._selection()))
        return "\n\n".join(p for p in parts if p)

    def run_by_run(self, metric: str = "test_accuracy") -> pd.DataFrame:
        """One row per record: the axis labels, seed, ``metric``, code version (with the commits of earlier
        sessions when the run was resumed), device (a CPU run with the CPU model of each session) and backend, date
        and record hash -- which run, made by which code on which machine, is behind each number of the page."""
        columns = [*self.axes, "seed", metric, "code", "device", "date", "record"]
        if self.table.empty:
            return pd.DataFrame(columns=columns)
        rows = []
        for row in record_rows(self.table):
            info = record_info(row)
            commits = [str(x["git_commit"])[:8] for x in earlier_sessions(row) if x.get("git_commit")]
            code = info["code"] + (f" (resumed; earlier {', '.join(dict.fromkeys(commits))})" if commits else "")
            value = row.get(metric)
            rows.append({**{axis: row.get(axis) for axis in self.axes}, "seed": info["seed"],
                         metric: round(float(value), 2) if not is_missing(value) else None, "code": code,
                         "device": device_text(row, always_backend=True, cpu=True), "date": info["date"],
                         "record": str(row.get("config_hash", ""))[:16]})
        # numbers (layers, seeds) sort as numbers, labels as text; a missing seed ("?") goes last
        def order(value):
            return (0, value, "") if isinstance(value, numbers.Real) and not is_missing(value) else (1, math.inf, str(value))

        rows.sort(key=lambda r: tuple(order(r[key]) for key in (*self.axes, "seed")))
        return pd.DataFrame(rows, columns=columns)

    def run_by_run_dropdown(self, metric: str = "test_accuracy") -> str:
        """MyST: :meth:`run_by_run` as a folded table (empty text when there is no record)."""
        frame = self.run_by_run(metric)
        if frame.empty:
            return ""

        def cell(value) -> str:  # a | or a line break inside a value would split the table
            return "" if is_missing(value) else str(value).replace("|", "\\|").replace("\n", " ")

        header = "| " + " | ".join(cell(c) for c in frame.columns) + " |\n|" + "---|" * len(frame.columns)
        lines = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
        body = "\n".join([header, *lines])
        # a preset drawn from another's runs (src-activity from src-table2) finds its records in that one's folder
        folders = " or ".join(f"`results/{name}/<record>.json`"
                              for name in sorted({c.experiment for c in self.configs}))
        behind = "the record behind this page" if len(frame) == 1 else f"the {len(frame)} records behind this page"
        return (f"```{{dropdown}} Run by run: {behind}\n"
                f"Each record is {folders}; `reprolib rerun` re-trains one from its config.\n\n{body}\n```")

    def show_note(self) -> None:
        """Display the provenance of the page's records (for every figure and table below), :meth:`note`, the
        run-by-run provenance and the preset's settings notes, both folded under dropdowns."""
        show_markdown(f"*Run records of `{self.experiment}` shown below: {self.provenance_line()}.*")
        show_markdown(self.note())
        show_markdown(self.run_by_run_dropdown())
        show_markdown(settings_dropdown([self.experiment]))


def root_preset(experiment: str):
    """The preset that defines ``experiment``'s grid: its own, or that of the preset it is derived from."""
    from reprolib.experiments import get_preset

    root = get_preset(experiment)
    while root.derived_from:
        root = get_preset(root.derived_from)
    return root


def axis_labels(experiment: str, scale: str, seeds: Sequence[int], configs: Sequence, **overrides: Any) -> pd.DataFrame:
    """One row per config: ``config_hash``, ``seed`` and the label of each grid axis of ``experiment``."""
    from reprolib.experiments import get_configs

    root = root_preset(experiment)
    rows = {c.hash: {"config_hash": c.hash, "seed": c.seed} for c in configs}
    for ax in root.axes:
        requested = overrides.get(ax.name)
        labels = list(requested) if isinstance(requested, (list, tuple)) else (
            [requested] if requested is not None else list(ax.choices))
        for label in labels:
            try:
                selected = get_configs(experiment, scale, list(seeds), **{**overrides, ax.name: [label]})
            except ValueError:  # a label the derived preset does not keep
                continue
            for config in selected:
                if config.hash in rows:
                    rows[config.hash][ax.name] = label
    return pd.DataFrame(list(rows.values()))


def axis_choices(experiment: str, axis: str) -> list:
    """The labels of grid axis ``axis`` of ``experiment``'s preset (its source preset's, for a derived one)."""
    root = root_preset(experiment)
    for ax in root.axes:
        if ax.name == axis:
            return list(ax.choices)
    raise ValueError(f"experiment {experiment!r} has no axis {axis!r}; axes: {[a.name for a in root.axes]}")


def _train(configs: list, device: str) -> dict:
    """Train ``configs`` here, one after the other; returns ``{hash: reason}`` of the runs that failed.

    ci-scale runs use one CPU thread: their tensors are tiny, and on a shared machine two intra-op threads
    fighting other processes made a 1 s BRF ci run take a minute.
    """
    import dataclasses

    from reprolib.training import NonFiniteLossError, train
    from reprolib.training.rerun import torch_threads

    failed = {}
    with torch_threads(1 if configs and all(c.scale == "ci" for c in configs) else None):
        for config in configs:
            try:
                train(dataclasses.replace(config, device=device), progress=False)
            except NonFiniteLossError as error:
                failed[config.hash] = str(error)
    return failed


def gather_runs(experiment: str, params: Parameters, **overrides: Any) -> Runs:
    """The records of ``experiment`` at ``params.scale`` for ``params.seeds_for(experiment)``, restricted by ``overrides``
    (axis name -> labels, as :func:`reprolib.experiments.get_configs`).

    When ``params.train_missing`` is true, configs without a record are trained first, on ``params.device``,
    except those whose dataset is missing here; nothing is ever trained otherwise.
    """
    from reprolib.experiments import get_configs
    from reprolib.results import find_record, load_records

    seeds = params.seeds_for(experiment)
    configs = list(get_configs(experiment, params.scale, seeds, **overrides))
    statuses = {name: dataset_status(name) for name in sorted({c.dataset for c in configs})}
    unavailable = {name: status for name, status in statuses.items() if status != "found"}
    failed: dict = {}
    if params.train_missing:
        todo = [c for c in configs if statuses[c.dataset] != "missing" and find_record(c) is None]
        failed = _train(todo, params.device)
    table = load_records(configs)
    missing = list(table.attrs.get("missing", []))
    grid = axis_labels(experiment, params.scale, seeds, configs, **overrides)
    recorded = set(table["config_hash"]) if not table.empty else set()
    grid["has_record"] = grid["config_hash"].isin(recorded)
    if not table.empty:
        labels = grid.drop(columns=["seed", "has_record"])
        table = table.drop(columns=[c for c in labels.columns if c != "config_hash" and c in table.columns])
        table = table.merge(labels, on="config_hash", how="left")
    return Runs(experiment, params, configs, to_percent(table), grid, missing, unavailable, failed, dict(overrides))
