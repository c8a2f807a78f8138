"""Fused CuPy kernels vs the PyTorch neurons on a real GPU: identical spikes, states and gradients within 1e-5
relative, for every option set, odd sizes, T = 1 and long T; dispatch, streams, dtypes and the kernel cache.

Skipped (with the reason shown) where there is no CUDA device or no CuPy; the same comparisons run on CPU
through the C++ emulation of the kernels in ``test_kernels.py``.
"""

from __future__ import annotations

import pytest
import torch

from reprolib.kernels import dispatch, lif, resonate, verify

HAS_CUDA = torch.cuda.is_available()
HAS_CUPY = dispatch.cupy_available() if HAS_CUDA else False
pytestmark = pytest.mark.skipif(
    not (HAS_CUDA and HAS_CUPY),
    reason=("no CUDA device" if not HAS_CUDA else "CuPy is not installed / not usable")
    + ": the CuPy kernels cannot run here (their CPU emulation is tested in test_kernels.py)",
)

DEVICE = "cuda"


def _ids(options: dict) -> str:
    return "-".join(f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in options.items())


@pytest.mark.parametrize("options", list(lif.lif_option_sets()), ids=_ids)
@pytest.mark.parametrize("T,shape", [(1, (3, 5)), (37, (7, 129)), (1000, (2, 33))])
def test_lif_cupy_matches_torch(options, T, shape):
    report = verify.check_lif(**verify.lif_kwargs(options), T=T, shape=shape, device=DEVICE, engine="cupy")
    assert report.ok(1e-5), report


@pytest.mark.parametrize("surrogate,alpha", [("sigmoid", 1.0), ("sigmoid", 4.0), ("atan", 2.0), ("atan", 0.7)])
@pytest.mark.parametrize("tau", [2.0, 100.0, 3.7])
def test_lif_cupy_surrogate_alphas_and_taus(surrogate, alpha, tau):
    report = verify.check_lif(surrogate=surrogate, alpha=alpha, tau=tau, T=50, shape=(4, 65), device=DEVICE,
                              engine="cupy")
    assert report.ok(1e-5), report


@pytest.mark.parametrize("reset", ["zero", "subtract", "none"])
@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
@pytest.mark.parametrize("T,shape", [(1, (3, 5)), (200, (7, 129)), (784, (2, 33))])
def test_leaky_cupy_matches_torch(reset, surrogate, T, shape):
    report = verify.check_leaky(reset=reset, surrogate=surrogate, strict=True, T=T, shape=shape, device=DEVICE,
                                engine="cupy")
    assert report.spikes_equal
    assert report.ok(2e-5), report  # beta / threshold gradients: per-neuron sums, then a sum over neurons


@pytest.mark.parametrize("relu_bypass", [True, False])
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("zs_from", ["previous", "current"])
@pytest.mark.parametrize("T,shape", [(1, (2, 3)), (200, (5, 77)), (784, (3, 11))])
def test_src_cupy_matches_torch(relu_bypass, detach, zs_from, T, shape):
    report = verify.check_src(relu_bypass=relu_bypass, detach=detach, zs_from=zs_from, T=T, shape=shape,
                              device=DEVICE, engine="cupy")
    assert report.ok(1e-5), report


@pytest.mark.parametrize("detach", [True, False])
def test_src_cupy_with_noisy_gains_matches_torch(detach):
    report = verify.check_src(relu_bypass=True, detach=detach, T=200, shape=(4, 129), device=DEVICE, engine="cupy",
                              noise_sigma=0.1)
    assert report.ok(1e-5), report


@pytest.mark.parametrize("model", ["brf", "rf", "alif"])
@pytest.mark.parametrize("mode", ["recurrent", "scan"])
@pytest.mark.parametrize("T,B,m,H", [(1, 3, 5, 7), (97, 5, 3, 33), (784, 2, 1, 17)])
def test_resonate_cupy_matches_torch(model, mode, T, B, m, H, monkeypatch):
    # the per-step path: one cuBLAS matmul + one fused kernel per step (bit-identical recurrent currents)
    monkeypatch.setenv("REPROLIB_RSNN_KERNEL", "step")
    report = verify.check_resonate(model=model, mode=mode, T=T, B=B, m=m, H=H, device=DEVICE, engine="cupy")
    assert report.ok(1e-5), report


@pytest.mark.parametrize("model", ["brf", "rf", "alif"])
@pytest.mark.parametrize("T,B,m,H", [(1, 3, 5, 7), (97, 5, 3, 33), (300, 4, 1, 256), (50, 2, 4, 1000)])
def test_resonate_sequence_kernel_matches_torch(model, T, B, m, H):
    """The one-launch recurrent layer (the default on CUDA for hidden <= 1024); its recurrent sum runs in
    another order than cuBLAS, hence 2e-5 as for the C++ loops."""
    report = verify.check_resonate(model=model, mode="recurrent", T=T, B=B, m=m, H=H, device=DEVICE, engine="cupy")
    assert report.spikes_equal and report.ok(2e-5), report


@pytest.mark.parametrize("model", ["rf", "alif"])
def test_resonate_sequence_kernel_equals_cpp_loops(model, monkeypatch):
    """Same arithmetic, same summation order: the GPU layer and the CPU C++ loops give identical outputs."""
    x, w, state, params = verify.recurrent_case(model, T=200, B=3, m=4, H=40)
    fn = getattr(resonate, f"{model}_multistep")
    z_cpu, st_cpu = fn(x, w, state, params, engine="cpp")
    to = lambda t: t.to(DEVICE)  # noqa: E731
    # the per-neuron constants come from PyTorch (ALIF: exp(-1/|tau|)), whose CPU and CUDA exp may differ in
    # the last bit: derive them on the CPU for the GPU run too, so that only the layer's arithmetic is compared
    prepare = resonate._prepare

    def prepare_on_cpu(model_, params_, state_shape, device, engine):
        cpu_params = type(params_)(*(v.cpu() if isinstance(v, torch.Tensor) else v for v in params_))
        prep = prepare(model_, cpu_params, state_shape, torch.device("cpu"), engine)
        return prep._replace(p1=prep.p1.to(device), p2=prep.p2.to(device))

    monkeypatch.setattr(resonate, "_prepare", prepare_on_cpu)
    p_gpu = type(params)(*(to(v) if isinstance(v, torch.Tensor) else v for v in params))
    z_gpu, st_gpu = fn(to(x), to(w), type(state)(*map(to, state)), p_gpu, engine="cupy")
    assert z_cpu.sum() > 0
    assert torch.equal(z_cpu, z_gpu.cpu())
    for a, b in zip(st_cpu, st_gpu):
        assert torch.equal(a, b.cpu())


@pytest.mark.parametrize("T,B,C", [(1, 1, 1), (784, 256, 10), (1300, 16, 6)])
def test_li_readout_cupy_matches_torch(T, B, C):
    report = verify.check_li(T=T, B=B, C=C, device=DEVICE, engine="cupy")
    assert report.ok(1e-5), report


def test_auto_picks_cupy_on_cuda_and_nodes_use_it():
    from reprolib.neurons import LIFNode

    x = torch.rand(20, 4, 9, device=DEVICE) * 2
    assert dispatch.resolve_backend("auto", x) == "cupy"
    assert dispatch.resolve_backend("auto", x.double()) == "torch"  # no float64 kernel
    fused = LIFNode(tau=2.0, step_mode="m", backend="cupy")(x)
    auto = LIFNode(tau=2.0, step_mode="m", backend="auto")(x)
    ref = LIFNode(tau=2.0, step_mode="m", backend="torch")(x)
    assert torch.equal(fused, ref) and torch.equal(auto, ref)


def test_runs_on_torch_current_stream():
    from reprolib.neurons.integrate_fire import LIFParameters

    p = LIFParameters(tau=2.0)
    x = torch.randn(64, 8, 1000, device=DEVICE) + 1.0
    v0 = torch.zeros(8, 1000, device=DEVICE)
    ref = lif.lif_multistep(x, v0, p)[0]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = x * 1.0  # produced on the side stream: the kernel must run after it
        s, _ = lif.lif_multistep(y, v0, p)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(s, ref)


def test_compiled_modules_cached_per_option_set():
    import hashlib

    from reprolib import surrogate as S
    from reprolib.neurons.integrate_fire import LIFParameters

    engine = dispatch.get_engine("cupy")
    # the earlier tests of this file compiled every option set already: forget the ATan one so that it is new
    atan_source = lif.lif_source(True, True, False, True, "atan", False, "cupy")
    engine._modules.pop(hashlib.sha256(atan_source.encode()).hexdigest(), None)
    x = torch.rand(5, 3, device=DEVICE)
    lif.lif_multistep(x, torch.zeros(3, device=DEVICE))
    n = len(engine._modules)
    lif.lif_multistep(x, torch.zeros(3, device=DEVICE))
    assert len(engine._modules) == n
    lif.lif_multistep(x, torch.zeros(3, device=DEVICE), LIFParameters(surrogate_function=S.ATan()))
    assert len(engine._modules) == n + 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_computed_in_float32(dtype):
    from reprolib.neurons.integrate_fire import LIFParameters

    p = LIFParameters(tau=2.0)
    x = (torch.randn(50, 4, 33, device=DEVICE) + 1.0).to(dtype).requires_grad_()
    s, v = lif.lif_multistep(x, torch.zeros(4, 33, device=DEVICE), p)
    assert s.dtype == dtype and v.dtype == dtype
    x32 = x.detach().float().requires_grad_()
    s32, v32 = lif.lif_multistep(x32, torch.zeros(4, 33, device=DEVICE), p)
    assert torch.equal(s.float(), s32)
    (s.float().sum() + v.float().sum()).backward()
    (s32.sum() + v32.sum()).backward()
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad.float(), x32.grad.to(dtype).float())


def test_bench_gpu_small(tmp_path):
    import json

    from reprolib.kernels import bench

    rc = bench.main(bench_args(tmp_path / "gpu.json"))
    assert rc == 0
    record = json.loads((tmp_path / "gpu.json").read_text())
    assert record["cupy"] and record["peak_bandwidth_GBps"]
    for row in record["results"]:
        assert row["kernel_ms"] > 0 and row["torch_ms"] > 0 and row["roofline_ms"] > 0
    # the SRC paper's Table 2 networks, one training step each, with the CuPy kernels
    assert {row["task"] for row in record["networks"]} == {"src-mnist-latency", "src-mnist-rate", "lif-mnist-latency"}
    for row in record["networks"]:
        assert row["kernel_ms"] > 0 and row["torch_ms"] > 0, row["notes"]


def bench_args(out):
    import argparse

    from reprolib.kernels import bench

    parser = argparse.ArgumentParser()
    bench.configure(parser)
    return parser.parse_args(["--shapes", "28,16,32", "--repeats", "2", "--warmup", "1", "--output", str(out)])


def test_resonate_recurrent_layer_module_roundtrip():
    """The fused recurrent BRF layer is a drop-in for the cell's multistep function."""
    from reprolib.neurons import resonate as R

    torch.manual_seed(0)
    cell = R.BRFCell(3, 16, step_mode="m").to(DEVICE)
    x = (torch.rand(50, 4, 3, device=DEVICE) < 0.5).float()
    z_ref, st_ref = R.brf_multistep(x, cell.weight, R.RFState(*(torch.zeros(4, 16, device=DEVICE),) * 4),
                                    cell.neuron_parameters())
    z, st = resonate.brf_multistep(x, cell.weight, R.RFState(*(torch.zeros(4, 16, device=DEVICE),) * 4),
                                   cell.neuron_parameters())
    assert torch.equal(z, z_ref)
    for a, b in zip(st, st_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
