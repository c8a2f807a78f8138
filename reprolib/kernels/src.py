"""Fused Spiking Recurrent Cell (SRC) recurrence: the whole time loop after the input matmul in one scan.

Drop-in for :func:`reprolib.neurons.src.src_multistep` (``(I_seq [T, B, N], SRCState, SRCParameters) ->
(s_seq, SRCState)``), paper Eq. 5a-5f (reference ``src-paper.md`` section 2): integrator ``i``, squashed input
``x = rho tanh(i / rho)``, fast ``h``, slow ``h_s`` with the voltage-dependent ``z_s`` (from ``h[t-1]`` or
``h[t]``), output ``ReLU(h)``; options ``relu_bypass`` (identity backward of the ReLU) and
``detach_recurrence`` (no gradient through the ``h`` / ``h_s`` recurrences). ``b_h`` is a per-neuron tensor (or a
float) and gets its gradient; with ``noise_sigma > 0`` the random gains of every step are drawn on the host in
one call (the PyTorch loop draws the same numbers) and read by both scans.

One thread per neuron; the forward writes ``s``, ``h`` and ``y = tanh(i / rho)`` (backward needs ``h`` for the
tanh and ReLU derivatives and ``z_s``, ``y`` for the squashing); the backward scans in reverse and accumulates
the bias gradient in a register.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from reprolib.kernels import dispatch
from reprolib.kernels.dispatch import BLOCK_SCAN, KernelSpec, KernelUnsupported

__all__ = ["SRC_SPECS", "src_source", "src_option_sets", "src_multistep", "src_multistep_auto", "src_multistep_cpp"]

CHUNK = 4

_SCALARS = (("float", "alpha"), ("float", "rho"), ("float", "inv_rho"), ("float", "r"), ("float", "r_s"),
            ("float", "zs_hyp"), ("float", "zs_delta"), ("float", "zs_th"), ("float", "sigma"))

SRC_SPECS = (
    KernelSpec(
        "src_forward",
        (("const float*", "I"), ("const float*", "i0"), ("const float*", "h0"), ("const float*", "hs0"),
         ("const float*", "b"), ("const float*", "noise"), ("float*", "s_out"), ("float*", "h_seq"), ("float*", "y_seq"),
         ("float*", "i_last"), ("float*", "h_last"), ("float*", "hs_last"), ("int", "T"), ("int", "N"), ("int", "P"))
        + _SCALARS,
    ),
    KernelSpec(
        "src_backward",
        (("const float*", "grad_s"), ("const float*", "grad_i_last"), ("const float*", "grad_h_last"),
         ("const float*", "grad_hs_last"), ("const float*", "h_seq"), ("const float*", "y_seq"),
         ("const float*", "h0"), ("const float*", "noise"), ("float*", "grad_I"), ("float*", "grad_i0"), ("float*", "grad_h0"),
         ("float*", "grad_hs0"), ("float*", "grad_b"), ("int", "T"), ("int", "N"), ("int", "P"))
        + _SCALARS,
    ),
)

_BODY = r"""
#ifndef SRC_TANH
#define SRC_TANH tanhf
#endif
// noisy gains (Sec. 4.5.3): r + sigma n[t, 0], r_s + sigma n[t, 1], noise [T, 2, N] drawn by the host
#if NOISE
#define GAIN_R(t) (r + sigma * noise[((long long)(t) * 2) * N + n])
#define GAIN_RS(t) (r_s + sigma * noise[((long long)(t) * 2 + 1) * N + n])
#else
#define GAIN_R(t) r
#define GAIN_RS(t) r_s
#endif

__device__ __forceinline__ float zs_of(const float h, const float zs_hyp, const float zs_delta, const float zs_th) {
    return zs_hyp + zs_delta * (h > zs_th ? 1.0f : 0.0f);
}

// one forward step of one neuron (5a-5f), op for op as src_step; returns y = tanh(i / rho), which the backward
// needs. SRC_TANH is tanhf, or on the CPU scan a vectorisable tanh (rl_tanhf)
__device__ __forceinline__ float src_fwd_step(const float in, const float gain_r, const float gain_rs,
                                              const float bias, float& i, float& h, float& hs, const float alpha,
                                              const float rho, const float inv_rho, const float zs_hyp,
                                              const float zs_delta, const float zs_th) {
    i = alpha * i + in;                                                 // (5a)
    const float y = SRC_TANH(SCALAR_DIV(i, rho, inv_rho));
    const float x = rho * y;                                            // (5b)
    const float h_new = SRC_TANH(x + gain_r * h + gain_rs * hs + bias); // (5d), z = 0
#if ZS_FROM_CURRENT
    const float zs = zs_of(h_new, zs_hyp, zs_delta, zs_th);
#else
    const float zs = zs_of(h, zs_hyp, zs_delta, zs_th);                 // (5c) from h[t-1]
#endif
    hs = zs * hs + (1.0f - zs) * h;                                     // (5e) uses h[t-1]
    h = h_new;
    return y;
}

// one reverse step of one neuron: dL/dI[t] from dL/ds[t] (gs), h[t], y[t], h[t-1]; carries gi, gh, ghs back
// one step and adds the bias gradient to gb
__device__ __forceinline__ float src_bwd_step(const float gs, const float h, const float y, const float h_prev,
                                              const float gain_r, const float gain_rs, float& gi, float& gh,
                                              float& ghs, float& gb, const float alpha, const float rho,
                                              const float inv_rho, const float zs_hyp, const float zs_delta,
                                              const float zs_th) {
#if RELU_BYPASS
    const float dh = gs + gh;
#else
    const float dh = (h > 0.0f ? gs : 0.0f) + gh;
#endif
    const float dpre = dh * (1.0f - h * h);                             // tanh' of (5d)
    gb += dpre;
    // x = rho * y, y = tanh(i / rho)
    const float di = SCALAR_DIV((dpre * rho) * (1.0f - y * y), rho, inv_rho) + gi;
    gi = alpha * di;
#if DETACH
    gh = 0.0f;
#else
#if ZS_FROM_CURRENT
    const float zs = zs_of(h, zs_hyp, zs_delta, zs_th);
#else
    const float zs = zs_of(h_prev, zs_hyp, zs_delta, zs_th);
#endif
    gh = dpre * gain_r + ghs * (1.0f - zs);
    ghs = dpre * gain_rs + ghs * zs;
#endif
    return di;
}

extern "C" __global__ void src_forward(const float* __restrict__ I, const float* __restrict__ i0,
                                       const float* __restrict__ h0, const float* __restrict__ hs0,
                                       const float* __restrict__ b, const float* __restrict__ noise,
                                       float* __restrict__ s_out,
                                       float* __restrict__ h_seq, float* __restrict__ y_seq,
                                       float* __restrict__ i_last, float* __restrict__ h_last,
                                       float* __restrict__ hs_last, const int T, const int N, const int P,
                                       const float alpha, const float rho, const float inv_rho, const float r,
                                       const float r_s, const float zs_hyp, const float zs_delta, const float zs_th,
                                       const float sigma) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const bool save = h_seq != 0;
    const float bias = b[n % P];
    float i = i0[n], h = h0[n], hs = hs0[n];
    for (int t0 = 0; t0 < T; t0 += CHUNK) {
        float in[CHUNK];
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t0 + k;
            in[k] = t < T ? I[(long long)t * N + n] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t0 + k;
            if (t < T) {
                const long long e = (long long)t * N + n;
                const float y = src_fwd_step(in[k], GAIN_R(t), GAIN_RS(t), bias, i, h, hs, alpha, rho, inv_rho,
                                             zs_hyp, zs_delta, zs_th);
                s_out[e] = h > 0.0f ? h : 0.0f;                         // (5f)
                if (save) { h_seq[e] = h; y_seq[e] = y; }
            }
        }
    }
    i_last[n] = i; h_last[n] = h; hs_last[n] = hs;
}

extern "C" __global__ void src_backward(const float* __restrict__ grad_s, const float* __restrict__ grad_i_last,
                                        const float* __restrict__ grad_h_last, const float* __restrict__ grad_hs_last,
                                        const float* __restrict__ h_seq, const float* __restrict__ y_seq,
                                        const float* __restrict__ h0, const float* __restrict__ noise,
                                        float* __restrict__ grad_I,
                                        float* __restrict__ grad_i0, float* __restrict__ grad_h0,
                                        float* __restrict__ grad_hs0, float* __restrict__ grad_b,
                                        const int T, const int N, const int P,
                                        const float alpha, const float rho, const float inv_rho, const float r,
                                        const float r_s, const float zs_hyp, const float zs_delta, const float zs_th,
                                        const float sigma) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    float gi = grad_i_last[n];   // dL/di[t] arriving from step t+1 (alpha * ...) and the final state
    float gh = grad_h_last[n];   // dL/dh[t] from the recurrences (and the final state)
    float ghs = grad_hs_last[n]; // dL/dhs[t] (stays unused with DETACH)
    float gb = 0.0f;
    for (int t1 = T - 1; t1 >= 0; t1 -= CHUNK) {
        float hk[CHUNK], yk[CHUNK], gk[CHUNK];
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t1 - k;
            const long long e = (long long)t * N + n;
            hk[k] = t >= 0 ? h_seq[e] : 0.0f;
            yk[k] = t >= 0 ? y_seq[e] : 0.0f;
            gk[k] = t >= 0 ? grad_s[e] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t1 - k;
            if (t >= 0) {
#if DETACH || ZS_FROM_CURRENT
                const float h_prev = 0.0f;  // not read
#else
                const float h_prev = t > 0 ? h_seq[(long long)(t - 1) * N + n] : h0[n];
#endif
                grad_I[(long long)t * N + n] = src_bwd_step(gk[k], hk[k], yk[k], h_prev, GAIN_R(t), GAIN_RS(t), gi, gh,
                                                            ghs, gb, alpha, rho, inv_rho, zs_hyp, zs_delta, zs_th);
            }
        }
    }
    grad_i0[n] = gi;
    grad_b[n] = gb;
#if DETACH
    grad_h0[n] = 0.0f;
    grad_hs0[n] = 0.0f;
#else
    grad_h0[n] = gh;
    grad_hs0[n] = ghs;
#endif
}
"""


# ------------------------------------------------------------------------------------------ CPU scan (cpp)

# tanh on the CPU scan. glibc's scalar tanhf stops the compiler from vectorising the neuron loop (and its vector
# version needs glibc >= 2.35 and -ffast-math), so: tanh(x) = x P(s) / Q(s), s = x^2 / 9.1^2, a (5, 5) rational
# fitted here to tanh(x) / x on [0, 9.1] (max relative error 1.3e-10, evaluated in double, far below float's
# 6e-8), and +-1 beyond 9.1 where tanhf rounds to 1 anyway. NaN stays NaN.
_CPU_TANH = r"""
static inline float rl_tanhf(const float v) {
    const double x = (double)v;
    const double a = fabs(x) > 9.1 ? 9.1 : fabs(x);
    const double s = a * a * (1.0 / (9.1 * 9.1));
    const double p = 0.9999999999892201 + s * (11.679362885354195 + s * (30.39284735817582
                     + s * (24.094688206092723 + s * (5.269521327377923 + s * 0.14516731342695005))));
    const double q = 1.0 + s * (39.282696200734215 + s * (200.39339464811346 + s * (285.0740147178356
                     + s * (123.1244833881512 + s * 11.617869953107649))));
    return (float)copysign(a * p / q, x);
}
#define SRC_TANH rl_tanhf
"""

# The CUDA kernels give each neuron a thread that walks through time. Compiled as C++ that order reads memory
# with a stride of N floats and calls tanhf one value at a time (5x slower than PyTorch's loop when measured at 77c20ce). This scan
# walks through time outside and through the neurons inside (contiguous, vectorised), with the same step
# functions (x86-64 gets an AVX2 clone: dispatch.CPU_SCAN_HEAD).
_CPU_HOST = r"""
// i, h, hs: in the initial state, out the final one; h_seq, y_seq: saved for the backward, or (without
// gradients) one row of scratch each (no branch in the inner loop, which would stop its vectorisation)
extern "C" RL_CLONES void src_scan_forward(const float* __restrict I, const float* __restrict b,
                                           const float* __restrict noise, float* __restrict s_out,
                                           float* __restrict h_seq, float* __restrict y_seq, float* __restrict i_st,
                                           float* __restrict h_st, float* __restrict hs_st, const int T,
                                           const long long N, const int P, const float alpha, const float rho,
                                           const float inv_rho, const float r, const float r_s, const float zs_hyp,
                                           const float zs_delta, const float zs_th, const float sigma,
                                           const int save) {
    for (int t = 0; t < T; ++t) {
        const long long o = (long long)t * N, os = save ? o : 0;
        for (long long base = 0; base < N; base += P) {
            for (int j = 0; j < P; ++j) {
                const long long n = base + j;
                float i = i_st[n], h = h_st[n], hs = hs_st[n];
                const float y = src_fwd_step(I[o + n], GAIN_R(t), GAIN_RS(t), b[j], i, h, hs, alpha, rho, inv_rho,
                                             zs_hyp, zs_delta, zs_th);
                i_st[n] = i; h_st[n] = h; hs_st[n] = hs;
                s_out[o + n] = h > 0.0f ? h : 0.0f;                     // (5f)
                h_seq[os + n] = h; y_seq[os + n] = y;
            }
        }
    }
}

// gi, gh, ghs: in dL/d(final state), out dL/d(initial state) (gh, ghs meaningless with DETACH);
// gb: per-element bias gradient, summed over t in reverse order as the CUDA kernel sums it
extern "C" RL_CLONES void src_scan_backward(const float* __restrict grad_s, const float* __restrict h_seq,
                                            const float* __restrict y_seq, const float* __restrict h0,
                                            const float* __restrict noise, float* __restrict grad_I,
                                            float* __restrict gi_st, float* __restrict gh_st,
                                            float* __restrict ghs_st, float* __restrict gb_st, const int T,
                                            const long long N, const int P, const float alpha, const float rho,
                                            const float inv_rho, const float r, const float r_s, const float zs_hyp,
                                            const float zs_delta, const float zs_th, const float sigma) {
    for (int t = T - 1; t >= 0; --t) {
        const long long o = (long long)t * N;
        for (long long base = 0; base < N; base += P) {
            for (int j = 0; j < P; ++j) {
                const long long n = base + j;
                float gi = gi_st[n], gh = gh_st[n], ghs = ghs_st[n], gb = gb_st[n];
#if DETACH || ZS_FROM_CURRENT
                const float h_prev = 0.0f;  // not read
#else
                const float h_prev = t > 0 ? h_seq[o - N + n] : h0[n];
#endif
                grad_I[o + n] = src_bwd_step(grad_s[o + n], h_seq[o + n], y_seq[o + n], h_prev, GAIN_R(t), GAIN_RS(t),
                                             gi, gh, ghs, gb, alpha, rho, inv_rho, zs_hyp, zs_delta, zs_th);
                gi_st[n] = gi; gh_st[n] = gh; ghs_st[n] = ghs; gb_st[n] = gb;
            }
        }
    }
}
"""

def _keep_for_backward(ctx, need: bool, h_seq, y_seq, h0, noise, detach: bool, hs_last) -> None:
    """What both scans' backward reads: ``h``, ``y``, the initial ``h`` and the gain noise (if any)."""
    ctx.noisy = noise is not None
    if need:
        ctx.save_for_backward(h_seq, y_seq, h0, noise if noise is not None else h0)
    if detach:
        # h_s is built from detached values only: no gradient path, as in the torch implementation
        ctx.mark_non_differentiable(hs_last)


def _kept(ctx):
    h_seq, y_seq, h0, noise = ctx.saved_tensors
    return h_seq, y_seq, h0, (noise if ctx.noisy else None)


@lru_cache(maxsize=None)  # one build per option set, looked up once: the scans call this on every pass
def _cpu_library(relu_bypass: bool, detach: bool, zs_from_current: bool, noise: bool):
    import ctypes  # noqa: PLC0415

    defines = {"RELU_BYPASS": relu_bypass, "DETACH": detach, "ZS_FROM_CURRENT": zs_from_current, "NOISE": noise,
               "CHUNK": CHUNK}
    head = "".join(f"#define {k} {int(v)}\n" for k, v in defines.items())
    text = (dispatch._EMULATION_SHIM + head + dispatch.common_source("cpp") + _CPU_TANH + _BODY + dispatch.CPU_SCAN_HEAD
            + _CPU_HOST)
    # -fno-trapping-math lets the compiler if-convert the float comparisons (z_s, ReLU, the tanh clamp): same
    # results, no branch in the vectorised loop
    P, F, I, Q = ctypes.c_void_p, ctypes.c_float, ctypes.c_int, ctypes.c_longlong
    functions = {"src_scan_forward": (None, [P] * 9 + [I, Q, I] + [F] * 9 + [I]),
                 "src_scan_backward": (None, [P] * 10 + [I, Q, I] + [F] * 9)}
    return dispatch.load_library(text, "srcscan", functions, opt_level="-O3", extra_flags=("-fno-trapping-math",))


def _ptr(tensor):
    return None if tensor is None else tensor.data_ptr()


class _SRCCpuScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, I2, i0, h0, hs0, b, P, scalars, options, noise):
        T, N = I2.shape
        need = any(ctx.needs_input_grad[:5])
        s = torch.empty_like(I2)
        h_seq = torch.empty_like(I2) if need else torch.empty_like(I2[0])
        y_seq = torch.empty_like(I2) if need else torch.empty_like(I2[0])
        i_st, h_st, hs_st = i0.clone(), h0.clone(), hs0.clone()
        _cpu_library(*options).src_scan_forward(I2.data_ptr(), b.data_ptr(), _ptr(noise), s.data_ptr(), h_seq.data_ptr(),
                                                y_seq.data_ptr(), i_st.data_ptr(), h_st.data_ptr(), hs_st.data_ptr(), T,
                                                N, P, *scalars, int(need))
        ctx.P, ctx.scalars, ctx.options = P, scalars, options
        _keep_for_backward(ctx, need, h_seq, y_seq, h0, noise, options[1], hs_st)
        return s, i_st, h_st, hs_st

    @staticmethod
    def backward(ctx, g_s, g_i, g_h, g_hs):
        h_seq, y_seq, h0, noise = _kept(ctx)
        T, N = h_seq.shape
        gi, gh = g_i.contiguous().clone(), g_h.contiguous().clone()
        ghs = g_hs.contiguous().clone() if g_hs is not None else torch.zeros_like(h0)
        grad_I, gb = torch.empty_like(h_seq), torch.zeros_like(h0)
        # named, so that a contiguous copy (of e.g. the stride-0 gradient of s.sum()) lives until the call returns
        gs = g_s.contiguous()
        _cpu_library(*ctx.options).src_scan_backward(gs.data_ptr(), h_seq.data_ptr(), y_seq.data_ptr(),
                                                     h0.data_ptr(), _ptr(noise), grad_I.data_ptr(), gi.data_ptr(),
                                                     gh.data_ptr(), ghs.data_ptr(), gb.data_ptr(), T, N, ctx.P,
                                                     *ctx.scalars)
        if ctx.options[1]:  # detach: nothing flows back to h[0] or h_s[0] (the CUDA kernel writes zeros)
            gh, ghs = torch.zeros_like(gh), torch.zeros_like(ghs)
        return grad_I, gi, gh, ghs, dispatch.reduce_period(gb, ctx.P), None, None, None, None


@lru_cache(maxsize=None)
def src_source(relu_bypass: bool, detach: bool, zs_from_current: bool, engine: str = "cupy", noise: bool = False) -> str:
    """CUDA source of the SRC scan for one option set (cached)."""
    defines = {"RELU_BYPASS": relu_bypass, "DETACH": detach, "ZS_FROM_CURRENT": zs_from_current, "NOISE": noise,
               "CHUNK": CHUNK}
    head = "".join(f"#define {k} {int(v)}\n" for k, v in defines.items())
    return f"// reprolib fused SRC scan, storage float32\n{head}{dispatch.common_source(engine)}{_BODY}"


def src_option_sets():
    for bypass in (False, True):
        for detach in (False, True):
            for current in (False, True):
                yield dict(relu_bypass=bypass, detach=detach, zs_from_current=current)
    yield dict(relu_bypass=True, detach=False, zs_from_current=False, noise=True)  # the noise study's setting
    yield dict(relu_bypass=True, detach=True, zs_from_current=False, noise=True)


class _SRCScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, I2, i0, h0, hs0, b, engine, source, P, scalars, detach, noise):
        T, N = I2.shape
        need = any(ctx.needs_input_grad[:5])
        s = torch.empty_like(I2)
        h_seq = torch.empty_like(I2) if need else None
        y_seq = torch.empty_like(I2) if need else None
        i_last, h_last, hs_last = torch.empty_like(i0), torch.empty_like(i0), torch.empty_like(i0)
        engine.launch(source, SRC_SPECS, "src_forward", N, BLOCK_SCAN,
                      (I2, i0, h0, hs0, b, noise, s, h_seq, y_seq, i_last, h_last, hs_last, T, N, P) + scalars)
        ctx.engine, ctx.source, ctx.P, ctx.scalars = engine, source, P, scalars
        _keep_for_backward(ctx, need, h_seq, y_seq, h0, noise, detach, hs_last)
        return s, i_last, h_last, hs_last

    @staticmethod
    def backward(ctx, g_s, g_i, g_h, g_hs):
        h_seq, y_seq, h0, noise = _kept(ctx)
        T, N = h_seq.shape
        if g_hs is None:
            g_hs = torch.zeros_like(h0)
        grad_I = torch.empty_like(h_seq)
        grad_i0, grad_h0, grad_hs0, grad_b = (torch.empty_like(h0) for _ in range(4))
        ctx.engine.launch(ctx.source, SRC_SPECS, "src_backward", N, BLOCK_SCAN,
                          (g_s.contiguous(), g_i.contiguous(), g_h.contiguous(), g_hs.contiguous(), h_seq, y_seq, h0,
                           noise, grad_I, grad_i0, grad_h0, grad_hs0, grad_b, T, N, ctx.P) + ctx.scalars)
        return (grad_I, grad_i0, grad_h0, grad_hs0, dispatch.reduce_period(grad_b, ctx.P), None, None, None, None, None,
                None)


def src_multistep(input_current_seq: Tensor, state, params, generator=None, *, engine: str = "cupy"):
    """Fused SRC loop; same arguments and result as :func:`reprolib.neurons.src.src_multistep`.

    ``state`` is an ``SRCState(i, h, hs)`` (or any ``(i, h, hs)`` triple) of the per-step shape; returns
    ``(s_seq [T, ...], SRCState(i, h, hs) after the last step)``. ``generator`` is accepted for signature
    compatibility; with ``noise_sigma > 0`` the gain noise of all steps is drawn from it first, exactly as the
    PyTorch loop draws it, and read by the kernel.
    """
    from reprolib.neurons.src import SRCState  # noqa: PLC0415

    x = input_current_seq
    _check_input(x, params)
    if engine == "cupy":
        dispatch.resolve_backend("cupy", x)
    elif x.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"dtype {x.dtype} is not supported by the fused kernels")
    I2, (i0, h0, hs0), (b, P), scalars, noise = _operands(x, state, params, generator)
    source = src_source(bool(params.relu_bypass), bool(params.detach_recurrence), params.zs_from == "current", engine,
                        noise is not None)
    s, i_last, h_last, hs_last = _SRCScan.apply(I2, i0, h0, hs0, b, dispatch.get_engine(engine), source, P, scalars,
                                                bool(params.detach_recurrence), noise)
    return _results(x, s, i_last, h_last, hs_last, SRCState)


def src_multistep_cpp(input_current_seq: Tensor, state, params, generator=None):
    """``backend="cpp"``: :func:`src_multistep` as a C++ scan on CPU tensors, time outside and neurons inside.

    Same arguments and result as :func:`reprolib.neurons.src.src_multistep`, for CPU tensors (fp16 / bf16 are
    computed in float32). It agrees with the PyTorch loop to float32 rounding (its tanh is a rational approximation
    within 1.3e-10 relative, PyTorch's is SLEEF's), so it is not bit for bit the loop or the CUDA kernel; a record
    names the backend that made it.
    """
    from reprolib.kernels import cpu  # noqa: PLC0415
    from reprolib.neurons.src import SRCState  # noqa: PLC0415

    x = input_current_seq
    _check_input(x, params)
    cpu.check_input(x)
    if x.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"SRC backend='cpp': input dtype {x.dtype}; the scan runs float32 (fp16 / bf16 "
                                "inputs are computed in float32; use backend='torch' for float64)")
    I2, (i0, h0, hs0), (b, P), scalars, noise = _operands(x, state, params, generator)
    if P < x.shape[-1] and x.shape[-1] % P == 0:  # one bias for all: a row of biases keeps the inner loop long
        b, P = b.repeat(x.shape[-1] // P), x.shape[-1]
    options = (bool(params.relu_bypass), bool(params.detach_recurrence), params.zs_from == "current", noise is not None)
    s, i_last, h_last, hs_last = _SRCCpuScan.apply(I2, i0, h0, hs0, b, P, scalars, options, noise)
    return _results(x, s, i_last, h_last, hs_last, SRCState)


def _check_input(x, params) -> None:
    from reprolib.neurons.src import _check_params  # noqa: PLC0415

    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"input_current_seq of shape {shape}; expected [T, B, ...] with T >= 1")
    _check_params(params)
    for name in ("alpha", "rho", "r", "r_s", "zs_hyp", "zs_dep", "zs_threshold"):
        if isinstance(getattr(params, name), Tensor):
            raise KernelUnsupported(f"SRC parameter {name} as a tensor has no fused kernel; use backend='torch'")


def _operands(x: Tensor, state, params, generator):
    """What both scans take: ``I [T, N]`` float32, the flat initial state, ``(b_h, its period P)``, the scalar
    constants and the gain noise of every step (``None`` without noise)."""
    from reprolib.neurons.src import draw_feedback_noise  # noqa: PLC0415

    device = x.device
    shape = x.shape[1:]
    i0, h0, hs0 = (dispatch.flat(torch.as_tensor(v, device=device).float().expand(shape)) for v in state)
    b, P = dispatch.param_period(params.b_h, shape, torch.float32, device, "b_h")
    I2 = x.float().contiguous().view(x.shape[0], -1)
    rho = float(params.rho)
    inv_rho = float(torch.tensor(1.0, dtype=torch.float32) / torch.tensor(rho, dtype=torch.float32))
    scalars = (float(params.alpha), rho, inv_rho, float(params.r), float(params.r_s), float(params.zs_hyp),
               float(params.zs_dep - params.zs_hyp), float(params.zs_threshold), float(params.noise_sigma))
    noisy = params.noise_sigma != 0
    noise = None
    if noisy:
        # the same draws as the PyTorch loop makes from the same generator state
        noise = draw_feedback_noise(x.shape[0], shape, generator, device).contiguous().view(x.shape[0], 2, -1)
    return I2, (i0, h0, hs0), (b, P), scalars, noise


def _results(x: Tensor, s, i_last, h_last, hs_last, state_type):
    shape = x.shape[1:]
    out = [s.view(x.shape), i_last.view(shape), h_last.view(shape), hs_last.view(shape)]
    if x.dtype != torch.float32:
        out = [t.to(x.dtype) for t in out]
    return out[0], state_type(i=out[1], h=out[2], hs=out[3])


def src_multistep_auto(input_current_seq: Tensor, state, params, generator=None):
    """``backend="auto"``: the fused kernel on CUDA when CuPy works and the options have one, else torch."""
    from reprolib.neurons import src as src_neuron  # noqa: PLC0415

    if (dispatch.resolve_backend("auto", input_current_seq) == "cupy"
            and not any(isinstance(getattr(params, f), Tensor) for f in ("alpha", "rho", "r", "r_s"))):
        return src_multistep(input_current_seq, state, params, generator)
    return src_neuron.src_multistep(input_current_seq, state, params, generator)
