"""``reprolib probe-shift RECORD...``: how a trained network's accuracy depends on where its input sits.

Takes the weights a finished run kept (its selected epoch, in the local checkpoint folder: these are not
committed, so the probe runs where the records were trained) and evaluates them on the record's validation
and test splits with every input frame moved by ``dy`` rows (positive: down) and ``dx`` columns (positive:
right), the vacated border filled with zeros. Nothing is trained.

Why: on the N-MNIST subset the test recordings sit about 0.7 pixel higher on the sensor than the training
recordings (:func:`reprolib.data.nmnist.centroid_offsets`), by more than the MNIST digits they show. A fully
connected network trained on 900 recordings can be sensitive to that; the probe measures how much.

The result is one JSON file (``--output``, default ``results/analysis/<experiment>-<scale>-shift-probe.json``) with a
row per record, split and shift, and the provenance of the probe (code version, device, date) and of each
record's weights (their sha256 and selected epoch). It is written atomically; the book renders it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from reprolib.config import ConfigError
from reprolib.paths import check_output_file

__all__ = ["shift_frames", "shifted_accuracy", "probe_records", "default_output"]


def shift_frames(x: torch.Tensor, dy: int = 0, dx: int = 0) -> torch.Tensor:
    """``x [..., H, W]`` with its content moved ``dy`` rows down and ``dx`` columns right (negative: up / left);
    what moves out is dropped and the vacated rows and columns are zero. Raises ``ValueError`` for a shift
    that is not an integer or leaves nothing of the frame."""
    if x.dim() < 2:
        raise ValueError(f"shift_frames needs frames [..., H, W]; got a tensor of shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    for name, value, size in (("dy", dy, H), ("dx", dx, W)):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= size:
            raise ValueError(f"{name}={value!r} is not allowed; expected an integer with |{name}| < {size}")
    out = torch.zeros_like(x)
    rows_to, rows_from = (slice(dy, None), slice(None, H - dy)) if dy >= 0 else (slice(None, dy), slice(-dy, None))
    cols_to, cols_from = (slice(dx, None), slice(None, W - dx)) if dx >= 0 else (slice(None, dx), slice(-dx, None))
    out[..., rows_to, cols_to] = x[..., rows_from, cols_from]
    return out


#: datasets whose samples are image frames [..., H, W], the only inputs that moving rows and columns makes sense for
FRAME_DATASETS = ("mnist", "fashion-mnist", "nmnist", "nmnist-subset")


def _check_frames(config, shifts: Sequence[tuple[int, int]]) -> None:
    """Refuse, before any evaluation, a run whose inputs are not image frames (a sequence or a feature vector,
    where a 'shift' would move time steps or samples) and shifts that leave nothing of a frame."""
    from reprolib.training.build import evaluation_set  # noqa: PLC0415

    if config.dataset not in FRAME_DATASETS:
        raise ConfigError(f"probe-shift moves image frames; the records' dataset {config.dataset!r} is not one of "
                          f"{list(FRAME_DATASETS)}")
    x = evaluation_set(config, _evaluation_splits(config)[0])[0][0]
    if x.dim() < 2 or min(x.shape[-2:]) < 2:
        raise ConfigError(f"probe-shift moves image frames [..., H, W]; the samples of {config.dataset!r} with "
                          f"dataset_options {dict(config.dataset_options)} have shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    for dy, dx in shifts:
        if abs(dy) >= H or abs(dx) >= W:
            raise ConfigError(f"--shifts {dy}:{dx} leaves nothing of a {H} x {W} frame; expected |dy| < {H} and "
                              f"|dx| < {W}")


def _evaluation_splits(config) -> list[str]:
    return [split for split in config.eval_splits if split != "train_eval"]


def shifted_accuracy(config, shifts: Sequence[tuple[int, int]], weights: dict, *, splits: Sequence[str] | None = None,
                     device: str = "cpu") -> list[dict]:
    """Accuracy of the model ``config`` builds, loaded with ``weights`` (a state dict), on each of ``splits``
    (default: the run's own evaluation splits) with the inputs moved by each ``(dy, dx)`` of ``shifts``: a list
    of ``{"split", "dy", "dx", "accuracy", "samples"}``.

    The pass is the training loop's own :func:`~reprolib.training.loop.evaluation_pass`, so unmoved it is the
    run's evaluation: the same samples (its ``val_subset`` / ``test_subset``), batch size, encoder seed and mixed
    precision, with subnormals flushed as the run flushed them."""
    from reprolib.training.build import (  # noqa: PLC0415
        build_encoder, build_model, dataset_loader, evaluation_set, resolve_device)
    from reprolib.training.loop import evaluation_pass  # noqa: PLC0415
    from reprolib.training.losses import get_loss  # noqa: PLC0415

    torch_device = resolve_device(device)
    model = build_model(config)
    model.load_state_dict(weights)
    model = model.to(torch_device)
    encoder, loss_fn, load = build_encoder(config), get_loss(config.loss, **config.loss_options), dataset_loader(config)
    flush = torch.is_flush_denormal_enabled() if hasattr(torch, "is_flush_denormal_enabled") else False
    rows = []
    try:
        torch.set_flush_denormal(bool(config.flush_denormal))
        for split in splits if splits is not None else _evaluation_splits(config):
            data = evaluation_set(config, split, load)
            for dy, dx in shifts:
                meter = evaluation_pass(model, encoder, loss_fn, data, config, split, torch_device,
                                        input_transform=lambda x, dy=dy, dx=dx: shift_frames(x, dy, dx))
                rows.append({"split": split, "dy": dy, "dx": dx, "accuracy": meter.correct / meter.counted,
                             "samples": meter.counted})
    finally:
        torch.set_flush_denormal(flush)
    return rows


def default_output(experiment: str, scale: str) -> Path:
    from reprolib.paths import results_dir  # noqa: PLC0415

    return results_dir() / "analysis" / f"{experiment}-{scale}-shift-probe.json"


def probe_records(paths: Sequence[str | Path], shifts: Sequence[tuple[int, int]], output: str | Path | None = None,
                  results_dir=None, device: str = "cpu", progress: bool = True, skip_missing: bool = False) -> Path:
    """Run :func:`shifted_accuracy` for every record in ``paths`` (all of one experiment and scale) and write
    the rows with their provenance to ``output``. Every record, and its weights, are checked before the first
    one is evaluated; a record whose weights are missing is an error (a partial table would not say which runs
    it left out) unless ``skip_missing``, which probes the others, keeps the rows that a probe already at
    ``output`` wrote of the skipped runs (:func:`~reprolib.training.probe_files.earlier_rows`; at the same shifts)
    and lists the rest in the file.
    Each weights file is read when checked and again when evaluated, and its sha256 must not change in between:
    the hash in the file is that of the evaluated weights. Weights are read from ``results_dir`` (default: the
    folder each record sits in, as the other probes do)."""
    from reprolib.results import provenance  # noqa: PLC0415
    from reprolib.results.records import read_records_of_one_kind  # noqa: PLC0415
    from reprolib.training import checkpoint as ckpt  # noqa: PLC0415
    from reprolib.training.probe_files import (earlier_rows, read_kept_weights, weights_root,  # noqa: PLC0415
                                               with_earlier_rows, write_probe)
    from reprolib.training.build import resolve_device  # noqa: PLC0415
    from reprolib.training.rerun import rerun_config  # noqa: PLC0415

    records, experiment, scale = read_records_of_one_kind(paths, "probe-shift")
    # every file is read and checked (readable, the record's epoch) before any evaluation; only its hash is kept
    kept, missing = read_kept_weights(records, results_dir, skip_missing,
                                      keep=lambda blob, weights: hashlib.sha256(blob).hexdigest())
    torch_device = resolve_device(device)
    output = check_output_file(output if output is not None else default_output(experiment, scale))
    _check_frames(records[0].config, shifts)
    earlier = earlier_rows(output, "shift-probe", experiment, scale, missing, "rows",
                           check=lambda payload: _check_same_shifts(payload, shifts, output),
                           agrees=_unmoved_as_recorded)
    rows = []
    started = provenance.utc_now()
    for i, (record, checked) in enumerate(kept, 1):
        if progress:
            print(f"[{i}/{len(kept)}] {experiment}/{record.hash} seed {record.config.seed}", file=sys.stderr,
                  flush=True)
        blob, weights = ckpt.read_selected_weights(record, weights_root(record, results_dir))
        if hashlib.sha256(blob).hexdigest() != checked:
            raise RuntimeError(f"the kept weights of {record.path} changed while the probe ran (another run of "
                               "the same config writing them?); nothing was written")
        config = rerun_config(record, device=str(torch_device))  # a backend that runs on this device
        for row in shifted_accuracy(config, shifts, weights, device=str(torch_device)):
            rows.append({"record": record.hash, "seed": record.config.seed,
                         # which run of the config was probed: a later run of it writes the same record file
                         "record_end_time": record.provenance.get("end_time"),
                         "selected_epoch": record.final["selected_epoch"],
                         "weights_sha256": checked, "backend": config.backend, **row})
    return write_probe(output, "shift-probe", experiment, scale, started, torch_device,
                       shifts=[list(s) for s in shifts], **with_earlier_rows(rows, earlier, records))


def _unmoved_as_recorded(rows: list[dict], record) -> bool:
    """Whether a probe's rows of a run give, with the test inputs unmoved, the test accuracy its record states
    (the same weights on the same data): how rows written before probes stated the record's end time are told to
    be of that record's run rather than of another run of its config."""
    unmoved = [row["accuracy"] for row in rows
               if row.get("split") == "test" and (row.get("dy"), row.get("dx")) == (0, 0)]
    return bool(unmoved) and all(accuracy == record.final.get("test_accuracy") for accuracy in unmoved)


def _check_same_shifts(payload: dict, shifts, output) -> None:
    """The rows of an earlier probe at ``output`` are kept only where it measured the same shifts: a table with
    some runs at other shifts would compare nothing."""
    earlier = [tuple(s) for s in payload.get("shifts", [])]
    if earlier != [tuple(s) for s in shifts]:
        raise ValueError(f"{output} holds a probe at shifts {earlier}, not {[tuple(s) for s in shifts]}: its rows of "
                         "runs whose weights are not here would be kept beside the new ones; probe the same shifts "
                         "or name another --output")


def _parse_shifts(text: str) -> list[tuple[int, int]]:
    """``"0,-1,1"`` (rows only) or ``"0:0,-1:0,0:1"`` (``dy:dx``) -> ``[(dy, dx), ...]``."""
    shifts = []
    for item in text.split(","):
        dy, _, dx = item.strip().partition(":")
        try:
            shifts.append((int(dy), int(dx or 0)))
        except ValueError:
            raise ConfigError(f"--shifts {text!r}: {item!r} is not a shift; expected integers dy or dy:dx, "
                              "comma-separated (e.g. 0,-1,1)") from None
    return shifts


def configure(parser: argparse.ArgumentParser) -> None:
    from reprolib.training.probe_files import add_probe_arguments  # noqa: PLC0415

    add_probe_arguments(parser, "shift-probe", skip_missing=True)
    parser.add_argument("--shifts", default="0,-1,1",
                        help="dy or dy:dx pixel shifts, comma-separated (default 0,-1,1: rows only; positive dy "
                             "moves down; a list that starts negative needs '=': --shifts=-1,0,1); to keep an "
                             "existing output file's rows of runs whose weights are not here, its own shifts")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")


def main(args: argparse.Namespace) -> int:
    from reprolib.training.probe_files import run_probe_command  # noqa: PLC0415

    # RuntimeError: a backend that is missing on this machine
    return run_probe_command("probe-shift", lambda: probe_records(
        args.records, _parse_shifts(args.shifts), args.output, args.results, args.device, not args.no_progress,
        args.skip_missing), also=(RuntimeError,))
