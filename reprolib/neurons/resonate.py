"""Resonate-and-fire family of Higuchi et al., "Balanced Resonate-and-Fire Neurons" (ICML 2024).

Equations follow the public code (quantling/brf-neurons ``snn/modules``), which wins over the paper text
where they differ (reference ``brf-neurons.md``). Time step ``dt`` (paper ``delta``) = 0.01. All states
start at 0, spikes use a **strict** Heaviside ``z = Theta(y) = 1 if y > 0`` with the BRF double-Gaussian
surrogate (:class:`reprolib.surrogate.DoubleGaussian`, normalised densities, p 0.15, sigma 0.5 / 3.0,
gain 0.5).

Vanilla RF (``rf_step``; the "RF" of the results, no reset, no refractoriness)::

    b = -|b'|,  omega = |omega'|
    u[t] = u[t-1] + dt (b u[t-1] - omega v[t-1] + x[t])
    v[t] = v[t-1] + dt (omega u[t-1] + b v[t-1])
    z[t] = Theta(u[t] - theta),  theta = 1

Balanced RF (``brf_step``)::

    p(omega) = (-1 + sqrt(1 - (dt omega)^2)) / dt        divergence boundary (needs omega <= 1/dt)
    b[t]     = p(omega) - |b'| - q[t-1]                  "smooth reset": spikes raise the damping
    u, v as above with b[t]
    z[t]     = Theta(u[t] - theta - q[t-1])              refractory threshold
    q[t]     = gamma q[t-1] + z[t],  gamma = 0.9

No reset of u or v in either. ALIF baseline (``alif_step``, Yin et al. 2021 as in the BRF code; unit time
step in the decays, not ``exp(-dt/tau)`` as the paper appendix writes)::

    alpha = exp(-1/|tau_m|), rho = exp(-1/|tau_adp|)
    a[t] = rho a[t-1] + (1 - rho) z[t-1];  theta[t] = 0.01 + 1.8 a[t]
    u'[t] = alpha u[t-1] + (1 - alpha) x[t];  z[t] = Theta(u'[t] - theta[t])
    u[t] = u'[t] - z[t] theta[t]                          soft reset, NOT detached

LI readout (``li_step``): ``u[t] = alpha u[t-1] + (1 - alpha) I[t]``, ``alpha = exp(-1/|tau_out|)``.

The recurrent layers take ``[x[t], z[t-1]]`` through one weight matrix ``W [h, m + h]`` (no bias by default);
each layer's time loop is one pure function (``brf_multistep``, ``rf_multistep``, ``alif_multistep``,
``li_multistep``) so a fused kernel can replace it behind the same module API.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor, nn

from reprolib.checks import is_finite_real
from reprolib.neurons.base import MemoryModule, _check_number, check_sequence, select_backend
from reprolib.surrogate import DoubleGaussian

__all__ = [
    "divergence_boundary", "frequency_and_damping", "RFParameters", "RFState", "rf_step", "brf_step", "rf_multistep", "brf_multistep",
    "ALIFParameters", "ALIFState", "alif_step", "alif_multistep", "LIParameters", "LIState", "li_step",
    "li_multistep", "simulate_resonator", "RFCell", "BRFCell", "ALIFCell", "LICell",
]

DEFAULT_DT = 0.01


def divergence_boundary(omega: Tensor, dt: float = DEFAULT_DT) -> Tensor:
    """``p(omega) = (-1 + sqrt(1 - (dt omega)^2)) / dt``: the largest damping ``b`` for which the Euler
    step does not diverge (``|1 + dt (b + i omega)| = 1`` at ``b = p(omega)``). NaN for ``omega > 1/dt``."""
    return (-1.0 + torch.sqrt(1.0 - torch.square(dt * omega))) / dt


class RFParameters(NamedTuple):
    """Parameters of the RF / BRF neurons. ``omega`` and ``b_offset`` are the raw (trainable) values;
    their absolute values are used, as in the code."""

    omega: Tensor
    b_offset: Tensor
    dt: float = DEFAULT_DT
    theta: float = 1.0
    gamma: float = 0.9
    clamp_omega: bool = False
    spike_fn: Callable[[Tensor], Tensor] = DoubleGaussian()


class RFState(NamedTuple):
    """``z`` last spikes, ``u`` / ``v`` real / imaginary membrane, ``q`` refractory variable (0 for RF)."""

    z: Tensor
    u: Tensor
    v: Tensor
    q: Tensor


def _omega(params: RFParameters) -> Tensor:
    omega = torch.abs(params.omega)
    if params.clamp_omega:
        # keeps p(omega) real: the code has no guard and a run that crosses 1/dt turns NaN
        omega = torch.clamp(omega, max=1.0 / params.dt)
    return omega


def frequency_and_damping(params: RFParameters, balanced: bool) -> tuple[Tensor, Tensor]:
    """Each neuron's angular frequency and damping as its step uses them, without the spike-driven term:
    ``(|omega|, p(omega) - |b'|)`` for BRF (the paper's ``b_c``, Fig. 5 bottom) and ``(|omega|, -|b'|)`` for RF;
    ``omega`` clamped to ``1 / dt`` where the params say so. Below the divergence boundary ``p(omega)`` (itself
    negative) the Euler step's oscillation decays: a BRF's ``b_c`` is below it whenever ``b' != 0``, an RF's
    ``-|b'|`` need not be (``omega = 70``, ``b = -1`` diverges: ``p(70) = -28.6``)."""
    omega = _omega(params)
    if balanced:
        return omega, divergence_boundary(omega, params.dt) - torch.abs(params.b_offset)
    return omega, -torch.abs(params.b_offset)


def _euler(x: Tensor, u: Tensor, v: Tensor, b: Tensor, omega: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    # explicit Euler of dz/dt = (b + i omega) z + x, both parts from the previous state
    u_new = u + b * u * dt - omega * v * dt + x * dt
    v_new = v + omega * u * dt + b * v * dt
    return u_new, v_new


def rf_step(x: Tensor, state: RFState, params: RFParameters) -> tuple[Tensor, RFState]:
    """Vanilla RF step (``b = -|b'|``, fixed threshold, no reset): ``(z[t], state)``."""
    u, v = _euler(x, state.u, state.v, -torch.abs(params.b_offset), _omega(params), params.dt)
    z = params.spike_fn(u - params.theta)
    return z, RFState(z, u, v, state.q)


def brf_step(x: Tensor, state: RFState, params: RFParameters) -> tuple[Tensor, RFState]:
    """Balanced RF step (divergence boundary, smooth reset, refractory threshold): ``(z[t], state)``."""
    omega = _omega(params)
    b = divergence_boundary(omega, params.dt) - torch.abs(params.b_offset) - state.q
    u, v = _euler(x, state.u, state.v, b, omega, params.dt)
    z = params.spike_fn(u - params.theta - state.q)
    q = params.gamma * state.q + z
    return z, RFState(z, u, v, q)


class ALIFParameters(NamedTuple):
    """ALIF time constants (raw, absolute values used), threshold base and adaptation strength."""

    tau_mem: Tensor
    tau_adp: Tensor
    theta0: float = 0.01
    beta: float = 1.8
    spike_fn: Callable[[Tensor], Tensor] = DoubleGaussian()


class ALIFState(NamedTuple):
    """``z`` last spikes, ``u`` membrane (after soft reset), ``a`` threshold adaptation."""

    z: Tensor
    u: Tensor
    a: Tensor


def alif_step(x: Tensor, state: ALIFState, params: ALIFParameters) -> tuple[Tensor, ALIFState]:
    """ALIF step (Yin et al. 2021 as coded in brf-neurons): ``(z[t], state)``."""
    alpha = torch.exp(-1.0 / torch.abs(params.tau_mem))
    rho = torch.exp(-1.0 / torch.abs(params.tau_adp))
    a = rho * state.a + (1.0 - rho) * state.z
    theta = params.theta0 + params.beta * a
    u = alpha * state.u + (1.0 - alpha) * x
    z = params.spike_fn(u - theta)
    u = u - z * theta  # soft reset; the code keeps its gradient
    return z, ALIFState(z, u, a)


class LIParameters(NamedTuple):
    """Leaky-integrator readout time constant (raw; ``alpha = exp(-1/|tau|)``)."""

    tau: Tensor


class LIState(NamedTuple):
    u: Tensor


def li_step(current: Tensor, state: LIState, params: LIParameters) -> tuple[Tensor, LIState]:
    """``u[t] = alpha u[t-1] + (1 - alpha) I[t]``: ``(u[t], state)``."""
    alpha = torch.exp(-1.0 / torch.abs(params.tau))
    u = alpha * state.u + (1.0 - alpha) * current
    return u, LIState(u)


def _recurrent_multistep(step: Callable, x_seq: Tensor, weight: Tensor, bias: Optional[Tensor], state, params):
    """Loop ``I[t] = W [x[t], z[t-1]] (+ bias)`` -> ``step`` over ``x_seq [T, B, m]``; ``W [h, m + h]``."""
    if x_seq.dim() != 3 or weight.shape[1] != x_seq.shape[-1] + weight.shape[0]:
        raise ValueError(f"x_seq {tuple(x_seq.shape)} with weight {tuple(weight.shape)} is invalid; "
                         "expected x_seq [T, B, m] and weight [h, m + h]")
    m = x_seq.shape[-1]
    # the input part of W [x, z] is applied to all steps at once; same sum as the concatenated matmul
    input_current = x_seq @ weight[:, :m].t()
    if bias is not None:
        input_current = input_current + bias
    w_rec_t = weight[:, m:].t()
    spikes = []
    for current in input_current:
        z, state = step(current + state.z @ w_rec_t, state, params)
        spikes.append(z)
    return torch.stack(spikes), state


def rf_multistep(x_seq, weight, state: RFState, params: RFParameters, bias=None):
    """Recurrent vanilla-RF layer over ``x_seq [T, B, m]``: ``(z_seq [T, B, h], final state)``."""
    return _recurrent_multistep(rf_step, x_seq, weight, bias, state, params)


def brf_multistep(x_seq, weight, state: RFState, params: RFParameters, bias=None):
    """Recurrent BRF layer over ``x_seq [T, B, m]``: ``(z_seq [T, B, h], final state)``."""
    return _recurrent_multistep(brf_step, x_seq, weight, bias, state, params)


def alif_multistep(x_seq, weight, state: ALIFState, params: ALIFParameters, bias=None):
    """Recurrent ALIF layer over ``x_seq [T, B, m]``: ``(z_seq [T, B, h], final state)``."""
    return _recurrent_multistep(alif_step, x_seq, weight, bias, state, params)


def li_multistep(z_seq: Tensor, weight: Tensor, state: LIState, params: LIParameters, bias=None):
    """LI readout over ``z_seq [T, B, h]`` with ``W [C, h]``: ``(u_seq [T, B, C], final state)``."""
    current_seq = z_seq @ weight.t()
    if bias is not None:
        current_seq = current_seq + bias
    outputs = []
    for current in current_seq:
        u, state = li_step(current, state, params)
        outputs.append(u)
    return torch.stack(outputs), state


@torch.no_grad()
def simulate_resonator(x_seq, omega: float, b_offset: float, *, balanced: bool = True, dt: float = DEFAULT_DT,
                       theta: float = 1.0, gamma: float = 0.9) -> dict:
    """One RF (``balanced=False``) or BRF neuron driven by the current ``x_seq [T]`` (or ``[T, N]``).

    Returns ``[T, ...]`` traces ``u``, ``v``, ``z``, ``q`` and ``threshold`` (``theta + q[t-1]``), for the
    README animation and paper Figs. 1-3.
    """
    x_seq = torch.as_tensor(x_seq, dtype=torch.get_default_dtype())
    check_sequence(x_seq, "simulate_resonator", layout="[T, ...]")
    params = RFParameters(torch.as_tensor(float(omega)), torch.as_tensor(float(b_offset)), dt, theta, gamma)
    zeros = torch.zeros(x_seq.shape[1:])
    state = RFState(zeros, zeros, zeros, zeros)
    step = brf_step if balanced else rf_step
    trace = {k: [] for k in ("u", "v", "z", "q", "threshold")}
    for x in x_seq:
        trace["threshold"].append(theta + state.q)
        z, state = step(x, state, params)
        for k in ("u", "v", "z", "q"):
            trace[k].append(getattr(state, k))
    return {k: torch.stack(v) for k, v in trace.items()}


def _check_size(owner: str, **sizes) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{owner}: {name}={value!r}; expected a positive int")


def _check_range(owner: str, name: str, value) -> tuple[float, float]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name}={value!r}; expected a pair of numbers") from None
    if not (is_finite_real(low) and is_finite_real(high) and low <= high):
        raise ValueError(f"{owner}: {name}={value!r}; expected (low, high), finite, with low <= high")
    return float(low), float(high)


def _normal_init(owner: str, name: str, size: int, mean_std) -> nn.Parameter:
    """A trainable ``[size]`` vector of time constants drawn from ``N(mean, std)`` (``mean_std = (mean, std)``).

    The neurons use ``|tau|``, so a draw below 0 still gives a decay in [0, 1]; a mean <= 0 is refused all the same,
    since every time constant of the sources is positive and a negative one is a typo."""
    try:
        mean, std = mean_std
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name}={mean_std!r}; expected a pair (mean, std)") from None
    # the package's one test of a number: float() alone took strings ("2") and flags (True) as time constants
    if not (is_finite_real(mean) and is_finite_real(std) and mean > 0 and std >= 0):
        raise ValueError(f"{owner}: {name}={mean_std!r}; expected a time constant's (mean, std) in steps: a finite "
                         "mean > 0 and a finite std >= 0")
    return nn.Parameter(torch.randn(size) * float(std) + float(mean))


class _RecurrentCell(MemoryModule):
    """Common part: weight ``W [h, m + h]`` on ``[x[t], z[t-1]]`` (Xavier uniform on the whole matrix),
    optional bias, state memories, single-/multi-step forward through the pure functions."""

    state_type: type = RFState
    #: multi-step implementations by backend name; each concrete cell defines its own table in its class
    #: body (``reprolib.kernels`` registers "cupy" and "auto" there)
    multistep_backends: dict = {}
    step: Callable = None

    def __init__(self, in_features: int, hidden: int, bias: bool, step_mode: str, backend: str = "torch"):
        super().__init__(step_mode)
        _check_size(type(self).__name__, in_features=in_features, hidden=hidden)
        self.backend = select_backend(type(self).__name__, backend, self.multistep_backends)
        self.in_features, self.hidden = in_features, hidden
        self.weight = nn.Parameter(torch.empty(hidden, in_features + hidden))
        nn.init.xavier_uniform_(self.weight)
        if bias:
            # PyTorch's nn.Linear default bias init, as in the ALIF scripts that enable it
            bound = 1.0 / math.sqrt(in_features + hidden)
            self.bias = nn.Parameter(torch.empty(hidden).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        for name in self.state_type._fields:
            self.register_memory(name, None)

    def _state(self, batch_shape, like: Tensor):
        if getattr(self, self.state_type._fields[0]) is None:
            zeros = like.new_zeros(tuple(batch_shape) + (self.hidden,))
            return self.state_type(*[zeros] * len(self.state_type._fields))
        return self.state_type(*[getattr(self, name) for name in self.state_type._fields])

    def _store(self, state) -> None:
        for name, value in zip(self.state_type._fields, state):
            setattr(self, name, value)

    def _check(self, x: Tensor, dims: int) -> None:
        if not isinstance(x, Tensor) or x.dim() != dims or x.shape[-1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            want = "[T, B, m]" if dims == 3 else "[B, m]"
            raise ValueError(f"{type(self).__name__}: input {shape} is invalid; expected {want} with m={self.in_features}")

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        self._check(x_seq, 3)
        z_seq, state = self.multistep_backends[self.backend](x_seq, self.weight, self._state(x_seq.shape[1:2], x_seq),
                                            self.neuron_parameters(), self.bias)
        self._store(state)
        return z_seq

    def single_step_forward(self, x: Tensor) -> Tensor:
        self._check(x, 2)
        z_seq, state = self.multistep_backends["torch"](x.unsqueeze(0), self.weight, self._state(x.shape[:1], x),
                                            self.neuron_parameters(), self.bias)
        self._store(state)
        return z_seq[0]


class RFCell(_RecurrentCell):
    """Recurrent layer of vanilla RF neurons (``b = -|b'|``, no reset). ``omega ~ U(omega_range)``,
    ``b' ~ U(b_offset_range)`` per neuron, both trainable."""

    state_type = RFState
    multistep_backends = {"torch": rf_multistep}

    def __init__(self, in_features: int, hidden: int, *, omega_range=(15.0, 50.0), b_offset_range=(0.1, 1.0),
                 dt: float = DEFAULT_DT, theta: float = 1.0, gamma: float = 0.9, clamp_omega: bool = False,
                 bias: bool = False, spike_fn=None, step_mode: str = "s", backend: str = "torch"):
        super().__init__(in_features, hidden, bias, step_mode, backend)
        owner = type(self).__name__
        low, high = _check_range(owner, "omega_range", omega_range)
        self.omega = nn.Parameter(torch.empty(hidden).uniform_(low, high))
        low, high = _check_range(owner, "b_offset_range", b_offset_range)
        self.b_offset = nn.Parameter(torch.empty(hidden).uniform_(low, high))
        if not _check_number("dt", dt, owner) > 0:
            raise ValueError(f"{owner}: dt={dt!r}; expected a positive time step")
        self.dt, self.theta, self.gamma = float(dt), _check_number("theta", theta, owner), _check_number("gamma", gamma, owner)
        self.clamp_omega = clamp_omega
        self.spike_fn = spike_fn if spike_fn is not None else DoubleGaussian()

    def neuron_parameters(self) -> RFParameters:
        return RFParameters(self.omega, self.b_offset, self.dt, self.theta, self.gamma, self.clamp_omega,
                            self.spike_fn)


class BRFCell(RFCell):
    """Recurrent layer of balanced RF neurons (divergence boundary, smooth reset, refractory period)."""

    multistep_backends = {"torch": brf_multistep}


class ALIFCell(_RecurrentCell):
    """Recurrent layer of ALIF neurons; ``tau_mem ~ N(mean, std)``, ``tau_adp ~ N(mean, std)``, trainable."""

    state_type = ALIFState
    multistep_backends = {"torch": alif_multistep}

    def __init__(self, in_features: int, hidden: int, *, tau_mem=(20.0, 5.0), tau_adp=(200.0, 50.0),
                 theta0: float = 0.01, beta: float = 1.8, bias: bool = False, spike_fn=None, step_mode: str = "s",
                 backend: str = "torch"):
        super().__init__(in_features, hidden, bias, step_mode, backend)
        owner = type(self).__name__
        self.tau_mem = _normal_init(owner, "tau_mem", hidden, tau_mem)
        self.tau_adp = _normal_init(owner, "tau_adp", hidden, tau_adp)
        self.theta0, self.beta = _check_number("theta0", theta0, owner), _check_number("beta", beta, owner)
        self.spike_fn = spike_fn if spike_fn is not None else DoubleGaussian()

    def neuron_parameters(self) -> ALIFParameters:
        return ALIFParameters(self.tau_mem, self.tau_adp, self.theta0, self.beta, self.spike_fn)


class LICell(MemoryModule):
    """Leaky-integrator readout ``u = alpha u + (1 - alpha) W z``, ``alpha = exp(-1/|tau_out|)``;
    ``tau_out ~ N(mean, std)`` per output neuron (trainable); ``W`` Xavier uniform; no bias by default.
    ``bias_init``: ``"uniform"`` (PyTorch's ``nn.Linear`` default, U(+-1/sqrt(in_features))) or ``"zero"`` (the
    BRF source's ``LICell``, which sets its bias to 0)."""

    #: multi-step implementations by backend name (``reprolib.kernels`` registers "cupy", "auto" and "cpp")
    multistep_backends = {"torch": li_multistep}

    def __init__(self, in_features: int, out_features: int, *, tau_out=(20.0, 5.0), bias: bool = False,
                 bias_init: str = "uniform", step_mode: str = "s", backend: str = "torch"):
        super().__init__(step_mode)
        _check_size("LICell", in_features=in_features, out_features=out_features)
        if bias_init not in ("uniform", "zero"):
            raise ValueError(f"LICell: bias_init={bias_init!r}; expected 'uniform' or 'zero'")
        self.backend = select_backend("LICell", backend, self.multistep_backends)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)
        if bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound) if bias_init == "uniform"
                                     else torch.zeros(out_features))
        else:
            self.register_parameter("bias", None)
        self.tau_out = _normal_init("LICell", "tau_out", out_features, tau_out)
        self.register_memory("u", None)

    def neuron_parameters(self) -> LIParameters:
        return LIParameters(self.tau_out)

    def multi_step_forward(self, z_seq: Tensor) -> Tensor:
        if not isinstance(z_seq, Tensor) or z_seq.dim() != 3 or z_seq.shape[-1] != self.in_features:
            shape = tuple(z_seq.shape) if isinstance(z_seq, Tensor) else type(z_seq).__name__
            raise ValueError(f"LICell: input {shape} is invalid; expected [T, B, {self.in_features}]")
        state = LIState(self.u if self.u is not None else z_seq.new_zeros(z_seq.shape[1], self.out_features))
        u_seq, (self.u,) = self.multistep_backends[self.backend](z_seq, self.weight, state, self.neuron_parameters(),
                                                                 self.bias)
        return u_seq

    def single_step_forward(self, z: Tensor) -> Tensor:
        return self.multi_step_forward(z.unsqueeze(0))[0]
