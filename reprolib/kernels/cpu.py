"""Whole-sequence C++ loops for the small recurrent RF / BRF / ALIF layers on the CPU (``backend="cpp"``).

On a CPU, a recurrent layer of a few dozen neurons (the BRF paper's ECG network: 4 + 36 + 6, T = 1300) spends
almost all of its time in per-step framework overhead: the PyTorch loop dispatches about 30 small operators
per step forward and as many backward, for a 16 x 36 x 36 matmul that takes microseconds. Here one C++ call
runs the whole forward scan (recurrent matmul, BRF / RF / ALIF step) and one call the whole backward scan.

The neuron arithmetic is *the same source* as the CUDA kernels (:data:`reprolib.kernels.resonate._BODY`:
``fwd_step`` / ``bwd_step``), compiled by g++ without FMA contraction, so a step rounds exactly as PyTorch's
CPU elementwise kernels do. Only the recurrent matmul sums in a different order than PyTorch's GEMM (in
float32, skipping the zero entries of the binary spike vector), so membranes agree to float32 rounding and
spikes are identical except where a membrane lands within rounding of the threshold. The weight gradient
``dL/dW_rec`` is one PyTorch GEMM over all steps, as in the CUDA path.

The same loops without a recurrent matrix (a null pointer) run the feed-forward scans ``brf_scan`` / ``rf_scan``
/ ``alif_scan`` on ``engine="cpp"``. The entry points get an AVX2 clone (:data:`dispatch.CPU_SCAN_HEAD`) and
index the parameters by neuron (a period of ``H`` or ``N``), so the neuron loops of the forward pass vectorise.

Single-threaded by design: the layers this backend is meant for are too small to split, and a sweep runs
one configuration per core instead.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import torch
from torch import Tensor

from reprolib.kernels import dispatch
from reprolib.kernels.dispatch import BackendUnavailable

__all__ = ["cpp_available", "check_input", "cpp_backend", "sequence_forward", "sequence_backward"]

_HOST = r"""
// ---- whole-sequence host loops (the step arithmetic is fwd_step / bwd_step above) ----
// P, the period of the parameters p1, p2 over the flat state, is H or N: the caller repeats a shorter period
#include <string.h>
#include <vector>

// wt: W_rec^T, [H (source k), H (target h)], row-major; states and sequences [T, B, H]
extern "C" RL_CLONES void seq_forward(const float* __restrict cur, const float* __restrict wt, const float* __restrict z0, const float* __restrict s10, const float* __restrict s20,
                            const float* __restrict s30, const float* __restrict p1, const float* __restrict p2, float* __restrict z_seq, float* __restrict s1_seq,
                            float* __restrict s2_seq, float* __restrict s3_seq, float* __restrict x_seq, int T, int B, int H, int P,
                            float k1, float k2, float k3) {
    const long long N = (long long)B * H;
    std::vector<float> rec(H);
    for (int t = 0; t < T; ++t) {
        const long long o = (long long)t * N, op = (long long)(t - 1) * N;
        const float* zp = t > 0 ? z_seq + op : z0;
        const float* up = t > 0 ? s1_seq + op : s10;
        const float* wp = t > 0 ? s2_seq + op : s20;
#if MODEL == 1
        const float* qp = t > 0 ? s3_seq + op : s30;
#endif
        for (int b = 0; b < B; ++b) {
            const float* zb = zp + (long long)b * H;
            memset(rec.data(), 0, sizeof(float) * H);
            for (int k = 0; wt && k < H; ++k) {  // wt null: the neurons alone (the feed-forward scan)
                const float zk = zb[k];
                if (zk == 0.0f) continue;  // spikes are binary: most rows add nothing
                const float* row = wt + (long long)k * H;
                for (int h = 0; h < H; ++h) rec[h] += zk * row[h];
            }
            // P is H or N (sequence_forward): this sample's parameter row, read contiguously, no division
            const float* __restrict p1r = P == H ? p1 : p1 + (long long)b * H;
            const float* __restrict p2r = P == H ? p2 : p2 + (long long)b * H;
            for (int h = 0; h < H; ++h) {
                const long long n = (long long)b * H + h;
                const float x = cur[o + n] + rec[h];
#if MODEL == 1
                const float q = qp[n];
#else
                const float q = 0.0f;
#endif
                float zn, un, wn, qn;
                fwd_step(x, zp[n], up[n], wp[n], q, p1r[h], p2r[h], k1, k2, k3, zn, un, wn, qn);
                z_seq[o + n] = zn; s1_seq[o + n] = un; s2_seq[o + n] = wn;
#if MODEL == 1
                s3_seq[o + n] = qn;
#endif
#if MODEL == 2
                x_seq[o + n] = x;
#endif
            }
        }
    }
}

// out[b, k] = sum_h g[b, h] w[h, k] for the B x H rows of g, each sum in ascending h (so every element is the
// same float as the plain loop's); w null: zeros. This matvec per sample dominates the backward scan of a large
// layer (64 x 512 x 512 per step). A tile of RB samples x KB columns sums in registers, so each row chunk of w is
// read once for RB samples instead of once per sample; the leftover samples and columns take the plain loop.
typedef float rl_v8f __attribute__((vector_size(32), aligned(4)));  // 8 floats, unaligned loads and stores
static inline rl_v8f rl_load8(const float* p) { return *(const rl_v8f*)p; }
static inline void rl_store8(float* p, rl_v8f v) { *(rl_v8f*)p = v; }

// columns [k0, H) of one sample's row of the product, the plain loop: k innermost, so it vectorises
static inline void recurrent_grad_row(const float* __restrict g_row, const float* __restrict w, float* __restrict o,
                                      int H, int k0) {
    for (int k = k0; k < H; ++k) o[k] = 0.0f;
    for (int h = 0; w && h < H; ++h) {
        const float gv = g_row[h];
        const float* wr = w + (long long)h * H;
        for (int k = k0; k < H; ++k) o[k] += gv * wr[k];
    }
}

RL_CLONES static void recurrent_grad(const float* __restrict g, const float* __restrict w, float* __restrict out, int B, int H) {
    constexpr int RB = 4, KB = 16;
    const int Bt = w ? B - B % RB : 0, Ht = H - H % KB;
    for (int b0 = 0; b0 < Bt; b0 += RB) {
        const float* __restrict g0 = g + (long long)b0 * H;
        const float* __restrict g1 = g0 + H;
        const float* __restrict g2 = g1 + H;
        const float* __restrict g3 = g2 + H;
        for (int k0 = 0; k0 < Ht; k0 += KB) {
            rl_v8f a00 = {}, a01 = {}, a10 = {}, a11 = {}, a20 = {}, a21 = {}, a30 = {}, a31 = {};
            const float* row = w + k0;
            for (int h = 0; h < H; ++h, row += H) {
                const rl_v8f r0 = rl_load8(row), r1 = rl_load8(row + 8);
                a00 += g0[h] * r0; a01 += g0[h] * r1;
                a10 += g1[h] * r0; a11 += g1[h] * r1;
                a20 += g2[h] * r0; a21 += g2[h] * r1;
                a30 += g3[h] * r0; a31 += g3[h] * r1;
            }
            float* o = out + (long long)b0 * H + k0;
            rl_store8(o, a00); rl_store8(o + 8, a01);
            rl_store8(o + H, a10); rl_store8(o + H + 8, a11);
            rl_store8(o + 2 * H, a20); rl_store8(o + 2 * H + 8, a21);
            rl_store8(o + 3 * H, a30); rl_store8(o + 3 * H + 8, a31);
        }
        for (int r = 0; r < RB; ++r)  // the columns past the last whole tile
            recurrent_grad_row(g0 + (long long)r * H, w, out + (long long)(b0 + r) * H, H, Ht);
    }
    for (int b = Bt; b < B; ++b)  // the samples past the last whole tile
        recurrent_grad_row(g + (long long)b * H, w, out + (long long)b * H, H, 0);
}

// gz (in: dL/dz[T-1] of the final state; out: dL/dz0), g1..g3 (in: dL/d final state; out: dL/d initial state),
// gx_seq out: dL/d(total input current)[t], gp1, gp2 out: per-element parameter gradients summed over t
// w_rec: W_rec [H (target h), H (source k)], row-major
extern "C" RL_CLONES void seq_backward(const float* __restrict x_seq, const float* __restrict w_rec, const float* __restrict z0, const float* __restrict s10,
                             const float* __restrict s20, const float* __restrict s30, const float* __restrict z_seq, const float* __restrict s1_seq,
                             const float* __restrict s2_seq, const float* __restrict s3_seq, const float* __restrict p1, const float* __restrict p2,
                             const float* __restrict gz_seq, float* __restrict gz, float* __restrict g1, float* __restrict g2, float* __restrict g3, float* __restrict gx_seq,
                             float* __restrict gp1, float* __restrict gp2, int T, int B, int H, int P, float k1, float k2, float k3,
                             SG_PARAMS) {
    const long long N = (long long)B * H;
    std::vector<float> gz_own(N, 0.0f);  // ALIF: dL/dz[t-1] through a[t]
    for (long long n = 0; n < N; ++n) { gp1[n] = 0.0f; gp2[n] = 0.0f; }
    for (int t = T - 1; t >= 0; --t) {
        const long long o = (long long)t * N, op = (long long)(t - 1) * N;
        const float* zp = t > 0 ? z_seq + op : z0;
        const float* up = t > 0 ? s1_seq + op : s10;
        const float* wp = t > 0 ? s2_seq + op : s20;
#if MODEL == 1
        const float* qp = t > 0 ? s3_seq + op : s30;
#endif
        float* gx = gx_seq + o;
        for (long long n0 = 0; n0 < N; n0 += H) {
          const float* __restrict p1r = P == H ? p1 : p1 + n0;  // as in seq_forward
          const float* __restrict p2r = P == H ? p2 : p2 + n0;
          for (int h = 0; h < H; ++h) {
            const long long n = n0 + h;
            float gzn = gz_seq[o + n] + gz[n];
#if MODEL == 2
            gzn += gz_own[n];
            const float xv = x_seq[o + n], zpv = zp[n];
#else
            const float xv = 0.0f, zpv = 0.0f;
#endif
#if MODEL == 1
            const float q = qp[n], gq2 = g3[n];
#else
            const float q = 0.0f, gq2 = 0.0f;
#endif
            float gxv, gzp, gu, gw, gq, ga, gb;
            bwd_step(xv, zpv, up[n], wp[n], q, s1_seq[o + n], p1r[h], p2r[h], k1, k2, k3, gzn, g1[n], g2[n], gq2,
                     gxv, gzp, gu, gw, gq, ga, gb, SG_ARGS);
            gx[n] = gxv; g1[n] = gu; g2[n] = gw;
#if MODEL == 1
            g3[n] = gq;
#endif
#if MODEL == 2
            gz_own[n] = gzp;
#endif
            gp1[n] += ga; gp2[n] += gb;
          }
        }
        // dL/dz[t-1] through the recurrent current of step t: gz[b, k] = sum_h gx[t, b, h] W_rec[h, k], summed
        // over h in ascending order (as the GPU kernel does)
        recurrent_grad(gx, w_rec, gz, B, H);
    }
    for (long long n = 0; n < N; ++n) gz[n] += gz_own[n];
}
"""

_F, _I, _P = ctypes.c_float, ctypes.c_int, ctypes.c_void_p
_FORWARD_ARGS = [_P] * 13 + [_I] * 4 + [_F] * 3
_BACKWARD_ARGS = [_P] * 20 + [_I] * 4 + [_F] * 3 + [_F] * 11

def cpp_available() -> bool:
    """True when a C++ compiler is there to build the ``"cpp"`` backend."""
    return dispatch.compiler() is not None


@lru_cache(maxsize=None)  # one build per (model, strict), looked up once: every forward and backward asks
def _library(model: str, strict: bool):
    from reprolib.kernels import resonate as K  # noqa: PLC0415 - resonate imports this module lazily too

    source = dispatch._EMULATION_SHIM + K.resonate_source(model, strict, "cpp") + dispatch.CPU_SCAN_HEAD + _HOST
    # -fno-trapping-math: the spike condition becomes a select, so the neuron loops can vectorise
    return dispatch.load_library(source, "seq", {"seq_forward": (None, _FORWARD_ARGS),
                                                 "seq_backward": (None, _BACKWARD_ARGS)}, opt_level="-O3",
                                 extra_flags=("-fno-trapping-math",))


def _ptr(t: Tensor | None):
    if t is None:
        return None
    if t.is_cuda or t.dtype != torch.float32 or not t.is_contiguous():
        raise ValueError("the cpp backend needs contiguous float32 CPU tensors")
    return t.data_ptr()


def check_input(x: Tensor) -> None:
    """``backend="cpp"`` runs on CPU tensors only; say so (and what is missing) before any work."""
    if x.is_cuda:
        raise BackendUnavailable(f"backend='cpp' runs on CPU tensors; the input is on {x.device} "
                                 "(use backend='cupy' or 'auto' on a GPU)")
    if not cpp_available():
        raise BackendUnavailable("backend='cpp' needs a C++ compiler (g++ or $CXX) to build its loops; none was found")


def cpp_backend(fused, name: str):
    """``backend="cpp"`` for a feed-forward kernel scan ``fused(x_seq, ..., engine=...)`` (IF / LIF / SRC): the
    whole-sequence scan compiled as C++ (``engine="cpp"``), after checking that it can run here."""

    def run(x_seq, *args, **kwargs):
        check_input(x_seq)
        return fused(x_seq, *args, engine="cpp", **kwargs)

    run.__name__ = name
    run.__doc__ = f"``backend='cpp'``: :func:`{fused.__module__}.{fused.__name__}` as a C++ scan on CPU tensors."
    return run


def _period_h_or_n(p: Tensor, P: int, H: int, N: int) -> tuple[Tensor, int]:
    """The parameter row repeated to period ``H`` when its period divides ``H`` (the loops then index it by the
    neuron, not by a division per element); a period that does not divide ``H`` is expanded to all ``N``."""
    if P in (H, N):
        return p, P
    if H % P == 0:
        return p.repeat(H // P).contiguous(), H
    return p.repeat(N // P).contiguous(), N


def _periodic(p1: Tensor, p2: Tensor, P: int, H: int, N: int) -> tuple[Tensor, Tensor, int]:
    (p1, P1), (p2, _) = _period_h_or_n(p1, P, H, N), _period_h_or_n(p2, P, H, N)
    return p1, p2, P1


def sequence_forward(prep, cur: Tensor, w_rec_t: Tensor | None, z0, s10, s20, s30):
    """``(z_seq, s1_seq, s2_seq, s3_seq | None, x_seq | None)`` of the layer over ``cur [T, B, H]``; without
    ``w_rec_t`` the neurons alone (:func:`reprolib.kernels.resonate.brf_scan` and co. on the CPU)."""
    T, B, H = cur.shape
    lib = _library(prep.model, prep.strict)
    z_seq, s1_seq, s2_seq = torch.empty_like(cur), torch.empty_like(cur), torch.empty_like(cur)
    s3_seq = torch.empty_like(cur) if prep.model == "brf" else None
    x_seq = torch.empty_like(cur) if prep.model == "alif" else None
    wt = w_rec_t.contiguous() if w_rec_t is not None else None  # referenced until the call returns
    p1, p2, P = _periodic(prep.p1, prep.p2, prep.P, H, B * H)
    lib.seq_forward(_ptr(cur), _ptr(wt), _ptr(z0), _ptr(s10), _ptr(s20), _ptr(s30), _ptr(p1), _ptr(p2),
                    _ptr(z_seq), _ptr(s1_seq), _ptr(s2_seq), _ptr(s3_seq), _ptr(x_seq), T, B, H, P,
                    *prep.scalars[:3])
    return z_seq, s1_seq, s2_seq, s3_seq, x_seq


def sequence_backward(prep, saved, g_zseq: Tensor, g_z: Tensor, g_1: Tensor, g_2: Tensor, g_3: Tensor):
    """Gradients ``(gx_seq, gz0, g1, g2, g3, gp1, gp2)``; ``gp*`` per element, summed over time."""
    w_rec_t, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq, x_seq = saved
    T, B, H = z_seq.shape
    lib = _library(prep.model, prep.strict)
    from reprolib.kernels.resonate import sequence_backward_buffers  # noqa: PLC0415

    gx, gz, g1, g2, g3, gp1, gp2 = sequence_backward_buffers(z_seq, g_z, g_1, g_2, g_3)
    # keep the contiguous copies referenced for the duration of the call (a raw pointer keeps nothing alive)
    w_rec, g_zseq = (w_rec_t.t().contiguous() if w_rec_t is not None else None), g_zseq.contiguous()
    p1, p2, P = _periodic(p1, p2, prep.P, H, B * H)
    lib.seq_backward(_ptr(x_seq), _ptr(w_rec), _ptr(z0), _ptr(s10), _ptr(s20), _ptr(s30),
                     _ptr(z_seq), _ptr(s1_seq), _ptr(s2_seq), _ptr(s3_seq), _ptr(p1), _ptr(p2),
                     _ptr(g_zseq), _ptr(gz), _ptr(g1), _ptr(g2), _ptr(g3), _ptr(gx), _ptr(gp1), _ptr(gp2),
                     T, B, H, P, *prep.scalars)
    return gx, gz, g1, g2, g3, gp1, gp2

