"""Provenance of a run: which code (git commit, dirty flag, versions), where (host, device) and when."""

from __future__ import annotations

import datetime as _dt
import platform
import socket
import subprocess
import sys
from importlib import metadata

from reprolib.paths import REPO_ROOT

# Packages whose versions can change a result or its reading.
TRACKED_PACKAGES = ("torch", "numpy", "pandas", "dask", "distributed", "tqdm", "torchvision", "tonic", "cupy-cuda12x")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict:
    """Commit of the working tree and whether tracked files differ from it (None when git is unavailable)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_name(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def collect(device, scale: str) -> dict:
    """Static provenance of a run starting now on ``device`` (times are filled in by the training loop)."""
    import reprolib

    return {
        **git_state(),
        "packages": package_versions(),
        "reprolib_version": reprolib.__version__,
        "device": str(device),
        "device_name": device_name(device),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "scale": scale,
    }
