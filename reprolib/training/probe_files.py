"""What the probes of trained runs share (``probe-shift``, ``probe-resonators``, ``probe-parameters``): the model a
record's run started from, the folder its kept weights are in, whether a re-run repeated the committed record,
the rows an earlier probe wrote for runs whose weights are not here, and the analysis file they write, with the
probe's provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, NamedTuple

__all__ = ["start_probe", "starting_model", "weights_root", "read_kept_weights",
           "EarlierRows", "earlier_rows", "with_earlier_rows",
           "check_compare_with", "against_committed", "write_probe",
           "add_probe_arguments", "run_probe_command"]


def start_probe(paths, command: str, output, default_output, compare_with=None):
    """What every probe checks before it reads any weights: the records at ``paths`` (one experiment and scale;
    ``command`` names the probe in the errors), the output file (``output``, else ``default_output(experiment,
    scale)``) and ``--compare-with``. Returns ``(records, experiment, scale, output, start time)``."""
    from reprolib.paths import check_output_file  # noqa: PLC0415
    from reprolib.results import provenance  # noqa: PLC0415
    from reprolib.results.records import read_records_of_one_kind  # noqa: PLC0415

    records, experiment, scale = read_records_of_one_kind(paths, command)
    output = check_output_file(output if output is not None else default_output(experiment, scale))
    check_compare_with(compare_with)
    return records, experiment, scale, output, provenance.utc_now()


def starting_model(record):
    """The model ``record``'s run started from (its seed's initial weights), built on the CPU with a backend
    that runs here: ``ValueError`` naming the record where it cannot be built (e.g. the cpp backend without a
    compiler)."""
    from reprolib.training.build import initial_model  # noqa: PLC0415
    from reprolib.training.rerun import rerun_config  # noqa: PLC0415

    try:
        return initial_model(rerun_config(record, device="cpu"))
    except RuntimeError as error:
        raise ValueError(f"{record.path}: its model cannot be built here ({error})") from error


def weights_root(record, results_dir=None) -> Path:
    """Where ``record``'s kept weights are looked for: ``results_dir`` where given, else the results folder the
    record sits in (``<root>/<experiment>/<hash>.json``; its checkpoints are there too)."""
    return Path(results_dir) if results_dir is not None else Path(record.path).resolve().parents[1]


def read_kept_weights(records, results_dir=None, skip_missing: bool = False,
                      keep=lambda blob, weights: (blob, weights)):
    """Every record's kept selected-epoch weights (:func:`reprolib.training.checkpoint.read_selected_weights`,
    looked for under :func:`weights_root`), each read and checked before a probe uses any: ``(kept, missing)``,
    ``kept`` as ``(record, keep(blob, weights))`` (a probe that re-reads the weights later keeps only their hash,
    so that many runs' weights are not held at once), ``missing`` the records without weights here.
    FileNotFoundError where a record has none, unless ``skip_missing``, and where none has any."""
    from reprolib.training.checkpoint import read_selected_weights  # noqa: PLC0415

    kept, missing = [], []
    for record in records:
        try:
            kept.append((record, keep(*read_selected_weights(record, weights_root(record, results_dir)))))
        except FileNotFoundError:
            missing.append(record)
    if missing and not skip_missing:
        counted = f"{len(missing)}" if len(missing) == len(records) else f"{len(missing)} of {len(records)}"
        raise FileNotFoundError(f"no kept weights for {counted} record(s), e.g. {[str(r.path) for r in missing[:3]]}: "
                                "the probe runs where the runs were trained (their checkpoint folders are not "
                                "committed); --skip-missing probes the others")
    if not kept:
        raise FileNotFoundError(f"none of the {len(records)} records has kept weights here")
    return kept, missing


class EarlierRows(NamedTuple):
    """What :func:`earlier_rows` keeps of the probe file a probe is about to replace."""
    rows: list  # the earlier file's rows of the runs kept
    carried: dict  # record hash -> the id (end time) of the probe that measured it
    probes: dict  # that id -> the provenance of that probe
    missing: list  # the records with neither kept weights here nor a row of their run in the earlier file


def earlier_rows(output: Path, kind: str, experiment: str, scale: str, missing, rows_key: str,
                 check: Callable[[dict], None] | None = None,
                 agrees: Callable[[list, object], bool] | None = None) -> EarlierRows:
    """The rows that the probe file already at ``output`` holds for the runs of ``missing`` (records whose kept
    weights are not here), so that a probe refreshed on another machine, e.g. after new runs landed, keeps what an
    earlier probe measured where those runs were trained; their weights are not committed and a machine's
    checkpoint folders do not outlive it. A row is kept only where it is of the record's own run
    (:func:`_same_run`; for rows written before probes stated the record's end time, also where
    ``agrees(rows, record)``: what the probe measured matches the record), with the provenance of the probe that
    measured it (``carried``, ``probes``; a row carried before keeps its first probe's). Where a row is kept,
    ``check(payload)`` raises ``ValueError`` if the earlier probe measured something else (the shift probe: other
    shifts). Read and checked before anything is probed: an existing file that is not a probe of ``kind``,
    ``experiment`` and ``scale`` is a ``ValueError`` naming it, as the probe would replace it."""
    output = Path(output)
    if not output.is_file():
        return EarlierRows([], {}, {}, list(missing))
    problem = ("is there but is not a probe file ({}); the probe would replace it, keeping its rows of runs whose "
               "weights are not here: move it or name another --output")
    try:
        payload = json.loads(output.read_text())["payload"]
        found = (payload.get("kind"), payload.get("experiment"), payload.get("scale"))
        own = payload["provenance"]
        earlier_probes, carried_before, rows_before = (payload.get("earlier_probes", {}), payload.get("carried", {}),
                                                       payload[rows_key])
        own_id = str(own.get("end_time"))
        unknown = sorted({probe for probe in carried_before.values() if probe != own_id} - set(earlier_probes))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{output} " + problem.format(f"{type(error).__name__}: {error}")) from error
    if unknown:
        raise ValueError(f"{output} " + problem.format(f"rows carried from probes it does not describe: {unknown}"))
    if found != (kind, experiment, scale):
        raise ValueError(f"{output} holds a {found[0]} of {found[1]} at scale {found[2]}, not a {kind} of "
                         f"{experiment} at scale {scale}: name another --output")
    rows, carried, probes, still_missing = [], {}, {}, []
    for record in missing:
        probe_id = carried_before.get(record.hash, own_id)
        made_by = own if probe_id == own_id else earlier_probes[probe_id]
        of_run = [row for row in rows_before if isinstance(row, dict) and row.get("record") == record.hash]
        if of_run and all(_same_run(row, record, made_by) for row in of_run) and (
                agrees is None or any("record_end_time" in row for row in of_run) or agrees(of_run, record)):
            rows += of_run
            carried[record.hash] = probe_id
            probes[probe_id] = made_by
        else:
            still_missing.append(record)
    if rows and check is not None:
        check(payload)
    return EarlierRows(rows, carried, probes, still_missing)


def with_earlier_rows(rows: list, earlier: EarlierRows, records) -> dict:
    """The content of a probe file: ``rows`` measured now and ``earlier``'s, in the order of ``records`` (the
    probe's input; a stable order keeps the committed file's diffs small), the records left without a row, and
    which rows an earlier probe measured."""
    position = {record.hash: i for i, record in enumerate(records)}
    return {"rows": sorted(rows + earlier.rows, key=lambda row: position[row["record"]]),
            "skipped_without_weights": sorted(record.hash for record in earlier.missing),
            "carried": earlier.carried, "earlier_probes": earlier.probes}


def _same_run(row: dict, record, made_by: dict) -> bool:
    """Whether a probe row measured ``record``'s run, not an earlier or later run of the same config (each writes
    the same record file): the record's end time where the row states it; for rows written before probes stated
    it, a run that had ended before that probe (``made_by``: its provenance) began, with the epoch it selected."""
    ended = record.provenance.get("end_time")
    if "record_end_time" in row:
        return bool(ended) and row["record_end_time"] == ended
    started = made_by.get("start_time")
    return (bool(ended) and bool(started) and str(ended) <= str(started)
            and row.get("selected_epoch") == record.final.get("selected_epoch"))


def check_compare_with(compare_with) -> None:
    """``--compare-with`` must name a folder (checked before anything is probed)."""
    if compare_with is not None and not Path(compare_with).is_dir():
        raise ValueError(f"--compare-with {str(compare_with)!r} is not a folder; expected a results folder")


def against_committed(record, compare_with) -> dict | None:
    """Whether ``record``'s history is that of the record of the same config under ``compare_with`` (None where
    there is none); ``same_record`` when that is the probed record's own file (trained where it is probed)."""
    from reprolib.results.records import read_record, record_path  # noqa: PLC0415
    from reprolib.training.rerun import compare_runs  # noqa: PLC0415

    path = record_path(record.config, compare_with)
    if not path.is_file():
        return None
    shown = f"{record.config.experiment}/{path.name}"
    if path.resolve() == Path(record.path).resolve():
        return {"record": shown, "same_record": True}
    _, summary = compare_runs(read_record(path), record)
    return {"record": shown, "same_record": False, "epochs": summary["epochs"], "identical": summary["identical"],
            "max_abs_accuracy_diff_pp": summary["max_abs_accuracy_diff_pp"]}


def write_probe(output: Path, kind: str, experiment: str, scale: str, started: str, device, **content) -> Path:
    """Write one probe's ``{"payload": {kind, experiment, scale, **content, provenance}}`` to ``output``
    atomically (a reader never sees half a file); ``started``: when the probe began (UTC, ISO), ``device``: the
    torch device it ran on (the provenance names it)."""
    from reprolib.results import provenance  # noqa: PLC0415
    from reprolib.results.records import atomic_write_text  # noqa: PLC0415

    payload = {"kind": kind, "experiment": experiment, "scale": scale, **content,
               "provenance": {**provenance.collect(device, scale), "start_time": started,
                              "end_time": provenance.utc_now()}}
    atomic_write_text(output, json.dumps({"payload": payload}, indent=1, sort_keys=True) + "\n")
    return output


def add_probe_arguments(parser, probe: str, results_default: str = "the folder each record sits in",
                        compare_with: bool = False, skip_missing: bool = False) -> None:
    """The arguments the probe commands share: ``RECORD...``, ``--output`` (default
    ``results/analysis/<experiment>-<scale>-<probe>.json``), ``--results`` (where the kept weights are;
    ``results_default`` says where without it), ``--compare-with`` and ``--skip-missing`` where the command takes
    them, and ``--no-progress``."""
    parser.add_argument("records", nargs="+", metavar="RECORD", help="run record JSON files of one experiment")
    parser.add_argument("--output", default=None,
                        help=f"JSON path (default results/analysis/<experiment>-<scale>-{probe}.json)")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help=f"results folder holding the checkpoints (default: {results_default})")
    if compare_with:
        parser.add_argument("--compare-with", default=None, metavar="DIR",
                            help="results folder with records of the same configs (e.g. results/ for re-runs of "
                                 "its records): say per run whether its history is identical to that record's")
    if skip_missing:
        parser.add_argument("--skip-missing", action="store_true",
                            help="probe the records whose weights are kept here; of the others, keep the rows that "
                                 "the output file already holds (measured where they were trained) and list the "
                                 "rest in the file (default: a record without weights is an error)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")


def run_probe_command(command: str, probe, also: tuple = ()) -> int:
    """Run ``probe()`` (a probe with the command's arguments) for ``reprolib COMMAND``: ``wrote PATH`` and exit 0,
    or ``error: ...`` on stderr and exit 2 for what bad input raises (a bad config or record, missing or stale
    weights, a bad value; ``also``: more exception types, e.g. RuntimeError for a backend missing here)."""
    import sys  # noqa: PLC0415

    from reprolib.config import ConfigError  # noqa: PLC0415
    from reprolib.results.records import CorruptRecordError  # noqa: PLC0415

    try:
        out = probe()
    except (ConfigError, CorruptRecordError, FileNotFoundError, ValueError, *also) as error:
        print(f"reprolib {command}: error: {error}", file=sys.stderr)
        return 2
    print(f"reprolib {command}: wrote {out}")
    return 0
