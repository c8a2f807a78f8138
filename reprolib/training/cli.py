"""``reprolib run EXPERIMENT``: train an experiment's config grid (or a ``--select``-ed part) in this process.

Examples::

    reprolib run toy --scale ci
    reprolib run src-table2 --scale ci --select input=mnist-rate --select model_options.layers=2
    reprolib run sj-seq-fmnist --scale paper --device cuda:1 --set epochs=10 --results /tmp/results

Each finished run writes ``<results>/<experiment>/<config-hash>.json``; runs that already have a record are
skipped, interrupted runs resume from their last epoch checkpoint (``--no-resume`` starts over).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Callable

from reprolib.config import (BACKENDS, ConfigError, config_hash, parse_assignments, parse_selection, select_configs,
                             with_overrides)
from reprolib.paths import check_results_folder

#: exit code of ``reprolib run`` / ``reprolib sweep`` when ``--time-limit`` paused runs (and none failed)
EXIT_PAUSED = 3
# the time limit counts from the start of the command, imports included
_START = time.time()


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``run`` and ``sweep``: which configs of a preset."""
    parser.add_argument("experiment", help="preset name, e.g. src-table2 or brf-ecg (an unknown name prints the list)")
    parser.add_argument("--scale", default="ci", choices=["ci", "paper"], help="ci: seconds on CPU; paper: the source's settings")
    parser.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config key for every run, e.g. --set epochs=3 --set model_options.hidden=64")
    parser.add_argument("--select", action="append", metavar="KEY=VALUE", default=[],
                        help="keep only configs with this value of a config key or grid axis (repeat a key to allow "
                             "several values; config_hash=a,b for hashes); a value that a simple axis (one config "
                             "key, e.g. hidden or T) does not list adds it to the grid")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (not part of the run's identity)")
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help="neuron time-loop implementation for models that have one: torch | auto | cupy (fused "
                             "CUDA) | cpp (the fastest CPU path: whole-sequence C++ loops, and sparse input matmuls for the "
                             "SRC paper's networks); not part of the run's identity")
    parser.add_argument("--results", default=None, metavar="DIR", help="records folder (default $REPROLIB_RESULTS or results/)")
    parser.add_argument("--list", action="store_true", help="list the selected configs (hash, record status) and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--log-epochs", action="store_true",
                        help="print a line per finished epoch (losses, accuracies, seconds), and one on resuming, "
                             "pausing or stopping early: a readable log of a long run, where progress bars suit a "
                             "terminal (a sweep then shows no bar of its own)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                        help="stop between epochs rather than run past MINUTES from now (a lent machine's command "
                             "limit); unfinished runs keep their checkpoints and the same command resumes them "
                             f"(exit code {EXIT_PAUSED})")


def stop_at(args: argparse.Namespace) -> float | None:
    """``--time-limit`` as a ``time.time()`` deadline (None without one)."""
    minutes = getattr(args, "time_limit", None)
    return None if minutes is None else _START + 60.0 * minutes


def check_time_limit(args: argparse.Namespace) -> None:
    minutes = getattr(args, "time_limit", None)
    if minutes is not None and not (minutes > 0 and math.isfinite(60.0 * minutes)):
        raise ConfigError(f"--time-limit {minutes} is not allowed; expected a positive number of minutes")


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_arguments(parser)
    parser.add_argument("--seed", dest="seeds", type=int, action="append", metavar="N",
                        help="seed (repeatable); default: the preset's seeds for the scale")
    parser.add_argument("--no-resume", action="store_true", help="train from scratch even if a record or checkpoint exists")


def build_configs(args: argparse.Namespace, seeds) -> list:
    """The preset grid with ``--set`` / ``--device`` / ``--backend`` applied and ``--select`` filtering; fails early on bad input."""
    from reprolib.experiments import axis_names, get_configs

    criteria = parse_selection(args.select)
    # an axis name (input=mnist-rate, neuron=brf) selects grid choices; other keys match config values
    axes = {name: criteria.pop(name) for name in axis_names(args.experiment) if name in criteria}
    configs = get_configs(args.experiment, args.scale, seeds=seeds, **axes)
    overrides = parse_assignments(args.overrides)
    for key, instead in (("experiment", "the preset names it"), ("scale", "use --scale")):
        if key in overrides:  # they name the preset and its settings, which --set would then misstate
            raise ConfigError(f"--set {key}={overrides[key]!r} is not allowed: {instead}")
    for key in ("device", "backend"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if overrides:
        configs = [with_overrides(c, overrides) for c in configs]
    configs = select_configs(configs, criteria)
    if not configs:
        raise ConfigError(f"--select {args.select} matches none of the {args.experiment!r} configs")
    return configs


def configs_to_run(args: argparse.Namespace, command: str, check: Callable[[], None] | None = None):
    """``(configs, None)`` to train, or ``(None, exit_code)`` when ``reprolib <command>`` stops here.

    Shared by ``run`` and ``sweep``: a bad argument (from :func:`build_configs` or the command's own
    ``check``) prints ``reprolib <command>: error: ...`` and gives 2; ``--list`` prints the configs and gives 0.
    """
    try:
        configs = build_configs(args, args.seeds)
        check_time_limit(args)
        check_results_folder(args.results)
        _check_each(configs)
        if check is not None:
            check()
    except (ConfigError, ValueError) as error:
        print(f"reprolib {command}: error: {error}", file=sys.stderr)
        return None, 2
    if args.list:
        print_configs(configs, args.results)
        return None, 0
    return configs, None


def _check_each(configs) -> None:
    """Raise the first config's error that :func:`reprolib.training.build.check_config` finds (names, options),
    before anything is listed or trained."""
    from reprolib.training.build import config_errors  # noqa: PLC0415 (imports torch)

    for config, error in config_errors(configs):
        if error is not None:
            raise error


def print_configs(configs, results) -> None:
    """One line per config: its hash; ``record``, ``corrupt`` (a record that fails to read or verify; a run
    moves it aside and trains again), ``vN`` (a record in another record version, kept) or ``missing`` (for an
    unfinished run with a checkpoint, the epochs it has done, ``12/100 ep``, which the next sweep or run resumes);
    its seed and the varying keys. An unfinished run's line ends with its last validation accuracy and the time
    its remaining epochs would take."""
    from reprolib.results.records import CorruptRecordError, RecordVersionError, read_record, record_path

    for config in configs:
        progress = ""
        path = record_path(config, results)
        if path.exists():
            try:
                read_record(path)
                status = "record"
            except RecordVersionError as error:
                status = f"v{error.version}"  # a record in another record version: intact, unreadable here
            except CorruptRecordError:
                status = "corrupt"
        else:
            state = _checkpoint_state(config, results)
            status = "missing" if state is None else f"{int(state.get('epoch', 0))}/{config.epochs} ep"
            progress = "" if state is None else checkpoint_progress(state.get("history") or [], config.epochs)
        varying = {k: v for k, v in config.flat().items() if k in _varying_keys(configs)}
        print(f"{config_hash(config)}  {status:10s}  seed={config.seed}  {varying}" + (f"  ({progress})" if progress else ""))


def _checkpoint_state(config, results) -> dict | None:
    """The state of an unfinished run whose checkpoint is under ``results`` (read, never created), else None."""
    from reprolib.training import checkpoint as ckpt  # noqa: PLC0415

    state = ckpt.load(ckpt.checkpoint_dir(config, results, create=False) / ckpt.STATE_FILE)
    if state is None or state.get("config_hash") != config_hash(config):
        return None
    return state


#: epochs whose times estimate the rest of a run: recent ones, as a resumed run may share the machine differently
PACE_EPOCHS = 5


def checkpoint_progress(history: list[dict], epochs: int) -> str:
    """``val 96.32 %, about 3.1 h to go at 2.8 min/epoch`` for a run with ``history`` (one dict per epoch done, as
    a checkpoint holds it) out of ``epochs``: the last epoch's validation (else test) accuracy, and the remaining
    epochs at the mean training + evaluation time of the last PACE_EPOCHS epochs."""
    if not history:
        return ""
    parts = []
    last = history[-1]
    for split in ("val", "test"):
        if last.get(f"{split}_accuracy") is not None:
            parts.append(f"{split} {100 * last[f'{split}_accuracy']:.2f} %")
            break
    times = [h.get("epoch_time_s", 0.0) + (h.get("eval_time_s") or 0.0) for h in history[-PACE_EPOCHS:]]
    if all(t > 0 for t in times):
        pace = sum(times) / len(times)
        left = max(epochs - int(last.get("epoch", len(history))), 0) * pace
        parts.append(f"about {_duration(left)} to go at {pace / 60:.1f} min/epoch")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def _varying_keys(configs) -> set:
    flats = [c.flat() for c in configs]
    keys = set().union(*flats)
    return {k for k in keys if k != "seed" and len({repr(f.get(k)) for f in flats}) > 1}


def main(args: argparse.Namespace) -> int:
    from reprolib.training import TimeLimitReached, train

    configs, exit_code = configs_to_run(args, "run")
    if exit_code is not None:
        return exit_code
    failures = paused = 0
    deadline = stop_at(args)
    for index, config in enumerate(configs, 1):
        print(f"[{index}/{len(configs)}] {config.experiment}/{config_hash(config)} seed {config.seed}", flush=True)
        try:
            record = train(config, results_dir=args.results, resume=not args.no_resume, progress=not args.no_progress,
                           stop_at=deadline, log_epochs=args.log_epochs)
        except TimeLimitReached as stopped:
            paused += 1
            print(f"  PAUSED: {stopped}", flush=True)
            continue
        except Exception as error:  # report and go on with the other configs
            failures += 1
            print(f"  FAILED: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            continue
        shown = {k: round(v, 4) for k, v in record.final.items()
                 if k.endswith("_accuracy") and not k.startswith(("best_", "last_")) and v is not None}
        print(f"  record {record.path}  selected epoch {record.final['selected_epoch']}  {shown}", flush=True)
    if failures:
        print(f"{failures} of {len(configs)} runs failed", file=sys.stderr)
    if paused:
        print(f"{paused} of {len(configs)} runs paused at the time limit; the same command resumes them")
    return 1 if failures else EXIT_PAUSED if paused else 0
