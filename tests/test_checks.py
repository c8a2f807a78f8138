"""The shared "finite number" predicate, and that every argument check built on it agrees with it."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from reprolib import encoding, notebook, surrogate
from reprolib.checks import is_finite_real
from reprolib.layers import SynapseFilter
from reprolib.neurons import LIFNode, base

NUMBERS = [0, -3, 2.5, np.float32(2.0), np.int64(7), Fraction(1, 3)]
NOT_NUMBERS = [True, False, math.nan, math.inf, -math.inf, np.float32("nan"), "1.0", None, torch.tensor(1.0), [1.0]]


@pytest.mark.parametrize("value", NUMBERS, ids=repr)
def test_finite_reals_pass(value):
    assert is_finite_real(value)


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_bools_non_finite_and_non_numbers_fail(value):
    assert not is_finite_real(value)


# Each layer's check, called with the argument layout it has; each must accept and refuse exactly what the
# predicate does, whatever its own wording.
CHECKS = {
    "neurons.base": lambda v: base._check_number("v_threshold", v, "LIFNode"),
    "encoding": lambda v: encoding._check_finite("gain", v),
    "notebook": lambda v: notebook.check_number("lr", v),
}


@pytest.mark.parametrize("layer", sorted(CHECKS))
def test_layer_checks_agree_with_the_predicate(layer):
    check = CHECKS[layer]
    for value in NUMBERS:
        check(value)
    for value in NOT_NUMBERS:
        with pytest.raises(ValueError, match="finite number"):
            check(value)


def test_surrogate_alpha_is_a_positive_finite_real():
    assert surrogate._check_positive("alpha", np.float32(2.0), "ATan") == 2.0
    for value in (0, -1.0, True, math.nan, math.inf, "4"):
        with pytest.raises(ValueError, match=r"ATan: alpha=.* expected a finite number > 0"):
            surrogate._check_positive("alpha", value, "ATan")


def test_an_integer_too_large_for_a_float_is_refused_not_an_overflow():
    assert not is_finite_real(10**400)
    with pytest.raises(ValueError, match="finite number"):
        notebook.check_number("lr", 10**400)


@pytest.mark.parametrize("build", [LIFNode, SynapseFilter])
def test_tau_takes_numpy_scalars_like_the_other_constants(build):
    assert build(tau=np.float32(2.0)).tau == 2.0
    for bad in (np.float32("nan"), True, 1.0):
        with pytest.raises(ValueError, match=r"tau=.* expected a finite number > 1"):
            build(tau=bad)
