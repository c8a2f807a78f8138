"""The training loop: the one place in reprolib where a model is trained.

``train(config)`` builds the loss, encoder, model (:mod:`reprolib.training.build`), optimiser and schedule from an
:class:`~reprolib.config.ExperimentConfig` (so bad names or options fail before any data is loaded), then
trains for ``config.epochs`` epochs, evaluating the configured splits after each one, and writes one run
record (:mod:`reprolib.results`).

Determinism: the model is initialised after ``torch.manual_seed(seed)``; the training shuffle and the
stochastic encoders draw from their own ``torch.Generator`` (seeded from ``seed``), and each evaluation
re-seeds its own generator, so two runs of a config on CPU give bit-identical metrics. A checkpoint after
every epoch stores those generator states with the model/optimiser/scheduler, so a killed run started again
with the same config ends with the same record as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from reprolib.config import ConfigError, ExperimentConfig, config_hash
from reprolib.results import provenance
from reprolib.results.records import Record, find_record, write_record
from reprolib.training import checkpoint as ckpt, host_memory
from reprolib.training.build import (build_model, build_parts, derived_seed, evaluation_set, resolve_device,
                                     split_subset)
from reprolib.training.schedules import build_optimizer, build_scheduler

CHECKPOINT_FORMAT = 1


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run is stopped and no record is written (config
    ``nonfinite_loss = "error"``; ``"stop"`` writes the record of the epochs before instead)."""


class _StopTraining(Exception):
    """Internal: the training loss turned non-finite under ``nonfinite_loss = "stop"``."""

    def __init__(self, epoch: int, batch: int, batches: int, loss: float):
        super().__init__(epoch, batch, loss)
        self.batches = batches
        self.info = {"epoch": epoch, "batch": batch, "loss": str(loss), "reason": "non-finite training loss"}


def _nonfinite_error(config: ExperimentConfig, run_hash: str, loss, epoch: int, batch: int, batches: int,
                     what_now: str) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"{config.experiment}/{run_hash}: training loss is {loss} at epoch {epoch}/{config.epochs}, batch "
        f"{batch}/{batches}; {what_now} (try a lower lr or grad_clip, or check the model's outputs)")


class TimeLimitReached(RuntimeError):
    """``train(..., stop_at=...)`` stopped between epochs because the next one would end past ``stop_at``.

    No record is written; the checkpoint of the last finished epoch is kept, so the same call (or command)
    later resumes from it. ``epochs_done`` of ``epochs`` are finished."""

    def __init__(self, config_id: str, epochs_done: int, epochs: int, checkpoint):
        self.config_id, self.epochs_done, self.epochs, self.checkpoint = config_id, epochs_done, epochs, checkpoint
        super().__init__(f"{config_id}: time limit reached after epoch {epochs_done} of {epochs}; "
                         f"checkpoint kept in {checkpoint}, run the same command again to resume")


# -- one pass over a loader ------------------------------------------------------------------------------
class _Meter:
    """Sums of the per-epoch metrics, weighted by the number of samples."""

    def __init__(self) -> None:
        self.samples = 0
        self.loss_sum = 0.0
        self.correct = 0
        self.counted = 0
        self.activity_sum = 0.0
        self.activity_samples = 0
        self.spikes = 0.0
        self.spike_samples = 0

    def add(self, model, result, batch: int) -> None:
        self.samples += batch
        self.loss_sum += float(result.loss.detach()) * batch
        self.correct += int(result.correct)
        self.counted += int(result.count)
        activity = getattr(model, "last_activity", None)
        if activity is not None:
            self.activity_sum += float(activity) * batch
            self.activity_samples += batch
        spike_count = getattr(model, "last_spike_count", None)
        if spike_count is not None:
            self.spikes += float(spike_count)
            self.spike_samples += batch

    def metrics(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_loss": self.loss_sum / max(1, self.samples),
            f"{prefix}_accuracy": self.correct / max(1, self.counted),
            f"{prefix}_activity": self.activity_sum / self.activity_samples if self.activity_samples else None,
            f"{prefix}_spikes_per_sample": self.spikes / self.spike_samples if self.spike_samples else None,
        }


def _batch_to(batch, device):
    x, y = batch[0], batch[1]
    if not torch.is_tensor(y):
        y = torch.as_tensor(y)
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True).long()


def _autocast(enabled: bool):
    return torch.autocast(device_type="cuda", dtype=torch.float16) if enabled else nullcontext()


def _loss_of(model, encoder, loss_fn, x, y, generator, amp: bool):
    """The loss result of one batch, as training and evaluation both compute it: the encoder outside autograd,
    the model and the loss under mixed precision when ``amp``."""
    with torch.no_grad():
        x_seq = encoder(x, generator=generator)
    with _autocast(amp):
        return loss_fn(model(x_seq), y)


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   grad_clip: float | None, scaler: torch.amp.GradScaler | None = None) -> None:
    """One optimiser step on ``loss``, as every training here takes it (the loop, and the benchmark's training
    steps, which must time what the loop runs): gradients zeroed, backward (scaled by ``scaler`` under mixed
    precision), the gradients' global norm clipped to ``grad_clip`` (after unscaling), the step, then the model's
    own ``after_optimizer_step`` where it has one (the SRC cells' bias projection)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    after_step = getattr(model, "after_optimizer_step", None)
    if after_step is not None:
        after_step()


@torch.no_grad()
def evaluation_pass(model, encoder, loss_fn, dataset, config: ExperimentConfig, split: str, device: torch.device,
                    input_transform=None, bar=None) -> _Meter:
    """One pass of ``model`` (put in eval mode) over ``dataset``, the way a run evaluates its split ``split``:
    batches of ``eval_batch_size`` (else ``batch_size``) in order, the encoder drawing from a generator seeded by
    the run's seed and the split's name (so every epoch, and every later re-evaluation, sees the same encoded
    samples), mixed precision when the run uses it. ``input_transform`` maps each batch of frames before it is
    encoded (the shift probe moves them); ``bar`` wraps the loader in a progress bar. Returns the summed metrics."""
    model.eval()
    meter = _Meter()
    generator = torch.Generator(device=device).manual_seed(derived_seed(config.seed, f"eval:{split}"))
    loader = DataLoader(dataset, batch_size=config.eval_batch_size or config.batch_size, shuffle=False,
                        generator=torch.Generator().manual_seed(0), pin_memory=device.type == "cuda")
    for batch in (bar(loader, f"eval {split}") if bar is not None else loader):
        x, y = _batch_to(batch, device)
        if input_transform is not None:
            x = input_transform(x)
        meter.add(model, _loss_of(model, encoder, loss_fn, x, y, generator, config.amp and device.type == "cuda"),
                  x.shape[0])
    return meter


def epoch_line(run: str, entry: dict, epochs: int) -> str:
    """One finished epoch of a history (``entry``) as a line of a run's log: the run's name, the epoch, the
    training and validation losses, every accuracy (percent) and the test activity it has, and its training and
    evaluation seconds."""
    parts = [f"{run} epoch {entry['epoch']}/{epochs}"]
    for split in ("train", "val"):  # the validation loss is what selection = "best_val_loss" reads
        if entry.get(f"{split}_loss") is not None:
            parts.append(f"{split} loss {entry[f'{split}_loss']:.4g}")
    for split in ("train", "val", "test"):
        if entry.get(f"{split}_accuracy") is not None:
            parts.append(f"{split} {100 * entry[f'{split}_accuracy']:.2f} %")
    if entry.get("test_activity") is not None:
        parts.append(f"test activity {entry['test_activity']:.4f}")
    # whole seconds, or tenths below ten (a ci epoch takes well under one)
    times = [f"{entry[key]:.{0 if entry[key] >= 9.95 else 1}f} s{label}"
             for key, label in (("epoch_time_s", ""), ("eval_time_s", " eval")) if entry.get(key) is not None]
    return ", ".join(parts) + (f" ({' + '.join(times)})" if times else "")


class _Run:
    """State of one training run (kept together so checkpointing sees all of it)."""

    def __init__(self, config: ExperimentConfig, results_dir, progress: bool, log_epochs: bool = False):
        self.config = config
        self.hash = config_hash(config)
        self.results_dir = results_dir
        self.progress = progress
        self.log_epochs = log_epochs
        self.device = resolve_device(config.device)
        if config.backend == "cpp" and self.device.type == "cuda":
            raise ConfigError(f"config key 'backend' = 'cpp' runs on CPU tensors only, but the run's device is "
                              f"{self.device} (device = {config.device!r}); on a GPU use backend 'auto' or 'cupy' "
                              "(the fused CUDA kernels) or 'torch'")
        self.use_amp = config.amp and self.device.type == "cuda"
        self.stopped_early: dict | None = None  # set when nonfinite_loss = "stop" ends training

        def seed_rng():
            torch.manual_seed(config.seed)
            if self.device.type == "cuda":
                torch.cuda.manual_seed_all(config.seed)

        # Built before any data is read, so bad names / options fail fast.
        self.loss_fn, self.encoder, load_split, model = build_parts(config, before_model=seed_rng)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(config, self.model.parameters())
        self.scheduler = build_scheduler(config, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        self.shuffle_gen = torch.Generator().manual_seed(derived_seed(config.seed, "shuffle"))
        self.encode_gen = torch.Generator(device=self.device).manual_seed(derived_seed(config.seed, "encode"))

        self.train_set = split_subset(load_split("train"), config.train_subset, config.split_seed, "train")
        self.eval_sets: dict[str, Dataset] = {}
        for split in config.eval_splits:
            if split == "train_eval":  # the training set in eval mode (SpikingJelly's published "test" curve)
                self.eval_sets[split] = self.train_set
            else:
                self.eval_sets[split] = evaluation_set(config, split, load_split)
        if len(self.train_set) == 0:
            raise ValueError(f"{config.experiment}/{self.hash}: the training set is empty")
        self.train_loader = DataLoader(self.train_set, batch_size=config.batch_size, shuffle=True,
                                       generator=self.shuffle_gen, drop_last=config.drop_last,
                                       pin_memory=self.device.type == "cuda")
        if len(self.train_loader) == 0:
            raise ValueError(f"{config.experiment}/{self.hash}: drop_last with batch_size {config.batch_size} "
                             f"leaves no batch of the {len(self.train_set)} training samples")

        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_val_loss = math.inf
        self.elapsed_s = 0.0
        self.provenance = provenance.collect(self.device, config.scale)
        # how this session computes (a resumed run keeps each earlier session's in earlier_sessions)
        self.provenance.update(start_time=provenance.utc_now(), resumed_from_epoch=0, sessions=1,
                               backend=config.backend, flush_denormal=config.flush_denormal,
                               host_memory=host_memory.keep_freed_host_memory() if self.device.type == "cpu"
                               else host_memory.current_setting())
        self.ckpt_dir = ckpt.checkpoint_dir(config, results_dir)

    # -- checkpoint ------------------------------------------------------------------------------------
    def state(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "shuffle": self.shuffle_gen.get_state(), "encode": self.encode_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "config_hash": self.hash,
            "epoch": len([h for h in self.history if h["epoch"] > 0]),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rng,
            "history": self.history,
            "best": {"epoch": self.best_epoch, "val_loss": self.best_val_loss},
            "provenance": self.provenance,
            "elapsed_s": self.elapsed_s,
        }

    def restore(self, state: dict) -> int:
        if state.get("format") != CHECKPOINT_FORMAT or state.get("config_hash") != self.hash:
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.shuffle_gen.set_state(state["rng"]["shuffle"])
        self.encode_gen.set_state(state["rng"]["encode"])
        self.history = list(state["history"])
        self.best_epoch, self.best_val_loss = state["best"]["epoch"], state["best"]["val_loss"]
        self.elapsed_s = state["elapsed_s"]
        previous = state["provenance"]
        # the code and machine of every earlier session, with the epoch it reached: a resumed run may have been
        # trained by more than one version of the code (the record's own git_commit is the last session's)
        earlier = list(previous.get("earlier_sessions", []))
        earlier.append({key: previous.get(key) for key in ("git_commit", "git_dirty", "reprolib_source_sha256",
                                                            "device_name", "cpu", "host", "reprolib_version",
                                                            "backend", "flush_denormal", "host_memory")}
                       | {"until_epoch": state["epoch"]})
        self.provenance.update(start_time=previous["start_time"], resumed_from_epoch=state["epoch"],
                               sessions=previous.get("sessions", 1) + 1, earlier_sessions=earlier)
        return state["epoch"]

    # -- one epoch -------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        config, model = self.config, self.model
        model.train()
        meter = _Meter()
        batches = self._bar(self.train_loader, f"epoch {epoch}/{config.epochs} train")
        for index, batch in enumerate(batches):
            x, y = _batch_to(batch, self.device)
            result = _loss_of(model, self.encoder, self.loss_fn, x, y, self.encode_gen, self.use_amp)
            if not torch.isfinite(result.loss):
                loss = float(result.loss.detach())
                if config.nonfinite_loss == "stop":
                    raise _StopTraining(epoch, index + 1, len(self.train_loader), loss)
                raise _nonfinite_error(config, self.hash, loss, epoch, index + 1, len(self.train_loader),
                                       "the run is stopped and no record is written")
            optimizer_step(result.loss, model, self.optimizer, config.grad_clip, self.scaler)
            meter.add(model, result, x.shape[0])
            if hasattr(batches, "set_postfix") and index % 10 == 0:
                batches.set_postfix(loss=f"{meter.loss_sum / meter.samples:.4g}")
        return meter.metrics("train")

    def evaluate(self, split: str) -> dict:
        meter = evaluation_pass(self.model, self.encoder, self.loss_fn, self.eval_sets[split], self.config, split,
                                self.device, bar=self._bar)
        return meter.metrics(split)

    def evaluate_all(self) -> dict:
        started = time.perf_counter()
        metrics: dict[str, Any] = {}
        for split in self.config.eval_splits:
            metrics.update(self.evaluate(split))
        metrics["eval_time_s"] = time.perf_counter() - started
        return metrics

    def _bar(self, iterable, desc: str):
        if not self.progress:
            return iterable
        from tqdm.auto import tqdm

        # The bar gets the one iterator the pass uses, never the DataLoader itself: tqdm.auto's bar calls iter()
        # on what it wraps, and every new DataLoader iterator draws a seed from the loader's shuffling generator,
        # so wrapping the loader shuffled the batches differently with bars than without them.
        return tqdm(iter(iterable), total=len(iterable), desc=desc, leave=False, dynamic_ncols=True)

    @property
    def name(self) -> str:
        """How the run's log lines name it: experiment and config hash, as its record's path does."""
        return f"{self.config.experiment}/{self.hash}"

    def _log(self, line: str, bar=None) -> None:
        """A line of the run's log (``log_epochs``), written above a progress bar where one is shown."""
        if not self.log_epochs:
            return
        if bar is not None:
            bar.write(line)
            sys.stdout.flush()  # tqdm.write does not: a log file would get the line late, or not at all if killed
        else:
            print(line, flush=True)

    def _note_selection(self, entry: dict) -> None:
        if self.config.selection == "last":
            self.best_epoch = entry["epoch"]
        else:
            loss = entry.get("val_loss")
            if loss is not None and math.isfinite(loss) and loss < self.best_val_loss:
                self.best_epoch, self.best_val_loss = entry["epoch"], loss
            else:
                return
        ckpt.save(self.ckpt_dir / ckpt.SELECTED_FILE, {"epoch": entry["epoch"], "model": self.model.state_dict()})

    # -- the run ---------------------------------------------------------------------------------------
    def _epoch_estimate_s(self, session_epoch_s: list[float]) -> float:
        """Wall seconds the next epoch (training and evaluation) is expected to take: this session's mean,
        else the resumed history's training time per epoch, else 0 (nothing known: start it)."""
        if session_epoch_s:
            return sum(session_epoch_s) / len(session_epoch_s)
        known = [h["epoch_time_s"] for h in self.history if h.get("epoch_time_s") is not None]
        return sum(known) / len(known) if known else 0.0

    def run(self, resume: bool, stop_at: float | None = None, until_epoch: int | None = None) -> Record:
        config = self.config
        start_epoch = 0
        if resume:
            state = ckpt.load(self.ckpt_dir / ckpt.STATE_FILE)
            if state is not None:
                start_epoch = self.restore(state)
                self._log(f"{self.name} resumed from its checkpoint after epoch {start_epoch}/{config.epochs}")
        if start_epoch == 0 and not self.history and config.eval_before_training:
            session_start = time.perf_counter()
            entry = {"epoch": 0, "lr": self.optimizer.param_groups[0]["lr"], **self.evaluate_all()}
            self.history.append(entry)
            self._note_selection(entry)
            self.elapsed_s += time.perf_counter() - session_start
            self._log(epoch_line(self.name, entry, config.epochs))  # the untrained network's scores

        last = config.epochs if until_epoch is None else min(until_epoch, config.epochs)
        epochs = range(start_epoch + 1, last + 1)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.epochs, initial=start_epoch, desc=f"{config.experiment} {self.hash[:8]}",
                       dynamic_ncols=True)
        session_epoch_s: list[float] = []
        for epoch in epochs:
            if stop_at is not None and time.time() + self._epoch_estimate_s(session_epoch_s) > stop_at:
                if bar is not None:
                    bar.close()
                self._log(f"{self.name} paused after epoch {epoch - 1}/{config.epochs}: the next would end after "
                          "the time limit; its checkpoint is kept")
                raise TimeLimitReached(self.hash, epoch - 1, config.epochs, self.ckpt_dir)
            session_start = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            entry: dict[str, Any] = {"epoch": epoch, "lr": lr}
            try:
                entry.update(self.train_epoch(epoch))
            except _StopTraining as stop:  # the source's rule: training ends, the epochs evaluated so far stand
                if not self.history:
                    if bar is not None:
                        bar.close()
                    raise _nonfinite_error(config, self.hash, stop.info["loss"], epoch, stop.info["batch"],
                                           stop.batches, "it came before any evaluation, so nonfinite_loss = 'stop' "
                                           "has no epoch to record (eval_before_training would give one)") from None
                self.stopped_early = stop.info
                self._log(f"{self.name} stopped in epoch {epoch}/{config.epochs}: non-finite training loss "
                          f"{stop.info['loss']} at batch {stop.info['batch']}; the record keeps the epochs before", bar)
                self.elapsed_s += time.perf_counter() - session_start  # the part of the epoch it trained
                break
            entry["epoch_time_s"] = time.perf_counter() - session_start
            self.scheduler.step()
            entry.update(self.evaluate_all())
            self.history.append(entry)
            self._note_selection(entry)
            self.elapsed_s += time.perf_counter() - session_start
            ckpt.save(self.ckpt_dir / ckpt.STATE_FILE, self.state())
            session_epoch_s.append(time.perf_counter() - session_start)
            self._log(epoch_line(self.name, entry, config.epochs), bar)
            if bar is not None:
                shown = {k: f"{v:.4g}" for k, v in entry.items() if k.endswith(("_loss", "_accuracy")) and v is not None}
                bar.set_postfix(shown)
                bar.update(1)
        if bar is not None:
            bar.close()
        record = self.make_record()
        if self.stopped_early is None and until_epoch is not None and last < config.epochs:
            return record  # a prefix of the run: not its record; the checkpoint stays to go on later
        write_record(record, self.results_dir)
        ckpt.remove_training_state(self.ckpt_dir)
        return record

    def make_record(self) -> Record:
        config = self.config
        if self.best_epoch is None:  # best_val_loss with a NaN validation loss at every epoch
            self.best_epoch = self.history[-1]["epoch"]
        selected = next(h for h in self.history if h["epoch"] == self.best_epoch)
        trained = [h for h in self.history if h["epoch"] > 0]
        final: dict[str, Any] = {
            "selected_epoch": self.best_epoch,
            "selection": config.selection,
            "epochs_completed": len(trained),
            "n_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "train_time_s": sum(h["epoch_time_s"] for h in trained),
            "mean_epoch_time_s": sum(h["epoch_time_s"] for h in trained) / max(1, len(trained)),
        }
        for key, value in selected.items():
            if key.endswith(("_loss", "_accuracy", "_activity", "_spikes_per_sample")):
                final[key] = value
        if self.stopped_early is not None:
            final["stopped_early"] = dict(self.stopped_early)
        for split in config.eval_splits:
            values = [h[f"{split}_accuracy"] for h in self.history if h.get(f"{split}_accuracy") is not None]
            final[f"best_{split}_accuracy"] = max(values) if values else None
            final[f"last_{split}_accuracy"] = values[-1] if values else None
        prov = dict(self.provenance)
        prov.update(end_time=provenance.utc_now(), duration_s=self.elapsed_s, pid=os.getpid())
        return Record(config, self.history, final, prov)


def check_deadline(stop_at: float | None) -> None:
    """Raise ``ValueError`` unless ``stop_at`` is None or a finite ``time.time()`` deadline in seconds."""
    if stop_at is not None and (isinstance(stop_at, bool) or not isinstance(stop_at, (int, float))
                                or not math.isfinite(stop_at)):
        raise ValueError(f"stop_at = {stop_at!r} is not allowed; expected a time.time() deadline in seconds or None")


def train(config: ExperimentConfig, results_dir=None, resume: bool = True, progress: bool = True,
          stop_at: float | None = None, until_epoch: int | None = None, log_epochs: bool = False) -> Record:
    """Train ``config`` and write its run record; returns the :class:`~reprolib.results.Record`.

    ``resume=True``: an existing valid record is returned as is, and an interrupted run continues from its
    last epoch checkpoint. ``resume=False``: train from scratch and overwrite the record.
    ``stop_at``: a wall-clock deadline (``time.time()`` seconds) for machines lent for a fixed time: an epoch
    that would end after it (judged by this session's epochs, or the checkpoint's) is not started, and
    :class:`TimeLimitReached` is raised with the checkpoint kept; calling ``train`` again resumes.
    ``until_epoch``: train only the first epochs of the run, with its full-length schedule, and return them as
    an unwritten record (``path`` None; the checkpoint is kept), e.g. to compare a prefix with a record.
    Raises :class:`NonFiniteLossError` (naming epoch and batch) when the training loss is NaN or infinite, unless
    the config's ``nonfinite_loss`` is ``"stop"``: training then ends there and the record of the epochs evaluated
    before is written, with ``final["stopped_early"]`` (also under ``until_epoch``: the run has ended). The two
    rules share a hash, so an ``"error"`` config whose record was kept under ``"stop"`` raises too.
    ``log_epochs``: print a line per finished epoch (:func:`epoch_line`) and one on resuming, for the log of a
    long run (a progress bar suits a terminal).
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"train() takes an ExperimentConfig, got {type(config).__name__}")
    if not isinstance(log_epochs, bool):
        raise ValueError(f"log_epochs = {log_epochs!r} is not allowed; expected True or False")
    check_deadline(stop_at)
    if until_epoch is not None and (isinstance(until_epoch, bool) or not isinstance(until_epoch, int)
                                    or not 1 <= until_epoch <= config.epochs):
        raise ValueError(f"until_epoch = {until_epoch!r} is not allowed; expected an integer from 1 to the "
                         f"config's {config.epochs} epochs, or None")
    if resume and until_epoch in (None, config.epochs):
        existing = find_record(config, results_dir)
        if existing is not None:
            stopped = existing.final.get("stopped_early")
            if stopped and config.nonfinite_loss == "error":  # the two rules share a hash: say what the record is
                raise NonFiniteLossError(
                    f"{config.experiment}/{config.hash}: its record {existing.path} is of a run whose training loss "
                    f"turned non-finite at epoch {stopped.get('epoch')} (kept under nonfinite_loss = 'stop'); this "
                    "config asks for 'error'")
            return existing
    if stop_at is not None and time.time() >= stop_at:
        folder = ckpt.checkpoint_dir(config, results_dir, create=False)  # looked at, not made
        state = ckpt.load(folder / ckpt.STATE_FILE) if resume else None
        done = state.get("epoch", 0) if isinstance(state, dict) else 0
        raise TimeLimitReached(config_hash(config), done, config.epochs, folder)
    # per run, and switched off again afterwards: the setting is the calling thread's, for everything it runs
    torch.set_flush_denormal(config.flush_denormal)
    try:
        return _Run(config, results_dir, progress, log_epochs).run(resume, stop_at, until_epoch)
    except BaseException:
        # a run that failed before its first checkpoint leaves no empty checkpoint folder behind
        folder = ckpt.checkpoint_dir(config, results_dir, create=False)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    finally:
        torch.set_flush_denormal(False)


def load_selected_model(config: ExperimentConfig, results_dir=None, device: str = "cpu") -> torch.nn.Module:
    """The model of a finished run with the weights of its selected epoch (kept in the local checkpoint
    folder, which is not committed: available where the run was trained). Its ``selected_epoch`` attribute
    says which epoch that is. The weights are checked as the probes check them
    (:func:`reprolib.training.checkpoint.read_selected_weights`): FileNotFoundError without a record or kept
    weights, ValueError for an unreadable file or one of another epoch than the record selected."""
    record = find_record(config, results_dir)
    if record is None:
        raise FileNotFoundError(f"no run record of {config.experiment}/{config_hash(config)}: train the config here "
                                f"first (reprolib run {config.experiment} ...)")
    _, weights = ckpt.read_selected_weights(record, results_dir)
    model = build_model(config)
    model.load_state_dict(weights)
    model.selected_epoch = int(record.final["selected_epoch"])
    return model.to(device).eval()
