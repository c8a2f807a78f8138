"""The one test of "a finite number" that the argument checks across the package share.

Each layer words its own error message (a neuron names its class, a notebook names its parameter), but what
counts as a number is decided here: a real scalar (Python, NumPy or ``fractions.Fraction``) that is finite and is
not a bool. Config values are the exception: they must also be JSON types, so ``reprolib.config`` keeps its own
``(int, float)`` test (an ``np.float32`` cannot be hashed into a config's canonical JSON).
A bool is refused although Python counts ``True`` as the integer 1: a flag given where a number is expected
is a mistake, not the value 1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_finite_real(value: Any) -> bool:
    """True for a finite real scalar (``int``, ``float``, ``np.float32(2.0)``, ...), False for a bool, NaN,
    an infinity, an integer too large for a float (``10**400``), a string, a tensor or anything else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # np.bool_ is no numbers.Real either
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
