"""Surrogate spike functions: Heaviside forward, closed-form surrogate gradients, smooth primitives."""

from __future__ import annotations

import math

import pytest
import torch

from reprolib import surrogate
from reprolib.surrogate import ATan, DoubleGaussian, Sigmoid, get_surrogate, heaviside


def _grad_of(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


def test_heaviside_convention_ge_by_default_and_strict_selectable():
    x = torch.tensor([-1.0, 0.0, 1e-7, 2.0])
    assert heaviside(x).tolist() == [0.0, 1.0, 1.0, 1.0]
    assert heaviside(x, strict=True).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_spike_at_exactly_zero_follows_each_source():
    zero = torch.zeros(1)
    assert Sigmoid()(zero).item() == 1.0  # SpikingJelly: x >= 0 fires
    assert ATan()(zero).item() == 1.0
    assert DoubleGaussian()(zero).item() == 0.0  # BRF code: x > 0
    assert Sigmoid(strict=True)(zero).item() == 0.0
    assert DoubleGaussian(strict=False)(zero).item() == 1.0


def test_forward_is_binary_and_keeps_dtype():
    x = torch.linspace(-2, 2, 11, dtype=torch.float64)
    for sg in (Sigmoid(), ATan(), DoubleGaussian()):
        y = sg(x)
        assert y.dtype == torch.float64
        assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_sigmoid_gradient_hand_values():
    # alpha = 1: g'(0) = 1/4; g'(2) = s(2)(1 - s(2)) with s(2) = 1/(1+e^-2)
    s2 = 1.0 / (1.0 + math.exp(-2.0))
    grad = _grad_of(Sigmoid(), torch.tensor([0.0, 2.0]))
    assert grad.tolist() == pytest.approx([0.25, s2 * (1 - s2)], rel=1e-6)
    # alpha = 4: peak gradient 1
    assert _grad_of(Sigmoid(alpha=4.0), torch.tensor([0.0])).item() == pytest.approx(1.0)


def test_atan_gradient_hand_values():
    # alpha = 2: g'(x) = 1 / (1 + (pi x)^2)
    grad = _grad_of(ATan(), torch.tensor([0.0, 0.5, -1.0]))
    expected = [1.0, 1.0 / (1.0 + (math.pi * 0.5) ** 2), 1.0 / (1.0 + math.pi**2)]
    assert grad.tolist() == pytest.approx(expected, rel=1e-6)


def test_double_gaussian_values_of_the_brf_reference():
    grad = _grad_of(DoubleGaussian(), torch.tensor([0.0, 0.5, -0.5, 1.0]))
    assert grad.tolist() == pytest.approx([0.4388, 0.2586, 0.2586, 0.0432], abs=1e-4)
    # zero crossing near |y| = 1.27, slightly negative beyond (minimum about -0.016 near 2)
    d = DoubleGaussian().derivative(torch.tensor([1.2, 1.35, 2.0]))
    assert d[0] > 0 and d[1] < 0
    assert d[2].item() == pytest.approx(-0.016, abs=2e-3)


@pytest.mark.parametrize("sg", [Sigmoid(), Sigmoid(alpha=4.0), ATan(), ATan(alpha=3.0), DoubleGaussian()])
def test_surrogate_gradient_equals_closed_form_derivative(sg):
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    torch.testing.assert_close(_grad_of(sg, x), sg.derivative(x))


@pytest.mark.parametrize("sg", [Sigmoid(), Sigmoid(alpha=4.0), ATan(), DoubleGaussian()])
def test_primitives_pass_gradcheck_and_derivative_is_their_derivative(sg):
    x = torch.linspace(-2.5, 2.5, 21, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sg.primitive, (x,))
    torch.testing.assert_close(_grad_of(sg.primitive, x.detach()), sg.derivative(x.detach()))


def test_primitive_shapes():
    x = torch.tensor([-50.0, 0.0, 50.0], dtype=torch.float64)
    assert Sigmoid().primitive(x).tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1e-12)
    assert ATan().primitive(x)[1].item() == pytest.approx(0.5)
    # the double-Gaussian antiderivative rises from 0 to gain (1 - p) = 0.425
    assert DoubleGaussian().primitive(x).tolist() == pytest.approx([0.0, 0.5 * (1.15 - 0.3) / 2, 0.425], abs=1e-6)


def test_spiking_false_returns_the_primitive_with_its_gradient():
    sg = ATan(spiking=False)
    x = torch.tensor([0.3, -0.7])
    torch.testing.assert_close(sg(x), ATan().primitive(x))
    torch.testing.assert_close(_grad_of(sg, x), ATan().derivative(x))


def test_repr_matches_spikingjelly_printout():
    assert repr(Sigmoid()) == "Sigmoid(alpha=1.0, spiking=True)"
    assert repr(ATan()) == "ATan(alpha=2.0, spiking=True)"
    assert repr(Sigmoid(strict=True)) == "Sigmoid(alpha=1.0, spiking=True, strict=True)"
    assert repr(DoubleGaussian()) == "DoubleGaussian(p=0.15, sigma1=0.5, sigma2=3.0, gain=0.5, spiking=True)"


def test_get_surrogate_by_name():
    sg = get_surrogate("atan", alpha=4.0)
    assert isinstance(sg, ATan) and sg.alpha == 4.0
    assert isinstance(get_surrogate("Sigmoid"), Sigmoid)
    assert isinstance(get_surrogate("double-gaussian"), DoubleGaussian)
    assert set(surrogate.SURROGATES) >= {"sigmoid", "atan", "double_gaussian"}


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown surrogate 'erf'"):
        get_surrogate("erf")
    with pytest.raises(ValueError, match="alpha=0"):
        Sigmoid(alpha=0)
    with pytest.raises(ValueError, match="alpha=-2.0"):
        ATan(alpha=-2.0)
    with pytest.raises(ValueError, match="sigma2=0.0"):
        DoubleGaussian(sigma2=0.0)
    with pytest.raises(ValueError, match="p=1.5"):
        DoubleGaussian(p=1.5)
    with pytest.raises(ValueError, match="spiking='yes'"):
        Sigmoid(spiking="yes")


def test_atan_matches_snntorch_oracle():
    snntorch_surrogate = pytest.importorskip("snntorch.surrogate")
    x = torch.tensor([-1.0, -0.2, 0.3, 1.5])
    ours = _grad_of(ATan(alpha=2.0), x)
    theirs = _grad_of(snntorch_surrogate.atan(alpha=2.0), x)
    torch.testing.assert_close(ours, theirs)


def test_numpy_scalars_are_alphas_and_heaviside_wants_a_bool():
    import numpy as np

    assert Sigmoid(alpha=np.float32(2.0)).alpha == 2.0
    with pytest.raises(ValueError, match="strict='yes' is invalid; expected True or False"):
        heaviside(torch.zeros(3), strict="yes")
