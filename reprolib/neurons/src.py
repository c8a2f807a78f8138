"""Spiking Recurrent Cell (SRC) of De Geeter, Ernst and Drion (arXiv 2306.03623).

The SRC is a GRU-like recurrent cell whose fixed "gates" make it generate spikes. One neuron has three
states: the synaptic integrator ``i``, the fast potential ``h`` and the slow potential ``h_s``. One step
(paper Eq. 5a-5f, with ``z = 0`` substituted in 5d)::

    i[t]   = alpha * i[t-1] + I[t]                      I[t] = W_s s_in[t]  (computed by the layer)
    x[t]   = rho * tanh(i[t] / rho)                     input squashed into (-rho, rho)
    z_s[t] = zs_hyp + (zs_dep - zs_hyp) * H(h' - 0.5)   h' = h[t-1] ("previous", default) or h[t] ("current")
    h[t]   = tanh(x[t] + r * h[t-1] + r_s * h_s[t-1] + b_h)
    h_s[t] = z_s[t] * h_s[t-1] + (1 - z_s[t]) * h[t-1]
    s[t]   = ReLU(h[t])

Defaults are the paper's Table 1: ``alpha = 0.9`` (0.99 for latency coding), ``rho = 3``, ``r = 2``,
``r_s = -7``, ``zs_hyp = 0.9``, ``zs_dep = 0``, ``b_h`` initialised at -6 and kept ``<= -4``.

Choices the paper leaves open, each a named option with the default the reference argues for:

* ``zs_from="previous"``: the paper prints ``H(h[t] - 0.5)`` but computes 5c before 5d, and 5e uses
  ``h[t-1]``; so z_s is taken from ``h[t-1]``. ``"current"`` evaluates it on the new ``h[t]``.
* ``relu_bypass=True``: the ReLU is applied in the forward pass but treated as the identity in the backward
  pass (Sec. 4.4; without it deep SRC networks do not learn, Fig. 2).
* ``detach_recurrence=True``: gradients do not flow through the recurrences of ``h`` and ``h_s``
  (Sec. 4.4); only the integrator ``i`` carries gradient back in time.
* ``noise_sigma``: Sec. 4.5.3 samples ``r ~ N(r, sigma)`` and ``r_s ~ N(r_s, sigma)``; the granularity is
  unstated, we draw fresh independent values per sample, neuron and time step.

The time loop lives in one pure function, :func:`src_multistep`, so that a fused kernel can replace it.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from reprolib.checks import is_finite_real
from reprolib.neurons.base import MemoryModule, _check_number, check_sequence, select_backend

__all__ = [
    "SRCParameters", "SRCState", "src_initial_state", "src_spike_generation_step", "src_step",
    "src_multistep", "simulate_src_neuron", "SpikingRecurrentCell", "ZS_FROM_CHOICES", "BIAS_BOUND_CHOICES",
]

ZS_FROM_CHOICES = ("previous", "current")
BIAS_BOUND_CHOICES = ("project", "clamp", "none")


class SRCParameters(NamedTuple):
    """Fixed SRC constants (paper Table 1) and gradient/noise options.

    ``b_h`` is a tensor (one bias per neuron) or a float; it is the only state-independent quantity
    that is learnable (together with the weights, applied outside the cell).
    """

    b_h: Tensor | float = -6.0
    alpha: float = 0.9
    rho: float = 3.0
    r: float = 2.0
    r_s: float = -7.0
    zs_hyp: float = 0.9
    zs_dep: float = 0.0
    zs_threshold: float = 0.5
    zs_from: str = "previous"
    relu_bypass: bool = True
    detach_recurrence: bool = True
    noise_sigma: float = 0.0


class SRCState(NamedTuple):
    """SRC state: synaptic integrator ``i``, fast potential ``h``, slow potential ``h_s``."""

    i: Tensor
    h: Tensor
    hs: Tensor


def _check_params(params: SRCParameters) -> None:
    for name in ("b_h", "alpha", "rho", "r", "r_s", "zs_hyp", "zs_dep", "zs_threshold", "noise_sigma"):
        value = getattr(params, name)
        if isinstance(value, Tensor):  # per-neuron constants (b_h, or a fork's): their values are not read here
            continue
        if not is_finite_real(value):
            raise ValueError(f"{name}={value!r}; expected a finite number or a tensor")
    if params.zs_from not in ZS_FROM_CHOICES:
        raise ValueError(f"zs_from={params.zs_from!r}; expected one of {ZS_FROM_CHOICES}")
    if not params.rho > 0:
        raise ValueError(f"rho={params.rho!r}; expected a positive number")
    if not 0.0 <= params.alpha <= 1.0:
        raise ValueError(f"alpha={params.alpha!r}; expected a leak factor in [0, 1]")
    if params.noise_sigma < 0:
        raise ValueError(f"noise_sigma={params.noise_sigma!r}; expected >= 0")


def src_initial_state(shape, device=None, dtype=None) -> SRCState:
    """All-zero state of the given ``[B, N]`` shape (the paper starts from rest at 0)."""
    zeros = torch.zeros(shape, device=device, dtype=dtype)
    return SRCState(i=zeros, h=zeros.clone(), hs=zeros.clone())


def draw_feedback_noise(steps: int, shape, generator: Optional[torch.Generator] = None, device=None,
                        dtype=None) -> Tensor:
    """Standard-normal draws ``[steps, 2, *shape]`` for the noisy gains of ``steps`` steps (index 0: ``r``,
    1: ``r_s``). Drawn in float32 whatever ``dtype`` (then cast), so that a float64 run and the fused kernel see
    the same numbers as a float32 run from the same generator state."""
    noise = torch.randn((steps, 2) + tuple(shape), generator=generator, device=device, dtype=torch.float32)
    return noise if dtype in (None, torch.float32) else noise.to(dtype)


def _feedback_gains(h: Tensor, params: SRCParameters, generator: Optional[torch.Generator],
                    noise: Optional[Tensor] = None):
    """``(r, r_s)``: the fixed gains, or N(r, sigma), N(r_s, sigma) draws of the shape of ``h`` (``noise``: this
    step's ``[2, *shape]`` standard-normal draws, drawn here when not given)."""
    if params.noise_sigma == 0:
        return params.r, params.r_s
    if noise is None:
        noise = draw_feedback_noise(1, h.shape, generator, h.device, h.dtype)[0]
    return params.r + params.noise_sigma * noise[0], params.r_s + params.noise_sigma * noise[1]


def src_spike_generation_step(x: Tensor, h: Tensor, hs: Tensor, params: SRCParameters,
                              generator: Optional[torch.Generator] = None, noise: Optional[Tensor] = None):
    """Spike-generation part (Eq. 3a-3c / 5c-5e) for an already squashed input ``x``.

    Returns ``(h_new, hs_new, zs, r, r_s)`` where ``r, r_s`` are the gains used this step (floats, or
    tensors when ``noise_sigma > 0``; ``noise``: optional pre-drawn ``[2, *shape]`` draws for them). Gradient
    handling (detach) is the caller's business.
    """
    r, r_s = _feedback_gains(h, params, generator, noise)
    h_new = torch.tanh(x + r * h + r_s * hs + params.b_h)
    # z_s is a step function of h: no gradient flows through it in any case.
    h_for_zs = h if params.zs_from == "previous" else h_new
    depolarised = (h_for_zs.detach() > params.zs_threshold).to(h.dtype)
    zs = params.zs_hyp + (params.zs_dep - params.zs_hyp) * depolarised
    hs_new = zs * hs + (1.0 - zs) * h
    return h_new, hs_new, zs, r, r_s


def _relu_output(h: Tensor, relu_bypass: bool) -> Tensor:
    """``ReLU(h)`` forward; with the bypass the backward pass is the identity (d s / d h = 1)."""
    if relu_bypass:
        return h + (torch.relu(h) - h).detach()
    return torch.relu(h)


def src_step(input_current: Tensor, state: SRCState, params: SRCParameters,
             generator: Optional[torch.Generator] = None, noise: Optional[Tensor] = None) -> tuple[Tensor, SRCState]:
    """One SRC step for the weighted input ``I[t] = W_s s_in[t]`` (shape ``[B, N]``): ``(s[t], state)``.
    ``noise``: this step's pre-drawn gain noise (see :func:`draw_feedback_noise`), else drawn from ``generator``."""
    i = params.alpha * state.i + input_current
    x = params.rho * torch.tanh(i / params.rho)
    h_prev, hs_prev = state.h, state.hs
    if params.detach_recurrence:
        h_prev, hs_prev = h_prev.detach(), hs_prev.detach()
    h, hs, _, _, _ = src_spike_generation_step(x, h_prev, hs_prev, params, generator, noise)
    return _relu_output(h, params.relu_bypass), SRCState(i=i, h=h, hs=hs)


def src_multistep(input_current_seq: Tensor, state: SRCState, params: SRCParameters,
                  generator: Optional[torch.Generator] = None) -> tuple[Tensor, SRCState]:
    """The SRC time loop over ``input_current_seq [T, B, N]``: ``(s_seq [T, B, N], final state)``.

    This is the function a fused (CuPy) kernel replaces; it has no other side effect. With ``noise_sigma > 0``
    the gain noise of all steps is drawn first, in one :func:`draw_feedback_noise` call, as the kernel does.
    """
    if input_current_seq.dim() < 2:
        raise ValueError(f"input_current_seq of shape {tuple(input_current_seq.shape)}; expected [T, B, ...]")
    _check_params(params)
    noise = None
    if params.noise_sigma != 0:
        noise = draw_feedback_noise(input_current_seq.shape[0], input_current_seq.shape[1:], generator,
                                    input_current_seq.device, input_current_seq.dtype)
    outputs = []
    for t, input_current in enumerate(input_current_seq):
        s, state = src_step(input_current, state, params, generator, None if noise is None else noise[t])
        outputs.append(s)
    return torch.stack(outputs), state


#: multi-step implementations by backend name; ``reprolib.kernels`` registers "cupy" and "auto" here
MULTISTEP_BACKENDS = {"torch": src_multistep}


@torch.no_grad()
def simulate_src_neuron(x_seq, b_h=-6.0, *, r: float = 2.0, r_s: float = -7.0, zs_hyp: float = 0.9,
                        zs_dep: float = 0.0, zs_from: str = "previous", zs_threshold: float = 0.5,
                        noise_sigma: float = 0.0, generator: Optional[torch.Generator] = None,
                        h0: float = 0.0, hs0: float = 0.0) -> dict:
    """Simulate the spike-generation part only (no integrator) for the input ``x_seq``, for Figs. 1, 6, 8.

    ``x_seq``: ``[T]`` or ``[T, *shape]`` (each trailing element is an independent neuron); ``b_h`` a float
    or a tensor broadcastable to ``shape``. Returns a dict of ``[T, *shape]`` tensors:

    * ``x``, ``h``, ``hs``, ``zs`` (the z_s used to produce ``hs[t]``), ``s = ReLU(h)``;
    * ``positive_feedback = r * h[t]`` and ``negative_feedback = r_s * hs[t]`` (Fig. 8; with noise, the gains
      drawn at step t+1, i.e. the feedback terms that drive ``h[t+1]``; the mean gains on the last step).
    """
    x_seq = torch.as_tensor(x_seq, dtype=torch.get_default_dtype())
    check_sequence(x_seq, "simulate_src_neuron", layout="[T, ...]")
    params = SRCParameters(b_h=torch.as_tensor(b_h, dtype=x_seq.dtype), r=r, r_s=r_s, zs_hyp=zs_hyp,
                           zs_dep=zs_dep, zs_threshold=zs_threshold, zs_from=zs_from, noise_sigma=noise_sigma)
    _check_params(params)
    shape = torch.broadcast_shapes(x_seq.shape[1:], params.b_h.shape)
    h = torch.full(shape, float(h0), dtype=x_seq.dtype)
    hs = torch.full(shape, float(hs0), dtype=x_seq.dtype)
    trace = {k: [] for k in ("h", "hs", "zs", "r", "r_s")}
    for x in x_seq:
        h_new, hs, zs, gain_r, gain_rs = src_spike_generation_step(x, h, hs, params, generator)
        h = h_new
        trace["h"].append(h)
        trace["hs"].append(hs)
        trace["zs"].append(zs)
        trace["r"].append(torch.as_tensor(gain_r, dtype=h.dtype).expand(shape))
        trace["r_s"].append(torch.as_tensor(gain_rs, dtype=h.dtype).expand(shape))
    out = {k: torch.stack(v) for k, v in trace.items()}
    # gain that multiplies h[t] is the one drawn at step t+1; the last step uses the mean gain
    next_r = torch.cat([out["r"][1:], torch.full_like(out["r"][:1], r)])
    next_rs = torch.cat([out["r_s"][1:], torch.full_like(out["r_s"][:1], r_s)])
    out["positive_feedback"] = next_r * out["h"]
    out["negative_feedback"] = next_rs * out["hs"]
    out["s"] = torch.relu(out["h"])
    out["x"] = torch.stack([x.expand(shape) for x in x_seq])
    del out["r"], out["r_s"]
    return out


class SpikingRecurrentCell(MemoryModule):
    """A layer of SRC neurons: ``I = W_s s_in`` (Xavier uniform, no bias), then the SRC dynamics.

    ``step_mode="m"``: ``forward(s_in [T, B, in]) -> s_out [T, B, out]`` through :func:`src_multistep`;
    ``step_mode="s"``: ``forward(s_in [B, in]) -> s_out [B, out]`` through :func:`src_step`. Both continue
    the stored state (``i``, ``h``, ``hs``, zeros at first) until :meth:`reset`, as SpikingJelly modules do.

    Learnable: ``weight`` and the per-neuron bias ``b_h`` (init ``bias_init``). The bound
    ``b_h <= bias_max`` is enforced by ``bias_bound``: ``"project"`` (default) sets
    ``b_h <- min(b_h, bias_max)`` in :meth:`after_optimizer_step` (the training loop calls it after each
    optimiser step; a projected-gradient method); ``"clamp"`` uses ``min(b_h, bias_max)`` in the forward
    pass (the parameter may drift above the bound, its gradient is then zero); ``"none"`` leaves it free.

    ``sparse_input=True`` computes ``W_s s_in`` with :func:`reprolib.kernels.sparse.event_linear` (a sparse
    product for float32 CPU inputs with few non-zeros; equal to the dense one to float32 rounding).
    """

    def __init__(self, in_features: int, out_features: int, *, alpha: float = 0.9, rho: float = 3.0,
                 r: float = 2.0, r_s: float = -7.0, zs_hyp: float = 0.9, zs_dep: float = 0.0,
                 zs_from: str = "previous", bias_init: float = -6.0, bias_max: float = -4.0,
                 bias_bound: str = "project", relu_bypass: bool = True, detach_recurrence: bool = True,
                 noise_sigma: float = 0.0, step_mode: str = "s", backend: str = "torch",
                 sparse_input: bool = False):
        super().__init__(step_mode)
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"SpikingRecurrentCell: {name}={value!r}; expected a positive int")
        if bias_bound not in BIAS_BOUND_CHOICES:
            raise ValueError(f"SpikingRecurrentCell: bias_bound={bias_bound!r}; expected one of {BIAS_BOUND_CHOICES}")
        for name, value in (("bias_init", bias_init), ("bias_max", bias_max)):
            _check_number(name, value, "SpikingRecurrentCell")
        if bias_bound != "none" and bias_init > bias_max:
            raise ValueError(f"SpikingRecurrentCell: bias_init={bias_init!r} is above bias_max={bias_max!r}; "
                             "expected bias_init <= bias_max")
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.b_h = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.bias_max, self.bias_bound = float(bias_max), bias_bound
        self.constants = SRCParameters(alpha=alpha, rho=rho, r=r, r_s=r_s, zs_hyp=zs_hyp, zs_dep=zs_dep,
                                       zs_from=zs_from, relu_bypass=relu_bypass,
                                       detach_recurrence=detach_recurrence, noise_sigma=noise_sigma)
        _check_params(self.constants)
        self.generator: Optional[torch.Generator] = None  # set it to make the noise reproducible
        self.backend = select_backend("SpikingRecurrentCell", backend, MULTISTEP_BACKENDS)
        # the input matmul as a sparse product on CPU inputs with few non-zeros (reprolib.kernels.sparse)
        self.sparse_input = bool(sparse_input)
        for name in SRCState._fields:
            self.register_memory(name, None)

    def neuron_parameters(self) -> SRCParameters:
        """The :class:`SRCParameters` of the next forward (bias bound applied for ``"clamp"``)."""
        b_h = torch.clamp(self.b_h, max=self.bias_max) if self.bias_bound == "clamp" else self.b_h
        return self.constants._replace(b_h=b_h)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Project ``b_h`` onto ``b_h <= bias_max`` (only for ``bias_bound="project"``)."""
        if self.bias_bound == "project":
            self.b_h.clamp_(max=self.bias_max)

    def _current(self, s_in: Tensor, dims: int, shape_text: str) -> Tensor:
        if not isinstance(s_in, Tensor) or s_in.dim() != dims or s_in.shape[-1] != self.in_features:
            shape = tuple(s_in.shape) if isinstance(s_in, Tensor) else type(s_in).__name__
            raise ValueError(f"SpikingRecurrentCell: input {shape} is invalid; expected {shape_text} "
                             f"with in={self.in_features}")
        if self.sparse_input:
            from reprolib.kernels.sparse import event_linear  # noqa: PLC0415

            return event_linear(s_in, self.weight)
        return s_in @ self.weight.t()

    def _state(self, like: Tensor) -> SRCState:
        if self.i is None:
            return src_initial_state(like.shape, like.device, like.dtype)
        if self.i.shape != like.shape:
            raise ValueError(f"SpikingRecurrentCell: input batch shape {tuple(like.shape)} does not match the "
                             f"state {tuple(self.i.shape)}; call reset() before a new batch")
        return SRCState(self.i, self.h, self.hs)

    def single_step_forward(self, s_in: Tensor) -> Tensor:
        current = self._current(s_in, 2, "[B, in]")
        s_out, state = src_step(current, self._state(current), self.neuron_parameters(), self.generator)
        self.i, self.h, self.hs = state
        return s_out

    def multi_step_forward(self, s_in_seq: Tensor) -> Tensor:
        current = self._current(s_in_seq, 3, "[T, B, in]")
        multistep = MULTISTEP_BACKENDS[self.backend]
        s_out, state = multistep(current, self._state(current[0]), self.neuron_parameters(), self.generator)
        self.i, self.h, self.hs = state
        return s_out

    def extra_repr(self) -> str:
        c = self.constants
        return (f"{self.in_features}, {self.out_features}, alpha={c.alpha}, zs_from={c.zs_from!r}, "
                f"relu_bypass={c.relu_bypass}, detach_recurrence={c.detach_recurrence}, "
                f"noise_sigma={c.noise_sigma}, bias_bound={self.bias_bound!r}, bias_max={self.bias_max}, "
                f"step_mode={self.step_mode!r}")
