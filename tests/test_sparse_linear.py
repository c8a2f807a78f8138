"""Event-sparse input matmuls (``reprolib.kernels.sparse``) and the ``backend="cpp"`` CPU path of the SRC-paper
networks that uses them: same products and gradients as the dense path, dense fallback, clear errors."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from reprolib.kernels import cpu, sparse
from reprolib.kernels.sparse import estimated_density, event_linear, sparse_rows
from reprolib.models.src import LinearLeaky, build_lif_network, build_src_network, cpu_path


def _events(*shape, density=0.02, seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 4, shape, generator=g).float()  # binned event counts, not only 0 / 1
    return counts * (torch.rand(shape, generator=g) < density)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def test_sparse_rows_builds_the_matrix_and_its_transpose():
    x = _events(37, 23, density=0.1)
    x_csr, xt_csr = sparse_rows(x)
    assert torch.equal(x_csr.to_dense(), x)
    assert torch.equal(xt_csr.to_dense(), x.t())
    assert sparse_rows(x, transpose=False)[1] is None


@pytest.mark.skipif(not cpu.cpp_available(), reason="no C++ compiler: the PyTorch CSR builder is the only one")
@pytest.mark.parametrize("K", [1, 8, 29])
def test_the_cpp_csr_builder_agrees_with_pytorch(K):
    x = _events(300, K, density=0.05, seed=K)
    x[3] = 0.0  # an empty row
    x[4, 0] = -0.0  # a negative zero is a zero
    x[5, -1] = -2.0
    lib = sparse._csr_library()
    for transpose in (True, False):
        got, want = sparse._sparse_rows_cpp(lib, x, transpose), sparse._sparse_rows_torch(x, transpose)
        for a, b in zip(got, want):
            if b is None:
                assert a is None
                continue
            assert torch.equal(a.crow_indices(), b.crow_indices())
            assert torch.equal(a.col_indices(), b.col_indices())
            assert torch.equal(a.values(), b.values())


@pytest.mark.skipif(not cpu.cpp_available(), reason="no C++ compiler: the PyTorch CSR builder is the only one")
def test_the_cpp_csr_builder_recovers_when_the_sampled_density_falls_short():
    # the one-pass builder sizes its buffers from evenly spaced rows: here those are all empty and the others full
    x = _events(512, 29, density=0.9, seed=3)
    x[::2] = 0.0
    assert sparse.estimated_density(x) == 0.0
    got, want = sparse._sparse_rows_cpp(sparse._csr_library(), x, True), sparse._sparse_rows_torch(x, True)
    for a, b in zip(got, want):
        assert torch.equal(a.crow_indices(), b.crow_indices()) and torch.equal(a.col_indices(), b.col_indices())
        assert torch.equal(a.values(), b.values())


@pytest.mark.skipif(not cpu.cpp_available(), reason="no C++ compiler: the PyTorch CSR builder is the only one")
def test_the_cpp_csr_builder_grows_its_buffers_as_often_as_it_must():
    # dense rows where the density sample does not look (it reads every third row here) and only near the end:
    # each resumed pass estimates the rest from the rows so far and falls short again, as the burst of spikes
    # that a latency code puts in a few time steps can make it
    x = _events(1000, 50, density=0.001, seed=4)
    late = torch.arange(1000) >= 700
    x[late & (torch.arange(1000) % 3 != 0)] = _events(200, 50, density=0.95, seed=5)
    assert sparse.estimated_density(x) < 0.01
    calls = []
    lib = sparse._csr_library()

    class Counting:
        def csr_one_pass(self, *args):
            calls.append(args[-1])
            return lib.csr_one_pass(*args)

        def __getattr__(self, name):
            return getattr(lib, name)

    got, want = sparse._sparse_rows_cpp(Counting(), x, True), sparse._sparse_rows_torch(x, True)
    assert len(calls) > 2 and calls[0] == 0 and calls == sorted(calls)  # resumed, never from the start again
    for a, b in zip(got, want):
        assert torch.equal(a.crow_indices(), b.crow_indices()) and torch.equal(a.col_indices(), b.col_indices())
        assert torch.equal(a.values(), b.values())


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_grad", [False, True])
def test_event_linear_matches_dense_linear_and_its_gradients(bias, input_grad):
    x = _events(40, 6, 57).requires_grad_(input_grad)  # [T, B, K]: the leading dims are folded and restored
    w = torch.randn(11, 57, requires_grad=True)
    b = torch.randn(11, requires_grad=True) if bias else None
    cot = torch.randn(40, 6, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no beta / invariant-check warnings reach the user
        y = event_linear(x, w, b)
    grads = torch.autograd.grad((y * cot).sum(), [t for t in (x, w, b) if t is not None and t.requires_grad])
    x_ref = x.detach().clone().requires_grad_(input_grad)
    w_ref = w.detach().clone().requires_grad_(True)
    b_ref = b.detach().clone().requires_grad_(True) if bias else None
    y_ref = F.linear(x_ref, w_ref, b_ref)
    ref = torch.autograd.grad((y_ref * cot).sum(), [t for t in (x_ref, w_ref, b_ref) if t is not None and t.requires_grad])
    assert y.shape == (40, 6, 11)
    assert _rel(y, y_ref) < 1e-6
    assert len(grads) == len(ref)
    for got, want in zip(grads, ref):
        assert _rel(got, want) < 1e-5


def test_event_linear_falls_back_to_the_dense_product_when_the_input_is_not_sparse():
    x = torch.randn(30, 20)  # every entry non-zero
    w = torch.randn(5, 20)
    assert torch.equal(event_linear(x, w), F.linear(x, w))  # bit for bit: it *is* F.linear
    double = _events(30, 20).double()
    assert torch.equal(event_linear(double, w.double()), F.linear(double, w.double()))


def test_estimated_density_counts_a_sample_of_rows():
    x = _events(5000, 40, density=0.03, seed=1)
    assert abs(estimated_density(x) - 0.03) < 0.01
    assert estimated_density(torch.zeros(10, 4)) == 0.0
    dense_tail = torch.cat([torch.zeros(100, 8), torch.ones(100, 8)])  # the sample spans the whole matrix
    assert 0.4 < estimated_density(dense_tail, rows=20) < 0.6


def test_event_linear_without_autograd_and_on_an_all_zero_input():
    w = torch.randn(4, 9, requires_grad=True)
    x = _events(12, 9, density=0.2)
    with torch.no_grad():
        assert _rel(event_linear(x, w), F.linear(x, w)) < 1e-6
    zeros = torch.zeros(8, 9)
    y = event_linear(zeros, w)
    assert torch.equal(y, torch.zeros(8, 4))
    y.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))


def test_event_linear_names_bad_arguments():
    with pytest.raises(ValueError, match=r"max_density=1\.5.*\[0, 1\]"):
        event_linear(torch.zeros(3, 4), torch.zeros(2, 4), max_density=1.5)
    with pytest.raises(ValueError, match=r"input \(3, 5\) and weight \(2, 4\).*4"):
        event_linear(torch.zeros(3, 5), torch.zeros(2, 4))
    # a 1-D weight: F.linear would drop the output's last dimension, the sparse path would keep it
    with pytest.raises(ValueError, match=r"weight \(4,\).*2-D weight \[out_features, in_features\]"):
        event_linear(torch.zeros(3, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="0-d tensor"):
        event_linear(torch.tensor(1.0), torch.zeros(2, 1))


def test_cpu_path_of_the_networks():
    assert cpu_path("cpp", "SRC") == ("cpp", True)
    assert cpu_path("cpp", "LIF") == ("cpp", True)
    assert cpu_path("torch", "SRC") == ("torch", False)
    assert cpu_path("auto", "LIF") == ("auto", False)
    with pytest.raises(ValueError, match=r"backend='gpu'.*expected one of"):
        cpu_path("gpu", "LIF")
    with pytest.raises(ValueError, match="backend='fast'"):
        build_lif_network(in_features=12, layers=2, hidden=8, backend="fast")


@pytest.mark.parametrize("builder", [build_lif_network, build_src_network])
def test_cpp_networks_compute_what_the_torch_networks_compute(builder):
    torch.manual_seed(0)
    dense = builder(in_features=60, layers=3, hidden=24, backend="torch")
    torch.manual_seed(0)
    sparse = builder(in_features=60, layers=3, hidden=24, backend="cpp")
    blocks = list(sparse.blocks)
    assert all(block.sparse_input for block in blocks)
    if builder is build_src_network:
        assert all(block.backend == "cpp" for block in blocks)  # the time-outer C++ scan of kernels.src
    else:
        assert all(isinstance(block, LinearLeaky) for block in blocks)
    assert not any(block.sparse_input for block in dense.blocks)
    # identical parameters (the backend changes no initialisation), identical results to float32 rounding
    for p, q in zip(dense.parameters(), sparse.parameters()):
        assert torch.equal(p, q)
    x = _events(30, 5, 60, density=0.1, seed=3)
    y = torch.tensor([0, 1, 2, 3, 4])
    outs = []
    for net in (dense, sparse):
        out = net(x)
        loss = F.cross_entropy(out[-1], y)
        grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
        outs.append((out, grads, net.last_spike_count))
    assert _rel(outs[1][0], outs[0][0]) < 1e-5
    assert outs[1][2] == outs[0][2]
    for got, want in zip(outs[1][1], outs[0][1]):
        if want is None:
            assert got is None
        else:
            assert _rel(got, want) < 1e-4
