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

``engine="cpp"`` (``backend="cpp"`` of the nodes) runs the same step functions on the CPU in the other loop order:
time outside, the neurons inside, which the compiler vectorises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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

// one step of one neuron, shared by the CUDA kernels and the CPU scan: V[t-1] -> H[t], S[t], V[t] (in v);
// returns H[t], the only thing the backward needs
__device__ __forceinline__ float lif_fwd_step(const float x, float& v, float& s, const float tau, const float inv_tau,
                                              const float v_th, const float v_reset) {
#if HARD_RESET
    const float h = charge(v, x, v_reset, tau, inv_tau);
    s = FIRE(h - v_th);
    v = h * (1.0f - s) + v_reset * s;
#else
    const float h = charge(v, x, 0.0f, tau, inv_tau);
    s = FIRE(h - v_th);
    v = h - s * v_th;
#endif
    return h;
}

// the reverse step: gv = dL/dV[t] in, dL/dV[t-1] out; returns dL/dX[t]
__device__ __forceinline__ float lif_bwd_step(const float gs, const float h, float& gv, const float tau,
                                              const float inv_tau, const float v_th, const float v_reset,
                                              const float sg_a, const float sg_b) {
    const float d = h - v_th;
    const float sg = SURROGATE_GRAD(d);
#if HARD_RESET
    const float s = FIRE(d);
#if DETACH_RESET
    const float gh = gv * (1.0f - s) + gs * sg;
#else
    const float gh = gv * (1.0f - s) + (gs + gv * (v_reset - h)) * sg;
#endif
#else
#if DETACH_RESET
    const float gh = gv + gs * sg;
#else
    const float gh = gv + (gs - gv * v_th) * sg;
#endif
#endif
#if LEAKY
    const float gdiv = SCALAR_DIV(gh, tau, inv_tau);
    gv = gh - gdiv;
#if DECAY_INPUT
    return gdiv;
#else
    return gh;
#endif
#else
    gv = gh;
    return gh;
#endif
}

extern "C" __global__ void lif_forward(const float* __restrict__ x, const float* __restrict__ v0,
                                       float* __restrict__ spike, float* __restrict__ h_seq,
                                       float* __restrict__ v_last, const int T, const int N, const float tau,
                                       const float inv_tau, const float v_th, const float v_reset,
                                       const float sg_a, const float sg_b) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
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
                float s;
                const float h = lif_fwd_step(xs[k], v, s, tau, inv_tau, v_th, v_reset);
                spike[i] = s;
                if (save_h) h_seq[i] = h;
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
                grad_x[(long long)t * N + n] = lif_bwd_step(gss[k], hs[k], gv, tau, inv_tau, v_th, v_reset, sg_a, sg_b);
            }
        }
    }
    grad_v0[n] = gv;
}
"""

SURROGATE_IDS = {"sigmoid": 0, "atan": 1}

# ------------------------------------------------------------------------------------------ CPU scan (cpp)

# The CUDA kernels give each neuron a thread that walks through time; compiled as C++ that order reads memory with
# a stride of N floats (slower than PyTorch's loop at large N). This scan walks through time outside and through
# the neurons inside, contiguous and vectorised, with the kernels' step functions: the same float operations in
# the same order, so spikes and membranes are those of the CUDA kernel and of PyTorch's CPU loop. The Sigmoid
# surrogate's exp is dispatch.CPU_EXPF, which vectorises (gradients then agree with PyTorch's to float rounding).
_CPU_HOST = r"""
// v_st: V[-1] in, V[T-1] out; h_seq: H saved for the backward, or (without gradients) one row of scratch
extern "C" RL_CLONES void lif_scan_forward(const float* __restrict x, float* __restrict v_st,
                                           float* __restrict spike, float* __restrict h_seq, const int T,
                                           const long long N, const float tau, const float inv_tau, const float v_th,
                                           const float v_reset, const int save) {
    for (int t = 0; t < T; ++t) {
        const long long o = (long long)t * N, os = save ? o : 0;
        for (long long n = 0; n < N; ++n) {
            float v = v_st[n], s;
            h_seq[os + n] = lif_fwd_step(x[o + n], v, s, tau, inv_tau, v_th, v_reset);
            spike[o + n] = s;
            v_st[n] = v;
        }
    }
}

// gv_st: dL/dV[T-1] in, dL/dV[-1] out
extern "C" RL_CLONES void lif_scan_backward(const float* __restrict grad_spike, const float* __restrict h_seq,
                                            float* __restrict grad_x, float* __restrict gv_st, const int T,
                                            const long long N, const float tau, const float inv_tau,
                                            const float v_th, const float v_reset, const float sg_a,
                                            const float sg_b) {
    for (int t = T - 1; t >= 0; --t) {
        const long long o = (long long)t * N;
        for (long long n = 0; n < N; ++n) {
            float gv = gv_st[n];
            grad_x[o + n] = lif_bwd_step(grad_spike[o + n], h_seq[o + n], gv, tau, inv_tau, v_th, v_reset, sg_a, sg_b);
            gv_st[n] = gv;
        }
    }
}
"""



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


@lru_cache(maxsize=None)  # one build per option set, looked up once: every forward and backward asks
def _cpu_library(leaky: bool, hard_reset: bool, detach_reset: bool, decay_input: bool, surrogate: str, strict: bool):
    import ctypes  # noqa: PLC0415

    body = lif_source(leaky, hard_reset, detach_reset, decay_input, surrogate, strict, "cpp")
    text = dispatch._EMULATION_SHIM + dispatch.CPU_EXPF + body + dispatch.CPU_SCAN_HEAD + _CPU_HOST
    P, F, I, Q = ctypes.c_void_p, ctypes.c_float, ctypes.c_int, ctypes.c_longlong
    functions = {"lif_scan_forward": (None, [P] * 4 + [I, Q] + [F] * 4 + [I]),
                 "lif_scan_backward": (None, [P] * 4 + [I, Q] + [F] * 6)}
    # -fno-trapping-math: the spike condition and the reset become selects, so the neuron loop vectorises
    return dispatch.load_library(text, "lifscan", functions, opt_level="-O3", extra_flags=("-fno-trapping-math",))


class _ScanFunction(torch.autograd.Function):
    """Autograd around one of the two scans below: they differ in where and in which loop order they run."""

    @staticmethod
    def forward(ctx, x2: Tensor, v0f: Tensor, scan, scalars: tuple):
        need = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        spike, v_last, h_seq = scan.forward(x2, v0f, scalars, need)
        ctx.scan, ctx.scalars = scan, scalars
        if need:
            ctx.save_for_backward(h_seq)
        return spike, v_last

    @staticmethod
    def backward(ctx, grad_spike: Tensor, grad_v_last: Tensor):
        (h_seq,) = ctx.saved_tensors
        # named contiguous copies: the C++ scan reads raw pointers, which must outlive its call
        grad_x, grad_v0 = ctx.scan.backward(grad_spike.contiguous(), grad_v_last.contiguous(), h_seq, ctx.scalars)
        return grad_x, grad_v0, None, None


@dataclass(frozen=True)
class _KernelScan:
    """The CUDA kernels (``engine="cupy"``, or emulated on the CPU): one thread per neuron walks through time."""

    engine: object
    source: str

    def forward(self, x2, v0f, scalars, need):
        T, N = x2.shape
        spike, v_last = torch.empty_like(x2), torch.empty_like(v0f)
        h_seq = torch.empty_like(x2) if need else None
        self.engine.launch(self.source, LIF_SPECS, "lif_forward", N, BLOCK_SCAN,
                           (x2, v0f, spike, h_seq, v_last, T, N) + scalars)
        return spike, v_last, h_seq

    def backward(self, grad_spike, grad_v_last, h_seq, scalars):
        T, N = h_seq.shape
        grad_x = torch.empty_like(h_seq)
        grad_v0 = torch.empty((N,), dtype=h_seq.dtype, device=h_seq.device)
        self.engine.launch(self.source, LIF_SPECS, "lif_backward", N, BLOCK_SCAN,
                           (grad_spike, grad_v_last, h_seq, grad_x, grad_v0, T, N) + scalars)
        return grad_x, grad_v0


@dataclass(frozen=True)
class _CpuScan:
    """``engine="cpp"``: the same step functions, time outside and the neurons inside (vectorised)."""

    options: tuple  # the lif_source options but the engine

    def forward(self, x2, v0f, scalars, need):
        T, N = x2.shape
        spike = torch.empty_like(x2)
        h_seq = torch.empty_like(x2) if need else torch.empty_like(x2[0])  # else one row of scratch
        v_last = v0f.clone()  # the scan updates the state in place
        _cpu_library(*self.options).lif_scan_forward(x2.data_ptr(), v_last.data_ptr(), spike.data_ptr(),
                                                     h_seq.data_ptr(), T, N, *scalars[:4], int(need))
        return spike, v_last, h_seq

    def backward(self, grad_spike, grad_v_last, h_seq, scalars):
        T, N = h_seq.shape
        grad_x, grad_v = torch.empty_like(h_seq), grad_v_last.clone()
        _cpu_library(*self.options).lif_scan_backward(grad_spike.data_ptr(), h_seq.data_ptr(), grad_x.data_ptr(),
                                                      grad_v.data_ptr(), T, N, *scalars)
        return grad_x, grad_v


def _run(x_seq: Tensor, v0, *, leaky: bool, tau: float, decay_input: bool, v_threshold: float,
         v_reset, detach_reset: bool, surrogate_function, engine: str) -> tuple[Tensor, Tensor]:
    if not isinstance(x_seq, Tensor) or x_seq.dim() < 1 or x_seq.shape[0] < 1:
        shape = tuple(x_seq.shape) if isinstance(x_seq, Tensor) else type(x_seq).__name__
        raise ValueError(f"x_seq {shape} is invalid; expected a tensor [T, ...] with T >= 1")
    if engine == "cupy":
        dispatch.resolve_backend("cupy", x_seq)
    elif engine == "cpp":
        from reprolib.kernels import cpu  # noqa: PLC0415

        cpu.check_input(x_seq)  # the C++ scan reads raw CPU pointers: a CUDA tensor must not get there
    if engine != "cupy" and x_seq.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"dtype {x_seq.dtype} is not supported by the fused kernels; expected float32/16, bfloat16")
    if isinstance(tau, Tensor) or isinstance(v_threshold, Tensor) or isinstance(v_reset, Tensor):
        raise KernelUnsupported("tensor-valued (learnable) tau / v_threshold / v_reset have no fused kernel; use backend='torch'")
    name, strict, sg_a, sg_b = surrogate_options(surrogate_function)
    hard = v_reset is not None
    source = lif_source(bool(leaky), hard, bool(detach_reset), bool(decay_input), name, bool(strict), engine)
    dtype = x_seq.dtype
    xf = x_seq.float() if dtype != torch.float32 else x_seq
    state_shape = x_seq.shape[1:]
    # the initial state on the input's device, as the kernels and scans read it there
    v0t = torch.as_tensor(v0, dtype=torch.float32, device=x_seq.device) if not isinstance(v0, Tensor) else \
        v0.float().to(x_seq.device)
    v0f = dispatch.flat(v0t.expand(state_shape))
    x2 = xf.contiguous().view(x_seq.shape[0], -1)
    tau_f = float(tau) if leaky else 1.0
    scalars = (tau_f, float(torch.tensor(1.0, dtype=torch.float32) / torch.tensor(tau_f, dtype=torch.float32)),
               float(v_threshold), 0.0 if v_reset is None else float(v_reset), float(sg_a), float(sg_b))
    if engine == "cpp":  # time outside, neurons inside (the CUDA order, emulated, strides through memory)
        scan = _CpuScan((bool(leaky), hard, bool(detach_reset), bool(decay_input), name, bool(strict)))
    else:
        scan = _KernelScan(dispatch.get_engine(engine), source)
    spike, v_last = _ScanFunction.apply(x2, v0f, scan, scalars)
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
