"""Sweeps: run the configs of a grid that have no record yet, in parallel on Dask distributed.

``run_sweep(configs)`` skips every config whose run record exists and trains the others, each as one task
running :func:`reprolib.training.train` (so an interrupted task resumes from its checkpoint next time).
By default the tasks run on an embedded ``LocalCluster`` of worker *processes* on this machine: one worker
per GPU times ``workers_per_gpu`` (several small runs may share one GPU), or one per CPU core without a
GPU. A failing run is reported with its config and traceback; the other runs go on.

Beyond one machine, start a Dask scheduler and workers elsewhere and pass ``scheduler_address`` (or a
``client``). On a SLURM cluster, dask-jobqueue starts the workers as batch jobs::

    from dask_jobqueue import SLURMCluster        # pip install dask-jobqueue
    from distributed import Client
    cluster = SLURMCluster(queue="gpu", cores=8, memory="32GB", processes=1,
                           job_extra_directives=["--gres=gpu:1"], walltime="24:00:00")
    cluster.scale(jobs=10)                        # 10 jobs, one GPU each
    run_sweep(get_configs("src-table2", "paper", seeds=[0, 1, 2, 3, 4]), client=Client(cluster))

(or ``reprolib sweep src-table2 --scale paper --scheduler tcp://host:8786``). Workers need this repository
installed and the same ``REPROLIB_DATA``; records are written to ``results_dir`` as seen by the workers, so
it must be a shared file system path.

``ensure_records(configs, train_missing)`` is the notebooks' entry point: the records as a DataFrame,
training the missing runs only when asked (in-process when there is a single one, to stay fast in CI) and
otherwise naming them with the exact command that produces them.
"""

from __future__ import annotations

import logging
import os
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from reprolib.config import ConfigError, ExperimentConfig, config_hash
from reprolib.paths import results_dir as default_results_dir
from reprolib.results.records import CorruptRecordError, RecordVersionError, find_record


@dataclass
class RunFailure:
    config: ExperimentConfig
    error: str
    traceback: str

    def __str__(self) -> str:
        # a user's mistake (ConfigError) needs no traceback, a crash does
        return f"{self.config.experiment}/{config_hash(self.config)} failed: {self.error}" + (
            f"\n{self.traceback}" if self.traceback else "")


@dataclass
class SweepReport:
    """What a sweep found and did; ``ok`` when nothing failed and nothing is left missing."""

    existing: list[ExperimentConfig] = field(default_factory=list)  # had a record already: not run
    trained: list[ExperimentConfig] = field(default_factory=list)
    failed: list[RunFailure] = field(default_factory=list)
    missing: list[ExperimentConfig] = field(default_factory=list)  # no record and not trained (train_missing=False)
    paused: list[ExperimentConfig] = field(default_factory=list)  # stopped at the time limit, checkpoint kept
    corrupt: list[Path] = field(default_factory=list)  # corrupt records found (kept as *.corrupt, run again)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing and not self.paused

    def summary(self) -> str:
        lines = [f"{len(self.existing)} with a record, {len(self.trained)} trained, {len(self.failed)} failed, "
                 f"{len(self.missing)} missing" + (f", {len(self.paused)} paused at the time limit" if self.paused else "")]
        if self.paused:
            lines.append("paused runs keep their checkpoints; the same command resumes them: "
                         + ", ".join(config_hash(c) for c in self.paused))
        lines += [f"corrupt record moved aside and run again: {path}" for path in self.corrupt]
        lines += [str(failure) for failure in self.failed]
        if self.missing:
            lines.append("missing runs; produce them with:")
            lines += [f"  {command}" for command in missing_commands(self.missing)]
        return "\n".join(lines)


def _unique(configs: Iterable[ExperimentConfig]) -> list[ExperimentConfig]:
    seen, out = set(), []
    for config in configs:
        if not isinstance(config, ExperimentConfig):
            raise TypeError(f"sweeps take ExperimentConfig objects, got {type(config).__name__}")
        if config_hash(config) not in seen:
            seen.add(config_hash(config))
            out.append(config)
    return out


def _set_aside_corrupt(config: ExperimentConfig, results_dir) -> Path | None:
    """Move a corrupt record to ``<hash>.json.corrupt`` (kept for inspection) so the run is done again."""
    try:
        find_record(config, results_dir)
    except CorruptRecordError as error:
        target = error.path.with_name(error.path.name + ".corrupt")
        os.replace(error.path, target)
        return target
    return None


def _place_on_gpu(config: ExperimentConfig, workers_per_gpu: int) -> ExperimentConfig:
    """In a LocalCluster worker, ``device=auto`` -> the GPU of this worker (workers_per_gpu workers per GPU)."""
    if config.device != "auto":
        return config
    import torch

    count = torch.cuda.device_count()
    if count <= 1:
        return config
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return config
    if not isinstance(name, int):
        return config  # a remote worker sees its own GPU(s); auto picks cuda:0
    from reprolib.config import with_overrides

    return with_overrides(config, {"device": f"cuda:{(name // workers_per_gpu) % count}"})


def threads_per_worker(workers: int) -> int:
    """PyTorch threads for each of ``workers`` runs side by side here: ``$OMP_NUM_THREADS`` when the user set it
    (two sweeps sharing a machine must not each take every core), else the cores shared out among the workers."""
    chosen = os.environ.get("OMP_NUM_THREADS", "")
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    return max(1, (os.cpu_count() or 1) // workers)


def run_one(config_data: dict, results_dir: str, workers_per_gpu: int = 1, threads: int | None = None,
            stop_at: float | None = None, log_epochs: bool = False) -> dict:
    """One sweep task (also usable on its own): train a config given as a dict; never raises, reports
    ``ok``, ``failed`` or ``paused`` (the time limit ``stop_at`` came first; see :func:`reprolib.training.train`).
    ``log_epochs``: the run prints a line per epoch (:func:`reprolib.training.loop.epoch_line`)."""
    config_id = "?"
    try:
        config = ExperimentConfig.from_dict(config_data)
        config_id = config_hash(config)
        if threads:
            import torch

            torch.set_num_threads(threads)
        from reprolib.training import TimeLimitReached, train

        try:
            record = train(_place_on_gpu(config, workers_per_gpu), results_dir=results_dir, resume=True,
                           progress=False, stop_at=stop_at, log_epochs=log_epochs)
        except TimeLimitReached as stopped:
            return {"status": "paused", "hash": config_id, "epochs_done": stopped.epochs_done}
        return {"status": "ok", "hash": config_id, "path": str(record.path)}
    except Exception as error:  # reported to the caller with the traceback; other runs go on
        return {"status": "failed", "hash": config_id, "error": f"{type(error).__name__}: {error}",
                "traceback": "" if _is_user_error(error) else traceback.format_exc()}


def _is_user_error(error: BaseException) -> bool:
    """A ConfigError of its own (a bad value, named in its message) needs no traceback; one that wraps an error
    raised inside a builder may be a bug there, and keeps it."""
    return isinstance(error, ConfigError) and error.__cause__ is None


def _preflight(configs: list[ExperimentConfig], report: SweepReport) -> list[ExperimentConfig]:
    """Build each distinct model / encoder / loss here first, so a typo in an option is reported at once
    instead of after a cluster started; the configs that fail are reported and not submitted."""
    from reprolib.training.build import config_errors  # noqa: PLC0415

    runnable = []
    for config, error in config_errors(configs):
        if error is None:
            runnable.append(config)
        else:
            trace = "" if _is_user_error(error) else "".join(traceback.format_exception(error))
            report.failed.append(RunFailure(config, f"{type(error).__name__}: {error}", trace))
    return runnable


def default_workers(workers_per_gpu: int = 1) -> int:
    import torch

    gpus = torch.cuda.device_count()
    return gpus * workers_per_gpu if gpus else (os.cpu_count() or 1)


def _has_distributed() -> bool:
    try:
        import distributed  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _progress_bar(total: int):
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415
    except ImportError:
        return None
    return tqdm(total=total, desc="sweep", dynamic_ncols=True)


def _collect(outcome: dict, config: ExperimentConfig, report: SweepReport, bar) -> None:
    if outcome["status"] == "ok":
        report.trained.append(config)
    elif outcome["status"] == "paused":
        report.paused.append(config)
    else:
        report.failed.append(RunFailure(config, outcome["error"], outcome["traceback"]))
    if bar is not None:
        bar.update(1)
        bar.set_postfix(failed=len(report.failed))


def _died(error: Exception) -> dict:
    """The outcome of a task whose worker process itself died (memory, killed ...)."""
    return {"status": "failed", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def _run_in_process_pool(todo, folder: str, workers: int, workers_per_gpu: int, report: SweepReport, bar,
                         stop_at: float | None = None, log_epochs: bool = False) -> None:
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: PLC0415

    threads = threads_per_worker(workers)
    # spawn, not fork: CUDA cannot be used in a forked child of a process that touched it
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, c.to_dict(), folder, workers_per_gpu, threads, stop_at, log_epochs): c
                   for c in todo}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as error:
                outcome = _died(error)
            _collect(outcome, futures[future], report, bar)


def _run_on_dask(todo, folder: str, client, scheduler_address, workers: int, workers_per_gpu: int,
                 report: SweepReport, bar, stop_at: float | None = None, log_epochs: bool = False) -> None:
    cluster = own_client = None
    if client is None:
        from distributed import Client, LocalCluster  # noqa: PLC0415

        if scheduler_address:
            try:
                client = own_client = Client(scheduler_address)
            except (OSError, TimeoutError, ValueError) as error:  # nothing was submitted yet
                raise ConfigError(f"scheduler {scheduler_address!r} cannot be reached: {type(error).__name__}: "
                                  f"{error}; expected the address of a running Dask scheduler, e.g. "
                                  "tcp://10.0.0.5:8786") from None
        else:
            # The scheduler serves HTTP (health routes) even without a dashboard, on port 8787 unless told
            # otherwise: a free port on localhost lets two sweeps share a machine without a "Port 8787 is already
            # in use" warning.
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                   silence_logs=logging.WARNING)
            client = own_client = Client(cluster)
    threads = None
    if cluster is not None:
        threads = threads_per_worker(len(cluster.workers))
    try:
        from distributed import as_completed  # noqa: PLC0415

        by_key, futures = {}, []
        for config in todo:
            key = f"reprolib-run-{config_hash(config)}-{uuid.uuid4().hex[:8]}"
            by_key[key] = config
            futures.append(client.submit(run_one, config.to_dict(), folder, workers_per_gpu, threads, stop_at,
                                         log_epochs, key=key, pure=False))
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as error:
                outcome = _died(error)
            _collect(outcome, by_key[future.key], report, bar)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(configs: Iterable[ExperimentConfig], results_dir: str | os.PathLike | None = None, client=None,
              scheduler_address: str | None = None, n_workers: int | None = None, workers_per_gpu: int = 1,
              train_missing: bool = True, progress: bool = True, stop_at: float | None = None,
              log_epochs: bool = False) -> SweepReport:
    """Train every config without a record on Dask; returns a :class:`SweepReport`.

    ``client``: an existing ``distributed.Client``; ``scheduler_address``: connect to a running scheduler;
    neither: an embedded ``LocalCluster`` of ``n_workers`` processes (default GPUs x ``workers_per_gpu``, or
    the CPU cores), closed at the end -- or, where Dask is not installed, a pool of as many spawned processes.
    ``train_missing=False`` only reports what is missing. ``stop_at``: a ``time.time()`` deadline; runs stop
    between epochs rather than end after it, keep their checkpoints and are reported as ``paused``.
    ``log_epochs``: each run prints a line per finished epoch (:func:`reprolib.training.loop.epoch_line`),
    named by experiment and config hash; on a Dask cluster elsewhere the lines go to the workers' logs.
    """
    if isinstance(workers_per_gpu, bool) or not isinstance(workers_per_gpu, int) or workers_per_gpu < 1:
        raise ValueError(f"workers_per_gpu = {workers_per_gpu!r} is not allowed; expected an integer >= 1")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers = {n_workers!r} is not allowed; expected an integer >= 1 or None")
    from reprolib.training.loop import check_deadline  # noqa: PLC0415 - the loop (and torch) load when a sweep runs

    check_deadline(stop_at)
    if not isinstance(log_epochs, bool):
        raise ValueError(f"log_epochs = {log_epochs!r} is not allowed; expected True or False")
    configs = _unique(configs)
    folder = str(default_results_dir(results_dir))  # absolute: workers may run elsewhere
    report = SweepReport()
    todo = []
    for config in configs:
        try:
            exists = find_record(config, folder) is not None
        except RecordVersionError as error:  # intact, only in another version: kept, and not trained over
            exists = True
            warnings.warn(str(error))
        except CorruptRecordError as error:
            exists = False
            if train_missing:
                report.corrupt.append(_set_aside_corrupt(config, folder))
            else:
                warnings.warn(str(error))
        (report.existing if exists else todo).append(config)
    if not todo:
        return report
    if not train_missing:
        report.missing = todo
        return report
    todo = _preflight(todo, report)
    if not todo:
        return report

    workers = min(n_workers or default_workers(workers_per_gpu), len(todo))
    # the workers' epoch lines come from other processes and would break the bar's line: one or the other
    bar = _progress_bar(len(todo)) if progress and not log_epochs else None
    if client is None and scheduler_address is None and not _has_distributed():
        # no Dask here (the lent GPU machine has none): the same tasks in a pool of spawned processes
        _run_in_process_pool(todo, folder, workers, workers_per_gpu, report, bar, stop_at, log_epochs)
    else:
        _run_on_dask(todo, folder, client, scheduler_address, workers, workers_per_gpu, report, bar, stop_at,
                     log_epochs)
    if bar is not None:
        bar.close()
    return report


def missing_commands(configs: Iterable[ExperimentConfig]) -> list[str]:
    """Shell commands that produce the records of ``configs`` (grouped by experiment and scale)."""
    from reprolib.experiments import PRESETS, get_configs

    groups: dict[tuple[str, str], list[ExperimentConfig]] = {}
    for config in _unique(configs):
        groups.setdefault((config.experiment, config.scale), []).append(config)
    commands = []
    for (experiment, scale), group in groups.items():
        seeds = sorted({c.seed for c in group})
        wanted = {config_hash(c) for c in group}
        grid = set()
        if experiment in PRESETS:
            grid = {config_hash(c) for c in get_configs(experiment, scale, seeds=seeds)}
        base = f"reprolib sweep {experiment} --scale {scale} --seeds {' '.join(map(str, seeds))}"
        if wanted and wanted <= grid:
            commands.append(base if wanted == grid else f"{base} --select config_hash={','.join(sorted(wanted))}")
        else:
            commands.append(f"# {len(wanted)} {experiment} config(s) are not in the preset grid (overridden settings): "
                            "call reprolib.sweep.ensure_records(configs, train_missing=True)")
    return commands


class MissingRecordsWarning(UserWarning):
    """Some configs have no run record and were not trained (train_missing is False)."""


def ensure_records(configs: Iterable[ExperimentConfig], train_missing: bool = False,
                   results_dir: str | os.PathLike | None = None, n_workers: int | None = None, progress: bool = True,
                   **sweep_options):
    """The records of ``configs`` as a DataFrame (:func:`reprolib.results.load_records`).

    Missing runs are trained when ``train_missing`` is True: in this process when only one is missing or
    ``n_workers == 1``, else with :func:`run_sweep`; a failure raises. When ``train_missing`` is False the
    missing configs are listed with the command that produces them (a :class:`MissingRecordsWarning`;
    also in ``df.attrs["missing"]`` and ``df.attrs["missing_commands"]``).
    """
    from reprolib.results import load_records

    configs = _unique(configs)
    if train_missing:
        missing = []
        for config in configs:
            try:
                if find_record(config, results_dir) is None:
                    missing.append(config)
            except RecordVersionError:  # intact: never moved aside or trained over; its message says what to do
                raise
            except CorruptRecordError as error:
                warnings.warn(f"{error}; it is moved aside and run again")
                _set_aside_corrupt(config, results_dir)
                missing.append(config)
        if len(missing) == 1 or (missing and n_workers == 1):
            from reprolib.training import train

            for config in missing:
                train(config, results_dir=results_dir, progress=progress)
        elif missing:
            report = run_sweep(missing, results_dir=results_dir, n_workers=n_workers, progress=progress, **sweep_options)
            if report.failed:
                raise RuntimeError(f"{len(report.failed)} of {len(missing)} runs failed:\n{report.summary()}")
    df = load_records(configs, results_dir)
    still_missing = df.attrs.get("missing", [])
    df.attrs["missing_commands"] = missing_commands(still_missing) if still_missing else []
    if still_missing:
        warnings.warn(MissingRecordsWarning(
            f"{len(still_missing)} of {len(configs)} runs have no record in {default_results_dir(results_dir)} "
            "(train_missing is False); produce them with:\n  " + "\n  ".join(df.attrs["missing_commands"])))
    return df


__all__ = ["run_sweep", "ensure_records", "run_one", "SweepReport", "RunFailure", "missing_commands",
           "MissingRecordsWarning"]
