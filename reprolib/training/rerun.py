"""``reprolib rerun RECORD``: train a committed run record's config again and compare epoch by epoch.

How a reader checks a number of the book: take the record behind it, train its config as it is (or its first
``--epochs N`` epochs, to check quickly), and see the recorded and the new metrics side by side::

    reprolib rerun results/brf-ecg/c02742ae18c46f2c.json --epochs 3 --backend cpp
    reprolib rerun results/sj-seq-fmnist/*.json --device cuda --tolerance 1.0

On the same kind of device, with the same backend and code, a CPU run is bit-for-bit deterministic (the
training loop seeds everything from the config), so the compared epochs should be *identical*; on another
device or backend they differ by floating-point reordering, and only the spread of the metrics is comparable.
The new run is written to its own folder (``--results``, default a fresh one under the reprolib cache), never
over the committed record.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import math
import statistics
import sys
from pathlib import Path

import pandas as pd

from reprolib.checks import is_finite_real
from reprolib.config import BACKENDS, ConfigError, with_overrides
from reprolib.paths import check_results_folder
from reprolib.results.frame import records_in
from reprolib.results.provenance import cpu_text
from reprolib.results.records import CorruptRecordError, Record, read_record, record_path

#: metrics compared epoch by epoch (history keys ending so)
_COMPARED = ("_accuracy", "_loss")


def rerun_config(record: Record, device: str | None = None, backend: str | None = None):
    """The config to train again: the record's own, on another ``device`` / ``backend`` if asked (neither is
    part of a run's identity). A record made with ``backend="cpp"`` (CPU only) that is re-run on a GPU without
    a ``backend`` asked for runs with ``"torch"`` there, the library's default until the fused CUDA kernels have
    passed their GPU parity tests (``--backend auto`` or ``cupy`` picks those)."""
    from reprolib.training.build import resolve_device  # noqa: PLC0415 (imports torch)

    overrides = {}
    if device is not None:
        overrides["device"] = device
    if backend is not None:
        overrides["backend"] = backend
    elif record.config.backend == "cpp" and resolve_device(device or record.config.device).type == "cuda":
        overrides["backend"] = "torch"
    return with_overrides(record.config, overrides) if overrides else record.config


def compare_histories(recorded: Record, rerun: Record) -> pd.DataFrame:
    """One row per epoch both runs have: each compared metric recorded, re-run, and their difference
    (accuracies in percentage points)."""
    again = {h["epoch"]: h for h in rerun.history}
    rows = []
    for entry in recorded.history:
        other = again.get(entry["epoch"])
        if other is None:
            continue
        row = {"epoch": entry["epoch"]}
        for key in sorted(entry):
            if not key.endswith(_COMPARED) or not isinstance(entry[key], (int, float)) or key not in other:
                continue
            scale = 100.0 if key.endswith("_accuracy") else 1.0
            a, b = entry[key] * scale, other[key] * scale
            row[f"{key} recorded"], row[f"{key} rerun"], row[f"{key} diff"] = a, b, b - a
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> dict:
    """``epochs`` compared, ``identical`` (every compared value equal), ``max_abs_accuracy_diff_pp``."""
    diffs = table[[c for c in table.columns if c.endswith(" diff")]]
    identical = bool(len(table)) and bool((diffs.fillna(0) == 0).all().all())
    accuracy = diffs[[c for c in diffs.columns if "_accuracy" in c]]
    worst = float(accuracy.abs().max().max()) if accuracy.size else float("nan")
    return {"epochs": len(table), "identical": identical, "max_abs_accuracy_diff_pp": worst}


def compare_runs(recorded: Record, rerun: Record) -> tuple[pd.DataFrame, dict]:
    """:func:`compare_histories` and its :func:`summarize`, with ``settings_differ``: what differs between the
    two runs' settings that floating point depends on (device, code, backend; empty when nothing does)."""
    table = compare_histories(recorded, rerun)
    last = int(table["epoch"].max()) if len(table) else None
    return table, {**summarize(table), "settings_differ": _same_setting(recorded, rerun, last)}


def recorded_threads(record: Record, epochs: int | None = None) -> int | None:
    """The CPU threads a CPU run used (from its provenance's device name, ``cpu (x86_64, 1 threads)``): those of
    the session that trained the record's first epochs when ``epochs`` is given (a resumed run may have changed
    its thread count), else those of its last session; None for a GPU run."""
    session = sessions_behind(record, epochs)[0][1] if epochs is not None else record.provenance
    return _threads(session)


def spot_check_threads(record: Record, epochs: int) -> int | None:
    """The thread count to re-train a record's first ``epochs`` with (that of the session behind them), or None
    when the record is not a CPU run (its last session or that one ran elsewhere): what :func:`spot_check` needs."""
    return None if recorded_threads(record) is None else recorded_threads(record, epochs)


def _threads(provenance: dict) -> int | None:
    import re  # noqa: PLC0415

    if not str(provenance.get("device", "cpu")).startswith("cpu"):  # earlier sessions keep only the device name
        return None
    match = re.search(r"(\d+) threads", str(provenance.get("device_name", "")))
    return int(match.group(1)) if match else None


def spot_check(record: Record, epochs: int = 1, folder=None) -> tuple[pd.DataFrame, dict]:
    """Train the first ``epochs`` of a CPU record's run again here, on the CPU with the record's backend and
    thread count, in a temporary folder; returns :func:`compare_runs` (see :mod:`reprolib.training.rerun` for
    what to expect)."""
    import tempfile  # noqa: PLC0415

    from reprolib.training import train  # noqa: PLC0415

    threads = spot_check_threads(record, epochs)
    if threads is None:
        raise ValueError(f"{record.path}: a spot check re-trains CPU records; this one ran on "
                         f"{record.provenance.get('device_name')}")
    with torch_threads(threads), tempfile.TemporaryDirectory(dir=folder) as scratch:
        again = train(rerun_config(record, device="cpu"), results_dir=scratch, resume=False, progress=False,
                      until_epoch=epochs)
    return compare_runs(record, again)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """PyTorch's CPU thread count set to ``threads`` inside the block (None: left as it is), restored after. CPU
    reductions are split by thread, so a re-run matches a record only with the record's count."""
    import torch  # noqa: PLC0415

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def _default_folder(record: Record) -> Path:
    from reprolib.paths import cache_dir  # noqa: PLC0415

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return cache_dir("reruns") / f"{record.hash}-{stamp}"


def sessions_behind(record: Record, last_epoch: int | None = None) -> list[tuple[str, dict, str]]:
    """The training sessions that produced a record's epochs 0..``last_epoch`` (all of them when None), as
    ``(epochs, provenance, backend)``: a resumed run names each earlier session, with the epoch it reached, under
    ``earlier_sessions``; its own provenance is the last session's. ``epochs`` reads e.g. ``"epochs 0-30"`` for a
    resumed record and ``""`` for one trained in a single session."""
    earlier = list(record.provenance.get("earlier_sessions", []))
    if not earlier:
        return [("", record.provenance, record.config.backend)]
    history = record.history
    # the first session's first epoch is 0 where the run evaluates before training, else 1; the last session
    # ends where the record does (earlier if it stopped early)
    if history:
        first_epoch = min(history[0]["epoch"], 1)
    else:
        first_epoch = 0 if record.config.eval_before_training else 1
    last = history[-1]["epoch"] if history else record.config.epochs
    sessions, start = [], 0
    for index, session in enumerate(earlier + [None]):
        until = session["until_epoch"] if session is not None else last
        first = first_epoch if index == 0 else start + 1
        if until >= first and (last_epoch is None or first <= last_epoch):
            span = f"epoch {first}" if until == first else f"epochs {first}-{until}"
            if session is None:
                sessions.append((span, record.provenance, record.config.backend))
            else:
                sessions.append((span, session, session.get("backend") or record.config.backend))
        start = until
    return sessions


def _same_setting(recorded: Record, rerun: Record, last_epoch: int | None = None) -> list[str]:
    """What differs between the two runs' settings that floating point depends on (empty: none), for every
    session of the record that trained its epochs 0..``last_epoch``: a resumed record's first epochs may come
    from older code than its own provenance names."""
    notes = []
    b = rerun.provenance
    for span, a, backend in sessions_behind(recorded, last_epoch):
        prefix = f"{span} of the record: " if span else ""
        if a.get("device_name") != b.get("device_name"):
            notes.append(f"{prefix}device: recorded {a.get('device_name')} / rerun {b.get('device_name')}")
        if a.get("reprolib_source_sha256") and b.get("reprolib_source_sha256"):  # older records have no digest
            if a["reprolib_source_sha256"] != b["reprolib_source_sha256"]:
                notes.append(f"{prefix}code: the package's files differ (source digest)")
        elif a.get("git_commit") != b.get("git_commit"):
            notes.append(f"{prefix}code: recorded commit {str(a.get('git_commit'))[:8]} / rerun "
                         f"{str(b.get('git_commit'))[:8]}")
        if str(b.get("device", "")).startswith("cpu"):
            if not a.get("cpu") and a is not recorded.provenance:  # an earlier session's
                notes.append(f"{prefix}CPU: the record does not name the CPU of this session (earlier sessions "
                             "kept it only from 98b8cc5 on), so a different CPU cannot be ruled out")
            elif not a.get("cpu"):
                notes.append(f"{prefix}CPU: the record does not name its CPU model and instruction set (recorded "
                             "before provenance held them), so a different CPU cannot be ruled out")
            elif a["cpu"] != b.get("cpu"):
                notes.append(f"{prefix}CPU: recorded {cpu_text(a['cpu']) or 'unknown'} / rerun "
                             f"{cpu_text(b.get('cpu')) or 'unknown'}")
        if backend != rerun.config.backend:
            notes.append(f"{prefix}backend: recorded {backend} / rerun {rerun.config.backend}")
    return notes


#: under the results folder, ``reruns/<label>/<experiment>/<config-hash>.json`` holds whole re-runs of committed
#: records, trained again on another machine (``reprolib rerun RECORD --results results/reruns/<label>``)
RERUNS_FOLDER = "reruns"


def _machine(provenance: dict) -> str:
    """Where a session ran, as far as float rounding depends on it: device (with threads) and, on a CPU, the model
    (or that the record does not name it: records before 1764d03 do not)."""
    text = str(provenance.get("device_name") or provenance.get("device") or "unknown")
    if not str(provenance.get("device", "cpu")).startswith("cpu"):
        return text
    return f"{text}, {cpu_text(provenance.get('cpu')) or 'CPU not recorded'}"


#: the columns of :func:`published_reruns`, in order (also those of its empty table)
RERUN_COLUMNS = ("label", "experiment", "config_hash", "seed", "epochs", "recorded (%)", "rerun (%)",
                 "difference (pp)", "seeds", "seed accuracies (%)", "seeds' min (%)", "seeds' max (%)",
                 "inside seeds' range", "seeds' std (pp)", "z vs seeds", "largest epoch diff (pp)", "identical",
                 "recorded on", "recorded code", "rerun on", "rerun code", "rerun date", "settings differ", "note")


def _final_accuracy(record: Record) -> float:
    """The record's final test accuracy in percent; ValueError naming the file when it has none."""
    value = record.final.get("test_accuracy")
    if not is_finite_real(value):
        raise ValueError(f"{record.path}: final test_accuracy = {value!r}; expected a finite number to compare")
    return 100.0 * value


def published_reruns(results_dir=None, scale: str | None = None) -> pd.DataFrame:
    """One row per whole-run re-run committed under ``<results>/reruns/<label>/<experiment>/`` (at ``scale``, or
    every scale), with the columns :data:`RERUN_COLUMNS`: the final test accuracy of the committed record it
    re-trains and of the re-run, in percent, and their difference; where the re-run falls among every committed run
    of the same config (all seeds, the re-trained one included): ``seed accuracies (%)``, ``seeds' min`` /
    ``seeds' max``, ``inside seeds' range`` (None with fewer than two runs), ``seeds' std (pp)`` and ``z vs seeds``,
    the re-run's distance from their mean in their standard deviations. On the same kind of CPU, backend and thread
    count a re-run is ``identical`` at every epoch; elsewhere only that spread is comparable. ``largest epoch diff
    (pp)`` is the largest test-accuracy difference at any epoch; ``settings differ`` what floating point depends on
    that is not the same. A re-run whose record is not committed (any more) has no recorded number and says so in
    ``note``. A re-run record that does not read raises naming its file; a committed record that does not is left
    out of the comparison with a warning."""
    from reprolib.paths import results_dir as default_results_dir  # noqa: PLC0415

    root = default_results_dir(results_dir)
    if root.exists() and not root.is_dir():
        raise ValueError(f"results_dir {str(root)!r} is a file; expected the folder of the run records")
    rows, committed = [], {}
    for path in sorted((root / RERUNS_FOLDER).glob("*/*/*.json")):
        again = read_record(path)
        config = again.config
        if scale is not None and config.scale != scale:
            continue
        rerun_accuracy = _final_accuracy(again)
        folder = root / config.experiment
        if folder not in committed:  # every committed record of the experiment, read once
            # one that does not read (corrupt, or of an older format) must not take the whole table down with it
            committed[folder] = records_in(folder, "warn", left_out_of="the re-runs' comparison")
        # the same config with another seed: the config hash covers everything but the seed once that is set equal
        siblings = [r for r in committed[folder] if with_overrides(r.config, {"seed": config.seed}).hash == again.hash]
        original = next((r for r in siblings if r.hash == again.hash), None)
        seeds = [_final_accuracy(r) for r in siblings]
        spread = statistics.stdev(seeds) if len(seeds) > 1 else float("nan")
        row = dict.fromkeys(RERUN_COLUMNS, float("nan"))
        row.update({
            "label": path.parent.parent.name, "experiment": config.experiment, "config_hash": again.hash,
            "seed": config.seed, "epochs": len(again.history), "rerun (%)": rerun_accuracy, "seeds": len(seeds),
            "seed accuracies (%)": tuple(seeds),
            "seeds' min (%)": min(seeds, default=float("nan")), "seeds' max (%)": max(seeds, default=float("nan")),
            # one committed run has no spread to fall inside: None, not False
            "inside seeds' range": min(seeds) <= rerun_accuracy <= max(seeds) if len(seeds) > 1 else None,
            "seeds' std (pp)": spread,
            # how many of the seeds' standard deviations the re-run lies from their mean (a range of five runs is
            # narrower than the spread it samples: about 2.3 std wide on average for normal draws)
            "z vs seeds": (rerun_accuracy - statistics.fmean(seeds)) / spread if spread > 0 else float("nan"),
            "identical": False, "recorded on": "", "recorded code": "",
            "rerun on": _machine(again.provenance), "rerun code": str(again.provenance.get("git_commit"))[:8],
            "rerun date": str(again.provenance.get("end_time", ""))[:10], "settings differ": "", "note": ""})
        if original is None:
            row["note"] = f"no committed record {config.experiment}/{again.hash}.json to compare with"
        else:
            table, summary = compare_runs(original, again)
            epoch_diffs = table["test_accuracy diff"].abs() if "test_accuracy diff" in table else pd.Series(dtype=float)
            sessions = [session for _, session, _ in sessions_behind(original)]
            recorded = _final_accuracy(original)
            row.update({"recorded (%)": recorded, "difference (pp)": rerun_accuracy - recorded,
                        "largest epoch diff (pp)": float(epoch_diffs.max()) if len(epoch_diffs) else float("nan"),
                        "identical": summary["identical"],
                        "recorded on": "; ".join(dict.fromkeys(_machine(s) for s in sessions)),
                        "recorded code": "; ".join(dict.fromkeys(str(s.get("git_commit"))[:8] for s in sessions)),
                        "settings differ": "; ".join(summary["settings_differ"])})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(RERUN_COLUMNS))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", nargs="+", metavar="RECORD", help="run record JSON file(s) under results/")
    parser.add_argument("--epochs", type=int, default=None, metavar="N",
                        help="train only the first N epochs (with the full run's schedule) and compare those")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the record's config)")
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help="neuron time-loop implementation (default: the record's config)")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="where the new records go (default: a fresh folder under the reprolib cache)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="PP",
                        help="exit 1 when an accuracy differs by more than PP percentage points at a compared epoch")
    parser.add_argument("--threads", default="record", metavar="N|record|auto",
                        help="CPU threads for a rerun on the CPU: 'record' (default) those of the session that "
                             "trained the record's first compared epochs, as CPU reductions are split by thread and "
                             "only the same count can give identical numbers; 'auto' PyTorch's own choice "
                             "(OMP_NUM_THREADS or the cores); or a number")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _parse_threads(text: str) -> int | str:
    if text in ("record", "auto"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ConfigError(f"--threads {text!r} is not allowed; expected 'record', 'auto' or a positive number of threads")


def _threads_for(choice: int | str, record: Record, config, epochs: int) -> int | None:
    """The thread count to set for this rerun, or None to leave PyTorch's (a GPU rerun, 'auto', a GPU record)."""
    from reprolib.training.build import resolve_device  # noqa: PLC0415

    if resolve_device(config.device).type != "cpu" or choice == "auto":
        return None
    return choice if isinstance(choice, int) else spot_check_threads(record, epochs)


def main(args: argparse.Namespace) -> int:
    from reprolib.training import train  # noqa: PLC0415

    try:  # every record and option is checked before the first one trains
        if args.tolerance is not None and not args.tolerance >= 0:
            raise ConfigError(f"--tolerance {args.tolerance} is not allowed; expected a number of points >= 0")
        threads_choice = _parse_threads(args.threads)
        records = [read_record(path) for path in args.records]
        configs = [rerun_config(r, args.device, args.backend) for r in records]
        for record, config in zip(records, configs):
            if args.epochs is not None and not 1 <= args.epochs <= record.config.epochs:
                raise ConfigError(f"--epochs {args.epochs} is not allowed for {record.path}: expected 1 to its "
                                  f"{record.config.epochs} epochs")
            if args.results is not None:
                existing = record_path(config, check_results_folder(args.results))
                if existing.exists():  # train() would return it untrained and the comparison would be with itself
                    raise ConfigError(f"--results {args.results!r} already holds a record of this config ({existing}); "
                                      "a rerun must train into a folder without one (the default is a fresh folder)")
    except (ConfigError, CorruptRecordError, OSError, ValueError) as error:
        print(f"reprolib rerun: error: {error}", file=sys.stderr)
        return 2
    worst_case = 0
    for record, config in zip(records, configs):
        folder = Path(args.results) if args.results else _default_folder(record)
        epochs = args.epochs or config.epochs
        print(f"{record.path}: {config.experiment}/{record.hash} seed {config.seed}, "
              f"{epochs} of {config.epochs} epochs -> {folder}", flush=True)
        if args.backend is None and config.backend != record.config.backend:
            print(f"  the record ran with backend {record.config.backend!r}, which runs on the CPU only; on "
                  f"{config.device} this rerun uses {config.backend!r} (pass --backend to choose)", flush=True)
        threads = _threads_for(threads_choice, record, config, epochs)
        with torch_threads(threads) as before:
            if threads is not None and threads != before:
                print(f"  {threads} CPU thread{'s' if threads != 1 else ''}, as "
                      + ("asked" if isinstance(threads_choice, int) else "the record's run used (--threads auto: "
                         f"PyTorch's {before})"), flush=True)
            again = train(config, results_dir=folder, resume=True, progress=not args.no_progress, until_epoch=epochs)
        table, summary = compare_runs(record, again)
        shown = [c for c in table.columns if c == "epoch" or "test_accuracy" in c or "val_loss" in c]
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        differs = summary["settings_differ"]
        print(f"  {summary['epochs']} epoch{'s' if summary['epochs'] != 1 else ''} compared: "
              + ("identical" if summary["identical"] else
                 f"largest accuracy difference {summary['max_abs_accuracy_diff_pp']:.3f} pp")
              + ("; same device, backend and code" if not differs else "; settings differ: " + "; ".join(differs)))
        print(f"  new record {again.path}" if again.path else
              f"  the first {epochs} epochs only: no record written (the checkpoint under {folder} can go on)",
              flush=True)
        worst = summary["max_abs_accuracy_diff_pp"]
        if args.tolerance is not None and not math.isnan(worst) and worst > args.tolerance:
            worst_case = 1
    return worst_case
