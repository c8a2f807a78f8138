"""The committed probe files of trained runs (``results/analysis/<experiment>-<scale>-<probe>.json``, written by
``reprolib probe-shift``, ``probe-resonators`` and ``probe-parameters``) joined with the runs of one page."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

from reprolib.notebook.run_provenance import record_info
from reprolib.notebook.runs import Runs

__all__ = ["committed_probe", "probe_line"]


def _records_experiment(runs: Runs) -> str:
    """The experiment the page's records belong to: a page can show another experiment's runs (src-activity
    shows src-table2's), and the probe file is named after the records'."""
    if "experiment" in runs.table.columns:
        named = runs.table["experiment"].dropna().unique()
        if len(named) == 1:
            return str(named[0])
    return runs.experiment


def committed_probe(runs: Runs, probe: str, results_dir=None) -> tuple[dict, pd.DataFrame] | None:
    """``(payload, axes)`` of the committed ``probe`` file (``shift-probe``, ``resonators``, ``parameters``) of
    the page's records at their scale: ``axes`` has one row per record on the page (``record``: its hash, and the
    page's axis columns) to join the probe's rows with. ``None`` where no such file is committed or the page has
    no records."""
    from reprolib.paths import results_dir as default_results  # noqa: PLC0415

    if runs.table.empty or not {"config_hash", *runs.axes} <= set(runs.table.columns):
        return None  # no records on this page to join a probe with
    path = default_results(results_dir) / "analysis" / f"{_records_experiment(runs)}-{runs.params.scale}-{probe}.json"
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())["payload"]
    return payload, runs.table[["config_hash", *runs.axes]].rename(columns={"config_hash": "record"})


def probe_line(payload: dict, probed: int, of: int, what: str = "runs'", left_out: int | None = None,
               shown=()) -> str:
    """The caption of a probe's table or figure: how many of the page's runs it read (``probed`` of ``of``
    ``what`` kept weights, ``left_out`` named where given), and the probe's own code version, device and date.
    Where some of the ``shown`` records' rows were measured by an earlier probe (the file keeps them when the
    runs' weights are not where it was refreshed: ``carried``), each probe is named with its count."""
    head = (f"probe of {probed} of {of} {what} kept weights (the selected epoch"
            + (f"; {left_out} not probed" if left_out else "") + ")")
    carried = payload.get("carried") or {}
    by_probe = Counter(carried[record] for record in set(shown) if record in carried)
    if not by_probe:
        return f"{head} · {_made_by(payload['provenance'], payload)}"
    parts = [f"{count} probed at {_made_by(payload['earlier_probes'][probe], payload)}"
             for probe, count in sorted(by_probe.items())]
    # the latest probe is named even where it measured none of these runs: what a caption says was not probed
    # ("recorded after the probe", "no kept weights where the probe ran") is about that one
    now = probed - sum(by_probe.values())
    parts.append(f"{now} at {_made_by(payload['provenance'], payload)} (the latest probe)")
    return f"{head}: " + "; ".join(parts)


def _made_by(provenance: dict, payload: dict) -> str:
    info = record_info({"provenance": provenance, "scale": payload.get("scale")})
    return f"code {info['code']} · {info['device']} · {info['date']}"
