"""Fused scans of the snnTorch-style :class:`reprolib.neurons.leaky.Leaky`: C++ on the CPU, CUDA on a GPU.

* ``backend="cpp"`` (:func:`leaky_multistep_cpp`): a whole-sequence C++ scan for CPU tensors;
* ``backend="cupy"`` / ``"auto"`` (:func:`leaky_multistep_cuda`, :func:`leaky_multistep_auto`): one CUDA thread
  per neuron scans all T steps, forward and backward, compiled at run time with CuPy like the IF / LIF / SRC
  kernels (the same source runs on CPU through the C++ emulation engine in the tests).

The PyTorch loop of :func:`reprolib.neurons.leaky.leaky_multistep` dispatches about ten small operators per
step forward and as many backward; for the 512-wide layers of the SRC paper's LIF baseline (T = 200, batch
64) that loop was about 40 % of a CPU training step (profiled once
on the 2-core development machine, 24ecbd0, 2026-11-30). Here one C++ call runs the forward scan and one the
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

from functools import lru_cache

import torch
from torch import Tensor

from reprolib.kernels import dispatch
from reprolib.kernels.dispatch import BLOCK_SCAN, KernelSpec, KernelUnsupported

__all__ = ["leaky_source", "leaky_multistep_cpp", "check_supported", "LEAKY_SPECS", "leaky_cuda_source",
           "leaky_option_sets", "leaky_multistep_cuda", "leaky_multistep_auto"]

RESET_CODES = {"subtract": 0, "zero": 1, "none": 2}

# the Sigmoid surrogate's expf is dispatch.CPU_EXPF, so that the backward's neuron loop vectorises
_SOURCE = "#include <math.h>\n" + dispatch.CPU_EXPF + r"""

static inline float fire(float d, int strict) { return (strict ? d > 0.0f : d >= 0.0f) ? 1.0f : 0.0f; }

// the surrogate's derivative at d = U - thr, with PyTorch's operation order (reprolib.surrogate); constants
// as reprolib.kernels.lif.surrogate_options gives them: Sigmoid (sg_a = alpha), ATan (alpha / 2, pi / 2 alpha)
static inline float surrogate(float d, int kind, float sg_a, float sg_b) {
    if (kind == 1) {               // ATan: (alpha / 2) / (1 + ((pi / 2) alpha d)^2), as reciprocal * alpha / 2
        const float y = sg_b * d;
        return (1.0f / (1.0f + y * y)) * sg_a;
    }
    const float s = 1.0f / (1.0f + expf(-(sg_a * d)));   // Sigmoid: alpha s (1 - s)
    return sg_a * s * (1.0f - s);
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

// One reverse step over all neurons, for one surrogate (KIND) and reset mode (RESET) fixed at compile time: no
// branch is left in the loop, so the compiler vectorises it.
template <int KIND, int RESET>
static void leaky_backward_step(const float* __restrict prev, const float* __restrict cur,
                                const float* __restrict gs, float* __restrict gi, float* __restrict carry,
                                double* __restrict acc_beta, double* __restrict acc_thr, long long N, float beta,
                                float thr, int strict, float sg_a, float sg_b) {
    for (long long n = 0; n < N; ++n) {
        const float d = surrogate(cur[n] - thr, KIND, sg_a, sg_b);
        const float through_spike = gs[n] * d;
        const float gu = through_spike + carry[n];
        gi[n] = gu;
        const float m = prev[n];
        double gt = -(double)through_spike;
        if (RESET == 1) {
            const float keep = 1.0f - fire(m - thr, strict);
            acc_beta[n] += (double)gu * (double)(keep * m);
            carry[n] = gu * beta * keep;
        } else {
            acc_beta[n] += (double)gu * (double)m;
            if (RESET == 0) gt -= (double)gu * (double)fire(m - thr, strict);
            carry[n] = gu * beta;
        }
        acc_thr[n] += gt;
    }
}

// gS, gI, u: [T, N]; g_last, u0, carry: [N] (carry enters as dL/dU[T-1] from the final state, leaves as dL/dU0).
// The scalar gradients are summed per neuron over time first (acc_beta, acc_thr: [N], in double), then over the
// neurons: every neuron's chain is then independent.
extern "C" void leaky_backward(const float* gS, const float* u0, const float* u, float* gI, float* carry,
                               double* acc_beta, double* acc_thr, double* g_scalars, int T, long long N, float beta,
                               float thr, int reset, int strict, int kind, float sg_a, float sg_b) {
    for (long long n = 0; n < N; ++n) { acc_beta[n] = 0.0; acc_thr[n] = 0.0; }
    for (int t = T - 1; t >= 0; --t) {
        const float* prev = t > 0 ? u + (long long)(t - 1) * N : u0;
        const long long o = (long long)t * N;
#define LEAKY_STEP(K, R) leaky_backward_step<K, R>(prev, u + o, gS + o, gI + o, carry, acc_beta, acc_thr, N, beta, \
                                                   thr, strict, sg_a, sg_b)
        if (kind == 1) {
            if (reset == 0) LEAKY_STEP(1, 0); else if (reset == 1) LEAKY_STEP(1, 1); else LEAKY_STEP(1, 2);
        } else {
            if (reset == 0) LEAKY_STEP(0, 0); else if (reset == 1) LEAKY_STEP(0, 1); else LEAKY_STEP(0, 2);
        }
#undef LEAKY_STEP
    }
    double g_beta = 0.0, g_thr = 0.0;
    for (long long n = 0; n < N; ++n) { g_beta += acc_beta[n]; g_thr += acc_thr[n]; }
    g_scalars[0] = g_beta;
    g_scalars[1] = g_thr;
}
"""

def leaky_source() -> str:
    """The C++ source of the scans."""
    return _SOURCE


@lru_cache(maxsize=1)  # built and declared once; every forward and backward asks
def _library():
    import ctypes  # noqa: PLC0415

    ptr, i64, f32, i32 = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_float, ctypes.c_int
    functions = {
        "leaky_forward": (None, [ptr, ptr, ptr, ptr, i32, i64, f32, f32, i32, i32]),
        "leaky_backward": (None, [ptr] * 8 + [i32, i64, f32, f32, i32, i32, i32, f32, f32]),
    }
    # -fno-trapping-math: the float comparisons (fire, reset) become selects, so the neuron loops vectorise
    return dispatch.load_library(_SOURCE, "leaky_", functions, opt_level="-O3", extra_flags=("-fno-trapping-math",))


def check_supported(spike_fn, reset: str) -> tuple[str, bool, float, float]:
    """``(surrogate name, strict, sg_a, sg_b)`` (:func:`reprolib.kernels.lif.surrogate_options`) of a spike
    function and reset the scans implement, else :class:`KernelUnsupported`."""
    from reprolib.kernels.lif import surrogate_options  # noqa: PLC0415

    if reset not in RESET_CODES:
        raise KernelUnsupported(f"Leaky kernels: reset={reset!r}; expected one of {tuple(RESET_CODES)}")
    try:
        return surrogate_options(spike_fn)
    except KernelUnsupported as err:
        raise KernelUnsupported(f"Leaky kernels: spike_fn={spike_fn!r} is not implemented; the scans have ATan "
                                "and Sigmoid surrogates (use backend='torch' for others)") from err


def _scalar(value, like: Tensor, name: str) -> Tensor:
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.numel() != 1:
        raise KernelUnsupported(f"Leaky kernels: {name} of shape {tuple(value.shape)}; the scans take one "
                                "scalar per layer (use backend='torch' for per-neuron values)")
    return value.reshape(())


def _operands(x_seq: Tensor, state, params) -> tuple[tuple[str, bool, float, float], Tensor, Tensor]:
    """What both scans check and take: the surrogate options, ``clamp(beta, 0, 1)`` and the threshold."""
    options = check_supported(params.spike_fn, params.reset)
    if not isinstance(x_seq, Tensor) or x_seq.dim() < 2 or x_seq.shape[0] < 1:
        raise ValueError(f"Leaky kernels: input {getattr(x_seq, 'shape', x_seq)!r} is invalid; expected [T, B, ...] "
                         "with T >= 1")
    if state.mem.shape != x_seq.shape[1:]:
        raise ValueError(f"Leaky kernels: state {tuple(state.mem.shape)} does not match the input steps "
                         f"{tuple(x_seq.shape[1:])}")
    beta = torch.clamp(_scalar(params.beta, x_seq, "beta"), 0.0, 1.0)
    return options, beta, _scalar(params.threshold, x_seq, "threshold")


class _LeakyScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, u0: Tensor, beta: Tensor, thr: Tensor, reset: int, kind: int, strict: bool,
                sg: tuple):
        T = x_seq.shape[0]
        N = x_seq[0].numel()
        x = x_seq.detach().contiguous()
        start = u0.detach().contiguous()
        spikes, u = torch.empty_like(x), torch.empty_like(x)
        b, th = float(beta), float(thr)
        _library().leaky_forward(x.data_ptr(), start.data_ptr(), spikes.data_ptr(), u.data_ptr(), T, N, b, th,
                                 reset, int(strict))
        ctx.save_for_backward(start, u)
        ctx.constants = (T, N, b, th, reset, int(strict), kind) + sg
        return spikes, u[-1].clone()

    @staticmethod
    def backward(ctx, g_spikes: Tensor, g_last: Tensor):
        start, u = ctx.saved_tensors
        T, N, b, th, reset, strict, kind, sg_a, sg_b = ctx.constants
        gs = g_spikes.contiguous() if g_spikes is not None else torch.zeros_like(u)
        carry = g_last.detach().clone().contiguous() if g_last is not None else torch.zeros_like(start)
        g_in = torch.empty_like(u)
        scalars = torch.zeros(2, dtype=torch.float64)
        per_neuron = torch.empty(2, N, dtype=torch.float64)
        _library().leaky_backward(gs.data_ptr(), start.data_ptr(), u.data_ptr(), g_in.data_ptr(), carry.data_ptr(),
                                  per_neuron[0].data_ptr(), per_neuron[1].data_ptr(), scalars.data_ptr(), T, N, b, th,
                                  reset, strict, kind, sg_a, sg_b)
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
    (name, strict, sg_a, sg_b), beta, thr = _operands(input_seq, state, params)
    spikes, last = _LeakyScan.apply(input_seq, state.mem.to(input_seq.dtype), beta, thr, RESET_CODES[params.reset],
                                    _SURROGATE_IDS[name], strict, (float(sg_a), float(sg_b)))
    return spikes, LeakyState(last)



# ------------------------------------------------------------------------------------------ CUDA (CuPy)

LEAKY_SPECS = (
    KernelSpec(
        "leaky_forward",
        (("const float*", "x"), ("const float*", "u0"), ("const float*", "beta_thr"), ("float*", "spike"),
         ("float*", "u_seq"), ("int", "T"), ("int", "N"), ("float", "sg_a"), ("float", "sg_b")),
    ),
    KernelSpec(
        "leaky_backward",
        (("const float*", "grad_spike"), ("const float*", "grad_u_last"), ("const float*", "u0"),
         ("const float*", "u_seq"), ("const float*", "beta_thr"), ("float*", "grad_x"), ("float*", "grad_u0"),
         ("float*", "grad_beta"), ("float*", "grad_thr"), ("int", "T"), ("int", "N"), ("float", "sg_a"),
         ("float", "sg_b")),
    ),
)

_CUDA_BODY = r"""
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

// u_seq[t] = U[t], the membrane after step t (the state step t + 1 reads); op for op as leaky_step.
// beta_thr = {clamp(beta, 0, 1), threshold} in device memory: learnable scalars are read there rather than
// copied to the host for every call (a blocking sync per layer and step of training)
extern "C" __global__ void leaky_forward(const float* __restrict__ x, const float* __restrict__ u0,
                                         const float* __restrict__ beta_thr, float* __restrict__ spike,
                                         float* __restrict__ u_seq, const int T, const int N, const float sg_a,
                                         const float sg_b) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float beta = beta_thr[0], thr = beta_thr[1];
    float u = u0[n];
    for (int t = 0; t < T; ++t) {
        const long long i = (long long)t * N + n;
#if RESET == 1
        float v = beta * ((1.0f - FIRE(u - thr)) * u) + x[i];
#else
        float v = beta * u + x[i];
#if RESET == 0
        v = v - FIRE(u - thr) * thr;
#endif
#endif
        u_seq[i] = v;
        spike[i] = FIRE(v - thr);
        u = v;
    }
}

// reverse scan; carry = dL/dU[t] from step t + 1 (and from U[T-1] as the returned state); the scalar
// gradients are summed per neuron here and over neurons by the host
extern "C" __global__ void leaky_backward(const float* __restrict__ grad_spike, const float* __restrict__ grad_u_last,
                                          const float* __restrict__ u0, const float* __restrict__ u_seq,
                                          const float* __restrict__ beta_thr, float* __restrict__ grad_x,
                                          float* __restrict__ grad_u0, float* __restrict__ grad_beta,
                                          float* __restrict__ grad_thr, const int T, const int N, const float sg_a,
                                          const float sg_b) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float beta = beta_thr[0], thr = beta_thr[1];
    float carry = grad_u_last[n];
    float gb = 0.0f, gt = 0.0f;
    for (int t = T - 1; t >= 0; --t) {
        const long long i = (long long)t * N + n;
        const float through_spike = grad_spike[i] * SURROGATE_GRAD(u_seq[i] - thr);
        const float gu = through_spike + carry;
        grad_x[i] = gu;
        const float m = t > 0 ? u_seq[i - N] : u0[n];
        gt -= through_spike;
#if RESET == 1
        const float keep = 1.0f - FIRE(m - thr);
        gb += gu * (keep * m);
        carry = gu * beta * keep;
#else
        gb += gu * m;
#if RESET == 0
        gt -= gu * FIRE(m - thr);
#endif
        carry = gu * beta;
#endif
    }
    grad_u0[n] = carry;
    grad_beta[n] = gb;
    grad_thr[n] = gt;
}
"""

_SURROGATE_IDS = {"sigmoid": 0, "atan": 1}


@lru_cache(maxsize=None)
def leaky_cuda_source(reset: str, surrogate: str, strict: bool, engine: str = "cupy") -> str:
    """CUDA source of the Leaky scan for one option set (cached; the text is also the compile-cache key)."""
    if reset not in RESET_CODES:
        raise KernelUnsupported(f"Leaky kernel: reset={reset!r}; expected one of {tuple(RESET_CODES)}")
    if surrogate not in _SURROGATE_IDS:
        raise KernelUnsupported(f"Leaky kernel: surrogate {surrogate!r}; expected one of {sorted(_SURROGATE_IDS)}")
    defines = {"RESET": RESET_CODES[reset], "SURROGATE": _SURROGATE_IDS[surrogate], "STRICT": int(bool(strict))}
    head = "".join(f"#define {k} {v}\n" for k, v in defines.items())
    return f"// reprolib fused snnTorch-Leaky scan, storage float32\n{head}{dispatch.common_source(engine)}{_CUDA_BODY}"


def leaky_option_sets():
    """Every option combination (for the compile test): keyword dicts for :func:`leaky_cuda_source`."""
    for reset in RESET_CODES:
        for surrogate in _SURROGATE_IDS:
            for strict in (False, True):
                yield dict(reset=reset, surrogate=surrogate, strict=strict)


class _LeakyKernelScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2: Tensor, u0f: Tensor, beta: Tensor, thr: Tensor, engine, source: str, sg: tuple):
        T, N = x2.shape
        spikes, u_seq = torch.empty_like(x2), torch.empty_like(x2)
        # no float(beta): that would wait for the GPU on every call
        beta_thr = torch.stack((beta.detach(), thr.detach())).to(device=x2.device, dtype=torch.float32).contiguous()
        engine.launch(source, LEAKY_SPECS, "leaky_forward", N, BLOCK_SCAN, (x2, u0f, beta_thr, spikes, u_seq, T, N) + sg)
        ctx.save_for_backward(u0f, u_seq, beta_thr)
        ctx.engine, ctx.source, ctx.sg = engine, source, sg
        ctx.scalar_places = (beta.device, beta.dtype), (thr.device, thr.dtype)
        return spikes, u_seq[-1].clone()

    @staticmethod
    def backward(ctx, g_spikes: Tensor, g_last: Tensor):
        u0f, u_seq, beta_thr = ctx.saved_tensors
        T, N = u_seq.shape
        gs = g_spikes.contiguous() if g_spikes is not None else torch.zeros_like(u_seq)
        gl = g_last.contiguous() if g_last is not None else torch.zeros_like(u0f)
        g_x, g_u0 = torch.empty_like(u_seq), torch.empty_like(u0f)
        g_beta, g_thr = torch.empty_like(u0f), torch.empty_like(u0f)
        ctx.engine.launch(ctx.source, LEAKY_SPECS, "leaky_backward", N, BLOCK_SCAN,
                          (gs, gl, u0f, u_seq, beta_thr, g_x, g_u0, g_beta, g_thr, T, N) + ctx.sg)
        (beta_device, beta_dtype), (thr_device, thr_dtype) = ctx.scalar_places
        return (g_x, g_u0 if ctx.needs_input_grad[1] else None,
                g_beta.sum().to(beta_device, beta_dtype) if ctx.needs_input_grad[2] else None,
                g_thr.sum().to(thr_device, thr_dtype) if ctx.needs_input_grad[3] else None, None, None, None)


def leaky_multistep_cuda(input_seq: Tensor, state, params, *, engine: str = "cupy"):
    """:func:`reprolib.neurons.leaky.leaky_multistep` as the fused kernel: ``(spikes [T, B, ...], LeakyState)``.

    ``engine="cupy"`` needs a CUDA tensor and CuPy (:class:`BackendUnavailable` names what is missing);
    ``"emulate"`` runs the same source compiled as C++ on CPU tensors (tests). fp16 / bf16 inputs are computed
    in float32 and returned in their dtype.
    """
    from reprolib.neurons.leaky import LeakyState  # noqa: PLC0415

    if not isinstance(input_seq, Tensor) or input_seq.dim() < 2 or input_seq.shape[0] < 1:
        raise ValueError(f"Leaky kernel: input {getattr(input_seq, 'shape', input_seq)!r}; expected [T, B, ...] "
                         "with T >= 1")
    if engine == "cupy":
        dispatch.resolve_backend("cupy", input_seq)
    if input_seq.dtype not in dispatch.KERNEL_DTYPES + dispatch.UPCAST_DTYPES:
        raise KernelUnsupported(f"Leaky kernel: dtype {input_seq.dtype}; expected float32, float16 or bfloat16")
    dtype = input_seq.dtype
    xf = input_seq.float() if dtype != torch.float32 else input_seq
    (name, strict, sg_a, sg_b), beta, thr = _operands(xf, state, params)
    x2 = xf.contiguous().view(input_seq.shape[0], -1)
    # on the input's device, as the other kernels do (a state left on another GPU must not be read from there)
    u0f = state.mem.to(device=xf.device, dtype=torch.float32).contiguous().view(-1)
    source = leaky_cuda_source(params.reset, name, bool(strict), engine)
    spikes, last = _LeakyKernelScan.apply(x2, u0f, beta, thr, dispatch.get_engine(engine), source,
                                          (float(sg_a), float(sg_b)))
    spikes, last = spikes.view(input_seq.shape), last.view(input_seq.shape[1:])
    if dtype != torch.float32:
        spikes, last = spikes.to(dtype), last.to(dtype)
    return spikes, LeakyState(last)


def leaky_multistep_auto(input_seq: Tensor, state, params):
    """``backend="auto"``: the fused kernel for CUDA tensors when CuPy works and the options have a kernel,
    else :func:`reprolib.neurons.leaky.leaky_multistep`."""
    from reprolib.neurons.leaky import leaky_multistep  # noqa: PLC0415

    if dispatch.resolve_backend("auto", input_seq) == "cupy":
        try:
            _operands(input_seq, state, params)
        except KernelUnsupported:
            return leaky_multistep(input_seq, state, params)
        return leaky_multistep_cuda(input_seq, state, params)
    return leaky_multistep(input_seq, state, params)
