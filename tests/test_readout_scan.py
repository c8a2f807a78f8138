"""The SRC paper's frozen readout as one C++ scan (``reprolib.kernels.readout``): the same bits as the PyTorch
loop it replaces on the CPU, forward and backward, and the loop wherever the scan does not apply."""

from __future__ import annotations

import pytest
import torch

from reprolib.kernels import cpu
from reprolib.kernels.readout import leaky_readout_scan, readout_scan_available
from reprolib.models.src import FrozenLeakyReadout

needs_cpp = pytest.mark.skipif(not cpu.cpp_available(), reason="no C++ compiler: the readout runs as a PyTorch loop")


def _loop(drive: torch.Tensor, leak: float) -> torch.Tensor:
    """The readout as the model computed it before the scan (and still does off the CPU)."""
    o = torch.zeros_like(drive[0])
    outputs = []
    for d in drive:
        o = leak * o + d
        outputs.append(o)
    return torch.stack(outputs)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int32)


@needs_cpp
@pytest.mark.parametrize("shape", [(200, 64, 10), (1, 3, 10), (7, 1, 4), (13, 5)])
@pytest.mark.parametrize("leak", [0.99, 0.5, 1.0, 0.0])
def test_the_scan_is_the_loop_bit_for_bit(shape, leak):
    g = torch.Generator().manual_seed(sum(shape))
    drive = (torch.randn(shape, generator=g) * 3).requires_grad_()
    twin = drive.detach().clone().requires_grad_()
    cot = torch.randn(shape, generator=g)
    cot[: shape[0] // 2] = 0.0  # zero gradients in part, as a loss on the last step gives
    got, want = leaky_readout_scan(drive, leak), _loop(twin, leak)
    assert torch.equal(_bits(got), _bits(want))
    (got * cot).sum().backward()
    (want * cot).sum().backward()
    assert torch.equal(_bits(drive.grad), _bits(twin.grad))


@needs_cpp
def test_the_readout_module_takes_the_scan_and_trains_to_the_same_bits():
    readout = FrozenLeakyReadout(10)
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(50, 8, 100, generator=g) < 0.2).float().requires_grad_()
    twin = spikes.detach().clone().requires_grad_()
    out = readout(spikes)
    want = _loop(twin @ readout.weight.t(), readout.leak)
    assert out.grad_fn is not None and "ReadoutScan" in type(out.grad_fn).__name__
    assert torch.equal(_bits(out), _bits(want))
    torch.nn.functional.cross_entropy(out[-1], torch.arange(8) % 10).backward()
    torch.nn.functional.cross_entropy(want[-1], torch.arange(8) % 10).backward()
    assert torch.equal(_bits(spikes.grad), _bits(twin.grad))


def test_other_dtypes_keep_the_loop_and_the_scan_refuses_them():
    readout = FrozenLeakyReadout(10).double()
    spikes = torch.rand(20, 3, 100, dtype=torch.float64)
    drive = spikes @ readout.weight.t()
    assert not readout_scan_available(drive)
    assert torch.equal(readout(spikes), _loop(drive, readout.leak))
    with pytest.raises(ValueError, match=r"drive \(20, 3, 10\) torch.float64 on cpu is not a float32 CPU tensor"):
        leaky_readout_scan(drive, 0.99)
    assert not readout_scan_available(torch.zeros(0, 3))  # no step to scan


@needs_cpp
def test_a_bad_leak_is_refused():
    with pytest.raises(ValueError, match="leak='0.9' is invalid; expected a number"):
        leaky_readout_scan(torch.zeros(3, 2), "0.9")


@needs_cpp
def test_a_second_derivative_through_the_scan_raises():
    drive = torch.randn(6, 2, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(leaky_readout_scan(drive, 0.9)[-1].pow(2).sum(), drive, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()


def test_a_failed_build_falls_back_to_the_loop(monkeypatch):
    from reprolib.kernels import dispatch, readout

    def broken(*args, **kwargs):
        raise RuntimeError("kernel build failed: no compiler here")

    monkeypatch.setattr(cpu, "cpp_available", lambda: True)
    monkeypatch.setattr(dispatch, "load_library", broken)
    readout._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="readout's C\\+\\+ scan could not be built .*no compiler here"):
            assert readout._library() is None
        spikes = torch.rand(9, 2, 100)
        module = FrozenLeakyReadout(10)
        assert torch.equal(module(spikes), _loop(spikes @ module.weight.t(), module.leak))
    finally:
        readout._library.cache_clear()
