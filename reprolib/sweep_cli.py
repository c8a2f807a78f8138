"""``reprolib sweep EXPERIMENT``: run the configs of a preset grid that have no record, on Dask.

Examples::

    reprolib sweep src-table2 --scale paper --seeds 0 1 2 3 4                # LocalCluster, 1 worker per GPU
    reprolib sweep brf-ecg --scale paper --workers-per-gpu 4                 # small runs share a GPU
    reprolib sweep src-depth --scale paper --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster
    reprolib sweep toy --scale ci --list                                     # what would run
    reprolib sweep src-table2 --scale paper --time-limit 9                   # stop between epochs before 9 min

See :mod:`reprolib.sweep` for clusters beyond one machine (dask-jobqueue / SLURM).
"""

from __future__ import annotations

import argparse
import re
import sys

from reprolib.config import ConfigError
from reprolib.training.cli import EXIT_PAUSED, add_grid_arguments, configs_to_run, stop_at


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", metavar="N", help="seeds; default: the preset's seeds for the scale")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="LocalCluster workers (default: GPUs x workers-per-gpu, or CPU cores)")
    parser.add_argument("--workers-per-gpu", type=int, default=1, metavar="K", help="runs sharing one GPU (default 1)")


#: what a Dask scheduler address looks like: [protocol://]host:port
SCHEDULER_ADDRESS = re.compile(r"^([a-z][a-z0-9+]*://)?(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):\d+$|^inproc://\S+$")


def _check_workers(args: argparse.Namespace) -> None:
    if args.scheduler is not None and not SCHEDULER_ADDRESS.match(args.scheduler):
        raise ConfigError(f"--scheduler {args.scheduler!r} is not allowed; expected a Dask scheduler address "
                          "[protocol://]host:port, e.g. tcp://10.0.0.5:8786")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers} is not allowed; expected an integer >= 1")
    if args.workers_per_gpu < 1:
        raise ConfigError(f"--workers-per-gpu {args.workers_per_gpu} is not allowed; expected an integer >= 1")


def main(args: argparse.Namespace) -> int:
    from reprolib.sweep import run_sweep

    configs, exit_code = configs_to_run(args, "sweep", check=lambda: _check_workers(args))
    if exit_code is not None:
        return exit_code
    try:
        report = run_sweep(configs, results_dir=args.results, scheduler_address=args.scheduler, n_workers=args.workers,
                           workers_per_gpu=args.workers_per_gpu, progress=not args.no_progress, stop_at=stop_at(args),
                           log_epochs=args.log_epochs)
    except ConfigError as error:  # the scheduler cannot be reached
        print(f"reprolib sweep: error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    if report.ok:
        return 0
    return EXIT_PAUSED if report.paused and not report.failed and not report.missing else 1
