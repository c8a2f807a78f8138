"""The ``"cpp"`` backend: whole-sequence C++ loops of the BRF paper's recurrent layers and LI readout on the CPU.

They must compute what the PyTorch loops compute (identical spikes and readout, gradients to float32
rounding), be chosen through ``backend="cpp"`` / ``config.backend`` without changing a run's identity, and
refuse clearly where they cannot run.
"""

from __future__ import annotations

import pytest
import torch

from reprolib.kernels import cpu, dispatch, verify
from reprolib.kernels.dispatch import BackendUnavailable
from reprolib.models.resonate import RSNN_PRESETS, build_rsnn

needs_cxx = pytest.mark.skipif(not cpu.cpp_available(), reason="no C++ compiler (g++) to build the cpp backend")


@needs_cxx
@pytest.mark.parametrize("model", ["brf", "rf", "alif"])
# (80, 9, 37): two whole 4-sample x 16-column tiles of the backward's recurrent matvec and both leftovers
@pytest.mark.parametrize("T,B,H", [(1, 2, 3), (60, 3, 7), (300, 5, 13), (80, 9, 37)])
def test_recurrent_sequence_matches_torch(model, T, B, H):
    report = verify.check_resonate(model=model, mode="recurrent", T=T, B=B, m=4, H=H, engine="cpp")
    if T > 1:
        assert report.rate > 0.005  # the case spikes, so the surrogate path is exercised
    assert report.spikes_equal
    assert report.ok(rtol=2e-5), report  # the recurrent matmul sums in another order than PyTorch's GEMM


@needs_cxx
@pytest.mark.parametrize("model", ["brf", "alif"])
@pytest.mark.parametrize("period", ["scalar", "per-sample"])
def test_recurrent_sequence_takes_parameters_of_any_period(model, period):
    # the C++ loops index the parameters by neuron (period H) or by element (period N); a scalar is repeated to H
    from reprolib.kernels import resonate as K
    from reprolib.neurons import resonate as R

    T, B, m, H = 40, 3, 4, 10
    x, w, state, params = verify.recurrent_case(model, T, B, m, H, seed=4)
    w = w * (1.0 if model == "alif" else 40.0)  # makes the BRF layer spike
    pick = (lambda p: p[0]) if period == "scalar" else (lambda p: p.expand(B, H) + 0.1 * torch.rand(B, H))
    params = params._replace(**{f: pick(getattr(params, f)) for f in params._fields[:2]})
    out = {}
    for name, fn, kw in (("torch", getattr(R, f"{model}_multistep"), {}),
                         ("cpp", getattr(K, f"{model}_multistep"), {"engine": "cpp"})):
        leaves = [x.clone().requires_grad_(), w.clone().requires_grad_(),
                  *(getattr(params, f).clone().requires_grad_() for f in params._fields[:2])]
        p = params._replace(**dict(zip(params._fields[:2], leaves[2:])))
        z, _ = fn(leaves[0], leaves[1], state, p, **kw)
        out[name] = (z.detach(), torch.autograd.grad((z * torch.linspace(-1, 1, z.numel()).view(z.shape)).sum(),
                                                     leaves))
    assert torch.equal(out["torch"][0], out["cpp"][0]) and out["cpp"][0].sum() > 0
    for got, want in zip(out["cpp"][1], out["torch"][1]):
        assert got.shape == want.shape and verify.relative_error(got, want) < 2e-5


@needs_cxx
@pytest.mark.parametrize("T,B,C", [(1, 1, 1), (50, 4, 5), (1300, 16, 6)])
def test_li_scan_matches_torch(T, B, C):
    report = verify.check_li(T=T, B=B, C=C, engine="cpp")
    assert report.spikes_equal  # the readout itself, bit for bit
    assert report.ok(), report


@needs_cxx
@pytest.mark.parametrize("neuron", ["brf", "rf", "alif"])
def test_rsnn_with_cpp_backend_trains_like_torch(neuron):
    """The ECG network (4 + 36 + 6) on 200 steps: same readout, same gradients, for both backends."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(200, 3, 4, generator=g) < 0.5).float() * 20.0  # strong enough to make the hidden layer spike
    y = torch.randint(0, 6, (200, 3), generator=g)
    results = {}
    for backend in ("torch", "cpp"):
        torch.manual_seed(1)
        model = build_rsnn(**RSNN_PRESETS[("ecg", neuron)], backend=backend)
        out = model(x)
        torch.nn.functional.cross_entropy(out.reshape(-1, 6), y.reshape(-1)).backward()
        results[backend] = (out.detach(), {n: p.grad for n, p in model.named_parameters()}, model.last_spike_count)
    assert model.hidden.backend == "cpp" and model.out.backend == "cpp"
    assert torch.equal(results["torch"][0], results["cpp"][0])
    assert results["torch"][2] == results["cpp"][2] > 0
    for name, grad in results["torch"][1].items():
        assert verify.relative_error(results["cpp"][1][name], grad) < 1e-4, name


def test_cpp_backend_without_a_compiler_says_so_when_the_model_is_built(monkeypatch):
    monkeypatch.setattr(dispatch, "compiler", lambda: None)
    with pytest.raises(BackendUnavailable, match="BRFCell: backend='cpp' needs a C\\+\\+ compiler"):
        build_rsnn(**RSNN_PRESETS[("ecg", "brf")], backend="cpp")
    model = build_rsnn(**RSNN_PRESETS[("ecg", "brf")])  # the default needs none
    with pytest.raises(BackendUnavailable, match="C\\+\\+ compiler"):  # and the functions check again
        verify.check_resonate(model="brf", T=3, engine="cpp")
    assert model(torch.zeros(5, 2, 4)).shape == (5, 2, 6)


def test_cpp_backend_refuses_cuda_tensors():
    class FakeCuda:
        is_cuda = True
        device = "cuda:0"

    with pytest.raises(BackendUnavailable, match="CPU tensors.*cuda:0"):
        cpu.check_input(FakeCuda())


def test_config_backend_reaches_the_builder_and_fails_clearly_where_absent():
    from reprolib.config import ExperimentConfig
    from reprolib.training.build import build_model

    base = dict(experiment="test", dataset="ecg-qtdb", encoding="sequence", model="rsnn", loss="seq_nll",
                model_options={"neuron": "brf", "in_features": 4, "hidden": 8, "classes": 6})
    model = build_model(ExperimentConfig(**base, backend="cpp"))
    assert model.hidden.backend == "cpp" and model.out.backend == "cpp"
    # model_options wins over the run-level choice
    model = build_model(ExperimentConfig(**{**base, "model_options": {**base["model_options"], "backend": "torch"}},
                                         backend="cpp"))
    assert model.hidden.backend == "torch"
    # the IF neurons of the SpikingJelly nets take it too (their scan compiled as C++)
    model = build_model(ExperimentConfig(experiment="test", dataset="fashion-mnist", encoding="columns",
                                         model="sj-plain", backend="cpp"))
    assert {m.backend for m in model.modules() if hasattr(m, "backend")} == {"cpp"}


def _lif_cpp_option_sets():
    """IF / LIF x hard / soft reset x detach_reset, every one built; decay_input, surrogate and the spike condition
    cycle through their values so that each appears (all 48 builds are the emulated kernel's test)."""
    for k, (leaky, hard, detach) in enumerate((a, b, c) for a in (False, True) for b in (False, True)
                                              for c in (False, True)):
        yield dict(leaky=leaky, v_reset=0.0 if hard else None, detach_reset=detach, decay_input=leaky and k % 2 == 0,
                   surrogate=("sigmoid", "atan")[k % 2], strict=k % 4 >= 2)


@needs_cxx
@pytest.mark.parametrize("options", list(_lif_cpp_option_sets()),
                         ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_lif_scan_cpp_matches_torch(options):
    # the time-outer scan behind IFNode / LIFNode(backend="cpp"): the CUDA kernel's step functions, its own loop order
    report = verify.check_lif(**options, T=120, shape=(5, 11), engine="cpp")
    assert report.ok(), report
    assert 0.02 < report.rate < 0.98  # spikes and silences both tested


@needs_cxx
@pytest.mark.parametrize("T, shape", [(1, (2, 3)), (3, (1,)), (37, (4, 131))])
def test_lif_scan_cpp_short_sequences_and_odd_sizes(T, shape):
    report = verify.check_lif(tau=100.0, v_reset=None, decay_input=False, T=T, shape=shape, engine="cpp")
    assert report.ok(), report


@needs_cxx
def test_lif_scan_cpp_stride_zero_gradient_and_no_grad_and_half():
    from reprolib.kernels.lif import lif_multistep
    from reprolib.neurons.integrate_fire import LIFParameters, lif_multistep as lif_torch

    g = torch.Generator().manual_seed(5)
    x = (torch.randn(30, 4, 9, generator=g) + 0.8).requires_grad_()
    grads = {}
    for name, run in (("cpp", lambda a: lif_multistep(a, 0.0, engine="cpp")),
                      ("torch", lambda a: lif_torch(a, 0.0, LIFParameters()))):
        s, v = run(x)
        # s.sum(): a stride-0 gradient, whose contiguous copy must outlive the C++ call
        (grads[name],) = torch.autograd.grad(s.sum() + v.sum(), x)
    assert torch.allclose(grads["cpp"], grads["torch"], rtol=1e-5, atol=1e-6) and grads["cpp"].abs().sum() > 0
    with torch.no_grad():  # nothing saved: one row of scratch for H
        s_ng, v_ng = lif_multistep(x, 0.0, engine="cpp")
    assert torch.equal(s_ng, s) and torch.equal(v_ng, v.detach())
    s_half, v_half = lif_multistep(x.detach().half(), 0.0, engine="cpp")
    assert s_half.dtype == v_half.dtype == torch.float16
    assert torch.equal(s_half.float(), lif_torch(x.detach().half().float(), 0.0, LIFParameters())[0])


@needs_cxx
def test_src_scan_cpp_matches_torch():
    report = verify.check_src(T=150, shape=(4, 9), engine="cpp")
    assert report.ok(), report


@needs_cxx
@pytest.mark.parametrize("relu_bypass", [True, False])
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("zs_from", ["previous", "current"])
@pytest.mark.parametrize("noise_sigma", [0.0, 0.5])
def test_src_backend_cpp_time_outer_scan_matches_torch(relu_bypass, detach, zs_from, noise_sigma):
    # the scan behind SpikingRecurrentCell(backend="cpp"): its own loop order and tanh, the kernels' step functions
    report = verify.check_src(relu_bypass=relu_bypass, detach=detach, zs_from=zs_from, noise_sigma=noise_sigma,
                              T=120, shape=(3, 37), engine="cpp-scan", seed=3)
    assert report.ok(), report


@needs_cxx
def test_src_backend_cpp_takes_a_scalar_bias_and_a_single_step():
    from reprolib.kernels.src import src_multistep_cpp
    from reprolib.neurons.src import SRCParameters, SRCState, src_multistep

    x = torch.randn(1, 2, 5, generator=torch.Generator().manual_seed(2)) * 3
    for b_h in (-4.5, torch.tensor(-4.5)):
        state = SRCState(*(torch.full((2, 5), 0.2) for _ in range(3)))
        want, want_state = src_multistep(x, state, SRCParameters(b_h=b_h))
        got, got_state = src_multistep_cpp(x, state, SRCParameters(b_h=b_h))
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
        assert all(torch.allclose(a, c, rtol=1e-6, atol=1e-7) for a, c in zip(got_state, want_state))


def test_src_backend_cpp_tanh_is_accurate_over_the_float_range():
    # the rational tanh of the scan, compared through the scan itself with one step from rest (h = tanh(b_h + x))
    from reprolib.kernels.src import src_multistep_cpp
    from reprolib.neurons.src import SRCParameters, SRCState

    if not cpu.cpp_available():
        pytest.skip("no C++ compiler (g++) to build the cpp backend")
    values = torch.cat([torch.linspace(-12, 12, 200_001), torch.tensor([0.0, -0.0, 1e-30, -1e-8, float("nan")])])
    zeros = torch.zeros(1, values.numel())
    # alpha = 0, rho large: i = I, x = rho tanh(I / rho) = I to float rounding; b_h = 0: h = tanh(x)
    params = SRCParameters(b_h=0.0, alpha=0.0, rho=1e6, r=0.0, r_s=0.0)
    _, state = src_multistep_cpp(values.view(1, 1, -1), SRCState(zeros, zeros, zeros), params)
    want = torch.tanh(values.double()).float()
    got = state.h.view(-1)
    finite = ~torch.isnan(values)
    got, want = got[finite], want[finite]
    one_ulp = torch.nextafter(want.abs(), torch.tensor(float("inf"))) - want.abs()
    off = (got - want).abs() > one_ulp
    assert not off.any(), f"more than 1 ulp from tanh at x = {values[finite][off][:5].tolist()}"
    assert (got.sign() == want.sign()).all() and (got.abs() <= 1).all()
    assert torch.isnan(state.h.view(-1)[~finite]).all()  # a NaN input stays NaN


@needs_cxx
def test_node_with_cpp_backend_equals_torch_node():
    from reprolib.neurons.integrate_fire import MultiStepLIFNode

    x = torch.randn(80, 3, 17, generator=torch.Generator().manual_seed(0)) * 2
    spikes = {b: MultiStepLIFNode(tau=2.0, backend=b)(x) for b in ("torch", "cpp")}
    assert torch.equal(spikes["torch"], spikes["cpp"]) and spikes["torch"].sum() > 0


# ------------------------------------------------------------- the one-launch GPU layer, emulated with threads


@needs_cxx
@pytest.mark.parametrize("model", ["brf", "rf", "alif"])
@pytest.mark.parametrize("T,B,H", [(1, 2, 3), (60, 3, 7), (120, 2, 40)])
def test_one_launch_gpu_layer_matches_torch_with_real_block_barriers(model, T, B, H):
    """``seq_forward_block`` / ``seq_backward_block`` (the CUDA source), each CUDA thread a std::thread,
    ``__syncthreads`` a barrier and ``__shared__`` shared: the kernels' cooperation within a block is exercised
    without a GPU (a removed barrier makes this fail)."""
    report = verify.check_resonate(model=model, mode="recurrent", T=T, B=B, m=4, H=H, engine="emulate-threads")
    assert report.spikes_equal and report.ok(rtol=2e-5), report


@needs_cxx
@pytest.mark.parametrize("model", ["rf", "alif"])
def test_one_launch_gpu_layer_equals_the_cpp_loops_bit_for_bit(model):
    from reprolib.kernels import resonate as K

    # B = 6, H = 40: the backward's tiled recurrent matvec (4 samples x 16 columns) and its leftover samples and
    # columns each sum over h in the GPU kernel's order
    x, w, state, params = verify.recurrent_case(model, T=100, B=6, m=4, H=40)
    w.requires_grad_()
    cot = torch.randn(x.shape[0], 6, 40, generator=torch.Generator().manual_seed(1))
    results = []
    for engine in ("cpp", "emulate-threads"):
        w.grad = None
        z, final = getattr(K, f"{model}_multistep")(x, w, state, params, engine=engine)
        (z * cot).sum().backward()
        results.append((z.detach(), [s.detach() for s in final], w.grad.clone()))
    (z_cpp, st_cpp, gw_cpp), (z_gpu, st_gpu, gw_gpu) = results
    assert z_cpp.mean() > 0.01
    assert torch.equal(z_cpp, z_gpu) and all(torch.equal(a, b) for a, b in zip(st_cpp, st_gpu))
    assert torch.equal(gw_cpp, gw_gpu)


@needs_cxx
def test_src_backend_cpp_with_a_sum_loss_and_half_inputs():
    # s.sum() hands the backward a stride-0 gradient: its contiguous copy must outlive the C++ call
    from reprolib.kernels.src import src_multistep_cpp
    from reprolib.neurons.src import SRCParameters, SRCState, src_multistep

    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 3, 40, generator=g) * 3
    grads = []
    for fn in (src_multistep, src_multistep_cpp):
        xi = x.clone().requires_grad_(True)
        b = torch.full((40,), -4.5, requires_grad=True)
        s, _ = fn(xi, SRCState(*(torch.zeros(3, 40) for _ in range(3))), SRCParameters(b_h=b))
        s.sum().backward()
        grads.append((xi.grad, b.grad))
    for got, want in zip(grads[1], grads[0]):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-5), (got - want).abs().max()
    half, _ = src_multistep_cpp(x.to(torch.bfloat16), SRCState(*(torch.zeros(3, 40) for _ in range(3))),
                                SRCParameters(b_h=-4.5))
    assert half.dtype == torch.bfloat16 and half.float().sum() > 0
    with pytest.raises(dispatch.KernelUnsupported, match="float64"):
        src_multistep_cpp(x.double(), SRCState(*(torch.zeros(3, 40) for _ in range(3))), SRCParameters(b_h=-4.5))


@needs_cxx
def test_cpu_expf_of_the_scans_is_within_one_ulp_of_exp():
    # dispatch.CPU_EXPF replaces expf (the Sigmoid surrogate) in the CPU scans so that their loops vectorise
    import ctypes

    text = "#include <math.h>\n" + dispatch.CPU_EXPF + dispatch.CPU_SCAN_HEAD + r"""
extern "C" RL_CLONES void exp_array(const float* __restrict x, float* __restrict y, const long long n) {
    for (long long i = 0; i < n; ++i) y[i] = expf(x[i]);
}
"""
    lib = dispatch.load_library(text, "expftest", {"exp_array": (None, [ctypes.c_void_p, ctypes.c_void_p,
                                                                         ctypes.c_longlong])},
                                opt_level="-O3", extra_flags=("-fno-trapping-math",))
    x = torch.cat([torch.linspace(-88, 89, 400_001), torch.tensor([0.0, -0.0, 1e-30, -1e-8, 88.7228, -87.3365])])
    y = torch.empty_like(x)
    lib.exp_array(x.data_ptr(), y.data_ptr(), x.numel())
    want = torch.exp(x.double())
    normal = (want >= torch.finfo(torch.float32).tiny) & (want <= torch.finfo(torch.float32).max)
    ulp = (torch.nextafter(want.float(), torch.tensor(float("inf"))) - want.float()).double()
    err = ((y.double() - want).abs() / ulp)[normal]
    assert err.max() <= 1.0, f"{err.max():.3f} ulp at x = {x[normal][err.argmax()]}"
    special = torch.tensor([89.0, 1e4, float("inf"), -88.0, -1e4, -float("inf"), float("nan")])
    out = torch.empty_like(special)
    lib.exp_array(special.data_ptr(), out.data_ptr(), special.numel())
    assert out[:3].isinf().all() and (out[:3] > 0).all()   # above float's range: +inf
    assert (out[3:6] == 0).all()                            # below its normal range: 0 (no subnormal results)
    assert out[6].isnan()


@needs_cxx
@pytest.mark.parametrize("model", ["brf", "rf", "alif"])
@pytest.mark.parametrize("T,B,H", [(1, 2, 3), (90, 3, 11)])
def test_feed_forward_scan_matches_torch(model, T, B, H):
    # brf_scan and co. on engine="cpp": the whole-sequence loops without a recurrent matrix
    report = verify.check_resonate(model=model, mode="scan", T=T, B=B, H=H, engine="cpp")
    if T > 1:
        assert report.rate > 0.005
    assert report.spikes_equal
    assert report.ok(rtol=2e-5), report
