"""Helpers every book notebook uses: parameter checks, provenance, paper-vs-ours tables, missing-run notes.

A notebook of the book states its parameters (papermill ``parameters`` cell), calls
:func:`check_parameters` first (so a bad value fails before anything long starts), asks the library for
run records, and shows them. The helpers here turn records and the sources' reported numbers
(:mod:`reprolib.reference`) into what a reader sees:

* :func:`provenance` / :func:`provenance_line`: scale, seeds, code version, device and date of the records behind a
  figure or table;
* :func:`paper_vs_ours`: a table with the source's number, ours, and the difference, where a missing number reads
  "not available" (the source gives none) or "not run yet at this scale" (no record); :func:`paper_vs_summary`
  makes it from one metric of a run summary;
* :func:`sweep_command` / :func:`missing_runs_note`: the exact ``reprolib sweep`` command that completes a page;
* :func:`dataset_note`: what to say when a dataset is missing or only a subset;
* :func:`brf_runs`, :func:`show_task_notes`, :func:`tasks_provenance`: the BRF pages, one experiment per task
  (:data:`BRF_TASKS`).
"""

from __future__ import annotations

import json
import math
import numbers
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from reprolib.checks import is_finite_real

SCALES = ("ci", "paper")
NOT_AVAILABLE = "not available"
NOT_RUN = "not run yet at this scale"


# --- parameters -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameters:
    """The validated common parameters of a book notebook (``device`` resolved from ``auto``).

    ``seeds`` is ``None`` for "each experiment's own seeds at this scale" (its preset: the source's number of
    runs), which is what the book uses; a tuple of seeds asks for exactly those.
    """

    scale: str
    seeds: tuple[int, ...] | None
    device: str
    train_missing: bool
    knobs: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.knobs[key]

    def seeds_for(self, experiment: str) -> list[int]:
        """The seeds to show for ``experiment``: the given ones, or its preset's at this scale."""
        if self.seeds is not None:
            return list(self.seeds)
        from reprolib.experiments import get_preset  # noqa: PLC0415

        return list(get_preset(experiment).seeds[self.scale])


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` are checked."""
    import torch

    if not isinstance(device, str):
        raise ValueError(f"device must be a string ('auto', 'cpu', 'cuda' or 'cuda:N'), got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but no CUDA device is available; use device='auto' or 'cpu'")
        return device
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` naming both."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"parameter {name}={value!r} is not allowed; expected one of {allowed}")
    return value


def check_subset(name: str, values: Any, allowed: Iterable[Any]) -> list:
    """Return ``values`` as a non-empty list whose items are all in ``allowed``."""
    allowed = list(allowed)
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"parameter {name} must be a list drawn from {allowed}, got {values!r}")
    values = list(values)
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ValueError(f"parameter {name}={values!r}: {bad or 'empty'} not allowed; expected items of {allowed}")
    return values


def check_positive(name: str, value: Any, integer: bool = False) -> Any:
    """Return ``value`` if it is a positive finite number (an ``int`` when ``integer``)."""
    ok_type = isinstance(value, int) if integer else True
    if not is_finite_real(value) or not ok_type or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"parameter {name}={value!r} must be {kind}")
    return value


def check_number(name: str, value: Any) -> Any:
    """Return ``value`` unchanged if it is a finite number (not a bool; see :func:`reprolib.checks.is_finite_real`),
    else raise a ``ValueError`` naming it."""
    if not is_finite_real(value):
        raise ValueError(f"parameter {name}={value!r} must be a finite number")
    return value


def check_integer(name: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """Return ``value`` if it is an integer in ``[low, high]`` (``high`` None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"parameter {name}={value!r} must be an integer {span}")
    return value


def check_list(name: str, values: Any, item: Callable[[str, Any], Any] | None = None, length: int | None = None) -> list:
    """Return ``values`` as a list if it is a non-empty list (of ``length`` items, when given) whose items pass
    ``item(f"{name}[i]", value)`` (e.g. :func:`check_positive`), else raise a ``ValueError`` naming it."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValueError(f"parameter {name} must be a list, got {values!r}")
    values = list(values)
    if not values or (length is not None and len(values) != length):
        expected = f"{length} items" if length is not None else "at least one item"
        raise ValueError(f"parameter {name}={values!r} must have {expected}")
    for i, value in enumerate(values):
        if item is not None:
            item(f"{name}[{i}]", value)
    return values


def read_json(path: Path | str) -> Any:
    """The JSON document at ``path``; a ``ValueError`` naming the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not a JSON document ({error})") from None


def check_parameters(scale: str, seeds: Any, device: str, train_missing: Any, **knobs: Any) -> Parameters:
    """Validate the parameters every notebook shares; ``knobs`` are passed through (check them with
    :func:`check_choice` / :func:`check_subset` / :func:`check_positive`).

    ``seeds=None`` means each experiment's own seeds (:meth:`Parameters.seeds_for`). Raises ``ValueError`` naming
    the bad value and what was expected.
    """
    check_choice("scale", scale, SCALES)
    if not isinstance(train_missing, bool):
        raise ValueError(f"parameter train_missing must be true or false, got {train_missing!r}")
    if seeds is None:
        return Parameters(scale=scale, seeds=None, device=resolve_device(device), train_missing=train_missing,
                          knobs=dict(knobs))
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"parameter seeds must be a list of non-negative integers (or null: each experiment's own), "
                         f"got {seeds!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"parameter seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"parameter seeds has duplicates: {seeds!r}")
    return Parameters(scale=scale, seeds=tuple(seeds), device=resolve_device(device),
                      train_missing=train_missing, knobs=dict(knobs))


# --- provenance -------------------------------------------------------------------------------------------


def _lookup(row: Mapping, *keys: str, default=None):
    """First present, non-empty value among ``keys`` of a run row.

    Rows are those of :func:`reprolib.results.load_records` (flat: ``seed``, ``provenance.git_commit`` ...);
    a nested record dict (``{"config": {...}, "provenance": {...}}``) is flattened first.
    """
    for key in keys:
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return value
    return default


def _flat(record: Mapping) -> dict:
    if any(isinstance(v, Mapping) for v in record.values()):
        frame = pd.json_normalize([{k: v for k, v in record.items() if k != "history"}])
        return frame.iloc[0].to_dict()
    return dict(record)


def _backend(row: Mapping) -> str:
    """The neuron-loop backend of a run (records before the ``backend`` field ran the PyTorch loops)."""
    return str(_lookup(row, "config.backend", "backend", default="torch"))


def _device_text(row: Mapping, always_backend: bool = False) -> str:
    """The device, and the backend where it is not the PyTorch default (or always, to tell runs apart)."""
    device = str(_lookup(row, "provenance.device_name", "provenance.device", default="unknown"))
    backend = _backend(row)
    text = device if backend == "torch" and not always_backend else f"{device}, {backend} backend"
    if _lookup(row, "config.flush_denormal", "flush_denormal", default=False) is True:
        text += ", subnormals flushed"  # config flush_denormal: a CPU run that treated values < 1.2e-38 as 0
    return text


def record_info(record: Mapping) -> dict:
    """Scale, seed, code version, device and date of one run (a records-table row or a record dict)."""
    row = _flat(record)
    commit = _lookup(row, "provenance.git_commit", "provenance.commit")
    dirty = _lookup(row, "provenance.git_dirty", "provenance.dirty", default=False)
    version = "unknown" if not commit else str(commit)[:8] + ("+dirty" if dirty else "")
    if commit and _lookup(row, "provenance.git_commit_from"):  # no git where it ran: the caller stated the commit
        version += " (stated)"
    date = _lookup(row, "provenance.end_time", "provenance.end", "provenance.start_time", "provenance.date")
    return {
        "scale": _lookup(row, "scale", "config.scale", "provenance.scale", default="?"),
        "seed": _lookup(row, "seed", "config.seed", default="?"),
        "code": version,
        "device": _device_text(row),
        "date": str(date)[:10] if date else "unknown",
    }


def _rows(records) -> list[Mapping]:
    if isinstance(records, pd.DataFrame):
        return records.drop(columns=["history"], errors="ignore").to_dict("records")
    return list(records)


def _join(values: Iterable, separator: str = ", ") -> str:
    unique = sorted({str(v) for v in values})
    return separator.join(unique) if unique else "none"


def provenance(records) -> dict:
    """Summary of a set of runs (records table or record dicts): scales, seeds, code versions, devices, dates."""
    rows = [_flat(r) for r in _rows(records)]
    infos = [record_info(r) for r in rows]
    mixed = len({_backend(r) for r in rows}) > 1  # a mix: name each backend, the default one too
    devices = [_device_text(r, always_backend=mixed) for r in rows]
    dates = sorted(i["date"] for i in infos if i["date"] != "unknown")
    return {
        "runs": len(infos),
        "scale": _join(i["scale"] for i in infos),
        "seeds": len({i["seed"] for i in infos}),
        "code": _join(i["code"] for i in infos),
        "device": _join(devices, "; "),  # a device text has commas of its own
        "date": "unknown" if not dates else (dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"),
    }


def provenance_line(records, scale: str | None = None) -> str:
    """One line for a caption: ``scale ci · 2 seeds (6 runs) · code 1a2b3c4d · cpu · 2026-11-23``."""
    if len(records) == 0:
        return f"scale {scale or '?'} · no run records yet"
    p = provenance(records)
    return (f"scale {p['scale']} · {p['seeds']} seed{'s' if p['seeds'] != 1 else ''} ({p['runs']} runs) · "
            f"code {p['code']} · {p['device']} · {p['date']}")


def code_version() -> str:
    """The working tree's git commit (short, ``+dirty`` when modified), for pages computed without records."""
    import subprocess

    from reprolib.paths import REPO_ROOT

    try:
        commit = subprocess.run(["git", "rev-parse", "--short=8", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def simulation_provenance(device: str = "cpu") -> str:
    """Provenance line of a figure computed in the notebook itself (a neuron simulation, no training)."""
    import datetime

    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return f"simulated in this notebook · no training · code {code_version()} · {device} · {today}"


# --- tables -----------------------------------------------------------------------------------------------


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def paper_vs_ours(frame: pd.DataFrame, index: Sequence[str], paper: str = "paper", ours: str = "ours",
                  ours_std: str | None = "ours_std", runs: str | None = "runs", decimals: int = 2,
                  paper_std: str | None = "paper_std") -> pd.DataFrame:
    """A display table: ``index`` columns, then *paper*, *ours* and *difference* (ours - paper).

    ``frame`` has one row per compared item, numeric ``paper`` (NaN where the source reports nothing) and ``ours``
    (NaN where no run record exists yet), optionally ``ours_std`` / ``paper_std`` and the number of ``runs``.
    Missing numbers read "not available" (paper) or "not run yet at this scale" (ours); a difference needs both.
    An optional ``decimals`` column sets the precision of its row (e.g. 4 for a loss beside accuracies).
    """
    default_decimals = decimals
    rows = []
    for _, row in frame.iterrows():
        p, o = row.get(paper), row.get(ours)
        decimals = int(row["decimals"]) if "decimals" in row and not _missing(row["decimals"]) else default_decimals
        p_text = NOT_AVAILABLE if _missing(p) else _fmt(p, decimals)
        if not _missing(p) and paper_std and not _missing(row.get(paper_std)):
            p_text += f" ± {_fmt(row[paper_std], decimals)}"
        if _missing(o):
            o_text = NOT_RUN
        else:
            o_text = _fmt(o, decimals)
            if ours_std and ours_std in row and not _missing(row[ours_std]):
                o_text += f" ± {_fmt(row[ours_std], decimals)}"
            if runs and runs in row and not _missing(row[runs]):
                o_text += f" (n={int(row[runs])})"
        if _missing(p):
            d_text = NOT_AVAILABLE
        elif _missing(o):
            d_text = NOT_RUN
        else:
            d_text = f"{o - p:+.{decimals}f}"
        rows.append({**{k: row[k] for k in index}, "paper": p_text, "ours": o_text, "difference": d_text})
    return pd.DataFrame(rows, columns=[*index, "paper", "ours", "difference"])


def paper_vs_summary(summary: pd.DataFrame, metric: str, index: Sequence[str], paper: str = "paper",
                     paper_std: str | None = "paper_std", spread: bool = True, decimals: int = 2) -> pd.DataFrame:
    """:func:`paper_vs_ours` of one ``metric`` of a run summary (:meth:`Runs.summary`, or
    :func:`reprolib.results.summarize`, whose groups are its index): *ours* is ``<metric>_mean``, written
    ``± <metric>_std (n=<n_runs>)`` unless ``spread`` is false (e.g. a parameter count, the same in every run).

    ``paper`` (and optionally ``paper_std``) name the summary's columns with the source's numbers, NaN where it
    reports none. Raises ``ValueError`` when a column it needs is not in ``summary``.
    """
    index = list(index)
    if not set(index) <= set(summary.columns) and set(index) <= set(summary.index.names):
        summary = summary.reset_index()
    ours, ours_std, runs = f"{metric}_mean", f"{metric}_std", "n_runs"
    needed = [*index, paper, ours, *([ours_std, runs] if spread else [])]
    lacking = [c for c in needed if c not in summary.columns]
    if lacking:
        raise ValueError(f"the summary has no column {lacking} (metric={metric!r}, paper={paper!r}); "
                         f"columns: {list(map(str, summary.columns))}")
    return paper_vs_ours(summary, index, paper=paper, ours=ours, ours_std=ours_std if spread else None,
                         runs=runs if spread else None, decimals=decimals, paper_std=paper_std)


def mean_std(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, sample std and count of ``value`` per group (std NaN for a single run), as ``ours, ours_std, runs``."""
    grouped = frame.groupby(list(by), dropna=False)[value]
    out = grouped.agg(ours="mean", ours_std="std", runs="count").reset_index()
    return out


# --- missing runs and data ---------------------------------------------------------------------------------


def sweep_command(experiment: str, scale: str, seeds: Sequence[int], **selection: Any) -> str:
    """The exact command line that produces the missing records of ``experiment``.

    ``selection``: grid axis -> the labels this page uses (``reprolib sweep --select axis=label``, repeated per label).
    """
    parts = ["reprolib", "sweep", experiment, "--scale", scale, "--seeds", *[str(s) for s in seeds]]
    for key, value in selection.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            parts += ["--select", f"{key}={item}"]
    return " ".join(shlex.quote(p) for p in parts)


def missing_runs_note(experiment: str, scale: str, seeds: Sequence[int], missing: int, total: int,
                      train_missing: bool, **grid: Any) -> str:
    """Markdown saying how many configs have no record and how to complete them (empty if none is missing)."""
    if missing == 0:
        return ""
    command = sweep_command(experiment, scale, seeds, **grid)
    why = ("`train_missing` is false, so this page only renders records that exist"
           if not train_missing else "they could not be trained here: see above")
    return (f"**{missing} of {total} runs of `{experiment}` have no record at scale `{scale}`** ({why}); "
            f"their cells read *{NOT_RUN}*. To complete this page, run\n\n```bash\n{command}\n```\n\n"
            f"then rebuild the book (`make book`).")


def dataset_note(name: str, status: str, command: str | None = None) -> str:
    """Markdown for a dataset that is ``missing`` or a ``subset`` (empty when ``status`` is ``found``)."""
    check_choice("status", status, ("found", "missing", "subset"))
    if status == "found":
        return ""
    if status == "subset":
        text = (f"**{name}: only a subset of the dataset is available here**, so our numbers for it are not "
                f"comparable with the source's.")
    else:
        text = f"**{name} is not available on this machine**, so the cells that need it read *{NOT_RUN}*."
    if command:
        text += f" Where the full data exists (`$REPROLIB_DATA`, see `reprolib data`), complete it with\n\n```bash\n{command}\n```"
    return text


def dataset_status(name: str) -> str:
    """``found``, ``subset`` or ``missing`` for dataset ``name`` under ``$REPROLIB_DATA`` (or the download cache).

    A dataset whose files fail their checksum counts as missing (the loader would refuse it).
    """
    from reprolib.data import resolve_root
    from reprolib.data.catalog import check_availability
    from reprolib.paths import cache_dir

    status = check_availability(name, resolve_root(None), cache_dir()).status
    return status if status in ("found", "subset") else "missing"


def show_markdown(text: str) -> None:
    """Display Markdown in a notebook (a no-op for empty text)."""
    if not text:
        return
    from IPython.display import Markdown, display

    display(Markdown(text))


# --- run records of an experiment ---------------------------------------------------------------------------


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
        sessions when the run was resumed), device and backend, date and record hash -- which run, made by which
        code, is behind each number of the page."""
        columns = [*self.axes, "seed", metric, "code", "device", "date", "record"]
        if self.table.empty:
            return pd.DataFrame(columns=columns)
        rows = []
        for row in _rows(self.table):
            info = record_info(row)
            earlier = row.get("provenance.earlier_sessions")  # records table: each session as sorted item pairs
            sessions = [dict(x) if not isinstance(x, Mapping) else x for x in earlier] if isinstance(earlier, (list, tuple)) else []
            commits = [str(x["git_commit"])[:8] for x in sessions if x.get("git_commit")]
            code = info["code"] + (f" (resumed; earlier {', '.join(dict.fromkeys(commits))})" if commits else "")
            value = row.get(metric)
            rows.append({**{axis: row.get(axis) for axis in self.axes}, "seed": info["seed"],
                         metric: round(float(value), 2) if not _missing(value) else None, "code": code,
                         "device": _device_text(row, always_backend=True), "date": info["date"],
                         "record": str(row.get("config_hash", ""))[:16]})
        # numbers (layers, seeds) sort as numbers, labels as text; a missing seed ("?") goes last
        def order(value):
            return (0, value, "") if isinstance(value, numbers.Real) and not _missing(value) else (1, math.inf, str(value))

        rows.sort(key=lambda r: tuple(order(r[key]) for key in (*self.axes, "seed")))
        return pd.DataFrame(rows, columns=columns)

    def run_by_run_dropdown(self, metric: str = "test_accuracy") -> str:
        """MyST: :meth:`run_by_run` as a folded table (empty text when there is no record)."""
        frame = self.run_by_run(metric)
        if frame.empty:
            return ""

        def cell(value) -> str:  # a | or a line break inside a value would split the table
            return "" if _missing(value) else str(value).replace("|", "\\|").replace("\n", " ")

        header = "| " + " | ".join(cell(c) for c in frame.columns) + " |\n|" + "---|" * len(frame.columns)
        lines = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
        body = "\n".join([header, *lines])
        return (f"```{{dropdown}} Run by run: the {len(frame)} records behind this page\n"
                f"Each record is `results/{self.experiment}/<record>.json`; `reprolib rerun` re-trains one from its "
                f"config.\n\n{body}\n```")

    def show_note(self) -> None:
        """Display the provenance of the page's records (for every figure and table below), :meth:`note`, the
        run-by-run provenance and the preset's settings notes, both folded under dropdowns."""
        show_markdown(f"*Run records of `{self.experiment}` shown below: {self.provenance_line()}.*")
        show_markdown(self.note())
        show_markdown(self.run_by_run_dropdown())
        show_markdown(settings_dropdown([self.experiment]))


def to_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy columns (``*accuracy*``) from fractions to percent, in a copy."""
    frame = frame.copy()
    for column in frame.columns:
        if "accuracy" in str(column) and pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column] * 100.0
    return frame


def _root_preset(experiment: str):
    """The preset that defines ``experiment``'s grid: its own, or that of the preset it is derived from."""
    from reprolib.experiments import get_preset

    root = get_preset(experiment)
    while root.derived_from:
        root = get_preset(root.derived_from)
    return root


def axis_labels(experiment: str, scale: str, seeds: Sequence[int], configs: Sequence, **overrides: Any) -> pd.DataFrame:
    """One row per config: ``config_hash``, ``seed`` and the label of each grid axis of ``experiment``."""
    from reprolib.experiments import get_configs

    root = _root_preset(experiment)
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


def convergence_epochs(curve: pd.Series, fractions: Sequence[float] = (0.95, 0.98, 1.0)) -> dict:
    """First epoch at which a (mean) learning curve reaches each fraction of its final value.

    ``curve``: accuracy indexed by epoch (epoch 0 = untrained, when recorded). The BRF paper's Table 2 / the
    dots of its convergence figure read the curve this way; 100 % is the first epoch at or above the last value.
    """
    curve = curve.dropna().sort_index()
    if curve.empty:
        return {f: math.nan for f in fractions}
    final = curve.iloc[-1]
    out = {}
    for fraction in fractions:
        reached = curve[curve >= fraction * final - 1e-9]
        out[fraction] = int(reached.index[0]) if not reached.empty else math.nan
    return out


def frozen_since(history: Sequence[Mapping], key: str = "test_activity", rel_tol: float = 1e-3,
                 min_epochs: int = 20) -> int | None:
    """The epoch from which ``key`` (by default the hidden layer's spike activity) stays within ``rel_tol`` of its
    last value to the end of the run, when that lasts ``min_epochs`` epochs or more; else None.

    A recurrent layer whose neurons all sit far above or far below threshold spikes in the same pattern whatever
    its input, and its surrogate gradients vanish: its activity then stops changing while the readout goes on
    learning. This finds such runs in their records."""
    values = [(h["epoch"], h.get(key)) for h in history if h.get("epoch", 0) > 0 and h.get(key) is not None]
    if not values:
        return None
    last = values[-1][1]
    since = None
    for epoch, value in reversed(values):
        if abs(value - last) > rel_tol * max(abs(last), 1e-12):
            break
        since = epoch
    return since if since is not None and values[-1][0] - since + 1 >= min_epochs else None


def _fit_at(history: Sequence[Mapping], epoch: int, threshold: float = 0.995) -> bool:
    """Whether the run's training accuracy had reached ``threshold`` by ``epoch`` (from its history)."""
    return any(h.get("epoch", 0) <= epoch and (h.get("train_accuracy") or 0.0) >= threshold for h in history)


def _frozen_runs(table: pd.DataFrame) -> tuple[list[tuple[Any, int]], list[tuple[Any, int]]]:
    """``(seed, epoch)`` of the runs in a records table whose hidden activity froze (:func:`frozen_since`): those
    that froze before they fit their training set, and those that froze after it. Activity that stops changing
    once the training set is fit says nothing about the neurons: the loss has no gradient left to give."""
    before, after = [], []
    for seed, history in zip(table["seed"], table["history"]):
        epoch = frozen_since(history)
        if epoch is not None:
            (after if _fit_at(history, epoch) else before).append((seed, epoch))
    return before, after


def _mean_spread(values: pd.Series) -> str:
    """``mean ± sample std`` with two decimals (the mean alone for one value)."""
    return f"{values.mean():.2f}" + (f" ± {values.std():.2f}" if len(values) > 1 else "")


def still_improving(history: Sequence[Mapping], key: str = "test_accuracy", window_fraction: float = 0.125,
                    threshold: float = 0.005) -> float | None:
    """How much ``key`` (a fraction) rose over the last ``window_fraction`` of a run's epochs, when more than
    ``threshold``; else None. Such a run converged slowly rather than to a worse solution."""
    values = [(h["epoch"], h.get(key)) for h in history if h.get(key) is not None]
    if len(values) < 8:
        return None
    window = max(1, round(window_fraction * values[-1][0]))
    before = [v for epoch, v in values if epoch <= values[-1][0] - window]
    if not before:
        return None
    gain = values[-1][1] - before[-1]
    return gain if gain > threshold else None


def _miss(name: str, group: pd.DataFrame, reported: float, reported_std: float | None) -> tuple[bool, str]:
    """``(within, text)`` for one cell: ``within`` when the mean test accuracy of ``group`` (percent) is within
    the paper's std (1 pp where it gives none), with ``text`` the short note for the "within" list; else the
    start of a finding: ours, the paper's, by how much."""
    accuracy = group["test_accuracy"].astype(float)
    mean, n = accuracy.mean(), len(accuracy)
    diff = mean - reported
    tolerance = 1.0 if _missing(reported_std) else float(reported_std)
    runs = f"{n} run{'s' if n != 1 else ''}"
    if abs(diff) <= tolerance:
        return True, f"{name} ({diff:+.2f} pp, {runs})"
    paper_text = f"{reported:.2f}".rstrip("0").rstrip(".") + ("" if _missing(reported_std) else f" ± {float(reported_std):.1f}")
    return False, (f"**{name}**: ours {_mean_spread(accuracy)} % ({runs}) against the paper's {paper_text} %, "
                   f"{abs(diff):.2f} pp {'below' if diff < 0 else 'above'}"
                   + ("" if _missing(reported_std) else ", outside its std")
                   + (", within 1 pp." if abs(diff) <= 1 else ", more than 1 pp."))


def _run_signs(group: pd.DataFrame) -> str:
    """What the runs' histories say about a miss: training stopped at a non-finite loss (config
    ``nonfinite_loss = "stop"``), hidden activity frozen (:func:`frozen_since`), or still improving at the last
    epoch (:func:`still_improving`)."""
    text, n = "", len(group)
    if "stopped_early" in group:
        stopped = [(seed, dict(info), selected) for seed, info, selected
                   in zip(group["seed"], group["stopped_early"], group.get("selected_epoch", [None] * n))
                   if isinstance(info, tuple)]
        if stopped:
            which = ", ".join(f"seed {seed} in epoch {info['epoch']} (reports epoch {selected})"
                              for seed, info, selected in stopped)
            text += (f" In {len(stopped)} of {n} runs the training loss turned non-finite ({which}); as in the "
                     "source, training stopped there and the run reports its selected epoch before it.")
    frozen, settled = _frozen_runs(group)
    if frozen:
        which = ", ".join(f"seed {seed} from epoch {epoch}" for seed, epoch in frozen)
        text += (f" In {len(frozen)} of {n} runs the hidden layer's mean spike activity on the test set stops "
                 f"changing (to 0.1 %; {which}): a sign that its neurons sit far from threshold, where the "
                 "surrogate gradient vanishes, so the hidden layer stops adapting while the readout learns on.")
    if settled:
        which = ", ".join(f"seed {seed} from epoch {epoch}" for seed, epoch in settled)
        text += (f" In {len(settled)} of {n} runs the hidden activity stops changing only after the run fits its "
                 f"training set ({which}): the loss has no gradient left to give, which says nothing about the "
                 "neurons.")
    stuck = {seed for seed, _ in frozen + settled}
    slow = [(seed, gain) for seed, gain in zip(group["seed"], map(still_improving, group["history"]))
            if gain is not None and seed not in stuck]
    if slow:
        which = ", ".join(f"seed {seed} (+{100 * gain:.2f} pp)" for seed, gain in slow)
        text += (f" Still rising over the last eighth of training: {which}; such a run converged slowly "
                 "rather than to a worse solution.")
    return text


def _bullets(findings: list[str], within: list[str], label: str = "Within the paper's std") -> str:
    lines = [f"* {text}" for text in findings]
    if within:
        lines.append(f"* {label}: " + ", ".join(within) + ".")
    return "\n".join(lines) if lines else f"*{NOT_RUN}*"


def accuracy_findings(runs: Mapping[str, Runs], paper: pd.DataFrame, released: pd.DataFrame | None = None,
                      by: str = "neuron") -> str:
    """Markdown bullets, computed from the records, for every task and model whose mean test accuracy misses the
    paper's by more than the paper's std (1 pp where it gives none): by how much, how the authors' released logs
    of the same network compare, and which runs are responsible (hidden activity frozen, see :func:`frozen_since`;
    still improving at the last epoch, see :func:`still_improving`). Cells within the std are listed together.

    ``paper``: rows ``task, model, test_accuracy, test_accuracy_std, architecture, note`` (the reference table);
    ``released``: :func:`reprolib.reference.brf_log_selection`-like rows; ``runs``: task -> :class:`Runs` whose
    table has percent accuracies and a ``by`` column whose upper-case labels are the paper's model names."""
    bullets, within = [], []
    for task, task_runs in runs.items():
        table = task_runs.table
        if table.empty:
            continue
        for label, group in table.groupby(by, sort=False):
            model = str(label).upper()
            row = paper[(paper["task"] == task) & (paper["model"] == model)]
            if row.empty or _missing(row["test_accuracy"].iloc[0]):
                continue
            ok, text = _miss(f"{task} {model}", group, float(row["test_accuracy"].iloc[0]),
                             row["test_accuracy_std"].iloc[0])
            if ok:
                within.append(text)
                continue
            note = row["note"].iloc[0] if "note" in row else None
            if isinstance(note, str) and note:
                text += f" The paper's number does not come from the paper's code: {note} ({row['architecture'].iloc[0]})."
            if released is not None:
                logged = released[(released["task"] == task) & (released["model"] == model)]
                if not logged.empty:
                    m, sd, k = (float(logged[c].iloc[0]) for c in ("test_accuracy_mean", "test_accuracy_std", "runs"))
                    gap = group["test_accuracy"].astype(float).mean() - m
                    text += (f" The authors' released logs of this network, under the same selection rule, give "
                             f"{m:.2f} ± {sd:.2f} % ({k:.0f} runs): ours is {abs(gap):.2f} pp "
                             f"{'below' if gap < 0 else 'above'}, {'within' if abs(gap) <= sd else 'outside'} their std.")
            bullets.append(text + _run_signs(group))
    return _bullets(bullets, within)


def table_findings(table: pd.DataFrame, by: Sequence[str], reported: Callable[[dict], float | None],
                   name: Callable[[dict], str]) -> str:
    """Markdown bullets, computed from the records, for every cell of a paper's table that gives no std (1 pp is
    the tolerance): the cells whose mean test accuracy misses the paper's, each with what the records say about
    why, and the cells within 1 pp listed together.

    ``table``: records with percent accuracies and the ``by`` columns; ``reported(cell)`` and ``name(cell)``: the
    paper's number (``None`` where it gives none) and a label, for ``cell`` = a dict of the ``by`` values.
    Beyond the signs of :func:`accuracy_findings` a finding says what bounds the comparison: a data set that is
    a subset of the paper's (:data:`reprolib.data.catalog.CATALOG`), runs that fit their training set exactly
    (the shortfall is then generalisation, not optimisation), and a test set small enough that one sample
    moves the accuracy by a visible step."""
    from reprolib.data.catalog import CATALOG  # noqa: PLC0415

    bullets, within = [], []
    if table.empty:
        return _bullets(bullets, within)
    for values, group in table.groupby(list(by), sort=False):
        cell = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        paper = reported(cell)
        if paper is None or _missing(paper):
            continue
        ok, text = _miss(name(cell), group, float(paper), None)
        if ok:
            within.append(text)
            continue
        info = CATALOG.get(str(group["dataset"].iloc[0])) if "dataset" in group else None
        if info is not None and info.subset_note:
            text += (f" These runs train and test on a subset of the data, {info.subset_note}, not on the paper's "
                     "full set: the difference measures the smaller data, not the reproduction.")
        if info is not None and info.caveat:
            text += f" {info.caveat}"
        if "train_accuracy" in group and group["train_accuracy"].notna().all():
            train = group["train_accuracy"].astype(float)
            if train.min() >= 99.5:
                text += (f" Every run fits its training set (train accuracy {_mean_spread(train)} %), so the shortfall "
                         "is in generalisation, not in optimisation.")
        if info is not None and info.test_size:
            p = group["test_accuracy"].astype(float).mean() / 100
            se = 100 * math.sqrt(p * (1 - p) / info.test_size)
            if se >= 0.5:
                text += (f" The test set holds {info.test_size:,} samples: one sample is {100 / info.test_size:.2g} pp, "
                         f"and one run's accuracy has a binomial standard error of {se:.1f} pp.")
        bullets.append(text + _run_signs(group))
    return _bullets(bullets, within, label="Within 1 pp of the paper")


def paired_gap(table: pd.DataFrame, by: Sequence[str], pair: str, first: str, second: str,
               reported: Callable[[dict], float | None], metric: str = "test_accuracy") -> pd.DataFrame:
    """The paper's comparison of two variants, ours beside it: for each group of ``by`` values, ``first``
    minus ``second`` on the ``pair`` axis (e.g. SRC minus LIF per input and depth), in the paper and in our runs.

    Our gap is the difference of the two means over the seeds that both variants have (the same seed gives
    both the same data split, so the runs pair up); ``wins`` counts those seeds where ``first`` scored higher.
    ``reported(cell)`` is the paper's number for ``cell`` = the ``by`` values plus ``{pair: variant}``, ``None``
    where it gives none. ``same order`` says whether both gaps have the same sign (``None`` while either is
    missing). Groups where a variant has no record are left out. Raises ``ValueError`` naming a missing column.
    """
    needed = [*by, pair, "seed", metric]
    lacking = [c for c in needed if c not in table.columns]
    if table.empty:
        return pd.DataFrame(columns=[*by, "paper", "ours", "wins", "same order"])
    if lacking:
        raise ValueError(f"paired_gap: the table has no column {lacking}; columns: {list(map(str, table.columns))}")
    rows = []
    for values, group in table.groupby(list(by), sort=False):
        cell = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        # one value per seed (the mean, should another axis outside ``by`` repeat a seed)
        a = group[group[pair] == first].groupby("seed")[metric].mean().astype(float)
        b = group[group[pair] == second].groupby("seed")[metric].mean().astype(float)
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            continue
        ours = a[seeds].mean() - b[seeds].mean()
        wins = int((a[seeds] > b[seeds]).sum())
        p_first, p_second = reported({**cell, pair: first}), reported({**cell, pair: second})
        paper = (float("nan") if p_first is None or p_second is None or _missing(p_first) or _missing(p_second)
                 else float(p_first) - float(p_second))
        same = None if _missing(paper) or ours == 0 or paper == 0 else bool((ours > 0) == (paper > 0))
        rows.append({**cell, "paper": paper, "ours": ours, "wins": f"{wins} of {len(seeds)}", "same order": same})
    return pd.DataFrame(rows, columns=[*by, "paper", "ours", "wins", "same order"])


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
        with warnings.catch_warnings():  # tqdm's notice about widgets, raised when Tonic imports it in a kernel
            warnings.filterwarnings("ignore", message="IProgress not found")
            table = centroid_offsets(root)
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
    from reprolib.paths import results_dir as default_results  # noqa: PLC0415

    path = default_results(results_dir) / "analysis" / f"{runs.experiment}-{runs.params.scale}-shift-probe.json"
    if not path.is_file():
        return None
    if runs.table.empty or not {"config_hash", *runs.axes} <= set(runs.table.columns):
        return None  # no records on this page to join the probe with
    payload = json.loads(path.read_text())["payload"]
    frame = pd.DataFrame(payload["rows"])
    axes = runs.table[["config_hash", *runs.axes]].rename(columns={"config_hash": "record"})
    frame = frame.merge(axes, on="record", how="inner")
    frame["accuracy"] = 100 * frame["accuracy"]
    info = record_info({"provenance": payload["provenance"], "scale": payload["provenance"].get("scale")})
    line = (f"probe of {frame['record'].nunique()} of {len(runs.table)} runs' kept weights · code {info['code']} · "
            f"{info['device']} · {info['date']}")
    return frame, line


def shift_probe_summary(frame: pd.DataFrame, by: Sequence[str], name: Callable[[dict], str]) -> str:
    """Markdown bullets from :func:`shift_probe`: per group of ``by``, the mean validation and test accuracy
    with the inputs unmoved and with the shift that helps the test set most, and what that shift does to
    the validation set (which shares the training set's recordings). Rows only (``dx = 0``)."""
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
    return "\n".join(lines) if lines else f"*{NOT_RUN}*"


def compare_variants(variants: Mapping[str, pd.DataFrame], metric: str = "test_accuracy") -> pd.DataFrame:
    """One row per variant (label -> the records table of its runs, accuracies in percent): how many runs, the
    mean ± std of ``metric``, the seeds whose hidden activity froze (:func:`frozen_since`), and the mean ± std
    of the other runs (their count in brackets): what the variant reaches when its hidden layer keeps learning."""
    rows = []
    alive_column = f"{metric} of the runs not frozen"
    for label, table in variants.items():
        if table is None or table.empty:
            rows.append({"variant": label, "runs": 0, metric: NOT_RUN, "hidden activity frozen": "",
                         alive_column: ""})
            continue
        values = pd.to_numeric(table[metric], errors="coerce")
        stuck, _ = _frozen_runs(table)
        alive = values[~table["seed"].isin([seed for seed, _ in stuck])]
        rows.append({"variant": label, "runs": len(values), metric: _mean_spread(values),
                     "hidden activity frozen": ", ".join(f"seed {seed} (epoch {epoch})" for seed, epoch in stuck)
                     or "none",
                     alive_column: f"{_mean_spread(alive)} ({len(alive)})" if len(alive) else "none"})
    return pd.DataFrame(rows).set_index("variant")


def preset_seeds(params: Parameters, experiment: str) -> Parameters:
    """``params`` with only the seeds ``experiment``'s preset runs at ``params.scale`` (all of them when none
    of ``params.seeds`` is among them), for a page that shows a preset with fewer seeds than its others."""
    import dataclasses

    from reprolib.experiments import get_preset

    if params.seeds is None:  # already each experiment's own seeds
        return params
    own = get_preset(experiment).seeds.get(params.scale, [])
    kept = tuple(seed for seed in params.seeds if seed in own) or tuple(own)
    return dataclasses.replace(params, seeds=kept)


# --- pages over several experiments: the BRF paper's tasks ---------------------------------------------------

#: The BRF paper's tasks, named as its tables (and :mod:`reprolib.reference`) name them, and their presets.
BRF_TASKS = {"S-MNIST": "brf-smnist", "PS-MNIST": "brf-psmnist", "ECG": "brf-ecg", "SHD": "brf-shd"}


def axis_choices(experiment: str, axis: str) -> list:
    """The labels of grid axis ``axis`` of ``experiment``'s preset (its source preset's, for a derived one)."""
    root = _root_preset(experiment)
    for ax in root.axes:
        if ax.name == axis:
            return list(ax.choices)
    raise ValueError(f"experiment {experiment!r} has no axis {axis!r}; axes: {[a.name for a in root.axes]}")


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


def settings_dropdown(experiments: Sequence[str]) -> str:
    """MyST: a folded block with each experiment's preset notes -- the source's settings we follow, the choices
    the source leaves open and where we deviate -- so a reader can check a number against them."""
    from reprolib.experiments import get_preset

    body = "\n\n".join(f"**`{name}`**: {get_preset(name).notes}" for name in experiments)
    return f"```{{dropdown}} Settings, open choices and deviations from the source\n{body}\n```"


def show_task_notes(runs: Mapping[str, Runs]) -> None:
    """Display :func:`task_status_table` for a page over several experiments, and their settings notes."""
    show_markdown(task_status_table(runs))
    show_markdown(settings_dropdown([task_runs.experiment for task_runs in runs.values()]))


def tasks_provenance(runs: Mapping[str, Runs]) -> str:
    """One provenance line per task, for the caption of a figure over several experiments."""
    return "\n".join(f"{task}: {task_runs.provenance_line()}" for task, task_runs in runs.items())


# --- the whole book: which experiments have their records --------------------------------------------------


def reproduction_status(scale: str = "paper", results_dir=None) -> pd.DataFrame:
    """One row per experiment preset (the toy one left out) at ``scale`` with the preset's own seeds: its
    source, how many runs its grid has and how many have a record, their provenance, the data it needs that is
    not here, and the command that completes it."""
    from reprolib.experiments import get_configs, get_preset, list_experiments
    from reprolib.results import load_records

    check_choice("scale", scale, ("ci", "paper"))
    rows = []
    for experiment in list_experiments():
        preset = get_preset(experiment)
        if experiment == "toy":
            continue
        configs = list(get_configs(experiment, scale))
        table = load_records(configs, results_dir)
        missing = len(table.attrs.get("missing", []))
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
    return pd.DataFrame(rows)


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
        display(table[shown].round(2).set_index(["label", "experiment", "config_hash"]))
