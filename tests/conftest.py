"""Shared test fixtures.

* Real data comes from ``$REPROLIB_DATA`` (``.ci/run`` and the Makefile point it at ``../shared/data``);
  tests that need it skip with a visible reason when it is not set.
* Caches go to ``<repo>/.cache/reprolib`` (git-ignored) unless ``REPROLIB_CACHE`` is set; the data root is
  never written to.
* Run records written by tests go to a temporary folder, never to ``results/``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("REPROLIB_CACHE", str(REPO / ".cache" / "reprolib"))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data root, or skip (visibly) when it is not configured.

    Resolved like ``reprolib.paths.data_root`` does, so paths compare equal when the root is reached
    through a symbolic link (CI links ``shared/`` beside the clone).
    """
    env = os.environ.get("REPROLIB_DATA")
    if not env or not Path(env).is_dir():
        pytest.skip("REPROLIB_DATA is not set to the shared data folder (make test / .ci/run set it)")
    return Path(env).resolve()


@pytest.fixture
def results_tmp(tmp_path, monkeypatch) -> Path:
    """A private results folder, exported as REPROLIB_RESULTS for the test."""
    path = tmp_path / "results"
    path.mkdir()
    monkeypatch.setenv("REPROLIB_RESULTS", str(path))
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened: datasets must not download without download=True")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A fresh reprolib cache (REPROLIB_CACHE) for the test: no earlier download or decompression to fall back on."""
    path = tmp_path / "cache"
    monkeypatch.setenv("REPROLIB_CACHE", str(path))
    return path


@pytest.fixture
def empty_root(tmp_path, private_cache) -> Path:
    """An existing but empty data root, with a private cache (nothing to be found anywhere)."""
    path = tmp_path / "empty"
    path.mkdir()
    return path
