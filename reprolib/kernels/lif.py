"""Fused multi-step IF / LIF: one CUDA thread per neuron scans all T steps, forward and backward.

Same semantics, signature and result as :func:`reprolib.neurons.integrate_fire.lif_multistep` /
``if_multistep``: ``(x_seq [T, ...], v0 [...], params) -> (spikes [T, ...], V[T-1] [...])`` with every option of
the neuron core (hard / soft reset, ``detach_reset``, ``decay_input``, Sigmoid / ATan surrogate with its alpha,
``>=`` or strict ``>`` spike condition).

Memory traffic is the minimum for a differentiable scan: the forward reads ``x`` and writes the spikes and
the pre-spike membrane ``H`` (the only thing backward needs: ``S`` and the surrogate are recomputed from it);
the backward reads ``dL/dS`` and ``H`` and writes ``dL/dX``. Layout ``[T, N]`` with ``N`` contiguous, so
every warp reads 32 consecutive floats per step; the state lives in registers and the next ``CHUNK`` inputs
are loaded before they are needed so that several loads are in flight per thread.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from reprolib.kernels import dispatch
from reprolib.kernels.dispatch import BLOCK_SCAN, KernelSpec, KernelUnsupported

__all__ = [
    "LIF_SPECS",
    "lif_source",
    "lif_option_sets",
    "surrogate_options",
    "lif_multistep",
    "if_multistep",
    "lif_multistep_auto",
    "if_multistep_auto",
]

CHUNK = 8

LIF_SPECS = (
    KernelSpec(
        "lif_forward",
        (
            ("const float*", "x"), ("const float*", "v0"), ("float*", "spike"), ("float*", "h_seq"),
            ("float*", "v_last"), ("int", "T"), ("int", "N"), ("float", "tau"), ("float", "inv_tau"),
            ("float", "v_th"), ("float", "v_reset"), ("float", "sg_a"), ("float", "sg_b"),
        ),
    ),
    KernelSpec(
        "lif_backward",
        (
            ("const float*", "grad_spike"), ("const float*", "grad_v_last"), ("const float*", "h_seq"),
            ("float*", "grad_x"), ("float*", "grad_v0"), ("int", "T"), ("int", "N"), ("float", "tau"),
            ("float", "inv_tau"), ("float", "v_th"), ("float", "v_reset"), ("float", "sg_a"), ("float", "sg_b"),
        ),
    ),
)

_BODY = r"""
#if STRICT
#define FIRE(d) ((d) > 0.0f ? 1.0f : 0.0f)
#else
#define FIRE(d) ((d) >= 0.0f ? 1.0f : 0.0f)
#endif
#if SURROGATE == 0
#define SURROGATE_GRAD(d) sg_sigmoid((d), sg_a)
#else
#define SURROGATE_GRAD(d) sg_atan((d), sg_a, sg_b)
#endif

// charge: H[t] from V[t-1] and X[t], op for op as reprolib.neurons.integrate_fire.lif_charge
__device__ __forceinline__ float charge(const float v, const float x, const float v_rest, const float tau,
                                        const float inv_tau) {
#if LEAKY
#if DECAY_INPUT
    return v + SCALAR_DIV(x - (v - v_rest), tau, inv_tau);
#else
    return v - SCALAR_DIV(v - v_rest, tau, inv_tau) + x;
#endif
#else
    return v + x;
#endif
}

extern "C" __global__ void lif_forward(const float* __restrict__ x, const float* __restrict__ v0,
                                       float* __restrict__ spike, float* __restrict__ h_seq,
                                       float* __restrict__ v_last, const int T, const int N, const float tau,
                                       const float inv_tau, const float v_th, const float v_reset,
                                       const float sg_a, const float sg_b) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
#if HARD_RESET
    const float v_rest = v_reset;
#else
    const float v_rest = 0.0f;
#endif
    const bool save_h = h_seq != 0;
    float v = v0[n];
    for (int t0 = 0; t0 < T; t0 += CHUNK) {
        float xs[CHUNK];
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t0 + k;
            xs[k] = t < T ? x[(long long)t * N + n] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t0 + k;
            if (t < T) {
                const long long i = (long long)t * N + n;
                const float h = charge(v, xs[k], v_rest, tau, inv_tau);
                const float s = FIRE(h - v_th);
                spike[i] = s;
                if (save_h) h_seq[i] = h;
#if HARD_RESET
                v = h * (1.0f - s) + v_reset * s;
#else
                v = h - s * v_th;
#endif
            }
        }
    }
    v_last[n] = v;
}

// reverse scan; gv = dL/dV[t] (from V[t+1]'s charge and from V[T-1] as output)
extern "C" __global__ void lif_backward(const float* __restrict__ grad_spike, const float* __restrict__ grad_v_last,
                                        const float* __restrict__ h_seq, float* __restrict__ grad_x,
                                        float* __restrict__ grad_v0, const int T, const int N, const float tau,
                                        const float inv_tau, const float v_th, const float v_reset,
                                        const float sg_a, const float sg_b) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    float gv = grad_v_last[n];
    for (int t1 = T - 1; t1 >= 0; t1 -= CHUNK) {
        float hs[CHUNK], gss[CHUNK];
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t1 - k;
            const long long i = (long long)t * N + n;
            hs[k] = t >= 0 ? h_seq[i] : 0.0f;
            gss[k] = t >= 0 ? grad_spike[i] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            const int t = t1 - k;
            if (t >= 0) {
                const float h = hs[k];
                const float d = h - v_th;
                const float sg = SURROGATE_GRAD(d);
#if HARD_RESET
                const float s = FIRE(d);
#if DETACH_RESET
                const float gh = gv * (1.0f - s) + gss[k] * sg;
#else
                const float gh = gv * (1.0f - s) + (gss[k] + gv * (v_reset - h)) * sg;
#endif
#else
#if DETACH_RESET
                const float gh = gv + gss[k] * sg;
#else
                const float gh = gv + (gss[k] - gv * v_th) * sg;
#endif
#endif
#if LEAKY
                const float gdiv = SCALAR_DIV(gh, tau, inv_tau);
#if DECAY_INPUT
                grad_x[(long long)t * N + n] = gdiv;
#else
                grad_x[(long long)t * N + n] = gh;
#endif
                gv = gh - gdiv;
#else
                grad_x[(long long)t * N + n] = gh;
                gv = gh;
#endif
            }
        }
    }
    grad_v0[n] = gv;
}
"""

SURROGATE_IDS = {"sigmoid": 0, "atan": 1}


@lru_cache(maxsize=None)
def lif_source(
    leaky: bool,
    hard_reset: bool,
    detach_reset: bool,
    decay_input: bool,
    surrogate: str,
    strict: bool,
    engine: str = "cupy",
) -> str:
    """CUDA source of the IF/LIF scan for one option set (cached; the text is also the compile-cache key)."""
    if surrogate not in SURROGATE_IDS:
        raise KernelUnsupported(f"surrogate {surrogate!r} has no fused kernel; expected one of {sorted(SURROGATE_IDS)}")
    defines = {
        "LEAKY": leaky,
        "HARD_RESET": hard_reset,
        "DETACH_RESET": detach_reset,
        "DECAY_INPUT": decay_input and leaky,
        "SURROGATE": SURROGATE_IDS[surrogate],
        "STRICT": strict,
        "CHUNK": CHUNK,
    }
    head = "".join(f"#define {k} {int(v)}\n" for k, v in defines.items())
    return f"// reprolib fused IF/LIF scan, storage float32\n{head}{dispatch.common_source(engine)}{_BODY}"


def lif_option_sets():
    """Every option combination (for the compile test): yields keyword dicts for :func:`lif_source`."""
    for leaky in (False, True):
        for hard in (False, True):
            for detach in (False, True):
                for decay in ((False, True) if leaky else (True,)):
                    for sg in SURROGATE_IDS:
                        for strict in (False, True):
                            yield dict(leaky=leaky, hard_reset=hard, detach_reset=detach, decay_input=decay,
                                       surrogate=sg, strict=strict)


def surrogate_options(surrogate_function) -> tuple[str, bool, float, float]:
    """``(name, strict, sg_a, sg_b)`` of a :mod:`reprolib.surrogate` spike function, with the host-side
    constants computed exactly as its ``derivative`` does; :class:`KernelUnsupported` for anything else."""
    from reprolib import surrogate as sgmod  # noqa: PLC0415

    if isinstance(surrogate_function, sgmod.SurrogateFunction) and not surrogate_function.spiking:
        raise KernelUnsupported("a non-spiking surrogate (spiking=False) has no fused kernel; use backend='torch'")
    if type(surrogate_function) is sgmod.Sigmoid:
        return "sigmoid", surrogate_function.strict, surrogate_function.alpha, 0.0
    if type(surrogate_function) is sgmod.ATan:
        alpha = surrogate_function.alpha
        return "atan", surrogate_function.strict, alpha / 2.0, (math.pi / 2.0) * alpha
    raise KernelUnsupported(
        f"surrogate {surrogate_function!r} has no fused IF/LIF kernel (Sigmoid and ATan do); use backend='torch'"
    )


class _ScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2: Tensor, v0f: Tensor, engine, source: str, scalars: tuple):
        T, N = x2.shape
        spike = torch.empty_like(x2)
        v_last = torch.empty_like(v0f)
        need_h = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        h_seq = torch.empty_like(x2) if need_h else None
        engine.launch(source, LIF_SPECS, "lif_forward", N, BLOCK_SCAN, (x2, v0f, spike, h_seq, v_last, T, N) + scalars)
        ctx.engine, ctx.source, ctx.scalars = engine, source, scalars
        if need_h:
            ctx.save_for_backward(h_seq)
        return spike, v_last

    @staticmethod
    def backward(ctx, grad_spike: Tensor, grad_v_last: Tensor):
        (h_seq,) = ctx.saved_tensors
        T, N = h_seq.shape
        grad_x = torch.empty_like(h_seq)
        grad_v0 = torch.empty((N,), dtype=h_seq.dtype, device=h_seq.device)
        ctx.engine.launch(
            ctx.source, LIF_SPECS, "lif_backward", N, BLOCK_SCAN,
            (grad_spike.contiguous(), grad_v_last.contiguous(), h_seq, grad_x, grad_v0, T, N) + ctx.scalars,
        )
        return grad_x, grad_v0, None, None, None


def _run(x_seq: Tensor, v0, *, leaky: bool, tau: float, decay_input: bool, v_threshold: float,
         v_reset, detach_reset: bool, surrogate_function, engine: str) -> tuple[Tensor, Tensor]:
    if not isinstance(x_seq, Tensor) or x_seq.dim() < 1 or x_seq.shape[0] < 1:
        shape = tuple(x_seq.shape) if isinstance(x_seq, Tensor) else type(x_seq).__name__
        raise ValueError(f"x_seq {shape} is invalid; expected a tensor [T, ...] with T >= 1")
    if engine == "cupy":
        dispatch.resolve_backend("cupy", x_seq)
    elif x_seq.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"dtype {x_seq.dtype} is not supported by the fused kernels; expected float32/16, bfloat16")
    if isinstance(tau, Tensor) or isinstance(v_threshold, Tensor) or isinstance(v_reset, Tensor):
        raise KernelUnsupported("tensor-valued (learnable) tau / v_threshold / v_reset have no fused kernel; use backend='torch'")
    name, strict, sg_a, sg_b = surrogate_options(surrogate_function)
    hard = v_reset is not None
    source = lif_source(bool(leaky), hard, bool(detach_reset), bool(decay_input), name, bool(strict), engine)
    dtype = x_seq.dtype
    xf = x_seq.float() if dtype != torch.float32 else x_seq
    state_shape = x_seq.shape[1:]
    v0t = torch.as_tensor(v0, dtype=torch.float32, device=x_seq.device) if not isinstance(v0, Tensor) else v0.float()
    v0f = dispatch.flat(v0t.expand(state_shape))
    x2 = xf.contiguous().view(x_seq.shape[0], -1)
    tau_f = float(tau) if leaky else 1.0
    scalars = (tau_f, float(torch.tensor(1.0, dtype=torch.float32) / torch.tensor(tau_f, dtype=torch.float32)),
               float(v_threshold), 0.0 if v_reset is None else float(v_reset), float(sg_a), float(sg_b))
    spike, v_last = _ScanFunction.apply(x2, v0f, dispatch.get_engine(engine), source, scalars)
    spike = spike.view(x_seq.shape)
    v_last = v_last.view(state_shape)
    if dtype != torch.float32:
        spike, v_last = spike.to(dtype), v_last.to(dtype)
    return spike, v_last


def lif_multistep(x_seq: Tensor, v0, p=None, *, engine: str = "cupy") -> tuple[Tensor, Tensor]:
    """Fused LIF over ``x_seq [T, ...]`` from ``v0``; drop-in for ``reprolib.neurons.lif_multistep``.

    ``p`` is a :class:`reprolib.neurons.integrate_fire.LIFParameters` (default: its defaults). Returns
    ``(spikes [T, ...], V[T-1] [...])``. fp16/bf16 inputs are computed in fp32 and returned in their dtype.
    """
    if p is None:
        from reprolib.neurons.integrate_fire import LIFParameters  # noqa: PLC0415

        p = LIFParameters()
    return _run(x_seq, v0, leaky=True, tau=p.tau, decay_input=p.decay_input, v_threshold=p.v_threshold,
                v_reset=p.v_reset, detach_reset=p.detach_reset, surrogate_function=p.surrogate_function, engine=engine)


def if_multistep(x_seq: Tensor, v0, p=None, *, engine: str = "cupy") -> tuple[Tensor, Tensor]:
    """Fused IF over ``x_seq [T, ...]``; drop-in for ``reprolib.neurons.if_multistep`` (``p``: IFParameters)."""
    if p is None:
        from reprolib.neurons.integrate_fire import IFParameters  # noqa: PLC0415

        p = IFParameters()
    return _run(x_seq, v0, leaky=False, tau=1.0, decay_input=False, v_threshold=p.v_threshold,
                v_reset=p.v_reset, detach_reset=p.detach_reset, surrogate_function=p.surrogate_function, engine=engine)


def _kernel_supports(p) -> bool:
    try:
        surrogate_options(p.surrogate_function)
    except KernelUnsupported:
        return False
    return not any(isinstance(getattr(p, f, None), Tensor) for f in ("tau", "v_threshold", "v_reset"))


def lif_multistep_auto(x_seq: Tensor, v0, p=None) -> tuple[Tensor, Tensor]:
    """``backend="auto"``: the fused kernel for CUDA tensors when CuPy works and the options have a kernel,
    else ``reprolib.neurons.integrate_fire.lif_multistep``."""
    from reprolib.neurons import integrate_fire  # noqa: PLC0415

    p = integrate_fire.LIFParameters() if p is None else p
    if dispatch.resolve_backend("auto", x_seq) == "cupy" and _kernel_supports(p):
        return lif_multistep(x_seq, v0, p)
    return integrate_fire.lif_multistep(x_seq, v0, p)


def if_multistep_auto(x_seq: Tensor, v0, p=None) -> tuple[Tensor, Tensor]:
    """``backend="auto"`` for IF (see :func:`lif_multistep_auto`)."""
    from reprolib.neurons import integrate_fire  # noqa: PLC0415

    p = integrate_fire.IFParameters() if p is None else p
    if dispatch.resolve_backend("auto", x_seq) == "cupy" and _kernel_supports(p):
        return if_multistep(x_seq, v0, p)
    return integrate_fire.if_multistep(x_seq, v0, p)
