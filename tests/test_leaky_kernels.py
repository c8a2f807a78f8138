"""Fused scans of the snnTorch-style Leaky neuron (the SRC paper's LIF baseline): ``backend="cpp"`` (a C++
scan on CPU tensors) and ``backend="cupy"`` (a CUDA kernel, run here through its C++ emulation; on a GPU in
``test_kernels_gpu.py``).

Both must reproduce the PyTorch loop (spikes and membranes bit for bit, gradients of the input, the initial
state, ``beta`` and the threshold to float32 rounding) for every reset mode and both surrogates, and refuse
clearly what they do not implement.
"""

from __future__ import annotations

import pytest
import torch

from reprolib.kernels import cpu, verify
from reprolib.kernels.dispatch import BackendUnavailable, KernelUnsupported
from reprolib.kernels.leaky import leaky_cuda_source, leaky_multistep_cpp, leaky_multistep_cuda
from reprolib.models.src import build_lif_network
from reprolib.neurons.leaky import Leaky, LeakyParameters, LeakyState
from reprolib.surrogate import ATan, DoubleGaussian, Sigmoid

needs_cxx = pytest.mark.skipif(not cpu.cpp_available(), reason="no C++ compiler (g++) to build the cpp backend")


def _run(backend, x, cotangents, *, beta, reset, spike_fn):
    neuron = Leaky(beta=beta, threshold=0.7, learn_beta=True, learn_threshold=True, reset=reset, spike_fn=spike_fn,
                   step_mode="m", backend=backend)
    inputs = x.clone().requires_grad_(True)
    first = neuron(inputs)
    second = neuron(0.5 * inputs)  # continues from the stored membrane: the initial state's gradient is used
    loss = (first * cotangents[0]).sum() + (second * cotangents[1]).sum() + (neuron.mem * cotangents[2]).sum()
    grads = torch.autograd.grad(loss, [inputs, neuron.beta, neuron.threshold])
    return (first, second, neuron.mem.detach()), grads


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@needs_cxx
@pytest.mark.parametrize("reset", ["zero", "subtract", "none"])
@pytest.mark.parametrize("spike_fn", [ATan(alpha=2.0, strict=True), Sigmoid(alpha=4.0)], ids=["atan", "sigmoid"])
@pytest.mark.parametrize("shape", [(1, 3, 5), (47, 4, 33), (400, 2, 7)])
def test_cpp_scan_matches_the_pytorch_loop(reset, spike_fn, shape):
    g = torch.Generator().manual_seed(sum(shape))
    x = 0.8 * torch.randn(shape, generator=g)
    cotangents = [torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(shape[1:], generator=g)]
    (want, want_grads) = _run("torch", x, cotangents, beta=0.85, reset=reset, spike_fn=spike_fn)
    (got, got_grads) = _run("cpp", x, cotangents, beta=0.85, reset=reset, spike_fn=spike_fn)
    for a, b in zip(got, want):
        assert torch.equal(a, b)  # spikes and the final membrane, bit for bit
    if shape[0] > 1:
        assert 0.01 < want[0].mean() < 0.9  # the case spikes and rests, so both branches are exercised
    for name, a, b in zip(("input", "beta", "threshold"), got_grads, want_grads):
        assert _rel(a, b) < 2e-5, name


@needs_cxx
def test_beta_above_one_is_clamped_with_no_gradient_as_in_pytorch():
    x = 0.5 * torch.randn(30, 2, 6, generator=torch.Generator().manual_seed(1))
    cot = [torch.ones(30, 2, 6), torch.ones(30, 2, 6), torch.zeros(2, 6)]
    (want, want_grads) = _run("torch", x, cot, beta=1.2, reset="zero", spike_fn=None)
    (got, got_grads) = _run("cpp", x, cot, beta=1.2, reset="zero", spike_fn=None)
    assert torch.equal(got[0], want[0])
    assert got_grads[1].item() == want_grads[1].item() == 0.0


def test_cpp_leaky_refuses_what_it_does_not_implement():
    with pytest.raises(ValueError, match=r"Leaky: backend='cuda' is invalid; expected 'auto' or one of "
                                         r"\['auto', 'cpp', 'cupy', 'torch'\]"):
        Leaky(backend="cuda")
    with pytest.raises(KernelUnsupported, match="DoubleGaussian.*ATan and Sigmoid"):
        Leaky(spike_fn=DoubleGaussian(), backend="cpp")
    params = LeakyParameters(beta=torch.full((3,), 0.9), threshold=1.0, reset="zero", spike_fn=ATan())
    x = torch.zeros(4, 2, 3)
    with pytest.raises(KernelUnsupported, match=r"beta of shape \(3,\).*one scalar per layer"):
        leaky_multistep_cpp(x, LeakyState(torch.zeros(2, 3)), params)
    with pytest.raises(KernelUnsupported, match="float64"):
        leaky_multistep_cpp(x.double(), LeakyState(torch.zeros(2, 3)), params._replace(beta=0.9))


@needs_cxx
def test_the_lif_network_takes_the_scan_with_backend_cpp():
    net = build_lif_network(in_features=20, layers=2, hidden=16, backend="cpp")
    assert [block.lif.backend for block in net.blocks] == ["cpp", "cpp"]
    assert [block.lif.backend for block in build_lif_network(20, 2, 16, backend="auto").blocks] == ["auto", "auto"]


# ------------------------------------------------------------------ the CUDA kernel, through its emulation


@needs_cxx
@pytest.mark.parametrize("reset", ["zero", "subtract", "none"])
@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("T,shape", [(1, (2, 3)), (45, (3, 31)), (300, (2, 5))])
def test_cuda_kernel_emulated_matches_the_pytorch_loop(reset, surrogate, strict, T, shape):
    report = verify.check_leaky(reset=reset, surrogate=surrogate, strict=strict, T=T, shape=shape, engine="emulate")
    if T > 1:
        assert 0.01 < report.rate < 0.9
    assert report.spikes_equal
    assert report.ok(2e-5), report  # the scalar gradients are summed per neuron, then over neurons


def test_cuda_kernel_sources_differ_per_option_and_refuse_unknown_ones():
    texts = {leaky_cuda_source(r, s, st) for r in ("zero", "subtract", "none") for s in ("atan", "sigmoid")
             for st in (False, True)}
    assert len(texts) == 12
    with pytest.raises(KernelUnsupported, match="reset='hold'"):
        leaky_cuda_source("hold", "atan", True)


def test_cupy_backend_names_what_is_missing_on_a_cpu_tensor():
    neuron = Leaky(step_mode="m", backend="cupy")  # options are checked at construction; the device at run time
    with pytest.raises(BackendUnavailable):
        neuron(torch.zeros(3, 2, 4))
    with pytest.raises(KernelUnsupported, match="DoubleGaussian"):
        Leaky(spike_fn=DoubleGaussian(), backend="cupy")


def test_auto_backend_is_the_pytorch_loop_on_a_cpu():
    x = torch.randn(20, 3, 6, generator=torch.Generator().manual_seed(4))
    outs = []
    for backend in ("torch", "auto"):
        torch.manual_seed(0)
        outs.append(Leaky(beta=0.8, threshold=0.5, step_mode="m", backend=backend)(x))
    assert torch.equal(outs[0], outs[1]) and outs[0].sum() > 0


@pytest.mark.parametrize("make", [
    lambda: Leaky(backend="cpp"),
    lambda: build_lif_network(4, 1, hidden=3, backend="cpp"),
], ids=["Leaky", "build_lif_network"])
def test_cpp_backend_without_a_compiler_fails_when_the_model_is_built(monkeypatch, make):
    # the same check as every other neuron (neurons.base.select_backend), before any data is loaded
    monkeypatch.setattr(cpu, "cpp_available", lambda: False)
    with pytest.raises(BackendUnavailable, match=r"Leaky: backend='cpp' needs a C\+\+ compiler"):
        make()


def test_leaky_backends_are_registered_in_its_table_like_the_other_neurons():
    assert Leaky.multistep_backends["cpp"] is leaky_multistep_cpp
    assert Leaky.multistep_backends["cupy"] is leaky_multistep_cuda
    assert Leaky(backend="auto").backend == "auto"


@pytest.mark.parametrize("backend", ["torch", "cpp", "auto"])
def test_an_empty_time_dimension_is_refused_by_name(backend):
    with pytest.raises(ValueError, match=r"Leaky: input torch.Size\(\[0, 2, 3\]\) is invalid; expected .* T >= 1"):
        Leaky(step_mode="m", backend=backend)(torch.zeros(0, 2, 3))
    params = LeakyParameters(beta=0.9, threshold=1.0, reset="zero", spike_fn=ATan())
    with pytest.raises(ValueError, match="T >= 1"):
        leaky_multistep_cuda(torch.zeros(0, 2, 3), LeakyState(torch.zeros(2, 3)), params, engine="emulate")


def test_a_launch_wider_than_a_c_int_is_refused_before_compiling():
    from reprolib.kernels import dispatch
    from reprolib.kernels.leaky import LEAKY_SPECS

    with pytest.raises(KernelUnsupported, match=r"2147483648 threads .* at most 2147483647"):
        dispatch.get_engine("emulate").launch("not compiled", LEAKY_SPECS, "leaky_forward", 2**31, 128,
                                              (None,) * 9)
