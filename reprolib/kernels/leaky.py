"""Whole-sequence C++ scan of the snnTorch-style :class:`reprolib.neurons.leaky.Leaky` (``backend="cpp"``).

The PyTorch loop of :func:`reprolib.neurons.leaky.leaky_multistep` dispatches about ten small operators per
step forward and as many backward; for the 512-wide layers of the SRC paper's LIF baseline (T = 200, batch
64) that loop was about 40 % of a CPU training step. Here one C++ call runs the forward scan and one the
backward scan, time outer and neurons inner (contiguous, vectorisable), for the same equations::

    R[t] = Theta(U[t-1] - thr)   (detached)
    subtract: U[t] = b U[t-1] + I[t] - R[t] thr;  zero: U[t] = b (1 - R[t]) U[t-1] + I[t];  none: U[t] = b U[t-1] + I[t]
    S[t] = Theta(U[t] - thr)     (surrogate ATan or Sigmoid)

with ``b = clamp(beta, 0, 1)`` taken in PyTorch (its gradient included). Learnable scalar ``beta`` and
``thr`` get their gradients summed over neurons and steps in double precision. Compiled without FMA
contraction, so the forward rounds as PyTorch's CPU kernels do (spikes and membranes bit for bit); the
gradients agree to float32 rounding (the scalar gradients are summed in another order).
"""

from __future__ import annotations

import hashlib
import math
import threading

import torch
from torch import Tensor

from reprolib.kernels.dispatch import KernelUnsupported

__all__ = ["leaky_source", "leaky_multistep_cpp", "check_supported"]

RESET_CODES = {"subtract": 0, "zero": 1, "none": 2}

_SOURCE = r"""
#include <math.h>

static inline float fire(float d, int strict) { return (strict ? d > 0.0f : d >= 0.0f) ? 1.0f : 0.0f; }

// the surrogate's derivative at d = U - thr, with PyTorch's operation order (reprolib.surrogate)
static inline float surrogate(float d, int kind, float c, float half_alpha, float alpha) {
    if (kind == 0) {               // ATan: (alpha / 2) / (1 + ((pi / 2) alpha d)^2), as reciprocal * alpha / 2
        const float y = c * d;
        return (1.0f / (1.0f + y * y)) * half_alpha;
    }
    const float s = 1.0f / (1.0f + expf(-(alpha * d)));   // Sigmoid: alpha s (1 - s)
    return alpha * s * (1.0f - s);
}

// I, u: [T, N]; u0: [N]; u[t] is the membrane after step t (the state the next step reads)
extern "C" void leaky_forward(const float* I, const float* u0, float* s, float* u, int T, long long N,
                              float beta, float thr, int reset, int strict) {
    for (int t = 0; t < T; ++t) {
        const float* prev = t > 0 ? u + (long long)(t - 1) * N : u0;
        const float* in = I + (long long)t * N;
        float* out = u + (long long)t * N;
        float* spike = s + (long long)t * N;
        for (long long n = 0; n < N; ++n) {
            const float m = prev[n];
            const float r = fire(m - thr, strict);
            float v;
            if (reset == 1) {
                v = beta * ((1.0f - r) * m) + in[n];
            } else {
                v = beta * m + in[n];
                if (reset == 0) v = v - r * thr;
            }
            out[n] = v;
            spike[n] = fire(v - thr, strict);
        }
    }
}

// gS, gI, u: [T, N]; g_last, u0, carry: [N] (carry enters as dL/dU[T-1] from the final state, leaves as dL/dU0)
extern "C" void leaky_backward(const float* gS, const float* u0, const float* u, float* gI, float* carry,
                               double* g_scalars, int T, long long N, float beta, float thr, int reset,
                               int strict, int kind, float c, float half_alpha, float alpha) {
    double g_beta = 0.0, g_thr = 0.0;
    for (int t = T - 1; t >= 0; --t) {
        const float* prev = t > 0 ? u + (long long)(t - 1) * N : u0;
        const float* cur = u + (long long)t * N;
        const float* gs = gS + (long long)t * N;
        float* gi = gI + (long long)t * N;
        for (long long n = 0; n < N; ++n) {
            const float d = surrogate(cur[n] - thr, kind, c, half_alpha, alpha);
            const float through_spike = gs[n] * d;
            const float gu = through_spike + carry[n];
            gi[n] = gu;
            const float m = prev[n];
            g_thr -= (double)through_spike;
            if (reset == 1) {
                const float keep = 1.0f - fire(m - thr, strict);
                g_beta += (double)gu * (double)(keep * m);
                carry[n] = gu * beta * keep;
            } else {
                g_beta += (double)gu * (double)m;
                if (reset == 0) g_thr -= (double)gu * (double)fire(m - thr, strict);
                carry[n] = gu * beta;
            }
        }
    }
    g_scalars[0] = g_beta;
    g_scalars[1] = g_thr;
}
"""

_LOCK = threading.Lock()
_LIBRARY = None


def leaky_source() -> str:
    """The C++ source of the scans."""
    return _SOURCE


def _library():
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is None:
            import ctypes  # noqa: PLC0415

            from reprolib.kernels.dispatch import build_shared_library  # noqa: PLC0415

            key = "leaky_" + hashlib.sha256(_SOURCE.encode()).hexdigest()
            lib = build_shared_library(_SOURCE, key, opt_level="-O3")
            ptr, i64, f32, i32 = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_float, ctypes.c_int
            lib.leaky_forward.restype = lib.leaky_backward.restype = None
            lib.leaky_forward.argtypes = [ptr, ptr, ptr, ptr, i32, i64, f32, f32, i32, i32]
            lib.leaky_backward.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, i32, i64, f32, f32, i32, i32, i32, f32,
                                           f32, f32]
            _LIBRARY = lib
    return _LIBRARY


def check_supported(spike_fn, reset: str) -> tuple[int, float, bool]:
    """``(surrogate kind, alpha, strict)`` of a spike function the scan implements, else KernelUnsupported."""
    from reprolib.surrogate import ATan, Sigmoid  # noqa: PLC0415

    if reset not in RESET_CODES:
        raise KernelUnsupported(f"Leaky backend='cpp': reset={reset!r}; expected one of {tuple(RESET_CODES)}")
    if type(spike_fn) not in (ATan, Sigmoid) or not spike_fn.spiking:
        raise KernelUnsupported(f"Leaky backend='cpp': spike_fn={spike_fn!r} is not implemented; the scan has "
                                "ATan and Sigmoid surrogates (use backend='torch' for others)")
    return (0 if isinstance(spike_fn, ATan) else 1), float(spike_fn.alpha), bool(spike_fn.strict)


def _scalar(value, like: Tensor, name: str) -> Tensor:
    value = torch.as_tensor(value, dtype=like.dtype)
    if value.numel() != 1:
        raise KernelUnsupported(f"Leaky backend='cpp': {name} of shape {tuple(value.shape)}; the scan takes one "
                                "scalar per layer (use backend='torch' for per-neuron values)")
    return value.reshape(())


class _LeakyScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, u0: Tensor, beta: Tensor, thr: Tensor, reset: int, kind: int, alpha: float,
                strict: bool):
        T = x_seq.shape[0]
        N = x_seq[0].numel()
        x = x_seq.detach().contiguous()
        start = u0.detach().contiguous()
        spikes, u = torch.empty_like(x), torch.empty_like(x)
        b, th = float(beta), float(thr)
        _library().leaky_forward(x.data_ptr(), start.data_ptr(), spikes.data_ptr(), u.data_ptr(), T, N, b, th,
                                 reset, int(strict))
        ctx.save_for_backward(start, u)
        ctx.constants = (T, N, b, th, reset, int(strict), kind, alpha)
        return spikes, u[-1].clone()

    @staticmethod
    def backward(ctx, g_spikes: Tensor, g_last: Tensor):
        start, u = ctx.saved_tensors
        T, N, b, th, reset, strict, kind, alpha = ctx.constants
        gs = g_spikes.contiguous() if g_spikes is not None else torch.zeros_like(u)
        carry = g_last.detach().clone().contiguous() if g_last is not None else torch.zeros_like(start)
        g_in = torch.empty_like(u)
        scalars = torch.zeros(2, dtype=torch.float64)
        c = float((math.pi / 2.0) * alpha)
        _library().leaky_backward(gs.data_ptr(), start.data_ptr(), u.data_ptr(), g_in.data_ptr(), carry.data_ptr(),
                                  scalars.data_ptr(), T, N, b, th, reset, strict, kind, c, alpha / 2.0, alpha)
        g_beta = scalars[0].to(u.dtype) if ctx.needs_input_grad[2] else None
        g_thr = scalars[1].to(u.dtype) if ctx.needs_input_grad[3] else None
        g_u0 = carry if ctx.needs_input_grad[1] else None
        return g_in, g_u0, g_beta, g_thr, None, None, None, None


def leaky_multistep_cpp(input_seq: Tensor, state, params):
    """:func:`reprolib.neurons.leaky.leaky_multistep` as a C++ scan: ``(spikes [T, B, ...], LeakyState)``."""
    from reprolib.kernels import cpu  # noqa: PLC0415
    from reprolib.neurons.leaky import LeakyState  # noqa: PLC0415

    cpu.check_input(input_seq)
    if input_seq.dtype != torch.float32:
        raise KernelUnsupported(f"Leaky backend='cpp': input dtype {input_seq.dtype}; the scan runs float32 "
                                "(use backend='torch' for other dtypes)")
    kind, alpha, strict = check_supported(params.spike_fn, params.reset)
    mem = state.mem
    if mem.shape != input_seq.shape[1:]:
        raise ValueError(f"Leaky backend='cpp': state {tuple(mem.shape)} does not match the input steps "
                         f"{tuple(input_seq.shape[1:])}")
    beta = torch.clamp(_scalar(params.beta, input_seq, "beta"), 0.0, 1.0)
    thr = _scalar(params.threshold, input_seq, "threshold")
    spikes, last = _LeakyScan.apply(input_seq, mem.to(input_seq.dtype), beta, thr, RESET_CODES[params.reset], kind,
                                    alpha, strict)
    return spikes, LeakyState(last)

