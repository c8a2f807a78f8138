"""The SRC paper's frozen readout ``o[t] = leak o[t-1] + d[t]`` as one C++ scan on the CPU, bit for bit.

:class:`reprolib.models.src.FrozenLeakyReadout` integrates the drive ``d = s W_ro^T`` of its 10 class integrators
over all T steps. As a PyTorch loop that is T multiplies and T adds of a ``[B, 10]`` tensor forward, and as many
autograd nodes backward: on one thread about 6.6 ms of a 46 ms training step of the 1-layer MNIST networks (T = 200,
batch 64; measured 2026-12-07 on the 2-core Intel Xeon, beside two trainings), for 128,000 multiply-adds. One C++
call per direction does the same arithmetic in microseconds.

It rounds as the loop does: the leak is the float32 that PyTorch's ``float * tensor`` uses, each step multiplies,
rounds, then adds (compiled without FMA contraction); backward, ``g[t] = g_out[t] + leak g[t+1]`` is the sum
autograd forms for ``o[t]`` (the stack's slice plus the multiply's gradient; an addition of two float32 numbers
rounds the same in either order). So a network trains to the same bits with either (a NaN, should one arise, may
carry another sign bit), and the loop remains for other devices and dtypes, and where no C++ build exists. The
scan has no second derivative: asking for one raises.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
import warnings

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["readout_scan_available", "leaky_readout_scan"]

_SOURCE = r"""
// o[t] = a * o[t-1] + d[t], o[-1] = 0, over N independent integrators; d, o: [T, N] row-major float32
extern "C" void readout_forward(const float* d, float* o, long long T, long long N, float a) {
    for (long long n = 0; n < N; ++n) o[n] = 0.0f * a + d[n];
    for (long long t = 1; t < T; ++t) {
        const float* prev = o + (t - 1) * N;
        const float* dt = d + t * N;
        float* ot = o + t * N;
        for (long long n = 0; n < N; ++n) {
            const float decayed = a * prev[n];
            ot[n] = decayed + dt[n];
        }
    }
}

// g[t] = g_out[t] + a * g[t+1] (g[T] = 0): the gradient of o[t], which is also the gradient of d[t]
extern "C" void readout_backward(const float* g_out, float* g, long long T, long long N, float a) {
    const float* last = g_out + (T - 1) * N;
    float* g_last = g + (T - 1) * N;
    for (long long n = 0; n < N; ++n) g_last[n] = last[n];
    for (long long t = T - 2; t >= 0; --t) {
        const float* next = g + (t + 1) * N;
        const float* gt_out = g_out + t * N;
        float* gt = g + t * N;
        for (long long n = 0; n < N; ++n) {
            const float carried = a * next[n];
            gt[n] = gt_out[n] + carried;
        }
    }
}
"""


@lru_cache(maxsize=1)
def _library():
    """The compiled scan, or None without a C++ compiler or where the build fails: the readout is on the path of
    every CPU run, whatever its backend, so a failed build falls back to the loop (with a warning, once) instead of
    stopping a run that never asked for C++."""
    from reprolib.kernels import cpu, dispatch  # noqa: PLC0415

    if not cpu.cpp_available():
        return None
    ptr, i64, f32 = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_float
    try:
        return dispatch.load_library(_SOURCE, "readout_", {
            "readout_forward": (None, [ptr, ptr, i64, i64, f32]),
            "readout_backward": (None, [ptr, ptr, i64, i64, f32]),
        })
    except (OSError, RuntimeError) as error:  # a compiler that fails, a cache folder that cannot be written
        warnings.warn(f"the readout's C++ scan could not be built ({type(error).__name__}: {error}); the readout "
                      "runs as a PyTorch loop (the same numbers, slower)", RuntimeWarning, stacklevel=2)
        return None


def readout_scan_available(drive: Tensor) -> bool:
    """Whether :func:`leaky_readout_scan` takes ``drive``: a float32 CPU tensor ``[T, ...]`` with T >= 1, where a
    C++ compiler exists."""
    return (isinstance(drive, Tensor) and drive.device.type == "cpu" and drive.dtype == torch.float32
            and drive.dim() >= 1 and drive.shape[0] >= 1 and drive.layout == torch.strided and _library() is not None)


class _ReadoutScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, drive: Tensor, leak: float):
        d = drive.contiguous()
        T, N = d.shape[0], d[0].numel()
        out = torch.empty_like(d)
        _library().readout_forward(d.data_ptr(), out.data_ptr(), T, N, leak)
        ctx.leak = leak
        return out

    @staticmethod
    @once_differentiable  # a second derivative through the scan raises instead of coming out silently wrong
    def backward(ctx, grad_out: Tensor):
        g_out = grad_out.contiguous()
        T, N = g_out.shape[0], g_out[0].numel()
        grad = torch.empty_like(g_out)
        _library().readout_backward(g_out.data_ptr(), grad.data_ptr(), T, N, ctx.leak)
        return grad, None


def leaky_readout_scan(drive: Tensor, leak: float) -> Tensor:
    """``o[t] = leak o[t-1] + drive[t]`` from ``o[-1] = 0``, for ``drive [T, ...]`` (float32, CPU; see
    :func:`readout_scan_available`), differentiable in ``drive``; bit for bit the PyTorch loop."""
    if not readout_scan_available(drive):
        what = (f"{tuple(drive.shape)} {drive.dtype} on {drive.device}" if isinstance(drive, Tensor)
                else f"{type(drive).__name__}")
        raise ValueError(f"leaky_readout_scan: drive {what} is not a float32 CPU tensor [T, ...] with T >= 1, or no "
                         "C++ build of the scan is available; use the PyTorch loop")
    if isinstance(leak, bool) or not isinstance(leak, (int, float)):
        raise ValueError(f"leaky_readout_scan: leak={leak!r} is invalid; expected a number")
    return _ReadoutScan.apply(drive, float(leak))
