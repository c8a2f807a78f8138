"""The set-up step's own checks: ``make`` refuses to start a multi-GB install on a disk without room for it.

A clone's CI once failed 34 s in, with pip's ``[Errno 28] No space left on device`` half-way through installing
torch; ``.ci/check-free-space`` (run by the Makefile before pip) now stops first and says how much is free.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "check-free-space"


def check(venv: Path, needed_gb: str, python: str = "/nonexistent/python", torch_version: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(venv), python, needed_gb, torch_version], capture_output=True,
                          text=True, timeout=60)


def free_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / 2**30


def test_refuses_when_the_disk_has_less_than_needed(tmp_path):
    needed = int(free_gb(tmp_path)) + 1000
    result = check(tmp_path / "new" / ".venv", str(needed))
    assert result.returncode == 1
    assert f"needs about {needed} GB free" in result.stderr
    free_mb = shutil.disk_usage(tmp_path).free // 2**20
    reported = int(result.stderr.split(" MB free")[0].rsplit(" ", 1)[1])
    assert abs(reported - free_mb) < 1024  # the number it names is the disk's free space (other writers may move it)
    assert result.stderr.count("error:") == 1  # the venv's disk and TMPDIR share a file system here: one message


def test_passes_when_the_disk_has_room(tmp_path):
    result = check(tmp_path / ".venv", "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_skipped_once_the_pinned_torch_is_installed(tmp_path):
    # The project's own interpreter has the pinned torch: nothing large is left to install, so no threshold applies;
    # another torch version would be replaced by a 5.5 GB download, so then the check runs.
    import sys

    import torch
    too_much = str(int(free_gb(tmp_path)) + 1000)
    pinned = torch.__version__.split("+")[0]
    assert check(tmp_path / ".venv", too_much, python=sys.executable, torch_version=pinned).returncode == 0
    assert check(tmp_path / ".venv", too_much, python=sys.executable, torch_version="0.0.1").returncode == 1


@pytest.mark.parametrize("bad", ["", "5x", "-1", "7.5", "12345678901"])
def test_bad_threshold_is_named(tmp_path, bad):
    result = check(tmp_path / ".venv", bad)
    assert result.returncode == 2
    assert f"got '{bad}'" in result.stderr


def test_makefile_runs_the_check_before_creating_the_venv():
    rule = (ROOT / "Makefile").read_text().split("$(STAMP): pyproject.toml constraints.txt\n", 1)[1].split("\n\n")[0]
    lines = [line.strip() for line in rule.splitlines()]
    assert lines[0].startswith("@bash .ci/check-free-space")
    assert any("-m venv" in line for line in lines[1:])
