"""Keep freed host memory for reuse during training, instead of returning it to the operating system.

The CPU networks of the SRC paper encode each batch into a dense ``[T, B, 784]`` spike tensor (40 MB at T = 200,
B = 64) and build several tensors of that size again per step. glibc serves blocks that large with ``mmap`` and
unmaps them when freed, so every new one is faulted in page by page and zeroed by the kernel: on the 2-core
development machine ``torch.zeros(200, 64, 784)`` took 16.8 ms that way and 5.1 ms when glibc keeps the freed
memory (measured 2026-12-07, one thread, Intel Xeon; a training step of the 1-layer latency-coded MNIST SRC network
went from about 65 to about 46 ms). The two settings below are the ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` environment variables of glibc, set from within the process; they change where memory
comes from, not what is computed, so a run's numbers are the same either way (its epoch times are not; the
setting is written into each record's provenance as ``host_memory``).

Training on a CPU applies it (:func:`reprolib.training.train`; a GPU run leaves the process as it is), once per
process and for the rest of its life: a Jupyter kernel that trained a CPU run keeps it. The process then keeps
freed heap instead of returning it: blocks up to 256 MiB come from the heap, up to :data:`TRIM_THRESHOLD` of free
memory at its top stays mapped, and memory freed below a block still in use is kept in any case, so the resident
size can stay above what is in use by more than that (for the training loops here it settles at the size of one
step's tensors). ``REPROLIB_KEEP_FREED_MEMORY=0`` leaves glibc's defaults; other C libraries (musl, macOS) are left
as they are, and a glibc that refuses the mmap threshold (older releases capped it at 32 MiB) is left with its
defaults too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_host_memory", "current_setting"]

#: blocks below this size come from the heap, where freed memory is reused (glibc's default adapts up to 32 MiB)
MMAP_THRESHOLD = 256 << 20
#: free memory at the top of the heap kept before any is returned to the operating system (default 128 KiB)
TRIM_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters of glibc's malloc.h
_ENV = "REPROLIB_KEEP_FREED_MEMORY"

_setting: str | None = None


def keep_freed_host_memory() -> str:
    """Apply the setting once per process (where glibc is the C library and ``REPROLIB_KEEP_FREED_MEMORY`` is
    not ``0``) and return what holds now, in words (for a record's provenance)."""
    global _setting
    if _setting is not None:
        return _setting
    flag = os.environ.get(_ENV, "1").strip()
    if flag not in ("0", "1"):
        raise ValueError(f"{_ENV}={flag!r} is not allowed; expected 1 (keep freed memory, the default) or 0 "
                         "(glibc's defaults)")
    if flag == "0":
        _setting = f"glibc defaults ({_ENV}=0)"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _setting = "C library defaults (not glibc)"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # the mmap threshold first: without it the trim threshold alone gains nothing, so a refusal leaves both
        if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
            _setting = "glibc defaults (this glibc refused an mmap threshold of 256 MiB)"
        elif libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
            _setting = "glibc mmap threshold 256 MiB, default trim threshold (the trim threshold was refused)"
        else:
            _setting = "freed memory kept (glibc mmap threshold 256 MiB, trim threshold 1 GiB)"
    return _setting


def current_setting() -> str:
    """What holds in this process without changing it: :func:`keep_freed_host_memory`'s text where a CPU run has
    applied it, else that nothing was set (a GPU run's provenance)."""
    return _setting if _setting is not None else "not set by reprolib (only training on a CPU sets it)"
