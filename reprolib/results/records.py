"""Run records: one checksummed JSON file per run at ``<results>/<experiment>/<config-hash>.json``.

A record holds the config, the per-epoch history, the final metrics and the provenance of one run. It is
written atomically (temporary file + ``os.replace``) and carries a sha256 checksum of its payload, so a
truncated or edited file is detected on load and reported as :class:`CorruptRecordError` naming the path;
it is never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from reprolib.config import ConfigError, ExperimentConfig, canonical_json, config_hash
from reprolib.paths import results_dir as default_results_dir

RECORD_FORMAT = "reprolib.run-record"
RECORD_VERSION = 1


class CorruptRecordError(RuntimeError):
    """A run record on disk is unreadable, truncated or fails its checksum."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"corrupt run record {str(self.path)!r}: {reason}. If it is a record of a results folder, "
                         "delete it and run its config again (reprolib run / reprolib sweep) to regenerate it.")


class RecordVersionError(CorruptRecordError):
    """A run record written in another record version: intact, but not readable by this reprolib. Sweeps keep
    it (they neither move it aside nor train its config again)."""

    def __init__(self, path: str | os.PathLike, version):
        self.path, self.version = Path(path), version
        self.reason = f"record version {version!r}, this reprolib reads {RECORD_VERSION}"
        RuntimeError.__init__(self, f"run record {str(self.path)!r} is in record version {version!r}, and this reprolib "
                                    f"reads version {RECORD_VERSION}: it is not corrupt; read it with the reprolib that "
                                    "wrote it (its provenance names the commit), or use another results folder")


@dataclass
class Record:
    """One finished run: what was run (config), what happened (history, final metrics), where and when (provenance)."""

    config: ExperimentConfig
    history: list[dict]
    final: dict
    provenance: dict
    path: Path | None = field(default=None, compare=False)

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    def payload(self) -> dict:
        return {
            "config_hash": self.hash,
            "config": self.config.to_dict(),
            "history": self.history,
            "final": self.final,
            "provenance": self.provenance,
        }


def _checksum(payload: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Replace ``path`` in one step: ``write(temporary)`` fills a temporary file in the same folder, which is
    flushed to disk and renamed over ``path``; on any error it is removed and ``path`` stays as it was.

    Readers (and a killed writer) see either the old file or the complete new one, never a half-written one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` so that ``path`` is either the old file or the complete new one, never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def record_path(config: ExperimentConfig, results_dir: str | os.PathLike | None = None) -> Path:
    """Where the record of ``config`` lives: ``<results>/<experiment>/<config-hash>.json``."""
    return default_results_dir(results_dir) / config.experiment / f"{config_hash(config)}.json"


def write_record(record: Record, results_dir: str | os.PathLike | None = None) -> Path:
    """Write ``record`` atomically with its checksum; returns the path (also stored in ``record.path``)."""
    payload = record.payload()
    document = {"format": RECORD_FORMAT, "version": RECORD_VERSION, "checksum": _checksum(payload), "payload": payload}
    path = record_path(record.config, results_dir)
    atomic_write_text(path, json.dumps(document, indent=1, sort_keys=True) + "\n")
    record.path = path
    return path


def read_record(path: str | os.PathLike) -> Record:
    """Load and verify one record; raises :class:`CorruptRecordError` naming the path on any defect."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CorruptRecordError(path, f"not UTF-8 text ({error})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CorruptRecordError(path, f"not valid JSON, probably truncated ({error})") from None
    if not isinstance(document, dict) or document.get("format") != RECORD_FORMAT:
        raise CorruptRecordError(path, f"not a {RECORD_FORMAT} document")
    if document.get("version") != RECORD_VERSION:
        raise RecordVersionError(path, document.get("version"))
    payload: Any = document.get("payload")
    if not isinstance(payload, dict) or document.get("checksum") != _checksum(payload):
        raise CorruptRecordError(path, "checksum mismatch (the file was truncated or edited)")
    try:
        config = ExperimentConfig.from_dict(payload["config"])
        record = Record(config, payload["history"], payload["final"], payload["provenance"], path)
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptRecordError(path, f"payload does not hold a valid run ({error})") from None
    if record.hash != payload.get("config_hash") or path.stem != record.hash:
        raise CorruptRecordError(path, f"config hash {record.hash} does not match the stored hash / file name")
    return record


def read_records_of_one_kind(paths, command: str) -> tuple[list[Record], str, str]:
    """The records at ``paths`` with their common experiment and scale, for a command that analyses trained runs
    of one experiment at a time (``command`` names it in the errors): ``ConfigError`` for no record, or for
    records of several experiments or scales."""
    records = [read_record(path) for path in paths]
    if not records:
        raise ConfigError(f"{command} needs at least one run record")
    kinds = sorted({(r.config.experiment, r.config.scale) for r in records})
    if len(kinds) > 1:
        raise ConfigError(f"{command}: the records belong to several experiments / scales {kinds}; expected "
                          "records of one experiment and scale at a time")
    (experiment, scale), = kinds
    return records, experiment, scale


def find_record(config: ExperimentConfig, results_dir: str | os.PathLike | None = None) -> Record | None:
    """The record of ``config`` if one exists (verified), else None; corrupt records raise."""
    path = record_path(config, results_dir)
    if not path.exists():
        return None
    return read_record(path)
