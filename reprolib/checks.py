"""The one test of "a finite number" that the argument checks across the package share.

Each layer words its own error message (a neuron names its class, a notebook names its parameter), but what
counts as a number is decided here, once: a Python or NumPy real scalar that is finite and is not a bool.
A bool is refused although Python counts ``True`` as the integer 1: a flag given where a number is expected
is a mistake, not the value 1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_finite_real(value: Any) -> bool:
    """True for a finite real scalar (``int``, ``float``, ``np.float32(2.0)``, ...), False for a bool, NaN,
    an infinity, a string, a tensor or anything else."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
