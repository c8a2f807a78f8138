"""Where reprolib finds data, writes caches and stores run records.

Every location is one environment variable with a sensible default, so CI, the book and a user's
fork can point the library elsewhere without code changes.

``REPROLIB_DATA``     root holding ``MNIST/``, ``FashionMNIST/``, ``N-MNIST-subset/``, ``ECG-QTDB/``, ``SHD/`` ...
                      (the layout of the project's ``shared/data``). Never written to.
``REPROLIB_CACHE``    writable cache (decompressed files, framed event data); default ``~/.cache/reprolib``.
``REPROLIB_RESULTS``  run records; default ``results/`` at the repository root (next to this package).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class DataRootNotSet(RuntimeError):
    """Raised when no data root is configured and none was passed explicitly."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``root`` if given, else ``$REPROLIB_DATA``.

    Raises :class:`DataRootNotSet` with instructions when neither is available.
    """
    if root is None:
        env = os.environ.get("REPROLIB_DATA")
        if not env:
            raise DataRootNotSet(
                "No data root: pass root=... or set REPROLIB_DATA to the folder that holds "
                "MNIST/, FashionMNIST/, N-MNIST-subset/, ECG-QTDB/ (see `reprolib data`)."
            )
        root = env
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DataRootNotSet(f"Data root {str(path)!r} is not a directory (from REPROLIB_DATA or root=).")
    return path


def cache_dir(sub: str | None = None) -> Path:
    """Writable cache folder (created on demand)."""
    base = Path(os.environ.get("REPROLIB_CACHE") or Path.home() / ".cache" / "reprolib").expanduser()
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder that holds run records: ``path`` if given, else ``$REPROLIB_RESULTS``, else ``<repo>/results``."""
    if path is None:
        path = os.environ.get("REPROLIB_RESULTS") or REPO_ROOT / "results"
    return Path(path).expanduser().resolve()
