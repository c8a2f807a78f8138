"""``kernels.bernoulli``: torch's CPU Bernoulli draws replayed in C++ must give the same spikes and leave the
generator in the same state as ``torch.bernoulli``, from any point of the Mersenne Twister's 624-word block."""

from __future__ import annotations

import pytest
import torch

from reprolib.kernels import bernoulli as B

# Skipped only without a compiler: where one exists, a C++ loop that stopped matching torch must fail here, not skip.
needs_fast_path = pytest.mark.skipif(B.dispatch.compiler() is None, reason="no C++ compiler for the Bernoulli loop")


def probabilities(shape, seed=0):
    p = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    p[p < 0.3] = 0.0  # MNIST-like: many exact zeros, a few exact ones
    p[p > 0.97] = 1.0
    return p


def generator_at(seed: int, consumed: int) -> torch.Generator:
    g = torch.Generator().manual_seed(seed)
    if consumed:
        torch.rand(consumed, generator=g)  # one 32-bit word per float
    return g


@needs_fast_path
@pytest.mark.parametrize("consumed", [0, 1, 622, 623, 624, 625, 1000, 5 * 624])
@pytest.mark.parametrize("shape, repeats", [((64, 1, 28, 28), 3), ((7, 13), 1100), ((1,), 70000), ((5, 623), 25)])
def test_same_spikes_and_state_as_torch(consumed, shape, repeats):
    p = probabilities(shape, seed=consumed)
    flat = p.view(-1)
    ties = min(500, flat.numel())
    flat[:ties] = torch.rand(p.shape, generator=generator_at(11, consumed)).view(-1)[:ties]  # the first draws: u == p
    ours, theirs = generator_at(11, consumed), generator_at(11, consumed)
    got = B.bernoulli(p, repeats, ours)
    expected = torch.bernoulli(p.expand(repeats, *shape), generator=theirs)
    assert B.fast_path_available() and got.numel() >= B.MIN_DRAWS  # the C++ loop, not the fallback, made these
    assert got.dtype == torch.float32 and got.shape == (repeats, *shape) and got.is_contiguous()
    assert torch.equal(got, expected)
    assert not got.view(repeats, -1)[0, :ties].any()  # a tie does not spike (u < p), as torch.bernoulli says
    assert torch.equal(ours.get_state(), theirs.get_state())
    assert torch.equal(torch.rand(700, generator=ours), torch.rand(700, generator=theirs))  # later draws agree


@needs_fast_path
def test_default_generator_like_torch():
    assert B.fast_path_available()
    p = probabilities((32, 784))
    torch.manual_seed(5)
    got, after = B.bernoulli(p, 10), torch.rand(3)
    torch.manual_seed(5)
    expected, expected_after = torch.bernoulli(p.expand(10, 32, 784)), torch.rand(3)
    assert torch.equal(got, expected) and torch.equal(after, expected_after)


@needs_fast_path
def test_draws_follow_the_probabilities():
    assert B.fast_path_available()
    p = torch.tensor([0.0, 0.1, 0.5, 1.0]).repeat(100)  # 400 pixels
    spikes = B.bernoulli(p, 1000, torch.Generator().manual_seed(0)).reshape(1000, 100, 4)
    rate = spikes.mean(dim=(0, 1))
    assert rate[0] == 0 and rate[3] == 1
    assert torch.allclose(rate, torch.tensor([0.0, 0.1, 0.5, 1.0]), atol=0.01)  # 100,000 draws each: ~6 sigma


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5])
def test_invalid_probabilities_raise_torchs_error(bad):
    p = probabilities((64, 784))
    p[3, 5] = bad
    with pytest.raises(RuntimeError, match="p_in"):
        B.bernoulli(p, 5, torch.Generator().manual_seed(0))


def test_small_and_non_float32_draws_go_to_torch():
    for p, repeats in ((probabilities((4, 10)), 3), (probabilities((64, 784)).double(), 2)):
        got = B.bernoulli(p, repeats, torch.Generator().manual_seed(1))
        assert torch.equal(got, torch.bernoulli(p.expand(repeats, *p.shape), generator=torch.Generator().manual_seed(1)))
        assert got.dtype == p.dtype


def test_a_mismatch_disables_the_fast_path_with_a_warning(monkeypatch):
    real = B._draw_cpp

    def off_by_one(p, repeats, g, inclusive=False):
        out = real(p, repeats, g, inclusive)
        out.view(-1)[0] = 1 - out.view(-1)[0]
        return out

    monkeypatch.setattr(B, "_draw_cpp", off_by_one)
    B.fast_path_available.cache_clear()
    try:
        if B.dispatch.compiler() is None:
            pytest.skip("no C++ compiler")
        with pytest.warns(UserWarning, match="differ from torch.bernoulli"):
            assert B.fast_path_available() is False
        p = probabilities((64, 784))
        got = B.bernoulli(p, 3, torch.Generator().manual_seed(2))  # falls back: torch's own draws
        assert torch.equal(got, torch.bernoulli(p.expand(3, 64, 784), generator=torch.Generator().manual_seed(2)))
    finally:
        monkeypatch.undo()
        B.fast_path_available.cache_clear()
    assert B.fast_path_available() is True


@needs_fast_path
def test_unknown_state_layout_falls_back(monkeypatch):
    assert B.fast_path_available()  # decided (and cached) before the layout is patched
    monkeypatch.setattr(B, "_STATE_BYTES", 1234)
    p = probabilities((64, 784))
    got = B.bernoulli(p, 2, torch.Generator().manual_seed(4))
    assert torch.equal(got, torch.bernoulli(p.expand(2, 64, 784), generator=torch.Generator().manual_seed(4)))


@needs_fast_path
def test_a_state_no_engine_reaches_is_left_to_torch():
    # left + next > 625 passes torch's own validity check but would walk past the 624 words (the loop never ended)
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    state[8:12] = torch.tensor([600], dtype=torch.int32).view(torch.uint8)
    state[16:24] = torch.tensor([600], dtype=torch.int64).view(torch.uint8)
    g.set_state(state)
    assert B._draw_cpp(probabilities((64, 784)), 2, g) is None
    assert torch.equal(g.get_state(), state)  # untouched


@needs_fast_path
def test_inputs_the_loop_cannot_read_as_stored_go_to_torch():
    p = probabilities((64, 784))
    negated = torch._neg_view(-p)  # a lazily negated view: its storage holds -p
    got = B.bernoulli(negated, 3, torch.Generator().manual_seed(6))
    assert torch.equal(got, torch.bernoulli(p.expand(3, 64, 784), generator=torch.Generator().manual_seed(6)))
    leaf = p.clone().requires_grad_(True)
    assert B.bernoulli(leaf, 3, torch.Generator().manual_seed(6)).requires_grad  # as torch.bernoulli gives


@needs_fast_path
@pytest.mark.parametrize("consumed", [0, 1, 623, 624, 2000])
def test_uniform_at_most_is_rand_compared_with_x(consumed):
    # SpikingJelly's Poisson encoder: spike where u <= x. Values outside [0, 1], NaN and exact ties included.
    x = probabilities((64, 784), seed=consumed) * 1.2 - 0.1
    x[0, :4] = torch.tensor([float("nan"), 0.0, 2.0**-24, 1.0])
    x[1] = torch.rand((64, 784), generator=generator_at(3, consumed))[1]  # step 0 draws exactly these: 784 ties
    ours, theirs = generator_at(3, consumed), generator_at(3, consumed)
    got = B.uniform_at_most(x, 90, ours)
    expected = (torch.rand((90, 64, 784), generator=theirs) <= x).float()
    assert B.fast_path_available()
    assert torch.equal(got, expected) and got[0, 1].all()  # a tie spikes (u <= x), as torch's comparison says
    assert torch.equal(ours.get_state(), theirs.get_state())


@pytest.mark.parametrize("repeats", [-1, 2.5, 100.0, True, "3"])
def test_repeats_must_be_a_non_negative_integer(repeats):
    p = torch.full((4,), 0.5)
    for draw in (B.bernoulli, B.uniform_at_most):
        with pytest.raises(ValueError, match=f"repeats={repeats!r} is invalid; expected an integer >= 0"):
            draw(p, repeats)
