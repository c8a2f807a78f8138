"""Where a page's numbers come from: scale, seed, code version, device and date of its run records."""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Mapping

import pandas as pd

from reprolib.results.provenance import cpu_text


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


def _as_dict(value) -> dict:
    """A mapping as a dict; a records table keeps nested dicts as sorted ``(key, value)`` pairs."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)) and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in value):
        return dict(value)
    return {}


def earlier_sessions(row: Mapping) -> list[dict]:
    """The provenance of each earlier session of a resumed run (none for a run trained in one go), as dicts,
    from a records-table row or a record dict."""
    earlier = _flat(row).get("provenance.earlier_sessions")
    return [_as_dict(session) for session in earlier] if isinstance(earlier, (list, tuple)) else []


def session_cpus(row: Mapping) -> list[str | None]:
    """The CPU behind each session of a run, in order: its earlier sessions' (a resumed run), then its last one's,
    each as :func:`reprolib.results.provenance.cpu_text` writes it (``"AMD EPYC (AVX512)"``); None for a session
    recorded before the CPU was (2026-11-30)."""
    row = _flat(row)
    last = {"model": _lookup(row, "provenance.cpu.model"),
            "torch_capability": _lookup(row, "provenance.cpu.torch_capability")}
    return [cpu_text(_as_dict(session.get("cpu"))) for session in earlier_sessions(row)] + [cpu_text(last)]


def device_text(row: Mapping, always_backend: bool = False, cpu: bool = False) -> str:
    """The device, and the backend where it is not the PyTorch default (or always, to tell runs apart); with
    ``cpu``, a CPU run also names the CPU of its sessions (:func:`session_cpus`): two CPU models can round
    differently, so the same config, code and thread count give different numbers on them. ``row``: a
    records-table row or a record dict."""
    row = _flat(row)
    device = str(_lookup(row, "provenance.device_name", "provenance.device", default="unknown"))
    if cpu and device.startswith("cpu"):
        models = session_cpus(row)
        # consecutive sessions on one model count once: "on A then B then A" keeps the order the run went
        known = [model for model, _ in itertools.groupby(model for model in models if model)]
        unknown = models.count(None)
        if known:
            device += " on " + " then ".join(known) + (
                f", CPU model of {unknown} of {len(models)} sessions not recorded" if unknown else "")
        else:
            device += ", CPU model not recorded"
    backend = _backend(row)
    text = device if backend == "torch" and not always_backend else f"{device}, {backend} backend"
    if _lookup(row, "config.flush_denormal", "flush_denormal", default=False) is True:
        text += ", subnormals flushed"  # config flush_denormal: a CPU run that treated values < 1.2e-38 as 0
    return text


def format_code_version(commit, dirty=False) -> str:
    """A run's code version as the book writes it: the commit's first 8 characters, ``+dirty`` when the working
    tree had changes, ``unknown`` without a commit."""
    return "unknown" if not commit else str(commit)[:8] + ("+dirty" if dirty else "")


def record_info(record: Mapping) -> dict:
    """Scale, seed, code version, device and date of one run (a records-table row or a record dict)."""
    row = _flat(record)
    commit = _lookup(row, "provenance.git_commit", "provenance.commit")
    version = format_code_version(commit, _lookup(row, "provenance.git_dirty", "provenance.dirty", default=False))
    if commit and _lookup(row, "provenance.git_commit_from"):  # no git where it ran: the caller stated the commit
        version += " (stated)"
    date = _lookup(row, "provenance.end_time", "provenance.end", "provenance.start_time", "provenance.date")
    return {
        "scale": _lookup(row, "scale", "config.scale", "provenance.scale", default="?"),
        "seed": _lookup(row, "seed", "config.seed", default="?"),
        "code": version,
        "device": device_text(row),
        "date": str(date)[:10] if date else "unknown",
    }


def record_rows(records) -> list[Mapping]:
    """The rows of a records table (its ``history`` column left out) or a list of record dicts, as mappings."""
    if isinstance(records, pd.DataFrame):
        return records.drop(columns=["history"], errors="ignore").to_dict("records")
    return list(records)


def _join(values: Iterable, separator: str = ", ") -> str:
    unique = sorted({str(v) for v in values})
    return separator.join(unique) if unique else "none"


def provenance(records) -> dict:
    """Summary of a set of runs (records table or record dicts): scales, seeds, code versions, devices, dates."""
    rows = [_flat(r) for r in record_rows(records)]
    infos = [record_info(r) for r in rows]
    mixed = len({_backend(r) for r in rows}) > 1  # a mix: name each backend, the default one too
    devices = [device_text(r, always_backend=mixed) for r in rows]
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
    return (f"scale {p['scale']} · {p['seeds']} seed{'s' if p['seeds'] != 1 else ''} "
            f"({p['runs']} run{'s' if p['runs'] != 1 else ''}) · "
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
    return format_code_version(commit, bool(dirty))


def simulation_provenance(device: str = "cpu") -> str:
    """Provenance line of a figure computed in the notebook itself (a neuron simulation, no training)."""
    import datetime

    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return f"simulated in this notebook · no training · code {code_version()} · {device} · {today}"
