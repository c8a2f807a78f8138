"""Per-epoch training checkpoints, so that a killed run continues where it stopped.

A checkpoint holds only tensors and plain containers (model, optimiser, scheduler and AMP-scaler state,
the RNG states of torch and of the loop's generators, the history so far), so it loads with
``torch.load(..., weights_only=True)``: no pickled code runs on load. It is written to a temporary file and
renamed over the previous one, so a kill at any moment leaves either the previous or the new checkpoint.

Checkpoints are work files, not results: they live in ``<results>/<experiment>/.ckpt/<config-hash>/`` and
that ``.ckpt`` folder ignores itself in git.
"""

from __future__ import annotations

import io
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


def read_selected_weights(record, results_dir: str | os.PathLike | None = None) -> tuple[bytes, dict]:
    """The selected-epoch weights that ``record``'s run kept under ``results_dir``, as raw bytes (to hash) and
    the loaded model state, checked before any use: FileNotFoundError where there are none (checkpoint folders
    are not committed, so a record's weights exist only where it was trained), ValueError for an unreadable
    file or for the weights of another epoch than the record selected (a stale checkpoint, not this record's)."""
    weight_file = checkpoint_dir(record.config, results_dir, create=False) / SELECTED_FILE
    if not weight_file.is_file():
        raise FileNotFoundError(f"no kept weights for {record.path} at {weight_file}: they exist only where the "
                                "run was trained (checkpoint folders are not committed)")
    blob = weight_file.read_bytes()
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        epoch, weights = int(state["epoch"]), state["model"]
    except Exception as error:  # noqa: BLE001 - unpickling raises many kinds; all mean the same here
        raise ValueError(f"{weight_file} is not a readable checkpoint of selected weights ({type(error).__name__}: "
                         f"{error})") from error
    selected = record.final.get("selected_epoch")
    if epoch != selected:
        raise ValueError(f"{weight_file} holds the weights of epoch {epoch}, but {record.path} selected "
                         f"epoch {selected}: the checkpoint is not this record's")
    return blob, weights


def remove_training_state(directory: Path) -> None:
    """Drop the (large) resumable state once the run's record is written; keep the selected weights."""
    state = directory / STATE_FILE
    if state.exists():
        state.unlink()
