"""pandas views of run records for notebooks: one row per run, summaries across seeds, learning curves.

Columns of :func:`load_records`: ``config_hash``, the flattened config (``model_options.layers``, ``seed`` ...;
list values become tuples so they can be grouped on), the final metrics (``test_accuracy``,
``selected_epoch`` ...), the provenance as ``provenance.<key>`` (``provenance.git_commit``,
``provenance.packages.torch`` ...), ``record_path`` and ``history`` (the list of per-epoch dicts).
"""

from __future__ import annotations

import os
import warnings
from typing import Iterable, Mapping, Sequence

import pandas as pd

from reprolib.config import ExperimentConfig, flatten
from reprolib.paths import results_dir as default_results_dir
from reprolib.results.records import CorruptRecordError, Record, find_record, read_record

DEFAULT_METRICS = ("test_accuracy", "val_accuracy", "train_eval_accuracy", "test_loss", "val_loss", "train_loss",
                   "test_activity", "test_spikes_per_sample", "mean_epoch_time_s")


def _hashable(value):
    """Lists -> tuples and mappings -> sorted item tuples, so every column can be grouped on."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def record_row(record: Record) -> dict:
    row = {"config_hash": record.hash}
    row.update({k: _hashable(v) for k, v in record.config.flat().items()})
    row.update({k: _hashable(v) for k, v in record.final.items()})
    row.update({f"provenance.{k}": _hashable(v) for k, v in flatten(record.provenance).items()})
    row["record_path"] = str(record.path) if record.path else None
    row["history"] = record.history
    return row


def _records_of_folder(experiment: str, results_dir, on_corrupt: str) -> list[Record]:
    base = default_results_dir(results_dir)
    if base.exists() and not base.is_dir():
        raise ValueError(f"results_dir {str(base)!r} is a file; expected the folder of the run records")
    folder = base / experiment
    if not folder.is_dir():
        from reprolib.experiments import PRESETS, get_preset

        if experiment not in PRESETS:  # neither a preset nor a folder of records: a typo, most likely
            raise ValueError(f"unknown experiment {experiment!r}: no preset of that name and no folder {str(folder)!r}; "
                             f"expected one of {list(PRESETS)} or a folder under {str(base)!r}")
        source = get_preset(experiment).derived_from
        if source:
            raise ValueError(f"{experiment!r} shares the records of {source!r}; use "
                             f"load_records(get_configs({experiment!r}, scale, seeds)) to select its runs")
    return records_in(folder, on_corrupt)


def records_in(folder, on_corrupt: str = "warn", left_out_of: str = "the table") -> list[Record]:
    """Every run record (``*.json``) in ``folder``, in name order (none when there is no such folder). One that does
    not read raises its :class:`CorruptRecordError` (``on_corrupt="raise"``) or is left out with a warning that
    says what it is left out of (``"warn"``)."""
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(read_record(path))
        except CorruptRecordError as error:
            _corrupt(error, on_corrupt, left_out_of)
    return records


def _corrupt(error: CorruptRecordError, on_corrupt: str, left_out_of: str = "the table") -> None:
    if on_corrupt == "raise":
        raise error
    warnings.warn(f"{error} (left out of {left_out_of})")


def load_records(what: str | Iterable[ExperimentConfig], results_dir: str | os.PathLike | None = None,
                 on_corrupt: str = "raise") -> pd.DataFrame:
    """One row per run record.

    ``what``: an experiment name (every record in ``<results>/<experiment>/``) or configs (their records;
    configs without a record are left out, see ``df.attrs["missing"]``). A corrupt record raises
    :class:`CorruptRecordError` (``on_corrupt="warn"``: warn and leave it out).
    """
    if on_corrupt not in ("raise", "warn"):
        raise ValueError(f"on_corrupt = {on_corrupt!r} is not allowed; expected 'raise' or 'warn'")
    missing: list[ExperimentConfig] = []
    if not isinstance(what, str):
        configs = list(what) if isinstance(what, Iterable) and not isinstance(what, (bytes, Mapping)) else None
        if configs is None or not all(isinstance(c, ExperimentConfig) for c in configs):
            raise ValueError(f"load_records: what = {what!r} is not allowed; expected an experiment name or a list "
                             "of ExperimentConfig (e.g. get_configs(...))")
        what = configs
    if isinstance(what, str):
        records = _records_of_folder(what, results_dir, on_corrupt)
    else:
        records, seen = [], set()
        for config in what:
            if config.hash in seen:
                continue
            seen.add(config.hash)
            try:
                record = find_record(config, results_dir)
            except CorruptRecordError as error:
                _corrupt(error, on_corrupt)
                record = None
            if record is None:
                missing.append(config)
            else:
                records.append(record)
    df = pd.DataFrame([record_row(r) for r in records])
    if df.empty:
        df = pd.DataFrame(columns=["config_hash", "experiment", "seed", "history"])
    df.attrs["missing"] = missing
    return df


def summarize(df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and sample std (ddof 1) of ``metrics`` across the runs (seeds) of each ``by`` group, and ``n_runs``.

    Columns ``<metric>_mean``, ``<metric>_std``; one row per group (index = ``by``).
    """
    by = [by] if isinstance(by, str) else list(by)
    unknown = [c for c in by if c not in df.columns]
    if unknown:
        raise ValueError(f"by = {unknown} are not columns of the records table; columns: {sorted(map(str, df.columns))}")
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in df.columns]
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in df.columns]
    if unknown:
        raise ValueError(f"metrics = {unknown} are not columns of the records table; columns: {sorted(map(str, df.columns))}")
    values = df[metrics].apply(pd.to_numeric, errors="coerce")
    values[by] = df[by]
    grouped = values.groupby(by, dropna=False, sort=True)
    out = pd.DataFrame(index=grouped.size().index)
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1)
    out["n_runs"] = grouped.size()
    return out


def history_frame(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Learning curves in long form: one row per (run, epoch) with the per-epoch metrics.

    ``columns``: run columns to repeat on each row; default ``config_hash``, ``seed`` and every config
    column that varies between the runs of ``df`` (model, layers ...).
    """
    if columns is None:
        skip = {"history", "record_path", "config_hash", "seed"}
        varying = []
        for column in df.columns:
            if column in skip or column.startswith("provenance.") or column in DEFAULT_METRICS:
                continue
            try:
                if df[column].nunique(dropna=False) > 1 and column in _config_columns(df):
                    varying.append(column)
            except TypeError:
                continue
        columns = ["config_hash", "seed", *varying]
    rows = []
    for _, run in df.iterrows():
        for entry in run["history"]:
            rows.append({**{c: run[c] for c in columns}, **entry})
    return pd.DataFrame(rows)


def _config_columns(df: pd.DataFrame) -> set[str]:
    fields = set(ExperimentConfig.__dataclass_fields__)
    return {c for c in df.columns if c.split(".")[0] in fields}
