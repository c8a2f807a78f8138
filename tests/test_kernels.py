"""Fused kernels without a GPU: dispatch and fallback, the CUDA sources compile (nvcc, and NVRTC as CuPy runs
it), the kernel arithmetic and autograd wiring (the same source compiled as C++ and run on CPU) match the
PyTorch neurons, the benchmark writes its JSON.

GPU-only checks (CuPy on a real device) are in ``test_kernels_gpu.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import torch

from reprolib.kernels import dispatch, leaky, leaky_integrator, lif, resonate, src, verify
from reprolib.kernels.dispatch import BackendUnavailable, KernelUnsupported, resolve_backend

HAS_CXX = dispatch.EmulatedEngine.compiler() is not None
needs_cxx = pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler (g++) for the CPU emulation of the kernels")
NVCC = shutil.which("nvcc") or (shutil.which("/usr/local/cuda/bin/nvcc"))


@pytest.fixture
def no_cupy(monkeypatch):
    """Simulate a machine where ``import cupy`` fails."""

    def missing():
        raise ModuleNotFoundError("No module named 'cupy'")

    monkeypatch.setattr(dispatch, "import_cupy", missing)
    dispatch._forget_cupy()
    yield
    dispatch._forget_cupy()


# ----------------------------------------------------------------------------------------------- dispatch


def test_import_does_not_need_cupy():
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name == 'cupy' or name.startswith('cupy.'):\n"
        "        raise ModuleNotFoundError(\"No module named 'cupy'\")\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import reprolib.kernels, torch\n"
        "assert 'cupy' not in sys.modules\n"
        "assert reprolib.kernels.resolve_backend('auto', torch.zeros(2)) == 'torch'\n"
        "assert not reprolib.kernels.cupy_available()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_auto_on_cpu_tensor_is_torch():
    assert resolve_backend("auto", torch.zeros(3)) == "torch"
    assert resolve_backend("torch", torch.zeros(3)) == "torch"


def test_auto_without_cupy_is_torch(no_cupy):
    assert resolve_backend("auto", torch.zeros(3)) == "torch"
    assert not dispatch.cupy_available()


def test_cupy_without_cupy_says_so_and_keeps_cause(no_cupy):
    with pytest.raises(BackendUnavailable) as info:
        resolve_backend("cupy", torch.zeros(3))
    message = str(info.value)
    assert "CuPy is not usable" in message and "No module named 'cupy'" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_cupy_with_cupy_but_cpu_tensor_names_the_tensor(monkeypatch):
    class FakeCuda:
        @staticmethod
        def is_available():
            return True

    class FakeCupy:
        cuda = FakeCuda()

    monkeypatch.setattr(dispatch, "import_cupy", lambda: FakeCupy())
    dispatch._forget_cupy()
    try:
        assert dispatch.cupy_available()
        with pytest.raises(BackendUnavailable) as info:
            resolve_backend("cupy", torch.zeros(3))
        message = str(info.value)
        assert "CuPy is not usable" not in message
        assert "input is on cpu" in message and "CUDA tensor" in message
        # auto still falls back on a CPU tensor even though CuPy "works"
        assert resolve_backend("auto", torch.zeros(3)) == "torch"
    finally:
        dispatch._forget_cupy()


def test_cupy_reporting_no_device_is_unusable(monkeypatch):
    class NoDevice:
        class cuda:  # noqa: N801 - mimics the module attribute
            @staticmethod
            def is_available():
                return False

    monkeypatch.setattr(dispatch, "import_cupy", lambda: NoDevice())
    dispatch._forget_cupy()
    try:
        with pytest.raises(BackendUnavailable, match="no usable CUDA device") as info:
            resolve_backend("cupy", torch.zeros(3))
        assert isinstance(info.value.__cause__, RuntimeError)
    finally:
        dispatch._forget_cupy()


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend='gpu' is invalid"):
        resolve_backend("gpu", torch.zeros(1))


def test_kernel_functions_refuse_cpu_tensors_on_cupy_engine(no_cupy):
    x = torch.rand(4, 2, 3)
    with pytest.raises(BackendUnavailable, match="CuPy") as info:
        lif.lif_multistep(x, torch.zeros(2, 3))
    assert info.value.__cause__ is not None


def test_nodes_register_cupy_and_auto(no_cupy):
    from reprolib.neurons import IFNode, LIFNode

    for node_cls in (IFNode, LIFNode):
        assert {"torch", "cupy", "auto"} <= set(node_cls.multistep_backends)
    x = torch.rand(6, 2, 3) * 2
    auto = LIFNode(tau=2.0, step_mode="m", backend="auto")(x)
    ref = LIFNode(tau=2.0, step_mode="m", backend="torch")(x)
    assert torch.equal(auto, ref)
    with pytest.raises(BackendUnavailable, match="CuPy"):
        LIFNode(tau=2.0, step_mode="m", backend="cupy")(x)


def test_unsupported_options_are_named():
    from reprolib import surrogate as S
    from reprolib.neurons.integrate_fire import LIFParameters

    x = torch.rand(3, 2)
    p = LIFParameters(tau=2.0, surrogate_function=S.DoubleGaussian())
    with pytest.raises(KernelUnsupported, match="no fused IF/LIF kernel"):
        lif.lif_multistep(x, torch.zeros(2), p, engine="emulate")
    with pytest.raises(KernelUnsupported, match="spiking=False"):
        lif.lif_multistep(x, torch.zeros(2), p._replace(surrogate_function=S.Sigmoid(spiking=False)), engine="emulate")


# ------------------------------------------------------------------------------ nvcc compiles every source


def _all_sources():
    for options in lif.lif_option_sets():
        yield "lif " + ",".join(f"{k}={v}" for k, v in options.items()), lif.lif_source(**options)
    for options in src.src_option_sets():
        yield "src " + ",".join(f"{k}={v}" for k, v in options.items()), src.src_source(**options)
    for options in resonate.resonate_option_sets():
        yield "resonate " + ",".join(f"{k}={v}" for k, v in options.items()), resonate.resonate_source(**options)
    yield "li readout", leaky_integrator.li_source("cupy")
    for options in leaky.leaky_option_sets():
        yield "leaky " + ",".join(f"{k}={v}" for k, v in options.items()), leaky.leaky_cuda_source(**options)


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: cannot compile-check the generated CUDA sources")
def test_every_generated_cuda_source_compiles_with_nvcc(tmp_path):
    sources = list(_all_sources())
    assert len(sources) == 48 + 10 + 6 + 1 + 12

    def compile_one(item):
        index, (label, text) = item
        path = tmp_path / f"k{index}.cu"
        path.write_text(text)
        cmd = [NVCC, "-arch=sm_90", "--ptx", "-std=c++14", "--fmad=false", "-Werror", "all-warnings",
               str(path), "-o", str(path.with_suffix(".ptx"))]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return label, done.returncode, done.stderr[-2000:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(compile_one, enumerate(sources)))
    failures = [(label, err) for label, rc, err in results if rc != 0]
    assert not failures, failures[:3]
    # the kernels the wrappers launch are all there
    ptx = (tmp_path / "k0.ptx").read_text()
    assert ".entry lif_forward" in ptx and ".entry lif_backward" in ptx


# ------------------------------------------------- NVRTC (the compiler CuPy's RawModule uses) compiles them


def _find_nvrtc():
    """``libnvrtc`` from the NVIDIA wheels that the CUDA build of torch installs, or the system's."""
    import ctypes.util  # noqa: PLC0415
    import glob  # noqa: PLC0415
    import site  # noqa: PLC0415

    roots = [*site.getsitepackages(), site.getusersitepackages()]
    candidates = sorted(p for root in roots for p in glob.glob(f"{root}/nvidia/**/lib/libnvrtc.so*", recursive=True)
                        if "builtins" not in p and ".alt." not in p)
    found = ctypes.util.find_library("nvrtc")
    return (candidates or ([found] if found else [None]))[0]


NVRTC = _find_nvrtc()


def _nvrtc_compile(lib, text: str, options: tuple[str, ...]) -> tuple[int, str, str]:
    """Compile ``text`` to PTX with NVRTC through its C API; return (status, log, ptx)."""
    import ctypes  # noqa: PLC0415

    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), text.encode(), b"kernel.cu", 0, None, None) == 0
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        status = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        ptx = ""
        if status == 0:
            lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetPTX(prog, buf)
            ptx = buf.value.decode()
        return status, log.value.decode(errors="replace"), ptx
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


@pytest.mark.skipif(NVRTC is None, reason="libnvrtc not found (it comes with the CUDA build of torch): cannot "
                    "compile-check the sources the way CuPy does")
def test_every_generated_cuda_source_compiles_with_nvrtc_as_cupy_does():
    # nvcc finds host headers that NVRTC does not have; CuPy's RawModule compiles with NVRTC and the options
    # of dispatch.nvrtc_options(), so this is the check that the GPU machine will not fail at compile time.
    import ctypes  # noqa: PLC0415

    lib = ctypes.CDLL(NVRTC)
    options = (*dispatch.nvrtc_options(), "--gpu-architecture=compute_90")
    failures, entries = [], set()
    for label, text in _all_sources():
        status, log, ptx = _nvrtc_compile(lib, text, options)
        if status != 0:
            failures.append((label, log[-1500:]))
        entries.update(line.split()[-1].rstrip("(") for line in ptx.splitlines() if ".entry" in line)
    assert not failures, failures[:3]
    assert {"lif_forward", "lif_backward", "src_forward", "src_backward", "seq_forward_block",
            "seq_backward_block", "li_forward", "li_backward", "leaky_forward", "leaky_backward"} <= entries
    # and a broken source is reported as broken (the check can fail)
    status, log, _ = _nvrtc_compile(lib, 'extern "C" __global__ void k(float* x) { x[0] = undefined_name; }',
                                    options)
    assert status != 0 and "undefined_name" in log


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: cannot read the kernels' register use")
def test_one_block_recurrent_kernels_fit_1024_threads(tmp_path):
    # seq_*_block launch one thread per neuron, up to SEQ_MAX_H = 1024 per block; an SM has 65,536 registers,
    # so above 64 registers per thread the launch fails with "too many resources requested" on the GPU only.
    import re  # noqa: PLC0415

    for model in resonate.MODELS:
        for strict in (False, True):
            path = tmp_path / f"{model}{int(strict)}.cu"
            path.write_text(resonate.resonate_source(model, strict))
            done = subprocess.run([NVCC, "-arch=sm_90", "-cubin", "-std=c++14", "--fmad=false", "--resource-usage",
                                   str(path), "-o", str(path.with_suffix(".cubin"))],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            usage = dict(re.findall(r"Compiling entry function '(\w+)'.*?Used (\d+) registers", done.stdout + done.stderr,
                                    flags=re.S))
            for kernel in ("seq_forward_block", "seq_backward_block"):
                assert kernel in usage, (model, strict, done.stderr[-1000:])
                assert int(usage[kernel]) <= 65536 // 1024, (model, strict, kernel, usage[kernel])


def test_sources_differ_per_option_set_and_are_cached():
    texts = [t for _, t in _all_sources()]
    assert len(set(texts)) == len(texts)
    assert lif.lif_source(True, True, False, True, "atan", False) is lif.lif_source(True, True, False, True, "atan", False)
    with pytest.raises(KernelUnsupported):
        lif.lif_source(True, True, False, True, "double_gaussian", False)


# ----------------------------------------------------- CPU emulation of the kernels vs the PyTorch neurons


@needs_cxx
@pytest.mark.parametrize("options", list(lif.lif_option_sets()), ids=lambda o: "-".join(f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in o.items()))
def test_lif_kernel_matches_torch_emulated(options):
    report = verify.check_lif(**verify.lif_kwargs(options), T=29, shape=(3, 5), engine="emulate")
    assert 0.02 < report.rate < 0.98  # the case exercises spikes and silence
    assert report.ok(), report


@needs_cxx
@pytest.mark.parametrize("T,shape", [(1, (1,)), (2, (7, 3)), (300, (13,))])
def test_lif_kernel_odd_sizes_and_long_sequences_emulated(T, shape):
    for kw in (dict(), dict(v_reset=None, surrogate="atan", detach_reset=True)):
        report = verify.check_lif(T=T, shape=shape, engine="emulate", **kw)
        assert report.ok(), (kw, report)


@needs_cxx
def test_lif_half_inputs_are_computed_in_float32_emulated():
    from reprolib.neurons.integrate_fire import LIFParameters

    x = torch.randn(9, 4, 3) + 1.0
    v0 = torch.zeros(4, 3)
    p = LIFParameters(tau=2.0)
    ref_s, ref_v = lif.lif_multistep(x.bfloat16().float(), v0, p, engine="emulate")
    s, v = lif.lif_multistep(x.bfloat16(), v0, p, engine="emulate")
    assert s.dtype == torch.bfloat16 and v.dtype == torch.bfloat16
    assert torch.equal(s.float(), ref_s) and torch.equal(v, ref_v.bfloat16())


@needs_cxx
@pytest.mark.parametrize("relu_bypass", [True, False])
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("zs_from", ["previous", "current"])
def test_src_kernel_matches_torch_emulated(relu_bypass, detach, zs_from):
    report = verify.check_src(relu_bypass=relu_bypass, detach=detach, zs_from=zs_from, T=31, shape=(3, 7),
                              engine="emulate")
    assert 0.02 < report.rate < 0.9
    assert report.ok(), report


@needs_cxx
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_src_kernel_with_noisy_gains_matches_torch_emulated(detach, sigma):
    """Fig. 7's noisy feedback gains: the kernel reads the draws the PyTorch loop makes from the same generator."""
    report = verify.check_src(relu_bypass=True, detach=detach, T=40, shape=(3, 7), engine="emulate",
                              noise_sigma=sigma)
    assert 0.02 < report.rate < 0.9
    assert report.ok(), report
    # and the noise matters: without it the output differs
    quiet = verify.check_src(relu_bypass=True, detach=detach, T=40, shape=(3, 7), engine="emulate")
    assert quiet.rate != report.rate


@needs_cxx
@pytest.mark.parametrize("T,shape", [(1, (2, 3)), (250, (1, 5))])
def test_src_kernel_odd_sizes_emulated(T, shape):
    assert verify.check_src(T=T, shape=shape, engine="emulate").ok()


@needs_cxx
@pytest.mark.parametrize("model", ["brf", "rf", "alif"])
@pytest.mark.parametrize("mode", ["recurrent", "scan"])
@pytest.mark.parametrize("T", [1, 60])
def test_resonate_kernels_match_torch_emulated(model, mode, T):
    report = verify.check_resonate(model=model, mode=mode, T=T, B=3, m=5, H=7, engine="emulate")
    if T > 1:
        assert report.rate > 0.01
    assert report.ok(), report


# --------------------------------------------------------------------------------------------- benchmark


def test_bench_cpu_writes_json(tmp_path, no_cupy):
    from reprolib.cli import main

    out = tmp_path / "bench.json"
    rc = main(["bench", "--repeats", "1", "--warmup", "0", "--shapes", "6,4,8", "--device", "cpu",
               "--networks", "src-mnist-latency", "--output", str(out)])
    assert rc == 0
    record = json.loads(out.read_text())
    for key in ("device", "date", "torch", "cupy", "git_commit", "roofline_definition", "timing", "results"):
        assert key in record
    assert record["device_type"] == "cpu" and record["cupy"] is None and record["complete"] is True
    # on a CPU the kernel columns time the same sources built as C++ (backend="cpp")
    assert record["kernel_engine"] == "cpp"
    rows = {row["neuron"]: row for row in record["results"]}
    assert set(rows) == {"LIF", "LEAKY", "SRC", "BRF", "ALIF"}
    for row in rows.values():
        assert (row["T"], row["B"], row["N"]) == (6, 4, 8)
        assert row["torch_ms"] > 0
        if HAS_CXX:
            assert row["kernel_ms"] > 0 and row["speedup_vs_torch"] > 0
        else:
            assert row["kernel_ms"] is None and "C++" in row["notes"]["kernel"]
        assert row["bytes_roofline"] == 6 * 4 * 6 * 4 * 8
    assert rows["LIF"]["spikingjelly_ms"] is None
    assert rows["BRF"]["torch_scan_ms"] > 0
    # end to end: one BRF training iteration at the ECG task's shape (the CPU default)
    (iteration,) = record["iterations"]
    assert (iteration["task"], iteration["B"], iteration["T"]) == ("ecg", 16, 1300)
    assert iteration["torch_ms"] > 0
    assert (iteration["kernel_ms"] > 0) if HAS_CXX else (iteration["kernel_ms"] is None)
    # one training step of the SRC paper's latency-coded MNIST network, at its paper-scale batch and length, with
    # the host-memory setting of a CPU training run; MNIST-like images give MNIST's sparse input (about 0.09 %)
    (step,) = record["networks"]
    assert (step["task"], step["neuron"], step["B"], step["T"]) == ("src-mnist-latency", "SRC", 64, 200)
    assert step["torch_ms"] > 0 and 3e-4 < step["input_density"] < 3e-3
    assert (step["kernel_ms"] > 0) if HAS_CXX else (step["kernel_ms"] is None)
    # and the whole record was timed with a CPU training run's host-memory setting, which it names
    from reprolib.training import host_memory
    assert record["host_memory"] == host_memory.current_setting()
    assert not record["host_memory"].startswith("not set")
    # the random encoders at the sizes of their runs, beside their sources' formulations, with the same spikes
    encoders = {row["encoder"]: row for row in record["encoders"]}
    assert set(encoders) == {"rate", "poisson"}
    assert (encoders["rate"]["T"], encoders["rate"]["B"]) == (200, 64)
    assert all(row["identical_spikes"] and row["reprolib_ms"] > 0 for row in encoders.values())


def test_bench_network_steps_time_the_configs_of_committed_records():
    """Each benchmarked network step is the paper-scale config of a committed Table 2 record (seed 0), trained by
    today's code; and the stand-in images light MNIST's share of pixels."""
    from reprolib.config import config_hash
    from reprolib.kernels import bench
    from reprolib.paths import REPO_ROOT

    for name, (experiment, _, _) in bench.NETWORK_STEPS.items():
        config = bench.network_step_config(name)
        assert config.scale == "paper" and config.seed == 0
        assert (REPO_ROOT / "results" / experiment / f"{config_hash(config)}.json").is_file(), name
    images = bench.synthetic_mnist(256, torch.Generator().manual_seed(0))
    assert images.shape == (256, 1, 28, 28) and 0 <= images.min() and images.max() == 1
    lit = images[images > 0]
    assert abs(lit.numel() / images.numel() - 0.18) < 0.01 and abs(float(lit.mean()) - 0.69) < 0.02
    with pytest.raises(ValueError, match="batch=0 is not allowed"):
        bench.synthetic_mnist(0, torch.Generator())
    with pytest.raises(ValueError, match="unknown network step 'src-mnist'"):
        bench.network_step_config("src-mnist")


@needs_cxx
def test_bench_network_steps_compute_the_same_steps_with_each_backend():
    """A speed-up counts only if the fused step trains as the PyTorch one does: from the same weights and images,
    the step's loss and its clipped gradients agree to float32 rounding (the sparse input matmul sums in another
    order); and timing them leaves the caller's RNG and flush-to-zero setting as they were. (Losses after an Adam
    update are not compared: its first step moves every weight by about the learning rate whatever the gradient's
    size, so a rounding difference in a near-zero gradient's sign moves the loss by up to 0.2 %.)"""
    from reprolib.kernels import bench

    for name in bench.NETWORK_STEPS:
        (torch_step, density), (cpp_step, cpp_density) = (bench._network_step_case(name, backend, torch.device("cpu"))
                                                          for backend in ("torch", "cpp"))
        assert density == cpp_density > 0
        torch.testing.assert_close(cpp_step(), torch_step(), rtol=1e-5, atol=0)
        gradients = [dict((n, p.grad) for n, p in step.model.named_parameters() if p.grad is not None)
                     for step in (torch_step, cpp_step)]
        assert gradients[0].keys() == gradients[1].keys() and gradients[0]
        for key, expected in gradients[0].items():
            scale = float(expected.abs().max())
            torch.testing.assert_close(gradients[1][key], expected, rtol=1e-3, atol=1e-4 * scale, msg=f"{name} {key}")
    before = torch.random.get_rng_state()
    (row,) = bench.run_network_steps(["lif-mnist-latency"], torch.device("cpu"), repeats=1, warmup=0,
                                     log=lambda _: None)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert float(torch.tensor([1e-39]) * 1.0) > 0  # subnormal numbers are not flushed to zero after it
    assert row["torch_ms"] > 0 and row["kernel_ms"] > 0


def test_bench_file_name_tells_cpu_models_apart(monkeypatch):
    """A CPU benchmark record is named after the CPU model and the threads, so a record of another CPU model does
    not overwrite it; the committed Intel Xeon record has the name this gives."""
    from reprolib.kernels import bench
    from reprolib.paths import REPO_ROOT
    from reprolib.results import provenance

    for model, stem in (("Intel(R) Xeon(R) Processor", "cpu-intel-xeon-processor-1-threads"),
                        ("AMD EPYC", "cpu-amd-epyc-1-threads")):
        monkeypatch.setattr(provenance, "cpu_description", lambda model=model: {"model": model})
        monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
        assert bench.bench_file_stem(torch.device("cpu")) == stem
    assert (REPO_ROOT / "results" / "bench" / "cpu-intel-xeon-processor-1-threads.json").is_file()


def test_bench_iteration_case_builds_its_model_without_moving_the_callers_rng():
    """The BRF iteration seeds its model's weights as the source does, in a fork of the global RNGs: a benchmark
    run inside a notebook or a test must not change the random draws after it; its weights are the same each time,
    and one step of it moves them."""
    from reprolib.kernels import bench

    def case():
        return bench._iteration_case("ecg", "torch", torch.device("cpu"), torch.Generator().manual_seed(0))

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    run, again = case(), case()
    assert torch.equal(torch.random.get_rng_state(), before)
    initial = {name: p.detach().clone() for name, p in run.model.named_parameters()}
    assert all(torch.equal(initial[name], p) for name, p in again.model.named_parameters())
    run()
    assert any(not torch.equal(initial[name], p) for name, p in run.model.named_parameters())


def test_bench_network_step_that_fails_is_noted_and_the_benchmark_goes_on(tmp_path, monkeypatch, no_cupy):
    from reprolib.cli import main
    from reprolib.kernels import bench

    real = bench._network_step_case

    def kernel_fails(name, backend, device):
        if backend != "torch":
            raise RuntimeError("planted build failure")
        return real(name, backend, device)

    monkeypatch.setattr(bench, "_network_step_case", kernel_fails)
    out = tmp_path / "bench.json"
    rc = main(["bench", "--repeats", "1", "--warmup", "0", "--shapes", "4,2,3", "--neurons", "LIF", "--device", "cpu",
               "--iterations", "none", "--networks", "lif-mnist-latency", "--output", str(out)])
    record = json.loads(out.read_text())
    (step,) = record["networks"]
    assert rc == 0 and record["complete"] is True and record["encoders"]
    assert step["torch_ms"] > 0 and step["kernel_ms"] is None and step["speedup_vs_torch"] is None
    assert step["notes"]["kernel"] == "RuntimeError: planted build failure"


def test_bench_exits_1_when_an_encoder_changes_the_spikes(tmp_path, monkeypatch, capsys, no_cupy):
    from reprolib.cli import main
    from reprolib.kernels import bench

    real = bench._encoder_reference
    monkeypatch.setattr(bench, "_encoder_reference", lambda name, T, options: (
        (lambda x, g: 1 - real(name, T, options)(x, g)) if name == "poisson" else real(name, T, options)))
    rc = main(["bench", "--repeats", "1", "--warmup", "0", "--shapes", "4,2,3", "--neurons", "LIF", "--device", "cpu",
               "--iterations", "none", "--networks", "none", "--output", str(tmp_path / "bench.json")])
    assert rc == 1 and "the poisson encoder(s) gave other spikes" in capsys.readouterr().out
    table = bench.encoder_table({"run": json.loads((tmp_path / "bench.json").read_text()), "older": {"device": "x"}})
    assert list(table["encoder"]) == ["rate", "poisson"] and list(table["identical_spikes"]) == [True, False]


def test_bench_killed_midway_leaves_the_rows_it_measured(tmp_path, monkeypatch, no_cupy):
    """A command killed at its time limit (a lent GPU machine's) must still leave a readable record of what it
    timed, marked incomplete, and no half-written file."""
    from reprolib.cli import main
    from reprolib.kernels import bench

    build = bench._builder

    def killed_at_src(neuron, impl, engine):   # LIF's row completes; the command is "killed" as SRC starts
        if neuron == "SRC":
            raise KeyboardInterrupt
        return build(neuron, impl, engine)

    monkeypatch.setattr(bench, "_builder", killed_at_src)
    out = tmp_path / "bench.json"
    with pytest.raises(KeyboardInterrupt):
        main(["bench", "--repeats", "1", "--warmup", "0", "--shapes", "6,4,8", "--device", "cpu",
              "--no-spikingjelly", "--output", str(out)])
    record = json.loads(out.read_text())
    assert record["complete"] is False
    assert [row["neuron"] for row in record["results"]] == ["LIF"] and record["results"][0]["torch_ms"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


@needs_cxx
def test_bench_check_failures_are_recorded_and_the_timing_still_runs(tmp_path, monkeypatch, capsys):
    """On a lent GPU a failed (or crashing) kernel check must not cost the timings: they run, the record lists
    the failures, and the exit code says the check failed."""
    from reprolib.cli import main
    from reprolib.kernels import verify

    def broken(**kwargs):
        raise RuntimeError("nvrtc: error: planted")

    monkeypatch.setattr(verify, "check_li", broken)
    out = tmp_path / "bench.json"
    rc = main(["bench", "--device", "cpu", "--check", "--neurons", "LIF", "--shapes", "4,2,3", "--iterations", "none",
               "--networks", "none", "--repeats", "1", "--warmup", "0", "--no-spikingjelly", "--output", str(out)])
    assert rc == 1
    assert "check failed: li readout: RuntimeError: nvrtc: error: planted" in capsys.readouterr().out
    record = json.loads(out.read_text())
    check = record["kernel_check"]
    assert check["engine"] == "cpp" and check["failures"] == ["li readout: RuntimeError: nvrtc: error: planted"]
    assert check["checks"] > 30 and record["complete"] is True and record["results"][0]["kernel_ms"] > 0


@pytest.mark.parametrize("args, message", [(["not-a-hash"], "COMMIT not-a-hash is not a git commit hash"),
                                           ([], "COMMIT <missing>"),
                                           (["abc1234", "12"], "MINUTES 12 is not a whole number from 2 to 9")])
def test_device_check_script_refuses_bad_arguments_before_starting(tmp_path, args, message):
    """The prepared GPU-machine command (.ci/device-check) must fail at once, not after spending device minutes."""
    from reprolib.paths import REPO_ROOT

    done = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "device-check"), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path)}, timeout=30)
    assert done.returncode == 2 and message in done.stderr
    assert list(tmp_path.iterdir()) == []


@needs_cxx
def test_bench_check_on_cpu_compares_every_cpp_build_with_torch(tmp_path, capsys):
    from reprolib.cli import main

    rc = main(["bench", "--device", "cpu", "--check", "--neurons", "LIF", "--shapes", "4,2,3", "--iterations", "none",
               "--networks", "none", "--repeats", "1", "--warmup", "0", "--output", str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "reprolib bench --check: 0 failure(s)" in out


def test_training_time_table_sets_projected_runs_beside_the_papers_table4():
    from reprolib.kernels.bench import projected_training_hours, training_time_table

    # S-MNIST: ceil(54,000 / 256) = 211 iterations x 300 epochs; ECG: ceil(557 / 16) = 35 x 400
    assert projected_training_hours("smnist", 1000.0) == pytest.approx(211 * 300 / 3600)
    assert projected_training_hours("ecg", 36.0) == pytest.approx(35 * 400 * 0.036 / 3600)
    with pytest.raises(ValueError, match="iteration_ms=0"):
        projected_training_hours("ecg", 0)
    with pytest.raises(ValueError, match="unknown task 'shd'"):
        projected_training_hours("shd", 1.0)
    record = {"device": "gpu-x", "iterations": [{"task": "smnist", "torch_ms": 2000.0, "kernel_ms": 50.0},
                                                {"task": "ecg", "torch_ms": 1000.0, "kernel_ms": None}]}
    table = training_time_table({"x": record}).set_index("task")
    assert table.loc["S-MNIST", "paper: TorchScript + FGI"] == 10.2 and table.loc["SHD", "unit"] == "min"
    assert table.loc["S-MNIST", "ours, x (gpu-x): cupy (projected)"] == pytest.approx(211 * 300 * 0.05 / 3600)
    assert table.loc["ECG", "ours, x (gpu-x): PyTorch loop (projected)"] == pytest.approx(35 * 400 / 3600)
    assert pd.isna(table.loc["ECG", "ours, x (gpu-x): cupy (projected)"])  # no kernel time in that row
    assert list(table.index) == ["S-MNIST", "PS-MNIST", "ECG", "SHD"]  # the paper's order


def test_bench_rejects_bad_shape(capsys):
    from reprolib.cli import main

    assert main(["bench", "--shapes", "6,4", "--device", "cpu"]) == 2
    assert "expected T,B,N" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--device", "tpu"], "device 'tpu' is not allowed"),
    (["--device", "cpu", "--peak-bandwidth", "-5"], "--peak-bandwidth -5.0 is not allowed"),
    (["--device", "cpu", "--max-torch-seconds", "0"], "--max-torch-seconds 0.0 is not allowed"),
    (["--device", "cpu", "--output", "{folder}"], "is a folder; expected a file name"),
    (["--device", "cpu", "--output", "{file}/bench.json"], "is below the file"),
    (["--device", "cpu", "--networks", "none", "src-mnist-rate"], "--networks none src-mnist-rate is not allowed"),
    (["--device", "cpu", "--iterations", "ecg", "none"], "--iterations ecg none is not allowed"),
])
def test_bench_rejects_bad_arguments_before_timing(tmp_path, capsys, monkeypatch, arguments, message):
    from reprolib.cli import main
    from reprolib.kernels import bench

    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: pytest.fail("timed despite a bad argument"))
    (tmp_path / "file").write_text("")
    arguments = [a.format(folder=tmp_path, file=tmp_path / "file") for a in arguments]
    assert main(["bench", "--shapes", "4,2,3", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_bench_save_leaves_no_temporary_file_when_the_write_fails(tmp_path):
    from reprolib.kernels import bench

    out = tmp_path / "taken"
    out.mkdir()  # replace() cannot put a file over a folder
    with pytest.raises(OSError):
        bench._save({"rows": []}, out, complete=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_register_backends_fills_tables_where_the_neuron_modules_have_them(monkeypatch):
    import reprolib.kernels as kernels
    from reprolib.neurons import resonate as R
    from reprolib.neurons import src as S

    monkeypatch.setattr(S, "MULTISTEP_BACKENDS", {"torch": S.src_multistep}, raising=False)
    monkeypatch.setattr(R.BRFCell, "multistep_backends", {"torch": R.brf_multistep}, raising=False)
    kernels.register_backends()
    assert S.MULTISTEP_BACKENDS["cupy"] is kernels.src_multistep
    assert S.MULTISTEP_BACKENDS["auto"] is kernels.src_multistep_auto
    assert R.BRFCell.multistep_backends["cupy"] is kernels.brf_multistep


def test_auto_functions_fall_back_to_torch_on_cpu():
    from reprolib.kernels import src as ksrc
    from reprolib.neurons import src as S

    x = torch.randn(5, 2, 3)
    state = S.src_initial_state((2, 3))
    p = S.SRCParameters()
    a, _ = ksrc.src_multistep_auto(x, state, p)
    b, _ = S.src_multistep(x, state, p)
    assert torch.equal(a, b)


def test_cupy_engine_launch_path_with_a_fake_cupy(monkeypatch):
    """The CuPy launch glue (argument packing, device and stream contexts, function cache) without a GPU."""
    import contextlib

    import numpy as np

    calls = {"compile": 0, "launch": [], "streams": [], "devices": []}

    class FakeKernel:
        def __call__(self, grid, block, args):
            calls["launch"].append((grid, block, args))

    class FakeRawModule:
        def __init__(self, code, options, name_expressions):
            calls["compile"] += 1
            assert "--fmad=false" in options and "lif_forward" in code

        def get_function(self, name):
            return FakeKernel()

    class FakeCuda:
        @staticmethod
        def is_available():
            return True

        @staticmethod
        @contextlib.contextmanager
        def Device(index):  # noqa: N802 - mimics cupy.cuda.Device
            calls["devices"].append(index)
            yield

        @staticmethod
        def ExternalStream(ptr):  # noqa: N802 - mimics cupy.cuda.ExternalStream
            calls["streams"].append(ptr)
            return contextlib.nullcontext()

    class FakeCupy:
        cuda = FakeCuda()
        RawModule = FakeRawModule

    class FakeCudaTensor:
        is_cuda = True
        device = "cuda:0"

        def __init__(self, ptr, dtype=torch.float32):
            self.ptr, self.dtype = ptr, dtype

        def is_contiguous(self):
            return True

        def get_device(self):
            return 0

        def data_ptr(self):
            return self.ptr

    class FakeStream:
        cuda_stream = 4242

    monkeypatch.setattr(dispatch, "import_cupy", lambda: FakeCupy())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: FakeStream())
    dispatch._forget_cupy()
    try:
        engine = dispatch.CupyEngine()
        source = lif.lif_source(True, True, False, True, "sigmoid", False, "cupy")
        spec = lif.LIF_SPECS[0]
        args = [FakeCudaTensor(1000 + i) for i in range(3)] + [None, FakeCudaTensor(2000)] + [7, 300] + [2.0, 0.5, 1.0, 0.0, 4.0, 0.0]
        for _ in range(2):
            engine.launch(source, lif.LIF_SPECS, "lif_forward", 300, 128, args)
        assert calls["compile"] == 1  # cached per source
        assert calls["streams"] == [4242]  # torch's current stream, wrapped once
        grid, block, packed = calls["launch"][0]
        assert grid == (3,) and block == (128,)
        assert [type(v) for v in packed[:5]] == [np.uint64] * 5 and packed[3] == 0 and packed[4] == 2000
        assert [type(v) for v in packed[5:7]] == [np.int32] * 2
        assert all(type(v) is np.float32 for v in packed[7:]) and len(packed) == len(spec.params)
        # a half buffer (e.g. an autocast matmul result) would be read as float past its end: refused
        half = list(args)
        half[0] = FakeCudaTensor(1000, torch.float16)
        with pytest.raises(ValueError, match="float32"):
            engine.launch(source, lif.LIF_SPECS, "lif_forward", 300, 128, half)
    finally:
        dispatch._forget_cupy()


@needs_cxx
def test_recurrent_step_path_keeps_float32_under_autocast():
    """The per-step recurrent layer (the CuPy path for hidden > 1024) computes z W_rec^T inside its autograd
    Function: under autocast that matmul must stay float32, since the kernel reads it as float."""
    x, w, state, params = verify.recurrent_case("rf", T=6, B=2, m=3, H=5)
    w = (w * 8).round() / 8  # exact in bfloat16: the autocast input matmul then rounds nothing
    ref, _ = resonate.rf_multistep(x, w, state, params, engine="emulate")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = resonate.rf_multistep(x, w, state, params, engine="emulate")
    assert out.dtype == torch.float32 and torch.equal(out, ref)


def test_bench_times_cuda_on_the_devices_stream(monkeypatch):
    """``--device cuda:1``: the timing events go on cuda:1's stream, not on the current device's."""
    from reprolib.kernels import bench

    recorded = []

    class FakeEvent:
        def __init__(self, enable_timing=False):
            assert enable_timing

        def record(self, stream=None):
            recorded.append(stream)

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return 1.5

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    ms, n = bench._time(lambda: None, torch.device("cuda:1"), 0, 2, float("inf"))
    assert (ms, n) == (1.5, 2) and recorded == ["stream of cuda:1"] * 4
