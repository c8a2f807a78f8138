"""Fused element-wise steps of the RSNN neurons of the BRF paper: RF, BRF and ALIF.

These layers feed ``z[t-1]`` back through a recurrent matrix, so a step cannot start before the previous
one ended: the recurrent matmul stays in cuBLAS and everything else of the step is one kernel
(reference ``brf-neurons.md`` section 1, code of quantling/brf-neurons, as :mod:`reprolib.neurons.resonate`):

* BRF: ``b = p(omega) - |b'| - q``, Euler step of ``u, v``, ``z = Theta(u - theta - q_prev)``, ``q = gamma q + z``;
* RF: ``b = -|b'|``, Euler step, ``z = Theta(u - theta)``, no reset;
* ALIF: ``a = rho a + (1 - rho) z_prev``, ``u' = alpha u + (1 - alpha) x``, ``z = Theta(u' - 0.01 - 1.8 a)``,
  soft reset ``u = u' - z theta`` (not detached);

with the double-Gaussian surrogate of :class:`reprolib.surrogate.DoubleGaussian`.

:func:`brf_multistep`, :func:`rf_multistep`, :func:`alif_multistep` are drop-ins for the recurrent layer
loops of :mod:`reprolib.neurons.resonate` (same signature and result). They are one autograd Function per
*layer*, in one of two forms:

* one launch per direction (``seq_forward_block`` / ``seq_backward_block``, the default on CUDA for
  ``hidden <= 1024``): one thread block per sample and one thread per neuron scan all T steps; the previous
  step's spikes sit in shared memory, and the recurrent sum ``z[t-1] W_rec^T`` skips the zero entries of
  the binary spike vector (a warp-uniform branch), so the per-step cost follows the spike count. The backward
  keeps ``dL/dx[t]`` of the sample in shared memory for ``dL/dz[t-1] = dL/dx[t] W_rec``. A barrier separates
  the steps; no per-step launch or Python loop remains. The same arithmetic runs on the CPU as the C++
  loops of :mod:`reprolib.kernels.cpu` (``backend="cpp"``), bit for bit; engine ``"emulate-threads"`` runs these
  very kernels on the CPU with one std::thread per CUDA thread and real barriers, for the tests;
* one launch per step (``REPROLIB_RSNN_KERNEL=step``, or ``hidden > 1024``): per step one cuBLAS matmul
  ``z[t-1] W_rec^T`` and one fused kernel (the add of the input current is inside the kernel), and in reverse
  one fused kernel and one matmul for ``dL/dz[t-1]``; the recurrent currents equal PyTorch's bit for bit.

Both accumulate the per-neuron parameter gradients per element and compute ``dL/dW_rec`` as one GEMM over all
steps at the end. The per-neuron derived quantities
(``|omega|``, ``p(omega) - |b'|``, ``exp(-1/|tau|)``) are computed once per sequence by PyTorch, so their
gradients flow back to the raw parameters through ordinary autograd.

:func:`brf_scan`, :func:`rf_scan`, :func:`alif_scan` are the feed-forward variant (input current known for all
steps, no recurrent matrix): one kernel scans all T steps, as for LIF / SRC.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

from reprolib.kernels import dispatch
from reprolib.kernels.dispatch import BLOCK_ELEMENTWISE, BLOCK_SCAN, KernelSpec, KernelUnsupported

__all__ = [
    "MODELS",
    "RESONATE_SPECS",
    "resonate_source",
    "resonate_option_sets",
    "brf_multistep",
    "rf_multistep",
    "alif_multistep",
    "brf_scan",
    "rf_scan",
    "alif_scan",
    "brf_multistep_auto",
    "rf_multistep_auto",
    "alif_multistep_auto",
    "brf_multistep_cpp",
    "rf_multistep_cpp",
    "alif_multistep_cpp",
]

MODELS = {"rf": 0, "brf": 1, "alif": 2}

# scalars: model constants (BRF/RF: dt, theta, gamma; ALIF: theta0, beta, unused) and the surrogate's
_SCALARS = (
    ("float", "k1"), ("float", "k2"), ("float", "k3"),
    ("float", "a1"), ("float", "sd1"), ("float", "inv_sd1"), ("float", "n1"), ("float", "inv_n1"),
    ("float", "a2"), ("float", "sd2"), ("float", "inv_sd2"), ("float", "n2"), ("float", "inv_n2"), ("float", "gain"),
)

RESONATE_SPECS = (
    KernelSpec("step_forward", (
        ("const float*", "cur"), ("const float*", "rec"), ("const float*", "zp"), ("const float*", "s1p"),
        ("const float*", "s2p"), ("const float*", "s3p"), ("const float*", "p1"), ("const float*", "p2"),
        ("float*", "z"), ("float*", "s1"), ("float*", "s2"), ("float*", "s3"), ("float*", "x_out"),
        ("int", "N"), ("int", "P")) + _SCALARS),
    KernelSpec("step_backward", (
        ("const float*", "x"), ("const float*", "zp"), ("const float*", "s1p"), ("const float*", "s2p"),
        ("const float*", "s3p"), ("const float*", "s1n"), ("const float*", "p1"), ("const float*", "p2"),
        ("const float*", "gz_seq"), ("const float*", "gz_mm"), ("float*", "gz_own"), ("float*", "g1"),
        ("float*", "g2"), ("float*", "g3"), ("float*", "gx"), ("float*", "gp1"), ("float*", "gp2"),
        ("int", "N"), ("int", "P")) + _SCALARS),
    KernelSpec("scan_forward", (
        ("const float*", "x_seq"), ("const float*", "z0"), ("const float*", "s10"), ("const float*", "s20"),
        ("const float*", "s30"), ("const float*", "p1"), ("const float*", "p2"), ("float*", "z_seq"),
        ("float*", "s1_seq"), ("float*", "s2_seq"), ("float*", "s3_seq"), ("int", "T"), ("int", "N"), ("int", "P"))
        + _SCALARS),
    KernelSpec("scan_backward", (
        ("const float*", "x_seq"), ("const float*", "z0"), ("const float*", "s10"), ("const float*", "s20"),
        ("const float*", "s30"), ("const float*", "z_seq"), ("const float*", "s1_seq"), ("const float*", "s2_seq"),
        ("const float*", "s3_seq"), ("const float*", "p1"), ("const float*", "p2"), ("const float*", "gz_seq"),
        ("float*", "gz"), ("float*", "g1"), ("float*", "g2"), ("float*", "g3"), ("float*", "gx_seq"),
        ("float*", "gp1"), ("float*", "gp2"), ("int", "T"), ("int", "N"), ("int", "P")) + _SCALARS),
)

#: the whole recurrent layer in one launch per direction (GPU only; see the end of the source)
SEQUENCE_SPECS = (
    KernelSpec("seq_forward_block", (
        ("const float*", "cur"), ("const float*", "wt"), ("const float*", "z0"), ("const float*", "s10"),
        ("const float*", "s20"), ("const float*", "s30"), ("const float*", "p1"), ("const float*", "p2"),
        ("float*", "z_seq"), ("float*", "s1_seq"), ("float*", "s2_seq"), ("float*", "s3_seq"), ("float*", "x_seq"),
        ("int", "T"), ("int", "B"), ("int", "H"), ("int", "P"), ("float", "k1"), ("float", "k2"), ("float", "k3"))),
    KernelSpec("seq_backward_block", (
        ("const float*", "x_seq"), ("const float*", "w_rec"), ("const float*", "z0"), ("const float*", "s10"),
        ("const float*", "s20"), ("const float*", "s30"), ("const float*", "z_seq"), ("const float*", "s1_seq"),
        ("const float*", "s2_seq"), ("const float*", "s3_seq"), ("const float*", "p1"), ("const float*", "p2"),
        ("const float*", "gz_seq"), ("float*", "gz"), ("float*", "g1"), ("float*", "g2"), ("float*", "g3"),
        ("float*", "gx_seq"), ("float*", "gp1"), ("float*", "gp2"), ("int", "T"), ("int", "B"), ("int", "H"),
        ("int", "P")) + _SCALARS),
)
#: the one-launch layer keeps one neuron per thread of a block
SEQUENCE_MAX_HIDDEN = 1024

_BODY = r"""
#if STRICT
#define FIRE(d) ((d) > 0.0f ? 1.0f : 0.0f)
#else
#define FIRE(d) ((d) >= 0.0f ? 1.0f : 0.0f)
#endif
#define SG(y) sg_double_gaussian((y), a1, sd1, inv_sd1, n1, inv_n1, a2, sd2, inv_sd2, n2, inv_n2, gain)
#define SG_PARAMS const float a1, const float sd1, const float inv_sd1, const float n1, const float inv_n1, \
    const float a2, const float sd2, const float inv_sd2, const float n2, const float inv_n2, const float gain
#define SG_ARGS a1, sd1, inv_sd1, n1, inv_n1, a2, sd2, inv_sd2, n2, inv_n2, gain

// ---- one step, forward: states (s1, s2, s3) = BRF (u, v, q) | RF (u, v, -) | ALIF (u, a, -);
//      per-neuron (p1, p2) = BRF (|omega|, p(omega) - |b'|) | RF (|omega|, -|b'|) | ALIF (alpha, rho)
__device__ __forceinline__ void fwd_step(const float x, const float zp, const float u, const float w, const float q,
                                         const float p1, const float p2, const float k1, const float k2,
                                         const float k3, float& z, float& u2, float& w2, float& q2) {
#if MODEL == 2
    // ALIF: w = a; k1 = theta0, k2 = beta
    w2 = p2 * w + (1.0f - p2) * zp;
    const float th = k1 + k2 * w2;
    const float m = p1 * u + (1.0f - p1) * x;
    z = FIRE(m - th);
    u2 = m - z * th;
    q2 = 0.0f;
#else
    // RF / BRF: w = v; k1 = dt, k2 = theta, k3 = gamma
#if MODEL == 1
    const float b = p2 - q;
#else
    const float b = p2;
#endif
    u2 = u + b * u * k1 - p1 * w * k1 + x * k1;
    w2 = w + p1 * u * k1 + b * w * k1;
#if MODEL == 1
    z = FIRE(u2 - k2 - q);
    q2 = k3 * q + z;
#else
    z = FIRE(u2 - k2);
    q2 = 0.0f;
#endif
#endif
}

// ---- one step, backward: given dL/d(z, u2, w2, q2) return dL/d(x, zp, u, w, q) and the parameter terms
__device__ __forceinline__ void bwd_step(const float x, const float zp, const float u, const float w, const float q,
                                         const float u2, const float p1, const float p2, const float k1,
                                         const float k2, const float k3, const float gz, const float gu2,
                                         const float gw2, const float gq2, float& gx, float& gzp, float& gu,
                                         float& gw, float& gq, float& gp1, float& gp2, SG_PARAMS) {
#if MODEL == 2
    const float w2 = p2 * w + (1.0f - p2) * zp;
    const float th = k1 + k2 * w2;
    const float m = p1 * u + (1.0f - p1) * x;
    const float y = m - th;
    const float z = FIRE(y);
    const float gzt = gz - gu2 * th;
    const float gy = gzt * SG(y);
    const float gm = gu2 + gy;
    const float gth = -(gu2 * z) - gy;
    const float gw2t = gw2 + k2 * gth;
    gp2 = gw2t * (w - zp);
    gw = gw2t * p2;
    gzp = gw2t * (1.0f - p2);
    gp1 = gm * (u - x);
    gu = gm * p1;
    gx = gm * (1.0f - p1);
    gq = 0.0f;
#else
#if MODEL == 1
    const float b = p2 - q;
    const float y = u2 - k2 - q;
    const float gy = (gz + gq2) * SG(y);
#else
    const float b = p2;
    const float y = u2 - k2;
    const float gy = gz * SG(y);
#endif
    const float gu2t = gu2 + gy;
    const float gb = gu2t * u * k1 + gw2 * w * k1;
    gu = gu2t * (1.0f + b * k1) + gw2 * p1 * k1;
    gw = gw2 * (1.0f + b * k1) - gu2t * p1 * k1;
    gp1 = gw2 * u * k1 - gu2t * w * k1;
    gp2 = gb;
    gx = gu2t * k1;
    gzp = 0.0f;
#if MODEL == 1
    gq = k3 * gq2 - gy - gb;
#else
    gq = 0.0f;
#endif
#endif
}

extern "C" __global__ void step_forward(const float* __restrict__ cur, const float* __restrict__ rec,
                                        const float* __restrict__ zp, const float* __restrict__ s1p,
                                        const float* __restrict__ s2p, const float* __restrict__ s3p,
                                        const float* __restrict__ p1, const float* __restrict__ p2,
                                        float* __restrict__ z, float* __restrict__ s1, float* __restrict__ s2,
                                        float* __restrict__ s3, float* __restrict__ x_out, const int N, const int P,
                                        const float k1, const float k2, const float k3, SG_PARAMS) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float x = rec != 0 ? cur[n] + rec[n] : cur[n];
    const int j = n % P;
    float zn, un, wn, qn;
#if MODEL == 1
    const float q = s3p[n];
#else
    const float q = 0.0f;
#endif
    fwd_step(x, zp[n], s1p[n], s2p[n], q, p1[j], p2[j], k1, k2, k3, zn, un, wn, qn);
    z[n] = zn; s1[n] = un; s2[n] = wn;
#if MODEL == 1
    s3[n] = qn;
#endif
    if (x_out != 0) x_out[n] = x;
}

// gz_seq: dL/dz[t] from the layer output; gz_mm: dL/dz[t] through z[t] W_rec^T of step t+1 (and the final
// state); gz_own (in/out, ALIF): dL/dz[t] through a[t+1] in, dL/dz[t-1] through a[t] out;
// g1..g3 (in/out): dL/d state[t] in, dL/d state[t-1] out; gp1, gp2 accumulate over steps.
extern "C" __global__ void step_backward(const float* __restrict__ x, const float* __restrict__ zp,
                                         const float* __restrict__ s1p, const float* __restrict__ s2p,
                                         const float* __restrict__ s3p, const float* __restrict__ s1n,
                                         const float* __restrict__ p1, const float* __restrict__ p2,
                                         const float* __restrict__ gz_seq, const float* __restrict__ gz_mm,
                                         float* __restrict__ gz_own, float* __restrict__ g1, float* __restrict__ g2,
                                         float* __restrict__ g3, float* __restrict__ gx, float* __restrict__ gp1,
                                         float* __restrict__ gp2, const int N, const int P, const float k1,
                                         const float k2, const float k3, SG_PARAMS) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int j = n % P;
    float gz = gz_seq[n] + gz_mm[n];
#if MODEL == 2
    gz += gz_own[n];
    const float xv = x[n], zpv = zp[n];
#else
    const float xv = 0.0f, zpv = 0.0f;
#endif
#if MODEL == 1
    const float q = s3p[n], gq2 = g3[n];
#else
    const float q = 0.0f, gq2 = 0.0f;
#endif
    float gxv, gzp, gu, gw, gq, ga, gb;
    bwd_step(xv, zpv, s1p[n], s2p[n], q, s1n[n], p1[j], p2[j], k1, k2, k3, gz, g1[n], g2[n], gq2,
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

extern "C" __global__ void scan_forward(const float* __restrict__ x_seq, const float* __restrict__ z0,
                                        const float* __restrict__ s10, const float* __restrict__ s20,
                                        const float* __restrict__ s30, const float* __restrict__ p1,
                                        const float* __restrict__ p2, float* __restrict__ z_seq,
                                        float* __restrict__ s1_seq, float* __restrict__ s2_seq,
                                        float* __restrict__ s3_seq, const int T, const int N, const int P,
                                        const float k1, const float k2, const float k3, SG_PARAMS) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int j = n % P;
    const float pa = p1[j], pb = p2[j];
    float z = z0[n], u = s10[n], w = s20[n];
#if MODEL == 1
    float q = s30[n];
#else
    float q = 0.0f;
#endif
    for (int t0 = 0; t0 < T; t0 += CHUNK) {
        float xs[CHUNK];
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t0 + k;
            xs[k] = t < T ? x_seq[(long long)t * N + n] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t0 + k;
            if (t < T) {
                const long long e = (long long)t * N + n;
                float zn, un, wn, qn;
                fwd_step(xs[k], z, u, w, q, pa, pb, k1, k2, k3, zn, un, wn, qn);
                z = zn; u = un; w = wn; q = qn;
                z_seq[e] = z; s1_seq[e] = u; s2_seq[e] = w;
#if MODEL == 1
                s3_seq[e] = q;
#endif
            }
        }
    }
}

extern "C" __global__ void scan_backward(const float* __restrict__ x_seq, const float* __restrict__ z0,
                                         const float* __restrict__ s10, const float* __restrict__ s20,
                                         const float* __restrict__ s30, const float* __restrict__ z_seq,
                                         const float* __restrict__ s1_seq, const float* __restrict__ s2_seq,
                                         const float* __restrict__ s3_seq, const float* __restrict__ p1,
                                         const float* __restrict__ p2, const float* __restrict__ gz_seq,
                                         float* __restrict__ gz, float* __restrict__ g1, float* __restrict__ g2,
                                         float* __restrict__ g3, float* __restrict__ gx_seq, float* __restrict__ gp1,
                                         float* __restrict__ gp2, const int T, const int N, const int P,
                                         const float k1, const float k2, const float k3, SG_PARAMS) {
    // gz, g1..g3: in = dL/d(final state), out = dL/d(initial state); gp1, gp2: per-element sums over t
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int j = n % P;
    const float pa = p1[j], pb = p2[j];
    float gzc = gz[n], gu = g1[n], gw = g2[n];
#if MODEL == 1
    float gq = g3[n];
#else
    float gq = 0.0f;
#endif
    float ga = 0.0f, gb = 0.0f;
    for (int t = T - 1; t >= 0; --t) {
        const long long e = (long long)t * N + n;
        const long long ep = (long long)(t - 1) * N + n;
        const float u_prev = t > 0 ? s1_seq[ep] : s10[n];
        const float w_prev = t > 0 ? s2_seq[ep] : s20[n];
#if MODEL == 1
        const float q_prev = t > 0 ? s3_seq[ep] : s30[n];
#else
        const float q_prev = 0.0f;
#endif
#if MODEL == 2
        const float z_prev = t > 0 ? z_seq[ep] : z0[n];
        const float xv = x_seq[e];
#else
        const float z_prev = 0.0f, xv = 0.0f;
#endif
        float gxv, gzp, gun, gwn, gqn, gpa, gpb;
        bwd_step(xv, z_prev, u_prev, w_prev, q_prev, s1_seq[e], pa, pb, k1, k2, k3, gz_seq[e] + gzc, gu, gw, gq,
                 gxv, gzp, gun, gwn, gqn, gpa, gpb, SG_ARGS);
        gx_seq[e] = gxv;
        gzc = gzp; gu = gun; gw = gwn; gq = gqn;
        ga += gpa; gb += gpb;
    }
    gz[n] = gzc; g1[n] = gu; g2[n] = gw;
#if MODEL == 1
    g3[n] = gq;
#endif
    gp1[n] = ga; gp2[n] = gb;
}

#if !defined(REPROLIB_EMULATION)
// ---- whole recurrent layer in one launch (GPU): one block per sample, one thread per neuron, the previous
//      step's spikes (forward) or input gradients (backward) of the sample in shared memory; a barrier per step.
//      Same arithmetic and summation order as the C++ loops of reprolib.kernels.cpu, so both agree bit for bit.
#define SEQ_MAX_H 1024
extern "C" __global__ void seq_forward_block(const float* __restrict__ cur, const float* __restrict__ wt,
                                             const float* __restrict__ z0, const float* __restrict__ s10,
                                             const float* __restrict__ s20, const float* __restrict__ s30,
                                             const float* __restrict__ p1, const float* __restrict__ p2,
                                             float* __restrict__ z_seq, float* __restrict__ s1_seq,
                                             float* __restrict__ s2_seq, float* __restrict__ s3_seq,
                                             float* __restrict__ x_seq, const int T, const int B, const int H,
                                             const int P, const float k1, const float k2, const float k3) {
    __shared__ float zsh[SEQ_MAX_H];
    const int b = blockIdx.x, h = threadIdx.x;
    const bool active = h < H;
    const long long N = (long long)B * H, n = (long long)b * H + h;
    const int j = active ? (int)(n % P) : 0;
    float z = 0.0f, u = 0.0f, w = 0.0f, q = 0.0f, pa = 0.0f, pb = 0.0f;
    if (active) {
        z = z0[n]; u = s10[n]; w = s20[n]; pa = p1[j]; pb = p2[j];
#if MODEL == 1
        q = s30[n];
#endif
        zsh[h] = z;
    }
    __syncthreads();
    for (int t = 0; t < T; ++t) {
        const long long e = (long long)t * N + n;
        float zn = 0.0f;
        if (active) {
            float rec = 0.0f;
            for (int k = 0; k < H; ++k) {
                const float zk = zsh[k];  // the same for every thread: no divergence
                if (zk == 0.0f) continue;
                rec += zk * wt[(long long)k * H + h];
            }
            const float x = cur[e] + rec;
            float un, wn, qn;
            fwd_step(x, z, u, w, q, pa, pb, k1, k2, k3, zn, un, wn, qn);
            z = zn; u = un; w = wn; q = qn;
            z_seq[e] = zn; s1_seq[e] = un; s2_seq[e] = wn;
#if MODEL == 1
            s3_seq[e] = qn;
#endif
#if MODEL == 2
            x_seq[e] = x;
#endif
        }
        __syncthreads();  // every thread has read zsh for step t
        if (active) zsh[h] = zn;
        __syncthreads();
    }
}

// w_rec: W_rec [H (target h), H (source k)] row-major (thread k reads column k: coalesced)
extern "C" __global__ void seq_backward_block(const float* __restrict__ x_seq, const float* __restrict__ w_rec,
                                              const float* __restrict__ z0, const float* __restrict__ s10,
                                              const float* __restrict__ s20, const float* __restrict__ s30,
                                              const float* __restrict__ z_seq, const float* __restrict__ s1_seq,
                                              const float* __restrict__ s2_seq, const float* __restrict__ s3_seq,
                                              const float* __restrict__ p1, const float* __restrict__ p2,
                                              const float* __restrict__ gz_seq, float* __restrict__ gz,
                                              float* __restrict__ g1, float* __restrict__ g2, float* __restrict__ g3,
                                              float* __restrict__ gx_seq, float* __restrict__ gp1,
                                              float* __restrict__ gp2, const int T, const int B, const int H,
                                              const int P, const float k1, const float k2, const float k3,
                                              SG_PARAMS) {
    __shared__ float gxs[SEQ_MAX_H];
    const int b = blockIdx.x, h = threadIdx.x;
    const bool active = h < H;
    const long long N = (long long)B * H, n = (long long)b * H + h;
    const int j = active ? (int)(n % P) : 0;
    float gz_mm = 0.0f, gz_own = 0.0f, gu = 0.0f, gw = 0.0f, gq = 0.0f, ga = 0.0f, gb = 0.0f, pa = 0.0f, pb = 0.0f;
    if (active) {
        gz_mm = gz[n]; gu = g1[n]; gw = g2[n]; pa = p1[j]; pb = p2[j];
#if MODEL == 1
        gq = g3[n];
#endif
    }
    for (int t = T - 1; t >= 0; --t) {
        const long long e = (long long)t * N + n, ep = (long long)(t - 1) * N + n;
        if (active) {
            float gzn = gz_seq[e] + gz_mm;
#if MODEL == 2
            gzn += gz_own;
            const float xv = x_seq[e], zpv = t > 0 ? z_seq[ep] : z0[n];
#else
            const float xv = 0.0f, zpv = 0.0f;
#endif
#if MODEL == 1
            const float qp = t > 0 ? s3_seq[ep] : s30[n];
#else
            const float qp = 0.0f;
#endif
            const float up = t > 0 ? s1_seq[ep] : s10[n];
            const float wp = t > 0 ? s2_seq[ep] : s20[n];
            float gxv, gzp, gun, gwn, gqn, gpa, gpb;
            bwd_step(xv, zpv, up, wp, qp, s1_seq[e], pa, pb, k1, k2, k3, gzn, gu, gw, gq,
                     gxv, gzp, gun, gwn, gqn, gpa, gpb, SG_ARGS);
            gx_seq[e] = gxv; gxs[h] = gxv;
            gu = gun; gw = gwn;
#if MODEL == 1
            gq = gqn;
#endif
#if MODEL == 2
            gz_own = gzp;
#endif
            ga += gpa; gb += gpb;
        }
        __syncthreads();  // gx[t] of the whole sample is in shared memory
        if (active) {
            // dL/dz[t-1] of neuron k = h through the recurrent current of step t: sum_i gx[t, i] W_rec[i, k]
            float s = 0.0f;
            for (int i = 0; i < H; ++i) s += gxs[i] * w_rec[(long long)i * H + h];
            gz_mm = s;
        }
        __syncthreads();  // before gxs is overwritten
    }
    if (active) {
        gz[n] = gz_mm + gz_own; g1[n] = gu; g2[n] = gw;
#if MODEL == 1
        g3[n] = gq;
#endif
        gp1[n] = ga; gp2[n] = gb;
    }
}
#endif
"""


@lru_cache(maxsize=None)
def resonate_source(model: str, strict: bool = True, engine: str = "cupy") -> str:
    """CUDA source (step and scan kernels) of one model (``rf``, ``brf``, ``alif``) and spike condition."""
    if model not in MODELS:
        raise ValueError(f"model={model!r}; expected one of {sorted(MODELS)}")
    defines = {"MODEL": MODELS[model], "STRICT": strict, "CHUNK": 4}
    head = "".join(f"#define {k} {int(v)}\n" for k, v in defines.items())
    return f"// reprolib fused {model} step / scan, storage float32\n{head}{dispatch.common_source(engine)}{_BODY}"


def resonate_option_sets():
    for model in MODELS:
        for strict in (False, True):
            yield dict(model=model, strict=strict)


def _surrogate_scalars(spike_fn) -> tuple[bool, tuple[float, ...]]:
    """``(strict, constants)`` of a :class:`reprolib.surrogate.DoubleGaussian`, as its derivative computes them."""
    import math  # noqa: PLC0415

    from reprolib import surrogate as sgmod  # noqa: PLC0415

    if type(spike_fn) is not sgmod.DoubleGaussian or not spike_fn.spiking:
        raise KernelUnsupported(f"spike function {spike_fn!r} has no fused RF/BRF/ALIF kernel (the BRF "
                                "DoubleGaussian does); use backend='torch'")
    n1 = spike_fn.sigma1 * math.sqrt(2.0 * math.pi)
    n2 = spike_fn.sigma2 * math.sqrt(2.0 * math.pi)
    r = dispatch.f32_reciprocal
    return spike_fn.strict, (1.0 + spike_fn.p, spike_fn.sigma1, r(spike_fn.sigma1), n1, r(n1),
                             2.0 * spike_fn.p, spike_fn.sigma2, r(spike_fn.sigma2), n2, r(n2), spike_fn.gain)


class _Prepared(NamedTuple):
    model: str
    source: str
    engine: object
    p1: Tensor
    p2: Tensor
    P: int
    scalars: tuple
    strict: bool


def _prepare(model: str, params, state_shape, device, engine: str) -> _Prepared:
    """Per-sequence quantities in PyTorch (autograd keeps their link to the raw parameters)."""
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    strict, sg = _surrogate_scalars(params.spike_fn)
    if model == "alif":
        alpha = torch.exp(-1.0 / torch.abs(params.tau_mem))
        rho = torch.exp(-1.0 / torch.abs(params.tau_adp))
        pa, pb = alpha, rho
        consts = (float(params.theta0), float(params.beta), 0.0)
    else:
        pa, pb = R.frequency_and_damping(params, balanced=model == "brf")  # what the PyTorch step uses
        consts = (float(params.dt), float(params.theta), float(params.gamma))
    pa, pb = torch.broadcast_tensors(torch.as_tensor(pa, device=device), torch.as_tensor(pb, device=device))
    p1, P = dispatch.param_period(pa, state_shape, torch.float32, device, "parameter")
    p2, _ = dispatch.param_period(pb, state_shape, torch.float32, device, "parameter")
    source = resonate_source(model, bool(strict), engine)
    # "cpp": the recurrent layer runs reprolib.kernels.cpu's whole-sequence loops; the feed-forward scans are
    # already whole-sequence loops, run by the optimised C++ build of the kernel source
    runner = dispatch.get_engine(engine)
    return _Prepared(model, source, runner, p1, p2, P, consts + sg, bool(strict))


def _check_engine(x: Tensor, engine: str) -> None:
    if engine == "cupy":
        dispatch.resolve_backend("cupy", x)
    elif engine == "cpp":
        from reprolib.kernels import cpu  # noqa: PLC0415

        cpu.check_input(x)
    elif x.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"dtype {x.dtype} is not supported by the fused kernels")


def _initial_state(model: str, state, shape, device) -> list[Tensor]:
    """The kernels' four state slots ``(z, s1, s2, s3)`` as flat float32 tensors of ``shape``.

    RF / BRF: ``(z, u, v, q)``; ALIF: ``(z, u, a, -)`` (the fourth slot is unused and gets ``z``).
    """
    if model == "alif":
        slots = (state.z, state.u, state.a, state.z)
    else:
        slots = (state.z, state.u, state.v, state.q)
    return [dispatch.flat(torch.as_tensor(s, device=device).float().expand(shape)) for s in slots]


def _final_states(z_seq: Tensor, s1_seq: Tensor, s2_seq: Tensor, s3_seq: Tensor | None, s30: Tensor) -> list[Tensor]:
    """The last step's ``(z, s1, s2, s3)``; ``s3`` is carried unchanged (``s30``) where the model has none."""
    return [z_seq[-1].clone(), s1_seq[-1].clone(), s2_seq[-1].clone(),
            s3_seq[-1].clone() if s3_seq is not None else s30.clone()]


def _to_dtype(dtype, tensors) -> list[Tensor]:
    """The kernels' float32 outputs back in the input's ``dtype``."""
    return [t.to(dtype) if dtype != torch.float32 else t for t in tensors]


def _result_state(model: str, state, z: Tensor, s1: Tensor, s2: Tensor, s3: Tensor):
    """The state NamedTuple of :mod:`reprolib.neurons.resonate` from the kernels' final slots."""
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    if model == "alif":
        return R.ALIFState(z, s1, s2)
    if model == "rf":
        return R.RFState(z, s1, s2, state.q)
    return R.RFState(z, s1, s2, s3)


# --------------------------------------------------------------------------------------------------
# recurrent layer: per step one matmul + one fused kernel


class _RecurrentLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cur, w_rec_t, z0, s10, s20, s30, p1, p2, prep: _Prepared):
        T, B, H = cur.shape
        N = B * H
        eng, src, P, sc = prep.engine, prep.source, prep.P, prep.scalars
        z_seq = torch.empty_like(cur)
        s1_seq, s2_seq = torch.empty_like(cur), torch.empty_like(cur)
        s3_seq = torch.empty_like(cur) if prep.model == "brf" else None
        x_seq = torch.empty_like(cur) if prep.model == "alif" else None
        zp, a, b, c = z0, s10, s20, s30
        # float32 matmuls whatever the caller's autocast: the kernel reads rec as float (a half result of an
        # autocast matmul would be read past its end)
        with torch.autocast(device_type=cur.device.type, enabled=False):
            for t in range(T):
                rec = zp.view(B, H) @ w_rec_t
                eng.launch(src, RESONATE_SPECS, "step_forward", N, BLOCK_ELEMENTWISE,
                           (cur[t], rec, zp, a, b, c, p1, p2, z_seq[t], s1_seq[t], s2_seq[t],
                            None if s3_seq is None else s3_seq[t], None if x_seq is None else x_seq[t], N, P) + sc)
                zp, a, b = z_seq[t], s1_seq[t], s2_seq[t]
                c = s3_seq[t] if s3_seq is not None else s30
        return _save_recurrent(ctx, prep, (w_rec_t, z0, s10, s20, s30, p1, p2), z_seq, s1_seq, s2_seq, s3_seq, x_seq)

    @staticmethod
    def backward(ctx, g_zseq, g_z, g_1, g_2, g_3):
        prep = ctx.prep
        w_rec_t, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq, x_seq = _saved_recurrent(ctx)
        T, B, H = z_seq.shape
        N = B * H
        eng, src, P, sc = prep.engine, prep.source, prep.P, prep.scalars
        g_zseq = g_zseq.contiguous()
        gx = torch.empty_like(z_seq)
        gz_mm = g_z.contiguous().view(-1).clone()
        gz_own = torch.zeros_like(gz_mm)
        g1, g2 = g_1.contiguous().view(-1).clone(), g_2.contiguous().view(-1).clone()
        g3 = g_3.contiguous().view(-1).clone()
        gp1, gp2 = torch.zeros_like(gz_mm), torch.zeros_like(gz_mm)
        w_rec = w_rec_t.t()
        for t in range(T - 1, -1, -1):
            prev = t > 0
            eng.launch(src, RESONATE_SPECS, "step_backward", N, BLOCK_ELEMENTWISE,
                       (None if x_seq is None else x_seq[t], z_seq[t - 1] if prev else z0,
                        s1_seq[t - 1] if prev else s10, s2_seq[t - 1] if prev else s20,
                        (s3_seq[t - 1] if prev else s30) if s3_seq is not None else None, s1_seq[t], p1, p2,
                        g_zseq[t], gz_mm, gz_own, g1, g2, g3, gx[t], gp1, gp2, N, P) + sc)
            # dL/dz[t-1] through this step's recurrent input rec[t] = z[t-1] W_rec^T
            gz_mm = (gx[t] @ w_rec).view(-1)
        return _recurrent_grads(prep, z0, z_seq, gx, gz_mm + gz_own, g1, g2, g3, g_3, gp1, gp2)


def _save_recurrent(ctx, prep: _Prepared, inputs: tuple, z_seq, s1_seq, s2_seq, s3_seq, x_seq):
    """Save what the backward needs (absent sequences as a placeholder) and return the layer's outputs."""
    w_rec_t, z0, s10, s20, s30, p1, p2 = inputs
    ctx.prep = prep
    ctx.save_for_backward(w_rec_t, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq,
                          s3_seq if s3_seq is not None else z0, x_seq if x_seq is not None else z0)
    return (z_seq, *_final_states(z_seq, s1_seq, s2_seq, s3_seq, s30))


def _saved_recurrent(ctx) -> list:
    """The saved tensors of :func:`_save_recurrent`, with ``None`` for the model's absent sequences."""
    saved = list(ctx.saved_tensors)
    if ctx.prep.model != "brf":
        saved[10] = None
    if ctx.prep.model != "alif":
        saved[11] = None
    return saved


def _recurrent_grads(prep: _Prepared, z0, z_seq, gx, gz0, g1, g2, g3, g_3_in, gp1, gp2) -> tuple:
    """The backward's return tuple, with ``dL/dW_rec^T = sum_t z[t-1]^T gx[t]`` as one GEMM over all steps."""
    T, B, H = z_seq.shape
    g_w = z0.view(B, H).t() @ gx[0]
    if T > 1:
        g_w = g_w + z_seq[:-1].reshape(-1, H).t() @ gx[1:].reshape(-1, H)
    if prep.model != "brf":
        g3 = g_3_in.contiguous().view(-1)  # RF / ALIF carry q unchanged
    return (gx, g_w, gz0, g1, g2, g3, dispatch.reduce_period(gp1, prep.P), dispatch.reduce_period(gp2, prep.P), None)


# --------------------------------------------------------------------------------------------------
# recurrent layer: the whole sequence in one call per direction (C++ on the CPU, one launch on the GPU)


def sequence_kernel_enabled(hidden: int) -> bool:
    """Whether ``engine="cupy"`` runs the one-launch layer (one block per sample) rather than one launch per
    step: for ``hidden <= 1024`` unless ``REPROLIB_RSNN_KERNEL=step``."""
    import os  # noqa: PLC0415

    choice = os.environ.get("REPROLIB_RSNN_KERNEL", "sequence")
    if choice not in ("sequence", "step"):
        raise ValueError(f"REPROLIB_RSNN_KERNEL={choice!r} is invalid; expected 'sequence' or 'step'")
    return choice == "sequence" and hidden <= SEQUENCE_MAX_HIDDEN


def _block_size(H: int) -> int:
    return min(SEQUENCE_MAX_HIDDEN, (H + 31) // 32 * 32)


def _cuda_sequence_forward(prep: _Prepared, cur, w_rec_t, z0, s10, s20, s30):
    T, B, H = cur.shape
    z_seq, s1_seq, s2_seq = torch.empty_like(cur), torch.empty_like(cur), torch.empty_like(cur)
    s3_seq = torch.empty_like(cur) if prep.model == "brf" else None
    x_seq = torch.empty_like(cur) if prep.model == "alif" else None
    block = _block_size(H)
    prep.engine.launch(prep.source, SEQUENCE_SPECS, "seq_forward_block", B * block, block,
                       (cur, w_rec_t.contiguous(), z0, s10, s20, s30, prep.p1, prep.p2, z_seq, s1_seq, s2_seq, s3_seq,
                        x_seq, T, B, H, prep.P) + prep.scalars[:3])
    return z_seq, s1_seq, s2_seq, s3_seq, x_seq


def _cuda_sequence_backward(prep: _Prepared, saved, g_zseq, g_z, g_1, g_2, g_3):
    w_rec_t, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq, x_seq = saved
    T, B, H = z_seq.shape
    gx, gz, g1, g2, g3, gp1, gp2 = sequence_backward_buffers(z_seq, g_z, g_1, g_2, g_3)
    block = _block_size(H)
    prep.engine.launch(prep.source, SEQUENCE_SPECS, "seq_backward_block", B * block, block,
                       (x_seq, w_rec_t.t().contiguous(), z0, s10, s20, s30, z_seq, s1_seq, s2_seq, s3_seq, p1, p2,
                        g_zseq.contiguous(), gz, g1, g2, g3, gx, gp1, gp2, T, B, H, prep.P) + prep.scalars)
    return gx, gz, g1, g2, g3, gp1, gp2


def sequence_backward_buffers(z_seq, g_z, g_1, g_2, g_3):
    """The whole-sequence backward's buffers: ``gx`` (out), flat copies of the final-state gradients that the
    scan overwrites with the initial-state ones (``gz, g1, g2, g3``), and the per-element parameter sums."""
    gz = g_z.contiguous().view(-1).clone()
    g1, g2 = g_1.contiguous().view(-1).clone(), g_2.contiguous().view(-1).clone()
    g3 = g_3.contiguous().view(-1).clone()
    return torch.empty_like(z_seq), gz, g1, g2, g3, torch.empty_like(gz), torch.empty_like(gz)


def _sequence_impl(prep: _Prepared):
    if prep.engine.name in ("cupy", "emulate-threads"):
        return _cuda_sequence_forward, _cuda_sequence_backward
    from reprolib.kernels import cpu  # noqa: PLC0415

    return cpu.sequence_forward, cpu.sequence_backward


class _RecurrentSequence(torch.autograd.Function):
    """The recurrent layer as one forward and one backward call: :mod:`reprolib.kernels.cpu` on CPU tensors,
    ``seq_forward_block`` / ``seq_backward_block`` on CUDA tensors (inputs as :class:`_RecurrentLayer`)."""

    @staticmethod
    def forward(ctx, cur, w_rec_t, z0, s10, s20, s30, p1, p2, prep: _Prepared):
        forward_impl, _ = _sequence_impl(prep)
        z_seq, s1_seq, s2_seq, s3_seq, x_seq = forward_impl(prep, cur, w_rec_t, z0, s10, s20, s30)
        return _save_recurrent(ctx, prep, (w_rec_t, z0, s10, s20, s30, p1, p2), z_seq, s1_seq, s2_seq, s3_seq, x_seq)

    @staticmethod
    def backward(ctx, g_zseq, g_z, g_1, g_2, g_3):
        _, backward_impl = _sequence_impl(ctx.prep)
        saved = _saved_recurrent(ctx)
        gx, gz0, g1, g2, g3, gp1, gp2 = backward_impl(ctx.prep, saved, g_zseq, g_z, g_1, g_2, g_3)
        return _recurrent_grads(ctx.prep, saved[1], saved[7], gx, gz0, g1, g2, g3, g_3, gp1, gp2)


def _recurrent(model: str, x_seq: Tensor, weight: Tensor, state, params, bias, engine: str):
    if not isinstance(x_seq, Tensor) or x_seq.dim() != 3 or weight.shape[1] != x_seq.shape[-1] + weight.shape[0]:
        shape = tuple(x_seq.shape) if isinstance(x_seq, Tensor) else type(x_seq).__name__
        raise ValueError(f"x_seq {shape} with weight {tuple(weight.shape)} is invalid; "
                         "expected x_seq [T, B, m] and weight [h, m + h]")
    _check_engine(x_seq, engine)
    dtype, device = x_seq.dtype, x_seq.device
    T, B, m = x_seq.shape
    H = weight.shape[0]
    # the input part of W [x, z] for all steps at once, as the PyTorch loop does
    cur = x_seq @ weight[:, :m].t()
    if bias is not None:
        cur = cur + bias
    cur = cur.float().contiguous()
    # the same (transposed, strided) view of W_rec as the PyTorch loop: cuBLAS then runs the same GEMM and
    # the recurrent currents agree bit for bit
    w_rec_t = weight[:, m:].t().float()
    shape = (B, H)
    prep = _prepare(model, params, torch.Size(shape), device, engine)
    init = _initial_state(model, state, shape, device)
    # "emulate-threads" runs the one-launch GPU kernels on the CPU with real block barriers (tests)
    if engine in ("cpp", "emulate-threads") or (engine == "cupy" and sequence_kernel_enabled(H)):
        z_seq, z, s1, s2, s3 = _RecurrentSequence.apply(cur, w_rec_t, *init, prep.p1, prep.p2, prep)
    else:
        z_seq, z, s1, s2, s3 = _RecurrentLayer.apply(cur, w_rec_t, *init, prep.p1, prep.p2, prep)
    out = _to_dtype(dtype, (z_seq, z, s1, s2, s3))
    return out[0], _result_state(model, state, *(t.view(shape) for t in out[1:]))


def brf_multistep(x_seq, weight, state, params, bias=None, *, engine: str = "cupy"):
    """Fused recurrent BRF layer; drop-in for :func:`reprolib.neurons.resonate.brf_multistep`."""
    return _recurrent("brf", x_seq, weight, state, params, bias, engine)


def rf_multistep(x_seq, weight, state, params, bias=None, *, engine: str = "cupy"):
    """Fused recurrent vanilla-RF layer; drop-in for :func:`reprolib.neurons.resonate.rf_multistep`."""
    return _recurrent("rf", x_seq, weight, state, params, bias, engine)


def alif_multistep(x_seq, weight, state, params, bias=None, *, engine: str = "cupy"):
    """Fused recurrent ALIF layer; drop-in for :func:`reprolib.neurons.resonate.alif_multistep`."""
    return _recurrent("alif", x_seq, weight, state, params, bias, engine)


def _auto(model: str):
    def run(x_seq, weight, state, params, bias=None):
        from reprolib.neurons import resonate as R  # noqa: PLC0415

        torch_fn = {"brf": R.brf_multistep, "rf": R.rf_multistep, "alif": R.alif_multistep}[model]
        if dispatch.resolve_backend("auto", x_seq) == "cupy":
            try:
                _surrogate_scalars(params.spike_fn)
            except KernelUnsupported:
                return torch_fn(x_seq, weight, state, params, bias)
            return _recurrent(model, x_seq, weight, state, params, bias, "cupy")
        return torch_fn(x_seq, weight, state, params, bias)

    run.__name__ = f"{model}_multistep_auto"
    run.__doc__ = f"``backend='auto'`` for the recurrent {model.upper()} layer: fused on CUDA with CuPy, else PyTorch."
    return run


def _cpp(model: str):
    def run(x_seq, weight, state, params, bias=None):
        return _recurrent(model, x_seq, weight, state, params, bias, "cpp")

    run.__name__ = f"{model}_multistep_cpp"
    run.__doc__ = (f"``backend='cpp'`` for the recurrent {model.upper()} layer: the whole sequence in one C++ call "
                   "forward and one backward, on CPU tensors (see :mod:`reprolib.kernels.cpu`).")
    return run


brf_multistep_cpp = _cpp("brf")
rf_multistep_cpp = _cpp("rf")
alif_multistep_cpp = _cpp("alif")
brf_multistep_auto = _auto("brf")
rf_multistep_auto = _auto("rf")
alif_multistep_auto = _auto("alif")


# --------------------------------------------------------------------------------------------------
# feed-forward multi-step neuron (input current known for all steps): one scan kernel


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2, z0, s10, s20, s30, p1, p2, prep: _Prepared):
        T, N = x2.shape
        z_seq, s1_seq, s2_seq = torch.empty_like(x2), torch.empty_like(x2), torch.empty_like(x2)
        s3_seq = torch.empty_like(x2) if prep.model == "brf" else None
        prep.engine.launch(prep.source, RESONATE_SPECS, "scan_forward", N, BLOCK_SCAN,
                           (x2, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq, T, N, prep.P) + prep.scalars)
        ctx.prep = prep
        ctx.save_for_backward(x2, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq,
                              s3_seq if s3_seq is not None else z0)
        return (z_seq, *_final_states(z_seq, s1_seq, s2_seq, s3_seq, s30))

    @staticmethod
    def backward(ctx, g_zseq, g_z, g_1, g_2, g_3):
        prep = ctx.prep
        x2, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq = ctx.saved_tensors
        T, N = x2.shape
        gz = g_z.contiguous().clone()
        g1, g2 = g_1.contiguous().clone(), g_2.contiguous().clone()
        g3 = g_3.contiguous().clone()
        gx = torch.empty_like(x2)
        gp1, gp2 = torch.empty_like(z0), torch.empty_like(z0)
        prep.engine.launch(prep.source, RESONATE_SPECS, "scan_backward", N, BLOCK_SCAN,
                           (x2, z0, s10, s20, s30, z_seq, s1_seq, s2_seq, s3_seq, p1, p2, g_zseq.contiguous(),
                            gz, g1, g2, g3, gx, gp1, gp2, T, N, prep.P) + prep.scalars)
        if prep.model == "rf":
            g3 = g_3
        if prep.model != "alif":
            gz = torch.zeros_like(gz)  # RF / BRF do not use their own previous spike
        return (gx, gz, g1, g2, g3, dispatch.reduce_period(gp1, prep.P), dispatch.reduce_period(gp2, prep.P), None)


class _CpuScan(torch.autograd.Function):
    """``engine="cpp"``: the scan as the C++ whole-sequence loops of :mod:`reprolib.kernels.cpu` without a
    recurrent matrix (time outside, the neurons inside), one "sample" of all ``N`` neurons. The emulated
    kernel order (each neuron through time, a stride of ``N``) is the ``"emulate"`` engine's."""

    @staticmethod
    def forward(ctx, x2, z0, s10, s20, s30, p1, p2, prep: _Prepared):
        from reprolib.kernels import cpu  # noqa: PLC0415

        T, N = x2.shape
        z_seq, s1_seq, s2_seq, s3_seq, x_seq = cpu.sequence_forward(prep, x2.view(T, 1, N), None, z0, s10, s20, s30)
        ctx.prep, ctx.has = prep, (s3_seq is not None, x_seq is not None)
        ctx.save_for_backward(z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq,
                              s3_seq if s3_seq is not None else z0, x_seq if x_seq is not None else z0)
        flat = [t.view(T, N) if t is not None else None for t in (z_seq, s1_seq, s2_seq, s3_seq)]
        return (flat[0], *_final_states(*flat, s30))

    @staticmethod
    def backward(ctx, g_zseq, g_z, g_1, g_2, g_3):
        from reprolib.kernels import cpu  # noqa: PLC0415

        z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq, x_seq = ctx.saved_tensors
        saved = (None, z0, s10, s20, s30, p1, p2, z_seq, s1_seq, s2_seq, s3_seq if ctx.has[0] else None,
                 x_seq if ctx.has[1] else None)
        T, N = g_zseq.shape
        gx, gz, g1, g2, g3, gp1, gp2 = cpu.sequence_backward(ctx.prep, saved, g_zseq.view(T, 1, N), g_z, g_1, g_2, g_3)
        if ctx.prep.model != "brf":
            g3 = g_3  # RF / ALIF carry q unchanged
        return (gx.view(T, N), gz, g1, g2, g3, dispatch.reduce_period(gp1, ctx.prep.P),
                dispatch.reduce_period(gp2, ctx.prep.P), None)


def _scan(model: str, current_seq: Tensor, state, params, engine: str):
    if not isinstance(current_seq, Tensor) or current_seq.dim() < 2 or current_seq.shape[0] < 1:
        shape = tuple(current_seq.shape) if isinstance(current_seq, Tensor) else type(current_seq).__name__
        raise ValueError(f"current_seq {shape} is invalid; expected [T, B, ...] with T >= 1")
    _check_engine(current_seq, engine)
    dtype, device = current_seq.dtype, current_seq.device
    shape = current_seq.shape[1:]
    prep = _prepare(model, params, shape, device, engine)
    init = _initial_state(model, state, shape, device)
    x2 = current_seq.float().contiguous().view(current_seq.shape[0], -1)
    scan = _CpuScan if engine == "cpp" else _Scan
    z_seq, z, s1, s2, s3 = scan.apply(x2, *init, prep.p1, prep.p2, prep)
    out = _to_dtype(dtype, (z_seq, z, s1, s2, s3))
    return out[0].view(current_seq.shape), _result_state(model, state, *(t.view(shape) for t in out[1:]))


def brf_scan(current_seq, state, params, *, engine: str = "cupy"):
    """BRF neurons driven by a known input current ``[T, B, ...]`` (no recurrent matrix): one scan kernel.

    Same result as looping :func:`reprolib.neurons.resonate.brf_step` over time; returns ``(z_seq, RFState)``.
    """
    return _scan("brf", current_seq, state, params, engine)


def rf_scan(current_seq, state, params, *, engine: str = "cupy"):
    """RF neurons driven by a known input current (see :func:`brf_scan`)."""
    return _scan("rf", current_seq, state, params, engine)


def alif_scan(current_seq, state, params, *, engine: str = "cupy"):
    """ALIF neurons driven by a known input current (see :func:`brf_scan`); ``(z_seq, ALIFState)``."""
    return _scan("alif", current_seq, state, params, engine)
