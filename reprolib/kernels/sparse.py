"""Input matmuls over event-sparse inputs on the CPU (part of ``backend="cpp"`` for the SRC-paper networks).

An N-MNIST batch binned to 200 steps is a ``[T * B, 2312]`` matrix with under 1 % non-zero entries, and the
hidden spikes of those networks are sparser still. On a CPU, the dense GEMMs of the first layer (forward and
weight gradient) were about 60 % of a training step (measured once, 3ff493a, 2026-11-30) of the two-layer N-MNIST networks (0.7 s of 1.2 s, batch
64, one thread). Stored as CSR, the same two products take 0.07 s. Building the CSR of ``x`` and of ``x^T``
from the dense batch with PyTorch operators (``nonzero``, ``argsort``) cost 0.16 s; a C++ builder (one read of the
batch into buffers sized from a sample of rows, the transpose by counting sort) does it faster, and PyTorch's
builder remains where no C++ compiler exists (measured on the 2-core development machine; ``reprolib bench``
times this path only inside the training steps of its ``networks`` rows, not on its own).

:func:`event_linear` is ``torch.nn.functional.linear`` with that shortcut: for a float32 CPU input with at most
``max_density`` non-zero entries it multiplies the sparse input; otherwise it is ``F.linear`` itself. The
result is the same product summed in another order, so it agrees with the dense one to float32 rounding, not
bit for bit; this is why it is opt-in (``backend="cpp"``), as a record's backend is stored with its config and
a re-run takes the same path.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFAULT_MAX_DENSITY", "estimated_density", "event_linear", "sparse_rows"]

#: above this fraction of non-zero inputs the dense GEMM wins (at 10 % the sparse product is still ~2x faster
#: here; the CSR build, a fixed cost, decides below that)
DEFAULT_MAX_DENSITY = 0.1


def sparse_rows(x2d: Tensor, transpose: bool = True) -> tuple[Tensor, Tensor | None]:
    """CSR matrices of ``x2d [M, K]`` and of its transpose ``[K, M]`` (None unless ``transpose``), from one
    pass over the dense matrix (faster here than ``Tensor.to_sparse_csr``)."""
    with warnings.catch_warnings():  # "CSR support is in beta": the products used here are tested against dense
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return _sparse_rows(x2d, transpose)


_CSR_SOURCE = r"""
#include <stdint.h>
#include <string.h>
// CSR of x [M, K] (row-major float32) in one pass into buffers sized from a sampled density, grown and resumed
// where that estimate falls short; the transpose by counting sort over the nnz entries.

// One pass from row r0 (rows before it done, crow[0..r0] set): row r's entries go to cols / vals from crow[r].
// Returns nnz, or -(r + 1) as soon as row r would not fit in `capacity`: rows before r are done, and the caller
// grows the buffers and calls again from r. Blocks of 8 zero words (event data is ~97-99 % zeros) are skipped; in
// the others the non-zero lanes are taken from a bit mask, without a branch per element.
extern "C" long long csr_one_pass(const float* x, long long M, long long K, long long* crow, long long* cols,
                                  float* vals, long long capacity, long long r0) {
    long long p = crow[r0];
    for (long long r = r0; r < M; ++r) {
        const float* row = x + r * K;
        if (p + K > capacity) {  // the row might not fit: count it
            long long need = 0;
            for (long long c = 0; c < K; ++c) need += row[c] != 0.0f;
            if (p + need > capacity) return -(r + 1);
        }
        long long c = 0;
        for (; c + 8 <= K; c += 8) {
            uint32_t w[8];
            memcpy(w, row + c, sizeof w);
            if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0u) continue;  // all +0.0f
            unsigned mask = 0;
            for (int k = 0; k < 8; ++k) mask |= (unsigned)(row[c + k] != 0.0f) << k;
            while (mask) {
                const int k = __builtin_ctz(mask);
                cols[p] = c + k; vals[p] = row[c + k]; ++p;
                mask &= mask - 1;
            }
        }
        for (; c < K; ++c)
            if (row[c] != 0.0f) { cols[p] = c; vals[p] = row[c]; ++p; }
        crow[r + 1] = p;
    }
    return p;
}

// crow_t: [K + 1] zeroed on entry; rows ascend within each column (the fill walks rows in order)
extern "C" void csr_transpose(const long long* crow, const long long* cols, const float* vals, long long M,
                              long long K, long long* crow_t, long long* rows_t, float* vals_t) {
    const long long nnz = crow[M];
    for (long long p = 0; p < nnz; ++p) ++crow_t[cols[p] + 1];
    for (long long c = 0; c < K; ++c) crow_t[c + 1] += crow_t[c];
    long long* next = new long long[K];
    memcpy(next, crow_t, sizeof(long long) * K);
    for (long long r = 0; r < M; ++r)
        for (long long p = crow[r]; p < crow[r + 1]; ++p) {
            const long long q = next[cols[p]]++;
            rows_t[q] = r; vals_t[q] = vals[p];
        }
    delete[] next;
}
"""

@lru_cache(maxsize=1)
def _csr_library():
    """The compiled CSR builder, or None without a C++ compiler (the PyTorch builder is used then)."""
    from reprolib.kernels import cpu, dispatch  # noqa: PLC0415

    if not cpu.cpp_available():
        return None
    ptr, i64 = ctypes.c_void_p, ctypes.c_longlong
    return dispatch.load_library(_CSR_SOURCE, "csr_", {
        "csr_one_pass": (i64, [ptr, i64, i64, ptr, ptr, ptr, i64, i64]),
        "csr_transpose": (None, [ptr, ptr, ptr, i64, i64, ptr, ptr, ptr]),
    })


def _sparse_rows_cpp(lib, x2d: Tensor, transpose: bool) -> tuple[Tensor, Tensor | None]:
    M, K = x2d.shape
    x = x2d.contiguous()
    crow = torch.zeros(M + 1, dtype=torch.int64)
    # one pass into buffers with room for 30 % more entries than the sampled density predicts (and one full row).
    # Where the sample fell short (latency codes put most spikes in a few time steps, which evenly spaced rows can
    # miss), the buffers grow and the pass goes on from the row that did not fit: one read of the batch either way.
    # Counting first and filling again cost two more reads, the whole builder of a latency-coded MNIST batch.
    capacity = min(M * K, int(estimated_density(x) * M * K * 1.3) + K)
    cols, vals = torch.empty(capacity, dtype=torch.int64), torch.empty(capacity, dtype=torch.float32)
    row = 0
    while True:
        nnz = lib.csr_one_pass(x.data_ptr(), M, K, crow.data_ptr(), cols.data_ptr(), vals.data_ptr(), capacity, row)
        if nnz >= 0:
            break
        # rows before `row` are in the buffers: room for the rest at the density so far, at least twice as much
        # as before (capacity >= K, so the row that did not fit fits now; doubling bounds the copies)
        row = -nnz - 1
        done = int(crow[row])
        rest = int(1.3 * done / max(row * K, 1) * (M - row) * K)
        capacity = min(M * K, max(done + rest, 2 * capacity))
        grown_cols, grown_vals = torch.empty(capacity, dtype=torch.int64), torch.empty(capacity, dtype=torch.float32)
        grown_cols[:done], grown_vals[:done] = cols[:done], vals[:done]
        cols, vals = grown_cols, grown_vals
    cols, vals = cols[:nnz], vals[:nnz]
    x_csr = torch.sparse_csr_tensor(crow, cols, vals, (M, K), check_invariants=False)
    if not transpose:
        return x_csr, None
    crow_t = torch.zeros(K + 1, dtype=torch.int64)
    rows_t, vals_t = torch.empty(nnz, dtype=torch.int64), torch.empty(nnz, dtype=torch.float32)
    lib.csr_transpose(crow.data_ptr(), cols.data_ptr(), vals.data_ptr(), M, K, crow_t.data_ptr(), rows_t.data_ptr(),
                      vals_t.data_ptr())
    return x_csr, torch.sparse_csr_tensor(crow_t, rows_t, vals_t, (K, M), check_invariants=False)


def _sparse_rows(x2d: Tensor, transpose: bool) -> tuple[Tensor, Tensor | None]:
    lib = _csr_library() if x2d.dtype == torch.float32 else None
    if lib is not None:
        return _sparse_rows_cpp(lib, x2d, transpose)
    return _sparse_rows_torch(x2d, transpose)


def _sparse_rows_torch(x2d: Tensor, transpose: bool) -> tuple[Tensor, Tensor | None]:
    M, K = x2d.shape
    flat = x2d.reshape(-1).nonzero().squeeze(1)  # row-major order: rows ascending, columns ascending within
    rows = torch.div(flat, K, rounding_mode="floor")
    cols = flat - rows * K
    values = x2d.reshape(-1)[flat]
    crow = torch.zeros(M + 1, dtype=torch.int64)
    crow[1:] = torch.bincount(rows, minlength=M).cumsum(0)
    x_csr = torch.sparse_csr_tensor(crow, cols, values, (M, K), check_invariants=False)
    if not transpose:
        return x_csr, None
    by_col = torch.argsort(cols, stable=True)  # stable: rows stay ascending within each column
    crow_t = torch.zeros(K + 1, dtype=torch.int64)
    crow_t[1:] = torch.bincount(cols, minlength=K).cumsum(0)
    xt_csr = torch.sparse_csr_tensor(crow_t, rows[by_col], values[by_col], (K, M),
                                    check_invariants=False)
    return x_csr, xt_csr


class _EventLinear(torch.autograd.Function):
    """``y = x W^T (+ b)`` for a sparse ``x``; backward: ``dW = (x^T dY)^T`` sparse, ``dx = dY W`` dense."""

    @staticmethod
    def forward(ctx, x2d: Tensor, weight: Tensor, bias: Tensor | None):
        x_csr, xt_csr = sparse_rows(x2d, transpose=ctx.needs_input_grad[1])
        out = x_csr @ weight.t()
        if bias is not None:
            out = out + bias
        ctx.xt_csr = xt_csr
        ctx.save_for_backward(weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (weight,) = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_x = grad_out @ weight if ctx.needs_input_grad[0] else None
        grad_w = (ctx.xt_csr @ grad_out).t() if ctx.needs_input_grad[1] else None
        grad_b = grad_out.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        ctx.xt_csr = None
        return grad_x, grad_w, grad_b


def estimated_density(x2d: Tensor, rows: int = 256) -> float:
    """Fraction of non-zero entries of ``x2d [M, K]``, counted on about ``rows`` evenly spaced rows.

    It only chooses between two exact paths, so a sample is enough; counting every entry cost a third as much
    as the sparse product itself (a full pass over a 118 MB N-MNIST batch).
    """
    step = max(1, x2d.shape[0] // rows)
    sample = x2d[::step]
    return torch.count_nonzero(sample).item() / max(1, sample.numel())


def event_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                 max_density: float = DEFAULT_MAX_DENSITY) -> Tensor:
    """``F.linear(x, weight, bias)``, multiplying ``x [..., K]`` as a sparse matrix where that is faster.

    The sparse path is taken for float32 CPU tensors whose fraction of non-zero entries is at most
    ``max_density``; anything else (CUDA, other dtypes, dense activity) goes to ``F.linear`` unchanged.
    """
    if not 0.0 <= max_density <= 1.0:
        raise ValueError(f"event_linear: max_density={max_density!r} is invalid; expected a fraction in [0, 1]")
    if weight.dim() != 2:  # F.linear takes a 1-D weight too, but returns a different shape; no layer here uses it
        raise ValueError(f"event_linear: weight {tuple(weight.shape)} is invalid; expected a 2-D weight "
                         "[out_features, in_features]")
    if x.dim() == 0:
        raise ValueError("event_linear: the input is a 0-d tensor; expected an input [..., in_features]")
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"event_linear: input {tuple(x.shape)} and weight {tuple(weight.shape)} do not match; "
                         f"expected the input's last size to be {weight.shape[-1]}")
    usable = (x.device.type == "cpu" and weight.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
              and x.layout == torch.strided and x.numel() > 0 and x.dim() >= 2)
    if not usable:
        return F.linear(x, weight, bias)
    x2d = x.reshape(-1, x.shape[-1]).contiguous()
    if estimated_density(x2d) > max_density:
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        out = _EventLinear.apply(x2d, weight, bias)
    else:  # evaluation: no transpose to build, nothing to save
        out = sparse_rows(x2d, transpose=False)[0] @ weight.t()
        out = out if bias is None else out + bias
    return out.reshape(*x.shape[:-1], weight.shape[0])
