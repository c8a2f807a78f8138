"""``torch.bernoulli`` and ``torch.rand(...) <= x`` on the CPU: the same draws from the same generator, in C++.

Why: the SRC paper's MNIST networks are rate coded, ``Bernoulli(0.25 p)`` at each of T = 200 steps, so a batch
of 64 images needs 10 million draws. PyTorch makes them one at a time through its generic serial element loop,
and on one CPU core that took longer than the network's forward and backward together: 6.5 s against 3.3 s
over 22 batches of the 1-layer SRC network (cProfile, 2026-11-30, before this module).

What: PyTorch's CPU generator is a 32-bit Mersenne Twister (``at::mt19937``), and its Bernoulli with a tensor of
probabilities draws, in the output's row-major order, one 32-bit number per element: the spike is
``(r & 0xFFFFFF) * 2**-24 < p`` (``at::bernoulli_distribution<float>`` over ``uniform_real_distribution``). This
module reads the generator's state (``Generator.get_state()``), runs the same twister and the same comparison
in C++, and writes the advanced state back (``set_state``), so the spikes and every later draw are exactly what
``torch.bernoulli`` would have given. The state layout is PyTorch's (``CPUGeneratorImplState``); the first use
in a process checks the whole path against ``torch.bernoulli`` (spikes and the state after), and falls back to
``torch.bernoulli`` for good when anything differs, so a PyTorch release that changes either only costs speed.
"""

from __future__ import annotations

import ctypes
import warnings
from functools import lru_cache

import torch
from torch import Tensor

from reprolib.kernels import dispatch

__all__ = ["bernoulli", "uniform_at_most", "fast_path_available", "MIN_DRAWS"]

MIN_DRAWS = 1 << 16  # below this the compile-once cost and the state round trip are not worth it

# Byte offsets in the state tensor of PyTorch's CPU generator (c10 CPUGeneratorImplState, 5056 bytes):
# the_initial_seed u64 @0, left i32 @8, seeded i32 @12, next u64 @16, state[624] u64 @24, then the cached normals.
_STATE_BYTES = 5056

_SOURCE = r"""
#include <stdint.h>
#include <string.h>
// PyTorch's at::mt19937 (ATen/core/MT19937RNGEngine.h): N = 624, M = 397, the state kept as 624 words,
// `left` counting down to the next twist, `next` the index of the next word to temper.
static const int N = 624, M = 397;
static inline uint32_t twist(uint32_t u, uint32_t v) {
    return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}
static void next_state(uint32_t* s) {
    uint32_t* p = s;
    for (int j = N - M + 1; --j; p++) *p = p[M] ^ twist(p[0], p[1]);
    for (int j = M; --j; p++) *p = p[M - N] ^ twist(p[0], p[1]);
    *p = p[M - N] ^ twist(p[0], s[0]);
}
static inline uint32_t temper(uint32_t y) {
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}
// state: the generator's state bytes (layout above). p: P probabilities, broadcast over `repeats` rows of out.
// Returns 0, or 1 when the state is not one this loop can continue (then nothing was written).
// One draw of the engine is `if (--left == 0) { twist; left = N; next = 0; } y = temper(s[next++])`. Here the
// draws between two twists are taken as a block, so that the inner loop has no branch and vectorises.
// inclusive = 0: u < p (torch.bernoulli); 1: u <= p (torch.rand(...) <= p, the same uniform u).
extern "C" RL_CLONES int bernoulli_f32(unsigned char* state, const float* __restrict p, long long P,
                                       long long repeats, float* __restrict out, int inclusive) {
    int32_t left; uint64_t next64; int32_t seeded;
    memcpy(&left, state + 8, 4); memcpy(&seeded, state + 12, 4); memcpy(&next64, state + 16, 8);
    // A state the engine reaches has left + next == N + 1 (or left 1, next 0 when freshly seeded); anything else
    // (set by hand) would read past the 624 words, so leave it to torch.
    if (!seeded || left < 1 || left > N || next64 > (uint64_t)N || (uint64_t)left + next64 > (uint64_t)N + 1) return 1;
    uint32_t s[N];
    for (int i = 0; i < N; ++i) { uint64_t w; memcpy(&w, state + 24 + 8 * i, 8); s[i] = (uint32_t)w; }
    long long next = (long long)next64, lft = left;
    const float scale = 1.0f / 16777216.0f;  // 2**-24: uniform_real_distribution<float> keeps 24 bits
    const long long total = P * repeats;
    long long done = 0, pos = 0;  // pos = done % P
    while (done < total) {
        if (lft == 1) { next_state(s); lft = N + 1; next = 0; }  // the next draw's --left then leaves N
        long long k = lft - 1;
        if (k > N - next) k = N - next;
        if (k > P - pos) k = P - pos;
        const uint32_t* w = s + next;
        const float* pp = p + pos;
        float* o = out + done;
        if (inclusive)
            for (long long j = 0; j < k; ++j) o[j] = ((float)(temper(w[j]) & 0xFFFFFFu) * scale <= pp[j]) ? 1.0f : 0.0f;
        else
            for (long long j = 0; j < k; ++j) o[j] = ((float)(temper(w[j]) & 0xFFFFFFu) * scale < pp[j]) ? 1.0f : 0.0f;
        lft -= k; next += k; done += k; pos += k;
        if (pos == P) pos = 0;
    }
    left = (int32_t)lft; next64 = (uint64_t)next;
    memcpy(state + 8, &left, 4); memcpy(state + 16, &next64, 8);
    for (int i = 0; i < N; ++i) { uint64_t w = s[i]; memcpy(state + 24 + 8 * i, &w, 8); }
    return 0;
}
"""


@lru_cache(maxsize=None)
def _library():
    ptr, i64 = ctypes.c_void_p, ctypes.c_longlong
    return dispatch.load_library(dispatch.CPU_SCAN_HEAD + _SOURCE, "bernoulli_",
                                 {"bernoulli_f32": (ctypes.c_int, [ptr, ptr, i64, i64, ptr, ctypes.c_int])}, opt_level="-O3")


def _draw_cpp(probabilities: Tensor, repeats: int, generator: torch.Generator, inclusive: bool = False) -> Tensor | None:
    p = probabilities.contiguous()
    out = torch.empty((repeats, *p.shape), dtype=torch.float32)
    state = generator.get_state()
    if state.numel() != _STATE_BYTES:
        return None
    if _library().bernoulli_f32(state.data_ptr(), p.data_ptr(), p.numel(), repeats, out.data_ptr(), int(inclusive)) != 0:
        return None
    generator.set_state(state)
    return out


def _tie_with_next_draws(probe: Tensor, generator: torch.Generator) -> None:
    """Set row 1 of ``probe`` to the uniforms ``generator`` will draw next for it, so that the first step compares
    equal numbers there: the only place where ``<`` and ``<=`` differ (by chance, once in 2**24 comparisons)."""
    peek = torch.Generator()
    peek.set_state(generator.get_state())
    probe[1] = torch.rand(probe.shape, generator=peek)[1]


@lru_cache(maxsize=None)
def fast_path_available() -> bool:
    """True when the C++ loop can be built here and gives exactly ``torch.bernoulli``'s spikes and ``torch.rand(...)
    <= x``'s, and their generator states after (checked once per process, at the size the loop is used for, from a
    state mid-way through a 624-word block, with exact ties between uniforms and probabilities)."""
    if dispatch.compiler() is None:
        return False
    try:
        probe = torch.rand(4, 1000, generator=torch.Generator().manual_seed(1234))
        probe[0, :3] = torch.tensor([0.0, 1.0, 0.5])
        ours, theirs = torch.Generator().manual_seed(99), torch.Generator().manual_seed(99)
        for g in (ours, theirs):
            torch.rand(101, generator=g)  # start mid-block
        repeats = -(-MIN_DRAWS // probe.numel())  # as many draws as the smallest batch the loop takes: 68,000
        _tie_with_next_draws(probe, theirs)
        got = _draw_cpp(probe, repeats, ours)
        if got is None:
            warnings.warn(f"reprolib: the CPU generator's state in PyTorch {torch.__version__} is not one the C++ "
                          f"Bernoulli draws can read (expected {_STATE_BYTES} bytes, a Mersenne Twister mid-block); "
                          "using torch.bernoulli and torch.rand", stacklevel=2)
            return False
        expected = torch.bernoulli(probe.expand(repeats, *probe.shape), generator=theirs)
        ok = torch.equal(got, expected) and torch.equal(ours.get_state(), theirs.get_state())
        _tie_with_next_draws(probe, theirs)
        got = _draw_cpp(probe, repeats, ours, inclusive=True)
        expected = (torch.rand((repeats, *probe.shape), generator=theirs) <= probe).float()
        ok = ok and got is not None and torch.equal(got, expected) and torch.equal(ours.get_state(), theirs.get_state())
    except Exception as error:  # a failed build or an unexpected state: torch does the work
        warnings.warn(f"reprolib: the C++ Bernoulli draws are unavailable ({error}); using torch.bernoulli and "
                      "torch.rand", stacklevel=2)
        return False
    if not ok:
        warnings.warn("reprolib: the C++ Bernoulli draws differ from torch.bernoulli or torch.rand(...) <= x in this "
                      f"PyTorch {torch.__version__}; using torch", stacklevel=2)
    return ok


def _draw_if_covered(values: Tensor, repeats: int, generator: torch.Generator | None, inclusive: bool) -> Tensor | None:
    """The C++ draws for ``values`` broadcast over ``repeats`` steps, or None where the loop does not cover them
    (a GPU tensor, another dtype, a small draw, a tensor that needs autograd or is a lazily negated view, no
    compiler, a generator state it cannot read; for Bernoulli, ``inclusive=False``, probabilities outside [0, 1]
    or NaN, which ``torch.bernoulli`` rejects): then the caller's PyTorch formulation does the work."""
    if (values.device.type != "cpu" or values.dtype != torch.float32 or repeats * values.numel() < MIN_DRAWS
            or values.requires_grad or values.is_neg() or not fast_path_available()):
        return None
    if not inclusive and not (values.min() >= 0 and values.max() <= 1):
        return None
    return _draw_cpp(values, repeats, generator if generator is not None else torch.default_generator, inclusive)


def _check_repeats(repeats, caller: str) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
        raise ValueError(f"{caller}: repeats={repeats!r} is invalid; expected an integer >= 0 (the draws' leading size)")


def bernoulli(probabilities: Tensor, repeats: int, generator: torch.Generator | None = None) -> Tensor:
    """``torch.bernoulli(probabilities.expand(repeats, *probabilities.shape), generator)``, the same tensor and the
    same generator state after, computed in one C++ loop for large float32 CPU draws.

    ``generator=None`` draws from torch's default CPU generator, as ``torch.bernoulli`` does. Anything the loop
    does not cover (see :func:`_draw_if_covered`; probabilities outside [0, 1] or NaN among them, for torch's
    error) goes to ``torch.bernoulli``. Unlike ``torch.bernoulli`` it does not hold the generator's lock: do not
    draw from the same generator in another thread meanwhile (the training loop draws from one).
    """
    _check_repeats(repeats, "bernoulli")
    out = _draw_if_covered(probabilities, repeats, generator, inclusive=False)
    if out is None:
        return torch.bernoulli(probabilities.expand(repeats, *probabilities.shape), generator=generator)
    return out


def uniform_at_most(x: Tensor, repeats: int, generator: torch.Generator | None = None) -> Tensor:
    """``(torch.rand((repeats, *x.shape), generator=generator) <= x).to(torch.float32)`` for a float32 ``x`` (the
    Poisson encoder of SpikingJelly), the same tensor and generator state after, in one C++ loop on the CPU.

    The uniforms are the ones ``torch.bernoulli`` compares (``torch.rand`` in float32 keeps 24 bits of the same
    32-bit draw), so only the comparison differs: ``<=`` instead of ``<``. Any ``x`` is allowed (above 1 always
    spikes, below 0 or NaN never), as with ``torch.rand``. What the loop does not cover goes to ``torch.rand``.
    Like :func:`bernoulli`, it does not hold the generator's lock.
    """
    _check_repeats(repeats, "uniform_at_most")
    out = _draw_if_covered(x, repeats, generator, inclusive=True)
    if out is None:
        noise = torch.rand((repeats, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        return (noise <= x).to(x.dtype)
    return out
