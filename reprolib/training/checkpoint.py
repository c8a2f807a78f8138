"""Per-epoch training checkpoints, so that a killed run continues where it stopped.

A checkpoint holds only tensors and plain containers (model, optimiser, scheduler and AMP-scaler state,
the RNG states of torch and of the loop's generators, the history so far), so it loads with
``torch.load(..., weights_only=True)``: no pickled code runs on load. It is written to a temporary file and
renamed over the previous one, so a kill at any moment leaves either the previous or the new checkpoint.

Checkpoints are work files, not results: they live in ``<results>/<experiment>/.ckpt/<config-hash>/`` and
that ``.ckpt`` folder ignores itself in git.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from reprolib.config import ExperimentConfig, config_hash
from reprolib.paths import results_dir as default_results_dir
from reprolib.results.records import atomic_write

STATE_FILE = "state.pt"  # training state after the last completed epoch
SELECTED_FILE = "selected.pt"  # model weights at the selected epoch (kept after the run ends)


def checkpoint_dir(config: ExperimentConfig, results_dir: str | os.PathLike | None = None,
                   create: bool = True) -> Path:
    """The folder of ``config``'s checkpoints under ``results_dir``; created (git-ignored) unless ``create`` is
    false, for readers that only look."""
    base = default_results_dir(results_dir) / config.experiment / ".ckpt"
    path = base / config_hash(config)
    if not create:
        return path
    path.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():  # checkpoints are never committed, even though results/ is
        ignore.write_text("*\n")
    return path


def save(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, then an atomic rename over ``path``."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load(path: str | os.PathLike) -> dict | None:
    """The checkpoint at ``path`` (weights only), or None when there is none or it cannot be read."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an unreadable checkpoint only costs the work it held: start over
        warnings.warn(f"ignoring unreadable checkpoint {str(path)!r} ({error}); the run starts from epoch 0")
        return None


def remove_training_state(directory: Path) -> None:
    """Drop the (large) resumable state once the run's record is written; keep the selected weights."""
    state = directory / STATE_FILE
    if state.exists():
        state.unlink()
