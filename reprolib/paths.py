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
    source = "root"
    if root is None:
        env = os.environ.get("REPROLIB_DATA")
        if not env:
            raise DataRootNotSet(
                "No data root: pass root=... or set REPROLIB_DATA to the folder that holds "
                "MNIST/, FashionMNIST/, N-MNIST-subset/, ECG-QTDB/ (see `reprolib data`)."
            )
        root, source = env, "REPROLIB_DATA"
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        raise DataRootNotSet(f"{source}={str(root)!r} {what}; expected the folder that holds MNIST/, "
                             "FashionMNIST/, N-MNIST-subset/, ECG-QTDB/ (see `reprolib data`).")
    return path


def cache_dir(sub: str | None = None) -> Path:
    """Writable cache folder (created on demand)."""
    base = Path(os.environ.get("REPROLIB_CACHE") or Path.home() / ".cache" / "reprolib").expanduser()
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_results_folder(path: str | os.PathLike | None, option: str = "--results") -> Path:
    """The results folder ``path`` resolves to, after checking that it is a folder or can be made one (no file
    in its place or above it), so that a run fails before any work rather than when it writes; ValueError if not."""
    folder = results_dir(path)
    shown = str(path if path is not None else folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {shown!r} is a file; expected a folder (created if missing)")
    _check_no_file_above(folder, option, shown, "a folder (created if missing)")
    return folder


def check_output_file(path: str | os.PathLike, option: str = "--output") -> Path:
    """``path`` as a Path, after checking that a file can be written there (it is not a folder, and no file sits
    where one of its folders would be), before the work whose result it will hold; ValueError if not."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{option} {str(out)!r} is a folder; expected a file name")
    _check_no_file_above(out, option, str(out), "a path in a folder")
    return out


def _check_no_file_above(path: Path, option: str, shown: str, expected: str) -> None:
    """ValueError when the nearest existing folder above ``path`` is a file (no folder could be made there)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{option} {shown!r} is below the file {parent}; expected {expected}")
            return


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder that holds run records: ``path`` if given, else ``$REPROLIB_RESULTS``, else ``<repo>/results``."""
    if path is None:
        path = os.environ.get("REPROLIB_RESULTS") or REPO_ROOT / "results"
    return Path(path).expanduser().resolve()
