"""Keeping freed host memory (``reprolib.training.host_memory``): applied once per process, opt-out, recorded in
each run's provenance, and the same numbers either way."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from reprolib.training import host_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _setting_in_a_fresh_process(env_value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "REPROLIB_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["REPROLIB_KEEP_FREED_MEMORY"] = env_value
    code = ("from reprolib.training.host_memory import keep_freed_host_memory as k\n"
            "first = k(); assert k() is first  # once per process\n"
            "print(first)")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is what is set; other C libraries are left as they are")
def test_glibc_keeps_freed_memory_unless_told_not_to():
    kept = _setting_in_a_fresh_process(None)
    assert kept.returncode == 0, kept.stderr
    if "refused" in kept.stdout:
        pytest.skip(f"this glibc does not take the setting: {kept.stdout.strip()}")
    assert kept.stdout.strip() == "freed memory kept (glibc mmap threshold 256 MiB, trim threshold 1 GiB)"
    off = _setting_in_a_fresh_process("0")
    assert off.stdout.strip() == "glibc defaults (REPROLIB_KEEP_FREED_MEMORY=0)"


def test_the_current_setting_is_read_without_changing_it(monkeypatch):
    monkeypatch.setattr(host_memory, "_setting", None)
    assert host_memory.current_setting() == "not set by reprolib (only training on a CPU sets it)"
    assert host_memory._setting is None
    monkeypatch.setattr(host_memory, "_setting", "freed memory kept (...)")
    assert host_memory.current_setting() == "freed memory kept (...)"


def test_a_bad_switch_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(host_memory, "_setting", None)
    monkeypatch.setenv("REPROLIB_KEEP_FREED_MEMORY", "yes")
    with pytest.raises(ValueError, match=r"REPROLIB_KEEP_FREED_MEMORY='yes' is not allowed; expected 1"):
        host_memory.keep_freed_host_memory()


def test_the_setting_is_recorded_in_the_provenance_and_the_switch_works(tmp_path):
    # the same run trained in two processes, with and without the setting (the toy run's tensors are far below
    # both thresholds, so this checks the plumbing; that MNIST runs keep their numbers was checked by re-running
    # records, 2026-12-07)
    code = ("import sys, json\n"
            "from reprolib.config import with_overrides\n"
            "from reprolib.experiments import get_configs\n"
            "from reprolib.training import train\n"
            "config = with_overrides(get_configs('toy', 'ci', seeds=[0])[0], {'epochs': 2, 'device': 'cpu'})\n"
            "record = train(config, results_dir=sys.argv[1], progress=False)\n"
            "print(json.dumps({'memory': record.provenance['host_memory'], 'history': [\n"
            "    {k: v for k, v in h.items() if not k.endswith('time_s')} for h in record.history]}))\n")
    runs = {}
    for flag in ("1", "0"):
        env = dict(os.environ, REPROLIB_KEEP_FREED_MEMORY=flag, OMP_NUM_THREADS="1")
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / flag)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        runs[flag] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["1"]["history"] == runs["0"]["history"]
    assert runs["0"]["memory"] == "glibc defaults (REPROLIB_KEEP_FREED_MEMORY=0)"
    if GLIBC:
        assert runs["1"]["memory"].startswith(("freed memory kept", "glibc defaults (this glibc refused"))
