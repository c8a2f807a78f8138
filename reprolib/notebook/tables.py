"""Paper-vs-ours display tables: the source's number, ours, the difference, and what a missing number means."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


NOT_AVAILABLE = "not available"

NOT_RUN = "not run yet at this scale"

#: what :func:`for_display` shows in a cell without a value
NO_VALUE = "–"


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def format_number(value: float, fmt: str = "{:.3f}") -> str:
    """``value`` formatted with ``fmt``; one that rounds to zero at that precision reads as zero (``0.00``,
    ``+0.0000``), never ``-0.00``."""
    return fmt.format(0.0) if fmt.format(abs(value)) == fmt.format(0.0) else fmt.format(value)


def value_range(values, fmt: str = "{:.3f}") -> str:
    """``low to high`` of ``values``, each formatted with ``fmt``; one number where both ends read the same (one
    run, or runs that agree to the digits shown); ``n/a`` where none is a number. Findings text uses it for a
    spread over seeds."""
    values = pd.Series(values, dtype="float64").dropna()
    if values.empty:
        return "n/a"
    low, high = format_number(values.min(), fmt), format_number(values.max(), fmt)
    return low if low == high else f"{low} to {high}"


def is_missing(value) -> bool:
    """Whether a table cell holds no number: ``None``, a NaN of any float type, or pandas' ``NA`` / ``NaT`` (the
    gap in a nullable integer column such as a count of seeds, or in a date column)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def for_display(table: pd.DataFrame, decimals: int | Mapping[str, int] = 2, missing: str = NO_VALUE) -> pd.DataFrame:
    """A copy of ``table`` as a page shows it: numbers rounded to ``decimals`` (one for all, or per column, the
    others at 4), True / False as yes / no, and every cell without a value (None, NaN, pandas' NA) as ``missing``
    instead of a Python or pandas spelling of nothing."""
    if isinstance(decimals, Mapping):
        rounded = table.round({column: decimals.get(column, 4) for column in table.columns})
    else:
        rounded = table.round(decimals)

    def cell(value):
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        return missing if is_missing(value) else value

    return rounded.astype(object).map(cell)


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
    for row in frame.to_dict("records"):  # not iterrows: it turns an int column (layers) into floats
        p, o = row.get(paper), row.get(ours)
        decimals = int(row["decimals"]) if "decimals" in row and not is_missing(row["decimals"]) else default_decimals
        p_text = NOT_AVAILABLE if is_missing(p) else _fmt(p, decimals)
        if not is_missing(p) and paper_std and not is_missing(row.get(paper_std)):
            p_text += f" ± {_fmt(row[paper_std], decimals)}"
        if is_missing(o):
            o_text = NOT_RUN
        else:
            o_text = _fmt(o, decimals)
            if ours_std and ours_std in row and not is_missing(row[ours_std]):
                o_text += f" ± {_fmt(row[ours_std], decimals)}"
            if runs and runs in row and not is_missing(row[runs]):
                o_text += f" (n={int(row[runs])})"
        if is_missing(p):
            d_text = NOT_AVAILABLE
        elif is_missing(o):
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


def ours_table(summary: pd.DataFrame, metrics: Mapping[str, str], index: Sequence[str],
               decimals: int | Mapping[str, int] = 2) -> pd.DataFrame:
    """A display table of a run summary for figures whose source gives no values: ``index`` columns, then one
    column per metric (``metrics`` maps a metric to its column title), each cell ``mean ± std (n=runs)`` or *not
    run yet at this scale* (:func:`paper_vs_summary`'s formatting, without a paper column). ``decimals``: one
    precision, or one per metric (default 2)."""
    if not set(index) <= set(summary.columns) and set(index) <= set(summary.index.names):
        summary = summary.reset_index()  # a summary indexed by its groups, as paper_vs_summary accepts
    table = summary.assign(**{"__no_paper": math.nan})
    out = table[list(index)].reset_index(drop=True).copy()
    for metric, title in metrics.items():
        places = decimals.get(metric, 2) if isinstance(decimals, Mapping) else decimals
        out[title] = paper_vs_summary(table, metric, index, paper="__no_paper", paper_std=None,
                                      decimals=places)["ours"].to_numpy()
    return out


def mean_std(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, sample std and count of ``value`` per group (std NaN for a single run), as ``ours, ours_std, runs``."""
    grouped = frame.groupby(list(by), dropna=False)[value]
    out = grouped.agg(ours="mean", ours_std="std", runs="count").reset_index()
    return out


def to_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy columns (``*accuracy*``) from fractions to percent, in a copy."""
    frame = frame.copy()
    for column in frame.columns:
        if "accuracy" in str(column) and pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column] * 100.0
    return frame
