"""Surrogate spike functions: a Heaviside step forward, a smooth derivative backward.

A spiking neuron fires ``S = Theta(x)`` with ``x = H - V_th``. ``Theta`` has a zero derivative almost
everywhere, so training replaces ``dTheta/dx`` in the backward pass by the derivative ``g'(x)`` of a
smooth gate ``g`` (the *primitive*). Every surrogate here is an ``nn.Module`` called on ``x``:

* ``spiking=True`` (default): forward ``Theta(x)``, backward ``grad * g'(x)``;
* ``spiking=False``: forward ``g(x)`` itself (ordinary autograd), e.g. for plots or annealing.

Spike condition (the sources disagree, see the reference README): SpikingJelly fires at ``x >= 0``
(``strict=False``, the default of :class:`Sigmoid` and :class:`ATan`); snnTorch and the BRF code fire at
``x > 0`` (``strict=True``, the default of :class:`DoubleGaussian`). Every class accepts ``strict``.

Closed forms (``.primitive(x)`` = g, ``.derivative(x)`` = g'):

* ``Sigmoid(alpha)``: ``g = sigmoid(alpha x)``, ``g' = alpha sigmoid(alpha x) (1 - sigmoid(alpha x))``
  (peak alpha/4). Default alpha **1.0** as in both SpikingJelly tutorials (SpikingJelly switched to 4.0 on
  2021-12-21); pass ``alpha=4.0`` for the later behaviour.
* ``ATan(alpha)``: ``g = arctan((pi/2) alpha x) / pi + 1/2``, ``g' = (alpha/2) / (1 + ((pi/2) alpha x)^2)``
  (peak alpha/2; default alpha 2.0).
* ``DoubleGaussian(p, sigma1, sigma2, gain)`` (BRF's "multi-Gaussian", normalised densities ``N``):
  ``g' = gain [(1 + p) N(x; 0, sigma1) - 2 p N(x; 0, sigma2)]`` (0.4388 at x = 0 with the defaults),
  ``g = gain [(1 + p) Phi(x / sigma1) - 2 p Phi(x / sigma2)]`` (``Phi`` the standard normal CDF), which rises
  from 0 to ``gain (1 - p)``: it is the antiderivative of the surrogate, not a gate ending at 1.

``get_surrogate(name, **options)`` builds one by name (``sigmoid``, ``atan``, ``double_gaussian``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from reprolib.checks import is_finite_real

__all__ = [
    "heaviside",
    "SurrogateSpike",
    "SurrogateFunction",
    "Sigmoid",
    "ATan",
    "DoubleGaussian",
    "SURROGATES",
    "get_surrogate",
]


def heaviside(x: Tensor, strict: bool = False) -> Tensor:
    """``Theta(x)``: 1 where ``x >= 0`` (``x > 0`` when ``strict``), else 0, in ``x``'s dtype."""
    if not isinstance(strict, bool):  # a string such as "no" would be taken as True
        raise ValueError(f"heaviside: strict={strict!r} is invalid; expected True or False")
    return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)


class SurrogateSpike(torch.autograd.Function):
    """Forward ``Theta(x)``; backward ``grad_output * derivative(x)``.

    ``derivative`` is a plain function of ``x`` (the surrogate's closed form), so one autograd Function
    serves every surrogate; the non-tensor arguments get no gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, derivative: Callable[[Tensor], Tensor], strict: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        return heaviside(x, strict)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        grad_x = grad_output * ctx.derivative(x) if ctx.needs_input_grad[0] else None
        return grad_x, None, None


def _check_positive(name: str, value, cls_name: str) -> float:
    if not is_finite_real(value) or value <= 0:  # NumPy scalars too: np.float32(2.0) is a fine alpha
        raise ValueError(f"{cls_name}: {name}={value!r} is invalid; expected a finite number > 0")
    return float(value)


class SurrogateFunction(nn.Module):
    """Base class: a Heaviside spike with the surrogate gradient ``derivative``.

    Subclasses implement :meth:`primitive` (smooth gate ``g``) and :meth:`derivative` (``g'``, closed form),
    and list their hyper-parameters in ``_repr_fields`` for the repr.
    """

    #: spike condition of this surrogate family when ``strict`` is not given (False: fire at x >= 0)
    default_strict: bool = False
    _repr_fields: tuple[str, ...] = ()

    def __init__(self, spiking: bool = True, strict: bool | None = None):
        super().__init__()
        if not isinstance(spiking, bool):
            raise ValueError(f"{type(self).__name__}: spiking={spiking!r} is invalid; expected True or False")
        if strict is not None and not isinstance(strict, bool):
            raise ValueError(f"{type(self).__name__}: strict={strict!r} is invalid; expected True, False or None")
        self.spiking = spiking
        self.strict = self.default_strict if strict is None else strict

    def primitive(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if self.spiking:
            return SurrogateSpike.apply(x, self.derivative, self.strict)
        return self.primitive(x)

    def extra_repr(self) -> str:
        fields = [f"{name}={getattr(self, name)!r}" for name in self._repr_fields]
        fields.append(f"spiking={self.spiking}")
        # the spike condition is shown only when it differs from the family's default, so that the
        # SpikingJelly printout `Sigmoid(alpha=1.0, spiking=True)` is reproduced verbatim
        if self.strict != self.default_strict:
            fields.append(f"strict={self.strict}")
        return ", ".join(fields)


class Sigmoid(SurrogateFunction):
    """``g(x) = sigmoid(alpha x)``; ``g'(x) = alpha sigmoid(alpha x) (1 - sigmoid(alpha x))``.

    ``alpha`` defaults to 1.0 (SpikingJelly until 2021-12-21, both tutorials); 4.0 makes the peak gradient 1.
    """

    _repr_fields = ("alpha",)

    def __init__(self, alpha: float = 1.0, spiking: bool = True, strict: bool | None = None):
        super().__init__(spiking, strict)
        self.alpha = _check_positive("alpha", alpha, "Sigmoid")

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1.0 - s)


class ATan(SurrogateFunction):
    """``g(x) = arctan((pi/2) alpha x)/pi + 1/2``; ``g'(x) = (alpha/2) / (1 + ((pi/2) alpha x)^2)``."""

    _repr_fields = ("alpha",)

    def __init__(self, alpha: float = 2.0, spiking: bool = True, strict: bool | None = None):
        super().__init__(spiking, strict)
        self.alpha = _check_positive("alpha", alpha, "ATan")

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan((math.pi / 2.0) * self.alpha * x) / math.pi + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return (self.alpha / 2.0) / (1.0 + ((math.pi / 2.0) * self.alpha * x) ** 2)


def _normal_density(x: Tensor, sigma: float) -> Tensor:
    return torch.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))


def _normal_cdf(x: Tensor, sigma: float) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / (sigma * math.sqrt(2.0))))


class DoubleGaussian(SurrogateFunction):
    """BRF's double ("multi") Gaussian with normalised densities, strict ``x > 0`` spike by default.

    ``g'(x) = gain [(1 + p) N(x; 0, sigma1) - 2 p N(x; 0, sigma2)]`` (code of quantling/brf-neurons, not the
    paper's un-normalised Eq. 39-40); value 0.4388 at 0, slightly negative for ``|x| > 1.27``.
    ``g(x) = gain [(1 + p) Phi(x/sigma1) - 2 p Phi(x/sigma2)]``.
    """

    default_strict = True
    _repr_fields = ("p", "sigma1", "sigma2", "gain")

    def __init__(
        self,
        p: float = 0.15,
        sigma1: float = 0.5,
        sigma2: float = 3.0,
        gain: float = 0.5,
        spiking: bool = True,
        strict: bool | None = None,
    ):
        super().__init__(spiking, strict)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0.0 <= p < 1.0):
            raise ValueError(f"DoubleGaussian: p={p!r} is invalid; expected a number in [0, 1)")
        self.p = float(p)
        self.sigma1 = _check_positive("sigma1", sigma1, "DoubleGaussian")
        self.sigma2 = _check_positive("sigma2", sigma2, "DoubleGaussian")
        self.gain = _check_positive("gain", gain, "DoubleGaussian")

    def primitive(self, x: Tensor) -> Tensor:
        return self.gain * (
            (1.0 + self.p) * _normal_cdf(x, self.sigma1) - 2.0 * self.p * _normal_cdf(x, self.sigma2)
        )

    def derivative(self, x: Tensor) -> Tensor:
        return self.gain * (
            (1.0 + self.p) * _normal_density(x, self.sigma1) - 2.0 * self.p * _normal_density(x, self.sigma2)
        )


#: name -> class, for configs (``surrogate: atan``); ``-`` and ``_`` are interchangeable, case ignored
SURROGATES: dict[str, type[SurrogateFunction]] = {
    "sigmoid": Sigmoid,
    "atan": ATan,
    "double_gaussian": DoubleGaussian,
    "multi_gaussian": DoubleGaussian,
}


def get_surrogate(name: str, **options) -> SurrogateFunction:
    """Build the surrogate registered as ``name`` (see :data:`SURROGATES`) with its options."""
    if not isinstance(name, str):
        raise ValueError(f"surrogate name {name!r} is invalid; expected one of {sorted(SURROGATES)}")
    key = name.strip().lower().replace("-", "_")
    try:
        cls = SURROGATES[key]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; expected one of {sorted(SURROGATES)}") from None
    return cls(**options)
