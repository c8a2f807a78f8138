"""Backend choice, run-time compilation and launching of the fused CUDA kernels.

* :func:`resolve_backend` -- ``"auto" | "torch" | "cupy"`` -> ``"torch"`` or ``"cupy"`` for a tensor.
  ``"auto"`` takes CuPy for CUDA tensors when CuPy imports and sees a GPU, else PyTorch; asking for
  ``"cupy"`` where it cannot run raises :class:`BackendUnavailable` saying what is missing (CuPy, CUDA,
  or a CUDA tensor), chained to the original error.
* :class:`Engine` -- compiles a generated CUDA source once per option set (the source text is the cache key,
  and it names the options and the storage dtype) and launches its kernels on PyTorch's current stream.
  Tensors are handed to the kernel as raw device pointers of the torch storage: zero copies, torch keeps
  ownership (this is what ``cupy.from_dlpack`` would give, minus the per-call capsule cost; see
  :func:`to_cupy` for the DLPack view).

  Two engines exist: ``"cupy"`` (NVRTC through ``cupy.RawModule``) and ``"emulate"``, which compiles the
  *same* source as C++ with a tiny shim (one host loop over blocks and threads) and runs it on CPU tensors.
  The emulator exists so that the kernels' arithmetic, the autograd wiring and the backward scans are
  tested on machines without a GPU; it is slow and never chosen by :func:`resolve_backend`.

CuPy is imported lazily (only when a CUDA tensor asks for it), so ``import reprolib.kernels`` works without it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "KernelUnsupported",
    "KernelSpec",
    "import_cupy",
    "load_library",
    "cupy_available",
    "resolve_backend",
    "get_engine",
    "Engine",
    "to_cupy",
    "nvrtc_options",
]

BACKENDS = ("auto", "torch", "cupy")

#: dtypes the kernels store natively (fp32); fp16/bf16 inputs are computed in fp32 by the wrappers
KERNEL_DTYPES = (torch.float32,)
UPCAST_DTYPES = (torch.float16, torch.bfloat16)

#: one thread per neuron; 128 threads per block spreads the few-thousand-neuron layers over more SMs
BLOCK_SCAN = 128
BLOCK_ELEMENTWISE = 256
#: the kernels index threads (batch x neurons) with a C int
INT32_MAX = 2**31 - 1


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (CuPy missing, no CUDA device, or a CPU tensor)."""


class KernelUnsupported(ValueError):
    """The fused kernels do not implement this option (e.g. a custom surrogate); use backend="torch"."""


def import_cupy():
    """Import and return CuPy (a separate function so that tests can simulate its absence)."""
    import cupy  # noqa: PLC0415 - optional dependency, imported on demand only

    return cupy


_CUPY_STATE: dict[str, object] = {}


def _cupy_or_error():
    """``(cupy, None)`` when CuPy imports and sees a CUDA device, else ``(None, exception)``. Cached."""
    if "result" not in _CUPY_STATE:
        try:
            cupy = import_cupy()
            if not cupy.cuda.is_available():
                raise RuntimeError("CuPy imported but reports no usable CUDA device (cupy.cuda.is_available() is False)")
            _CUPY_STATE["result"] = (cupy, None)
        except Exception as err:  # ImportError, CUDA driver errors, ...
            _CUPY_STATE["result"] = (None, err)
    return _CUPY_STATE["result"]


def _forget_cupy() -> None:
    """Drop the cached import result (tests monkeypatch :func:`import_cupy`)."""
    _CUPY_STATE.clear()


def cupy_available() -> bool:
    """True when CuPy imports and sees a CUDA device."""
    return _cupy_or_error()[0] is not None


def resolve_backend(backend: str, tensor: torch.Tensor | None = None) -> str:
    """The backend that will run for ``tensor``: ``"torch"`` or ``"cupy"``.

    ``"auto"``: CuPy when ``tensor`` is a CUDA tensor of a supported dtype and CuPy works, else PyTorch.
    ``"cupy"``: CuPy, or :class:`BackendUnavailable` naming what is missing (chained to the cause).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid; expected one of {BACKENDS}")
    if backend == "torch":
        return "torch"
    on_cuda = isinstance(tensor, torch.Tensor) and tensor.is_cuda
    if backend == "auto":
        if not on_cuda or tensor.dtype not in KERNEL_DTYPES + UPCAST_DTYPES:
            return "torch"
        return "cupy" if cupy_available() else "torch"
    # explicit "cupy": say exactly what is missing
    cupy, err = _cupy_or_error()
    problems = []
    if cupy is None:
        problems.append(f"CuPy is not usable ({type(err).__name__}: {err}); install the cupy-cudaXXx wheel matching torch's CUDA")
    if not torch.cuda.is_available():
        problems.append("PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    if tensor is not None and not on_cuda:
        device = tensor.device if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        problems.append(f"the input is on {device}, the CuPy kernels need a CUDA tensor")
    if problems:
        raise BackendUnavailable("backend='cupy' cannot run: " + "; ".join(problems)) from err
    if tensor is not None and tensor.dtype not in KERNEL_DTYPES + UPCAST_DTYPES:
        raise KernelUnsupported(f"backend='cupy': dtype {tensor.dtype} is not supported; expected float32, float16 or bfloat16")
    return "cupy"


def to_cupy(tensor: torch.Tensor):
    """A CuPy view of a CUDA tensor through DLPack (no copy), for users mixing CuPy and torch."""
    cupy, err = _cupy_or_error()
    if cupy is None:
        raise BackendUnavailable(f"to_cupy needs CuPy: {err}") from err
    return cupy.from_dlpack(tensor.detach())


# --------------------------------------------------------------------------------------------------
# kernel sources and engines


@dataclass(frozen=True)
class KernelSpec:
    """One ``extern "C" __global__`` kernel of a generated source: its name and C parameter list.

    ``params`` are ``(ctype, name)`` pairs; pointer types end in ``*``. The emulator generates its host
    loop from them, and the Python launcher checks the argument count against them.
    """

    name: str
    params: tuple[tuple[str, str], ...]

    def signature(self) -> str:
        return ", ".join(f"{ctype} {name}" for ctype, name in self.params)


#: NVRTC flags. No FMA contraction: the kernels then round exactly like PyTorch's one-op-at-a-time
#: elementwise kernels, which keeps spikes identical at threshold crossings.
def nvrtc_options() -> tuple[str, ...]:
    return ("--std=c++14", "--fmad=false")


_EMULATION_SHIM = r"""
// ---- CPU emulation shim: the same source compiled as C++, one host loop over blocks and threads ----
#include <math.h>
#define REPROLIB_EMULATION 1
struct reprolib_dim3 { unsigned int x, y, z; };
static reprolib_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
"""


# Head of the time-outer CPU scans (``backend="cpp"`` of SRC and IF / LIF): their entry points get an AVX2 clone
# that the loader picks at run time on x86-64, so one build is fast on any machine it lands on.
CPU_SCAN_HEAD = r"""
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RL_CLONES
#endif
"""


# exp for the CPU scans, where it stands for expf (the Sigmoid surrogate). glibc's scalar expf stops the compiler
# from vectorising a neuron loop, and its vector version needs -ffast-math. Here: exp(x) = 2^k exp(r) with k =
# round(x / ln 2) kept within float's normal exponents [-126, 127], so |r| <= ln 2; exp(r) by its Taylor series to
# r^9 / 9! in double (truncation below 4e-9 relative, far under float's 6e-8); 2^k from a float's exponent bits;
# one rounding to float at the end. Beyond float's range: +inf above ln(FLT_MAX), 0 below ln(FLT_MIN) (no
# subnormal results); NaN stays NaN. Branch-free, so the neuron loop vectorises (AVX2 has every step).
CPU_EXPF = r"""
#include <stdint.h>
#include <string.h>
static inline float rl_expf(const float v) {
    const double x = (double)v;
    const double xc = x > 88.8 ? 88.8 : (x < -87.4 ? -87.4 : (x == x ? x : 0.0));
    // round to nearest by adding and removing 1.5 * 2^52 (nearbyint is a libm call below SSE4.1)
    const double k0 = (xc * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
    const double k = k0 > 127.0 ? 127.0 : k0;  // xc >= -87.4 keeps k0 >= -126 (a two-sided clamp stops vectorising)
    const double r = xc - k * 0.6931471805599453;
    const double p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720
                     + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880)))))))));
    const uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    const float e = (float)(p * (double)scale);
    return v != v ? v : (v > 88.72283935546875f ? INFINITY : (v < -87.33654022216797f ? 0.0f : e));
}
#define expf rl_expf
"""


# Block-level emulation: every CUDA thread of a block is a std::thread, __syncthreads() a std::barrier and
# __shared__ a static array, so kernels that cooperate within a block (the one-launch recurrent layer) run on
# the CPU with their real synchronisation. Slow (threads per block); for the tests only.
_THREADED_SHIM = r"""
// ---- CPU emulation shim, threaded: one std::thread per CUDA thread of a block, blocks one after another ----
#include <math.h>
#include <barrier>
#include <thread>
#include <vector>
struct reprolib_dim3 { unsigned int x, y, z; };
static thread_local reprolib_dim3 threadIdx, blockIdx;
static reprolib_dim3 blockDim, gridDim;
static std::barrier<>* reprolib_block_barrier = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
static inline void __syncthreads() { reprolib_block_barrier->arrive_and_wait(); }
"""


def _emulation_wrappers(specs, threaded: bool = False) -> str:
    """One ``extern "C" emu_<kernel>(grid, block, ...)`` per spec: blocks one after another; the threads of a
    block a plain loop, or (``threaded``) one std::thread each around a shared barrier."""
    out = []
    for spec in specs:
        call = f"blockIdx.x = rl_b; threadIdx.x = rl_t; {spec.name}({', '.join(name for _, name in spec.params)});"
        if threaded:
            block = ("    std::barrier<> rl_barrier(block); reprolib_block_barrier = &rl_barrier;\n"
                     "    std::vector<std::thread> rl_threads; rl_threads.reserve(block);\n"
                     "    for (unsigned int rl_t = 0; rl_t < block; ++rl_t)\n"
                     f"      rl_threads.emplace_back([=]() {{ {call} }});\n"
                     "    for (auto& rl_thread : rl_threads) rl_thread.join();\n")
        else:
            block = f"    for (unsigned int rl_t = 0; rl_t < block; ++rl_t) {{ {call} }}\n"
        out.append(
            f'extern "C" void emu_{spec.name}(unsigned int grid, unsigned int block, {spec.signature()}) {{\n'
            f"  blockDim.x = block; gridDim.x = grid; blockDim.y = blockDim.z = gridDim.y = gridDim.z = 1;\n"
            f"  for (unsigned int rl_b = 0; rl_b < grid; ++rl_b) {{\n{block}  }}\n}}\n"
        )
    return "\n".join(out)


def _ctype(ctype: str):
    if ctype.strip().endswith("*"):
        return ctypes.c_void_p
    return {"int": ctypes.c_int, "float": ctypes.c_float, "long long": ctypes.c_longlong}[ctype.replace("const ", "").strip()]


class Engine:
    """Compiles generated sources (cached by source text) and launches their kernels."""

    name = "base"

    def __init__(self):
        self._modules: dict[str, object] = {}
        self._lock = threading.Lock()

    def module(self, source: str, specs: tuple[KernelSpec, ...]):
        key = hashlib.sha256(source.encode()).hexdigest()
        with self._lock:
            mod = self._modules.get(key)
            if mod is None:
                mod = self._compile(source, specs, key)
                self._modules[key] = mod
        return mod

    def launch(self, source: str, specs: tuple[KernelSpec, ...], name: str, n_threads: int, block: int, args) -> None:
        spec = next(s for s in specs if s.name == name)
        if len(args) != len(spec.params):
            raise TypeError(f"kernel {name}: {len(args)} arguments given, {len(spec.params)} expected")
        if n_threads <= 0:
            return
        if n_threads > INT32_MAX:
            # the kernels index neurons with a C int: more would wrap around and leave outputs unwritten
            raise KernelUnsupported(f"kernel {name}: {n_threads} threads (batch x neurons); the kernels take at most "
                                    f"{INT32_MAX} (use backend='torch', or split the batch)")
        grid = (n_threads + block - 1) // block
        self._launch(self.module(source, specs), spec, grid, block, args)

    def _compile(self, source, specs, key):  # pragma: no cover - abstract
        raise NotImplementedError

    def _launch(self, mod, spec, grid, block, args):  # pragma: no cover - abstract
        raise NotImplementedError


class CupyEngine(Engine):
    """NVRTC through ``cupy.RawModule``; launches on torch's current stream of the tensors' device."""

    name = "cupy"

    def __init__(self):
        super().__init__()
        self._streams: dict[tuple[int, int], object] = {}

    def _compile(self, source, specs, key):
        cupy, err = _cupy_or_error()
        if cupy is None:
            raise BackendUnavailable(f"the CuPy kernels need CuPy: {err}") from err
        raw = cupy.RawModule(code=source, options=nvrtc_options(), name_expressions=None)
        return {"raw": raw, "functions": {}, "kinds": {}}

    def _launch(self, mod, spec, grid, block, args):
        import numpy as np  # noqa: PLC0415

        cupy, _ = _cupy_or_error()
        kinds = mod["kinds"].get(spec.name)
        if kinds is None:
            kinds = mod["kinds"][spec.name] = tuple(_kind(ctype) for ctype, _ in spec.params)
        device = None
        packed = []
        # per-step kernels are launched thousands of times: keep this loop lean (a pointer goes as an
        # 8-byte unsigned numpy integer, exactly a device pointer; scalars as 4-byte numpy values)
        for kind, value, (_, pname) in zip(kinds, args, spec.params):
            if kind == "p":
                if value is None:
                    packed.append(np.uint64(0))
                    continue
                if not value.is_cuda or not value.is_contiguous() or value.dtype != torch.float32:
                    # the kernels read float32: a half / bfloat16 buffer (e.g. a matmul under autocast) would be
                    # read past its end
                    raise ValueError(f"kernel {spec.name}: argument {pname} must be a contiguous float32 CUDA tensor, "
                                     f"got {value.dtype} on {value.device}")
                if device is None:
                    device = value.get_device()
                elif value.get_device() != device:
                    # one kernel on one device: a pointer into another GPU's memory is an illegal access there
                    raise ValueError(f"kernel {spec.name}: argument {pname} is on {value.device}, the arguments "
                                     f"before it on cuda:{device}; move them to one device")
                packed.append(np.uint64(value.data_ptr()))
            elif kind == "f":
                packed.append(np.float32(value))
            elif kind == "q":
                packed.append(np.int64(value))
            else:
                packed.append(np.int32(value))
        device = torch.cuda.current_device() if device is None else device
        stream_ptr = torch.cuda.current_stream(device).cuda_stream
        with cupy.cuda.Device(device):
            fn = mod["functions"].get((spec.name, device))
            if fn is None:
                fn = mod["functions"][(spec.name, device)] = mod["raw"].get_function(spec.name)
            stream = self._streams.get((device, stream_ptr))
            if stream is None:
                stream = self._streams[(device, stream_ptr)] = cupy.cuda.ExternalStream(stream_ptr)
            with stream:
                fn((grid,), (block,), tuple(packed))


def _kind(ctype: str) -> str:
    """``p`` pointer, ``f`` float, ``i`` int, ``q`` long long."""
    base = ctype.replace("const ", "").strip()
    if base.endswith("*"):
        return "p"
    return {"float": "f", "int": "i", "long long": "q"}[base]


def compiler() -> str | None:
    """The C++ compiler for the CPU builds (``$CXX``, else ``g++``, else ``c++``), or None."""
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


def build_shared_library(text: str, key: str, opt_level: str = "-O2", extra_flags: tuple = ()) -> ctypes.CDLL:
    """Compile C++ ``text`` into a shared library cached under ``key`` and load it.

    ``-ffp-contract=off``: no fused multiply-adds, so elementwise arithmetic rounds as PyTorch's CPU
    kernels do. The library is written to a temporary name and renamed, so that a concurrent or killed
    build never leaves a half-written ``.so`` in the cache.
    """
    cxx = compiler()
    if cxx is None:
        raise BackendUnavailable("the CPU builds of the kernels need a C++ compiler (g++ or $CXX); none was found")
    from reprolib.paths import cache_dir  # noqa: PLC0415

    folder = cache_dir("kernels-emulated")
    flags_tag = hashlib.sha256(" ".join(extra_flags).encode()).hexdigest()[:6] if extra_flags else ""
    lib = folder / f"{key[:24]}{opt_level.replace('-', '_')}{flags_tag}.so"
    if not lib.exists():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / "kernel.cpp"
            src.write_text(text)
            out = Path(tmp) / "kernel.so"
            cmd = [cxx, opt_level, *extra_flags, "-shared", "-fPIC", "-ffp-contract=off", "-Wno-unknown-pragmas", "-o",
                   str(out), str(src)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"kernel build failed ({' '.join(cmd[:2])}):\n{proc.stderr[-4000:]}")
            os.replace(out, lib)
    return ctypes.CDLL(str(lib))


def load_library(text: str, name: str, functions: dict, opt_level: str = "-O2", extra_flags: tuple = ()) -> ctypes.CDLL:
    """Build C++ ``text`` with :func:`build_shared_library` and declare its entry points for ctypes.

    ``name`` prefixes the sha256 of the text to make the cache key, so a changed source never loads a stale
    build. ``functions`` maps each exported function to ``(restype, argtypes)``. The caller caches the
    result (``functools.lru_cache`` over its option set): hashing the source on every call is the cost
    this is meant to be paid once.
    """
    lib = build_shared_library(text, name + hashlib.sha256(text.encode()).hexdigest(), opt_level=opt_level,
                               extra_flags=extra_flags)
    for function, (restype, argtypes) in functions.items():
        entry = getattr(lib, function)
        entry.restype = restype
        entry.argtypes = list(argtypes)
    return lib


class EmulatedEngine(Engine):
    """The kernels' source compiled as C++ (g++) and run on CPU tensors.

    ``"emulate"`` (``-O1``) tests the CUDA kernels' arithmetic without a GPU; ``"cpp"`` (``-O2``) is the same
    build used for speed by ``backend="cpp"`` (the scans are whole-sequence loops, one call per layer).
    """

    name = "emulate"

    def __init__(self, name: str = "emulate", opt_level: str = "-O1", threaded: bool = False):
        super().__init__()
        self.name, self.opt_level, self.threaded = name, opt_level, threaded

    @staticmethod
    def compiler() -> str | None:
        return compiler()

    def _compile(self, source, specs, key):
        if self.threaded:
            text = _THREADED_SHIM + source + "\n" + _emulation_wrappers(specs, threaded=True)
            handle = build_shared_library(text, key, opt_level=self.opt_level, extra_flags=("-std=c++20", "-pthread"))
        else:
            text = _EMULATION_SHIM + source + "\n" + _emulation_wrappers(specs)
            handle = build_shared_library(text, key, opt_level=self.opt_level)
        functions = {}
        for spec in specs:
            fn = getattr(handle, f"emu_{spec.name}")
            fn.restype = None
            fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [_ctype(c) for c, _ in spec.params]
            functions[spec.name] = fn
        return {"handle": handle, "functions": functions}

    def _launch(self, mod, spec, grid, block, args):
        packed = []
        for (ctype, pname), value in zip(spec.params, args):
            if ctype.endswith("*"):
                if value is None:
                    packed.append(None)
                    continue
                if value.is_cuda or not value.is_contiguous() or value.dtype != torch.float32:
                    raise ValueError(f"emulated kernel {spec.name}: {pname} must be a contiguous float32 CPU tensor")
                packed.append(value.data_ptr())
            else:
                packed.append(value)
        mod["functions"][spec.name](grid, block, *packed)


_ENGINES: dict[str, Engine] = {}


ENGINES = ("cupy", "emulate", "cpp", "emulate-threads")


def get_engine(name: str = "cupy") -> Engine:
    """The shared engine ``"cupy"`` (GPU), ``"emulate"`` (CPU, tests), ``"cpp"`` (CPU, optimised build) or
    ``"emulate-threads"`` (CPU, tests of kernels that synchronise the threads of a block)."""
    if name not in ENGINES:
        raise ValueError(f"engine={name!r} is invalid; expected one of {ENGINES}")
    if name not in _ENGINES:
        if name == "cupy":
            _ENGINES[name] = CupyEngine()
        elif name == "emulate-threads":
            _ENGINES[name] = EmulatedEngine(name, "-O1", threaded=True)
        else:
            _ENGINES[name] = EmulatedEngine(name, "-O1" if name == "emulate" else "-O2")
    return _ENGINES[name]


# --------------------------------------------------------------------------------------------------
# helpers shared by the kernel wrappers


def common_source(engine_name: str) -> str:
    """Definitions every generated source starts with (surrogates, spike condition helpers).

    ``DIV_BY_RECIPROCAL``: PyTorch's CUDA kernels divide by a Python scalar as a multiplication by its
    float reciprocal, its CPU kernels divide; the generated code does the same as the torch it is
    compared with, so that membranes (and spikes) agree bit for bit.
    """
    recip = 1 if engine_name == "cupy" else 0
    return f"""
#define DIV_BY_RECIPROCAL {recip}
#if DIV_BY_RECIPROCAL
#define SCALAR_DIV(a, b, inv_b) ((a) * (inv_b))
#else
#define SCALAR_DIV(a, b, inv_b) ((a) / (b))
#endif
// surrogate derivatives g'(x); constants precomputed on the host exactly as reprolib.surrogate does
__device__ __forceinline__ float sg_sigmoid(const float x, const float alpha) {{
    const float s = 1.0f / (1.0f + expf(-(alpha * x)));
    return alpha * s * (1.0f - s);
}}
__device__ __forceinline__ float sg_atan(const float x, const float half_alpha, const float pi2_alpha) {{
    const float u = pi2_alpha * x;
    return half_alpha / (1.0f + u * u);
}}
// BRF "double Gaussian": gain [(1 + p) N(x; s1) - 2p N(x; s2)], normalised densities N = exp(-(x/s)^2/2) / n
__device__ __forceinline__ float sg_double_gaussian(const float x, const float a1, const float s1, const float inv_s1,
                                                    const float n1, const float inv_n1, const float a2, const float s2,
                                                    const float inv_s2, const float n2, const float inv_n2,
                                                    const float gain) {{
    const float y1 = SCALAR_DIV(x, s1, inv_s1), y2 = SCALAR_DIV(x, s2, inv_s2);
    return gain * (a1 * SCALAR_DIV(expf(-0.5f * (y1 * y1)), n1, inv_n1)
                   - a2 * SCALAR_DIV(expf(-0.5f * (y2 * y2)), n2, inv_n2));
}}
"""


def f32_reciprocal(value: float) -> float:
    """``1.0f / float(value)`` in single precision, as PyTorch's CUDA kernels compute it for a scalar divisor."""
    return float(torch.tensor(1.0, dtype=torch.float32) / torch.tensor(float(value), dtype=torch.float32))


def flat(tensor: torch.Tensor) -> torch.Tensor:
    """Contiguous 1-D view (a copy only when the input is not contiguous)."""
    return tensor.contiguous().view(-1)


def param_period(param, state_shape: torch.Size, dtype, device, name: str) -> tuple[torch.Tensor, int]:
    """A per-neuron parameter as a flat contiguous tensor and its period ``P`` over the flat state.

    The kernels read ``param[n % P]``: valid when the parameter broadcasts against the *trailing* state
    dimensions (``[N]`` for a ``[B, N]`` state), or is a scalar (``P = 1``). Other broadcasts are expanded.
    """
    if not isinstance(param, torch.Tensor):
        return torch.full((1,), float(param), dtype=dtype, device=device), 1
    p = param.to(dtype=dtype, device=device)
    try:
        torch.broadcast_shapes(p.shape, state_shape)
    except RuntimeError:
        raise ValueError(f"{name} of shape {tuple(p.shape)} does not broadcast to the state {tuple(state_shape)}") from None
    while p.dim() > 0 and p.shape[0] == 1:
        p = p.squeeze(0)
    if p.dim() <= len(state_shape) and tuple(p.shape) == tuple(state_shape[len(state_shape) - p.dim():]):
        return flat(p), max(p.numel(), 1)
    full = p.expand(state_shape)
    return flat(full), full.numel()


def reduce_period(grad_elem: torch.Tensor, period: int) -> torch.Tensor:
    """Sum a per-element gradient ``[Ntot]`` over the repeats of a period-``P`` parameter -> ``[P]``."""
    return grad_elem.view(-1, period).sum(0)
