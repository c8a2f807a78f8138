"""Fused scan of the leaky-integrator (LI) readout of the BRF paper's networks.

``u[t] = alpha u[t-1] + (1 - alpha) I[t]`` with ``alpha = exp(-1/|tau_out|)`` per output neuron
(:func:`reprolib.neurons.resonate.li_step`). The readout's input current ``I = z W^T (+ b)`` is known for all
steps once the hidden layer has run, so one thread per output neuron scans all T steps, forward and backward,
instead of a framework loop of T small steps (784 on S-MNIST, 1300 on ECG). The same source runs on the GPU
(``engine="cupy"``) and, compiled as C++, on the CPU (``engine="cpp"``; ``"emulate"`` in the tests).

The forward rounds exactly as :func:`~reprolib.neurons.resonate.li_step` (same operations, no FMA
contraction), so the readout is bit-identical to the PyTorch loop on the CPU.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from reprolib.kernels import dispatch
from reprolib.kernels.dispatch import BLOCK_SCAN, KernelSpec

__all__ = ["LI_SPECS", "li_source", "li_multistep", "li_multistep_auto", "li_multistep_cpp"]

LI_SPECS = (
    KernelSpec("li_forward", (
        ("const float*", "cur"), ("const float*", "u0"), ("const float*", "alpha"), ("float*", "u_seq"),
        ("int", "T"), ("int", "N"), ("int", "P"))),
    KernelSpec("li_backward", (
        ("const float*", "cur"), ("const float*", "u0"), ("const float*", "u_seq"), ("const float*", "alpha"),
        ("const float*", "gu_seq"), ("float*", "gu"), ("float*", "g_cur"), ("float*", "g_alpha"),
        ("int", "T"), ("int", "N"), ("int", "P"))),
)

_BODY = r"""
extern "C" __global__ void li_forward(const float* __restrict__ cur, const float* __restrict__ u0,
                                      const float* __restrict__ alpha, float* __restrict__ u_seq,
                                      const int T, const int N, const int P) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float a = alpha[n % P];
    const float c = 1.0f - a;
    float u = u0[n];
    for (int t = 0; t < T; ++t) {
        const long long e = (long long)t * N + n;
        u = a * u + c * cur[e];
        u_seq[e] = u;
    }
}

// gu: in dL/du[T-1] of the final state, out dL/du0; g_alpha: per element, summed over t
extern "C" __global__ void li_backward(const float* __restrict__ cur, const float* __restrict__ u0,
                                       const float* __restrict__ u_seq, const float* __restrict__ alpha,
                                       const float* __restrict__ gu_seq, float* __restrict__ gu,
                                       float* __restrict__ g_cur, float* __restrict__ g_alpha,
                                       const int T, const int N, const int P) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float a = alpha[n % P];
    const float c = 1.0f - a;
    float g = gu[n], ga = 0.0f;
    for (int t = T - 1; t >= 0; --t) {
        const long long e = (long long)t * N + n;
        const float gt = gu_seq[e] + g;
        const float u_prev = t > 0 ? u_seq[e - N] : u0[n];
        g_cur[e] = c * gt;
        ga += gt * (u_prev - cur[e]);
        g = a * gt;
    }
    gu[n] = g;
    g_alpha[n] = ga;
}
"""


@lru_cache(maxsize=None)
def li_source(engine: str = "cupy") -> str:
    return f"// reprolib fused LI readout scan, storage float32\n{dispatch.common_source(engine)}{_BODY}"


class _LIScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cur2, u0, alpha, engine_name: str, P: int):
        T, N = cur2.shape
        engine = dispatch.get_engine(engine_name)
        u_seq = torch.empty_like(cur2)
        engine.launch(li_source(engine_name), LI_SPECS, "li_forward", N, BLOCK_SCAN, (cur2, u0, alpha, u_seq, T, N, P))
        ctx.engine_name, ctx.P = engine_name, P
        ctx.save_for_backward(cur2, u0, u_seq, alpha)
        return u_seq

    @staticmethod
    def backward(ctx, g_useq):
        cur2, u0, u_seq, alpha = ctx.saved_tensors
        T, N = cur2.shape
        engine = dispatch.get_engine(ctx.engine_name)
        gu = torch.zeros_like(u0)  # the final state is u_seq[-1]; its gradient arrives through g_useq
        g_cur, g_alpha = torch.empty_like(cur2), torch.empty_like(u0)
        engine.launch(li_source(ctx.engine_name), LI_SPECS, "li_backward", N, BLOCK_SCAN,
                      (cur2, u0, u_seq, alpha, g_useq.contiguous(), gu, g_cur, g_alpha, T, N, ctx.P))
        return g_cur, gu, dispatch.reduce_period(g_alpha, ctx.P), None, None


def li_multistep(z_seq: Tensor, weight: Tensor, state, params, bias=None, *, engine: str = "cupy"):
    """Fused LI readout over ``z_seq [T, B, h]``; drop-in for :func:`reprolib.neurons.resonate.li_multistep`:
    ``(u_seq [T, B, C], LIState)``. ``engine``: ``"cupy"`` (CUDA tensors), ``"cpp"`` or ``"emulate"`` (CPU, C++ builds)."""
    from reprolib.neurons.resonate import LIState  # noqa: PLC0415

    if not isinstance(z_seq, Tensor) or z_seq.dim() != 3 or weight.shape[1] != z_seq.shape[-1]:
        shape = tuple(z_seq.shape) if isinstance(z_seq, Tensor) else type(z_seq).__name__
        raise ValueError(f"z_seq {shape} with weight {tuple(weight.shape)} is invalid; expected z_seq [T, B, h] "
                         "and weight [C, h]")
    if engine == "cupy":
        dispatch.resolve_backend("cupy", z_seq)
    dtype, device = z_seq.dtype, z_seq.device
    T, B, _ = z_seq.shape
    C = weight.shape[0]
    cur = z_seq @ weight.t()
    if bias is not None:
        cur = cur + bias
    alpha = torch.exp(-1.0 / torch.abs(params.tau))
    alpha_flat, P = dispatch.param_period(alpha, torch.Size((B, C)), torch.float32, device, "tau_out")
    u0 = dispatch.flat(torch.as_tensor(state.u, device=device).float().expand(B, C))
    u_seq = _LIScan.apply(cur.float().contiguous().view(T, B * C), u0, alpha_flat, engine, P).view(T, B, C)
    u_seq = u_seq.to(dtype) if dtype != torch.float32 else u_seq
    return u_seq, LIState(u_seq[-1])


def li_multistep_auto(z_seq: Tensor, weight: Tensor, state, params, bias=None):
    """``backend="auto"``: the fused scan on CUDA tensors when CuPy works, else the PyTorch loop."""
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    if dispatch.resolve_backend("auto", z_seq) == "cupy":
        return li_multistep(z_seq, weight, state, params, bias, engine="cupy")
    return R.li_multistep(z_seq, weight, state, params, bias)


def li_multistep_cpp(z_seq: Tensor, weight: Tensor, state, params, bias=None):
    """``backend="cpp"``: the same scan compiled as C++ for CPU tensors."""
    from reprolib.kernels import cpu  # noqa: PLC0415

    cpu.check_input(z_seq)
    return li_multistep(z_seq, weight, state, params, bias, engine="cpp")
