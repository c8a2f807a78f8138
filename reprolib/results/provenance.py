"""Provenance of a run: which code (git commit, dirty flag, versions), where (host, device) and when."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Mapping

from reprolib.paths import REPO_ROOT

# Packages whose versions can change a result or its reading.
TRACKED_PACKAGES = ("torch", "numpy", "pandas", "dask", "distributed", "tqdm", "torchvision", "tonic")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


#: Where git cannot tell the commit (a copy of the tree without ``.git``, as on a lent GPU machine), the caller
#: states it in these variables; the record then says so in ``git_commit_from``.
COMMIT_ENV, DIRTY_ENV = "REPROLIB_GIT_COMMIT", "REPROLIB_GIT_DIRTY"


def git_state() -> dict:
    """Commit of the working tree and whether tracked files differ from it.

    Without a git repository, ``$REPROLIB_GIT_COMMIT`` / ``$REPROLIB_GIT_DIRTY`` (``0`` / ``1``) as stated by
    whoever copied the tree, marked as such; else None. ``reprolib_source_sha256`` (see :func:`source_digest`)
    checks such a statement: it equals the digest of the stated commit's files."""
    commit = _git("rev-parse", "HEAD")
    if commit is None and os.environ.get(COMMIT_ENV):
        dirty = os.environ.get(DIRTY_ENV)
        return {"git_commit": os.environ[COMMIT_ENV].strip(),
                "git_dirty": None if dirty is None else dirty.strip() not in ("0", "false", "False", ""),
                "git_commit_from": f"${COMMIT_ENV} (no git repository where it ran)"}
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


_SOURCE_SUFFIXES = (".py", ".csv", ".json", ".md", ".yml", ".yaml", ".cu", ".cpp", ".h")


@lru_cache(maxsize=None)
def source_digest(root: str | None = None) -> str:
    """SHA-256 over the files of the ``reprolib`` package that ran (relative path and bytes of every source and
    data file, in path order; caches left out): the code's identity without git. ``root``: another copy's
    package folder, e.g. a checkout of the commit a record names, to compare."""
    import hashlib  # noqa: PLC0415

    folder = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _SOURCE_SUFFIXES
                       and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    # CuPy's wheels are named by CUDA version (cupy-cuda12x, cupy-cuda13x, ...): whichever is installed
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if name.startswith("cupy"):
            versions[name] = dist.version
    return versions


def device_name(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def cpu_description() -> dict:
    """The host CPU as far as it changes results: its model name (``/proc/cpuinfo`` on Linux, else the
    platform's processor string) and the instruction set PyTorch's CPU kernels dispatch to (``AVX512``,
    ``AVX2``, ...). Two CPU runs of the same code, backend and thread count can differ in float rounding when
    either differs (vector widths and BLAS kernels change the order of sums)."""
    return dict(_cpu_description())  # a copy: provenance dicts are edited by their callers


def cpu_text(cpu) -> str | None:
    """A :func:`cpu_description` as one line, ``"AMD EPYC (AVX512)"``: how every table of the book names the CPU
    of a session. None for a session recorded before its CPU was (2026-11-30)."""
    cpu = dict(cpu) if isinstance(cpu, Mapping) else {}
    if not cpu.get("model"):
        return None
    capability = cpu.get("torch_capability")
    return f"{cpu['model']} ({capability})" if capability else str(cpu["model"])


@lru_cache(maxsize=1)
def _cpu_description() -> dict:
    import torch  # noqa: PLC0415

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "unknown")()
    return {"model": model or platform.processor() or platform.machine(), "torch_capability": str(capability)}


def collect(device, scale: str) -> dict:
    """Static provenance of a run starting now on ``device`` (times are filled in by the training loop)."""
    import reprolib

    return {
        **git_state(),
        "packages": package_versions(),
        "reprolib_version": reprolib.__version__,
        "reprolib_source_sha256": source_digest(),
        "device": str(device),
        "device_name": device_name(device),
        "cpu": cpu_description(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "scale": scale,
    }
