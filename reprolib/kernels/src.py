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

__all__ = ["SRC_SPECS", "src_source", "src_option_sets", "src_multistep", "src_multistep_auto"]

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
                i = alpha * i + in[k];                                  // (5a)
                const float y = tanhf(SCALAR_DIV(i, rho, inv_rho));
                const float x = rho * y;                                // (5b)
                const float h_new = tanhf(x + GAIN_R(t) * h + GAIN_RS(t) * hs + bias); // (5d), z = 0
#if ZS_FROM_CURRENT
                const float zs = zs_of(h_new, zs_hyp, zs_delta, zs_th);
#else
                const float zs = zs_of(h, zs_hyp, zs_delta, zs_th);     // (5c) from h[t-1]
#endif
                hs = zs * hs + (1.0f - zs) * h;                         // (5e) uses h[t-1]
                h = h_new;
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
#if !DETACH
    float ghs = grad_hs_last[n]; // dL/dhs[t]
#endif
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
                const float h = hk[k], y = yk[k];
#if RELU_BYPASS
                const float dh = gk[k] + gh;
#else
                const float dh = (h > 0.0f ? gk[k] : 0.0f) + gh;
#endif
                const float dpre = dh * (1.0f - h * h);                 // tanh' of (5d)
                gb += dpre;
                // x = rho * y, y = tanh(i / rho)
                const float di = SCALAR_DIV((dpre * rho) * (1.0f - y * y), rho, inv_rho) + gi;
                grad_I[(long long)t * N + n] = di;
                gi = alpha * di;
#if DETACH
                gh = 0.0f;
#else
#if ZS_FROM_CURRENT
                const float zs = zs_of(h, zs_hyp, zs_delta, zs_th);
#else
                const float h_prev = t > 0 ? h_seq[(long long)(t - 1) * N + n] : h0[n];
                const float zs = zs_of(h_prev, zs_hyp, zs_delta, zs_th);
#endif
                gh = dpre * GAIN_R(t) + ghs * (1.0f - zs);
                ghs = dpre * GAIN_RS(t) + ghs * zs;
#endif
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
        ctx.engine, ctx.source, ctx.P, ctx.scalars, ctx.noisy = engine, source, P, scalars, noise is not None
        if need:
            ctx.save_for_backward(h_seq, y_seq, h0, noise if noise is not None else h0)
        if detach:
            # h_s is built from detached values only: no gradient path, as in the torch implementation
            ctx.mark_non_differentiable(hs_last)
        return s, i_last, h_last, hs_last

    @staticmethod
    def backward(ctx, g_s, g_i, g_h, g_hs):
        h_seq, y_seq, h0, noise = ctx.saved_tensors
        noise = noise if ctx.noisy else None
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
    from reprolib.neurons.src import SRCState, _check_params, draw_feedback_noise  # noqa: PLC0415

    x = input_current_seq
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"input_current_seq of shape {shape}; expected [T, B, ...] with T >= 1")
    _check_params(params)
    for name in ("alpha", "rho", "r", "r_s", "zs_hyp", "zs_dep", "zs_threshold"):
        if isinstance(getattr(params, name), Tensor):
            raise KernelUnsupported(f"SRC parameter {name} as a tensor has no fused kernel; use backend='torch'")
    if engine == "cupy":
        dispatch.resolve_backend("cupy", x)
    elif x.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"dtype {x.dtype} is not supported by the fused kernels")
    dtype, device = x.dtype, x.device
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
    source = src_source(bool(params.relu_bypass), bool(params.detach_recurrence), params.zs_from == "current", engine,
                        noisy)
    s, i_last, h_last, hs_last = _SRCScan.apply(I2, i0, h0, hs0, b, dispatch.get_engine(engine), source, P, scalars,
                                                bool(params.detach_recurrence), noise)
    out = [s.view(x.shape), i_last.view(shape), h_last.view(shape), hs_last.view(shape)]
    if dtype != torch.float32:
        out = [t.to(dtype) for t in out]
    return out[0], SRCState(i=out[1], h=out[2], hs=out[3])


def src_multistep_auto(input_current_seq: Tensor, state, params, generator=None):
    """``backend="auto"``: the fused kernel on CUDA when CuPy works and the options have one, else torch."""
    from reprolib.neurons import src as src_neuron  # noqa: PLC0415

    if (dispatch.resolve_backend("auto", input_current_seq) == "cupy"
            and not any(isinstance(getattr(params, f), Tensor) for f in ("alpha", "rho", "r", "r_s"))):
        return src_multistep(input_current_seq, state, params, generator)
    return src_neuron.src_multistep(input_current_seq, state, params, generator)
