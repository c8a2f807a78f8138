"""IF / LIF neurons: trajectories computed by hand from the SpikingJelly equations, step modes, gradients."""

from __future__ import annotations

import math
import re

import pytest
import torch

from reprolib import neurons
from reprolib.neurons import (
    IFNode,
    IFParameters,
    LIFNode,
    LIFParameters,
    MembraneState,
    MemoryModule,
    MultiStepIFNode,
    MultiStepLIFNode,
    if_multistep,
    if_step,
    lif_multistep,
    lif_step,
)
from reprolib.surrogate import ATan


def _run_single(node, x_seq):
    """Drive ``node`` one step at a time; return (spikes [T, ...], membrane after each step [T, ...])."""
    spikes, vs = [], []
    for x in x_seq:
        spikes.append(node(x))
        vs.append(node.v.clone())
    return torch.stack(spikes), torch.stack(vs)


def _seq(values):
    return torch.tensor(values, dtype=torch.float64).unsqueeze(1)  # [T, B=1]


# ----------------------------------------------------------------------------- hand-computed trajectories

# Each case: node arguments, input sequence, expected spikes, expected V[t] after each step.
# The arithmetic is written out in the comments (tau = 2, V_th = 1).
LIF_CASES = {
    # H = V + (X - (V - 0))/2; hard reset to 0
    # t0: 0 + 1.5/2 = 0.75 | t1: 0.75 + (1.5-0.75)/2 = 1.125 -> spike, V = 0
    # t2: 0 + 1.5/2 = 0.75 | t3: 0.75 + (0 - 0.75)/2 = 0.375
    "hard_decay_input": (dict(tau=2.0), [1.5, 1.5, 1.5, 0.0], [0, 1, 0, 0], [0.75, 0.0, 0.75, 0.375]),
    # V_reset = -0.5 (V starts there): H = V + (X - (V + 0.5))/2
    # t0: -0.5 + 2.5/2 = 0.75 | t1: 0.75 + (2.5 - 1.25)/2 = 1.375 -> spike, V = -0.5 | t2: -0.5 + 1/2 = 0
    "hard_nonzero_reset": (dict(tau=2.0, v_reset=-0.5), [2.5, 2.5, 1.0], [0, 1, 0], [0.75, -0.5, 0.0]),
    # soft reset: H = V + (X - V)/2; V = H - S
    # t0: 0.75 | t1: 1.125 -> spike, V = 0.125 | t2: 0.125 + (1.5 - 0.125)/2 = 0.8125 | t3: 0.40625
    "soft_decay_input": (dict(tau=2.0, v_reset=None), [1.5, 1.5, 1.5, 0.0], [0, 1, 0, 0], [0.75, 0.125, 0.8125, 0.40625]),
    # decay_input=False: H = V - V/2 + X; hard reset
    # t0: 0.6 | t1: 0.3 + 0.6 = 0.9 | t2: 0.45 + 0.6 = 1.05 -> spike, V = 0 | t3: 0 + 0.25
    "hard_no_decay_input": (dict(tau=2.0, decay_input=False), [0.6, 0.6, 0.6, 0.25], [0, 0, 1, 0], [0.6, 0.9, 0.0, 0.25]),
    # decay_input=False, soft reset: ... t2: 1.05 -> spike, V = 0.05 | t3: 0.025 + 0.25 = 0.275
    "soft_no_decay_input": (
        dict(tau=2.0, decay_input=False, v_reset=None), [0.6, 0.6, 0.6, 0.25], [0, 0, 1, 0], [0.6, 0.9, 0.05, 0.275]
    ),
    # decay_input=False with V_reset = -0.5: H = V - (V + 0.5)/2 + X
    # t0: -0.5 - 0 + 1.2 = 0.7 | t1: 0.7 - 0.6 + 1.2 = 1.3 -> spike, V = -0.5 | t2: -0.5 - 0 + 0.3 = -0.2
    "hard_nonzero_reset_no_decay_input": (
        dict(tau=2.0, decay_input=False, v_reset=-0.5), [1.2, 1.2, 0.3], [0, 1, 0], [0.7, -0.5, -0.2]
    ),
}


@pytest.mark.parametrize("case", sorted(LIF_CASES))
def test_lif_trajectory_matches_hand_computation(case):
    kwargs, x, spikes, vs = LIF_CASES[case]
    x_seq = _seq(x)
    s_single, v_single = _run_single(LIFNode(**kwargs), x_seq)
    assert s_single.squeeze(1).tolist() == spikes
    assert v_single.squeeze(1).tolist() == pytest.approx(vs, abs=1e-12)
    node = LIFNode(step_mode="m", **kwargs)
    assert node(x_seq).squeeze(1).tolist() == spikes
    assert node.v.item() == pytest.approx(vs[-1], abs=1e-12)


def test_lif_with_tutorial_tau_100_integrates_slowly():
    # tau = 100, X = 1 constant: V[t] = 1 - 0.99^(t+1) never reaches 1 -> no spike (reference 4: a neuron
    # needs sustained input above threshold); with X = 2 it crosses at 1 - ... : V = 2 (1 - 0.99^(t+1)) >= 1
    # first when 0.99^(t+1) <= 0.5, t + 1 = ceil(ln 0.5 / ln 0.99) = 69
    node = MultiStepLIFNode(tau=100.0)
    out = node(torch.ones(100, 1, dtype=torch.float64))
    assert out.sum().item() == 0
    assert node.v.item() == pytest.approx(1 - 0.99**100, abs=1e-12)
    node.reset()
    out = node(torch.full((80, 1), 2.0, dtype=torch.float64))
    first = int(out.squeeze(1).nonzero()[0])
    assert first + 1 == math.ceil(math.log(0.5) / math.log(0.99)) == 69


def test_if_trajectory_hard_and_soft_reset():
    x_seq = _seq([0.5, 0.6, 0.2, 1.0])
    # hard: 0.5 | 1.1 -> spike, 0 | 0.2 | 1.2 -> spike, 0
    s, v = _run_single(IFNode(), x_seq)
    assert s.squeeze(1).tolist() == [0, 1, 0, 1]
    assert v.squeeze(1).tolist() == pytest.approx([0.5, 0.0, 0.2, 0.0])
    # soft: 0.5 | 1.1 -> spike, 0.1 | 0.3 | 1.3 -> spike, 0.3
    s, v = _run_single(IFNode(v_reset=None), x_seq)
    assert s.squeeze(1).tolist() == [0, 1, 0, 1]
    assert v.squeeze(1).tolist() == pytest.approx([0.5, 0.1, 0.3, 0.3])


def test_membrane_exactly_at_threshold_fires():
    node = IFNode()
    assert node(torch.tensor([1.0])).item() == 1.0  # Theta(0) = 1 in SpikingJelly
    strict = IFNode(surrogate_function=ATan(strict=True))
    assert strict(torch.tensor([1.0])).item() == 0.0


def test_pure_step_functions_match_the_modules():
    x = torch.tensor([0.4, 1.7, -0.3], dtype=torch.float64)
    v = torch.tensor([0.5, 0.2, 0.1], dtype=torch.float64)
    spike, state = lif_step(x, MembraneState(v), LIFParameters(tau=4.0, v_reset=None))
    h = v + (x - v) / 4.0
    expected_spike = (h >= 1.0).double()
    torch.testing.assert_close(spike, expected_spike)
    torch.testing.assert_close(state.v, h - expected_spike)
    spike, state = if_step(x, MembraneState(v))  # default IFParameters: hard reset to 0
    assert spike.tolist() == [0.0, 1.0, 0.0]
    assert state.v.tolist() == pytest.approx([0.9, 0.0, -0.2])
    spikes, v_last = if_multistep(x.repeat(3, 1), torch.zeros(3, dtype=torch.float64), IFParameters(v_reset=None))
    # soft IF on constant x: channel 0: 0.4, 0.8, 1.2 -> spikes [0, 0, 1], V = 0.2
    assert spikes[:, 0].tolist() == [0.0, 0.0, 1.0] and v_last[0].item() == pytest.approx(0.2)


# ----------------------------------------------------------------------------- state handling

def test_state_is_lazy_readable_and_reset():
    node = LIFNode(tau=2.0, v_reset=-0.5)
    assert node.v is None
    node(torch.zeros(2, 3, dtype=torch.float64))
    # initialised to V_reset = -0.5: with X = 0 the membrane stays at rest
    assert node.v.shape == (2, 3) and torch.all(node.v == -0.5)
    node.reset()
    assert node.v is None
    soft = IFNode(v_reset=None)
    soft(torch.zeros(4))
    assert torch.all(soft.v == 0.0)
    assert isinstance(node, MemoryModule) and node.memories().keys() == {"v"}


def test_state_shape_change_without_reset_raises():
    node = IFNode()
    node(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"input shape \(5, 3\) does not match the state shape \(2, 3\)"):
        node(torch.zeros(5, 3))


def test_detach_memory_cuts_the_graph_but_keeps_the_value():
    node = IFNode()
    x = torch.tensor([0.4], requires_grad=True)
    node(x)
    node.detach_memory()
    assert not node.v.requires_grad and node.v.item() == pytest.approx(0.4)


# ----------------------------------------------------------------------------- single step == multi step

@pytest.mark.parametrize(
    "make",
    [
        lambda mode: IFNode(step_mode=mode),
        lambda mode: IFNode(v_reset=None, detach_reset=True, surrogate_function=ATan(), step_mode=mode),
        lambda mode: LIFNode(tau=3.0, step_mode=mode),
        lambda mode: LIFNode(tau=1.5, decay_input=False, v_reset=None, step_mode=mode),
    ],
)
def test_single_step_equals_multi_step_values_and_gradients(make):
    torch.manual_seed(0)
    x_seq = (torch.rand(12, 4, 5, dtype=torch.float64) * 1.6).requires_grad_(True)
    weights = torch.rand(12, 4, 5, dtype=torch.float64)

    single = make("s")
    s_single, _ = _run_single(single, x_seq)
    (g_single,) = torch.autograd.grad((s_single * weights).sum() + single.v.sum(), x_seq)

    multi = make("m")
    s_multi = multi(x_seq)
    (g_multi,) = torch.autograd.grad((s_multi * weights).sum() + multi.v.sum(), x_seq)

    assert s_single.sum() > 0  # the test exercises firing and reset
    torch.testing.assert_close(s_multi, s_single)
    torch.testing.assert_close(multi.v, single.v)
    torch.testing.assert_close(g_multi, g_single)


def test_multistep_aliases_and_pure_multistep_functions():
    assert MultiStepIFNode().step_mode == "m" and MultiStepLIFNode().step_mode == "m"
    assert MultiStepLIFNode().tau == 100.0  # clock-driven tutorial default
    x_seq = torch.rand(6, 3, dtype=torch.float64) * 2
    node = MultiStepLIFNode(tau=2.0)
    spikes, v_last = lif_multistep(x_seq, torch.zeros(3, dtype=torch.float64), LIFParameters(tau=2.0))
    torch.testing.assert_close(node(x_seq), spikes)
    torch.testing.assert_close(node.v, v_last)
    # state carries over between multi-step calls: two halves == one sequence
    node.reset()
    halves = torch.cat([node(x_seq[:3]), node(x_seq[3:])])
    torch.testing.assert_close(halves, spikes)


def test_backend_argument():
    # constructing a node with a backend other than "torch" is what loads the optional kernels
    node = LIFNode(backend="auto")
    assert node.backend == ("auto" if "auto" in LIFNode.multistep_backends else "torch")
    assert IFNode(backend="torch").backend == "torch"
    with pytest.raises(ValueError, match=r"backend='no-such-backend' is invalid; expected 'auto' or one of \[.*'torch'"):
        MultiStepIFNode(backend="no-such-backend")


def test_a_registered_backend_serves_the_multi_step_path(monkeypatch):
    calls = []

    def fake_kernel(x_seq, v0, p):
        calls.append(p)
        return torch.zeros_like(x_seq), v0 + 7.0

    monkeypatch.setitem(LIFNode.multistep_backends, "fake", fake_kernel)
    node = MultiStepLIFNode(tau=2.0, backend="fake")
    assert node(torch.ones(3, 2)).sum() == 0 and torch.all(node.v == 7.0)
    assert calls == [LIFParameters(tau=2.0, surrogate_function=node.surrogate_function)]
    # the single-step path stays PyTorch
    node.step_mode = "s"
    node.reset()
    assert node(torch.full((2,), 2.0)).tolist() == [1.0, 1.0]
    # "auto" resolves to a registered "auto" implementation when there is one
    monkeypatch.setitem(LIFNode.multistep_backends, "auto", fake_kernel)
    assert LIFNode(backend="auto").backend == "auto"


# ----------------------------------------------------------------------------- gradients of the reset

def _g(x):  # ATan(alpha=2) surrogate derivative
    return 1.0 / (1.0 + (math.pi * x) ** 2)


@pytest.mark.parametrize("detach_reset", [False, True])
def test_hard_reset_gradient_by_hand(detach_reset):
    # IF, V_th = 1, V_reset = 0, x = [1.5, 0.2], loss L = S0 + S1.
    # t0: H0 = 1.5 -> S0 = 1, V0 = H0 (1 - S0) + 0 S0 = 0.   t1: H1 = V0 + 0.2 = 0.2 -> S1 = 0.
    # dL/dx1 = g'(H1 - 1) = g'(-0.8)
    # dL/dx0 = g'(0.5) + g'(-0.8) dV0/dH0, dV0/dH0 = (1 - S0) + (V_reset - H0) g'(0.5) = -1.5 g'(0.5)
    #          (detached: dV0/dH0 = 1 - S0 = 0)
    x = torch.tensor([[1.5], [0.2]], dtype=torch.float64, requires_grad=True)
    node = IFNode(surrogate_function=ATan(), detach_reset=detach_reset, step_mode="m")
    out = node(x)
    assert out.squeeze(1).tolist() == [1.0, 0.0]
    out.sum().backward()
    dv0_dh0 = 0.0 if detach_reset else -1.5 * _g(0.5)
    expected = [_g(0.5) + _g(-0.8) * dv0_dh0, _g(-0.8)]
    assert x.grad.squeeze(1).tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("detach_reset", [False, True])
def test_soft_reset_gradient_by_hand(detach_reset):
    # IF soft reset, x = [1.5, 0.2]: H0 = 1.5, S0 = 1, V0 = H0 - S0 = 0.5; H1 = 0.7, S1 = 0.
    # dV0/dH0 = 1 - V_th g'(0.5)  (detached: 1)
    x = torch.tensor([[1.5], [0.2]], dtype=torch.float64, requires_grad=True)
    node = IFNode(v_reset=None, surrogate_function=ATan(), detach_reset=detach_reset, step_mode="m")
    node(x).sum().backward()
    dv0_dh0 = 1.0 if detach_reset else 1.0 - _g(0.5)
    expected = [_g(0.5) + _g(-0.3) * dv0_dh0, _g(-0.3)]
    assert x.grad.squeeze(1).tolist() == pytest.approx(expected, rel=1e-12)


def test_lif_hard_reset_gradient_by_hand():
    # LIF tau = 2 (decay_input), Sigmoid(alpha=1): x = [2.5, 0.4]; H0 = 1.25 -> S0 = 1, V0 = 0;
    # H1 = V0 + (0.4 - V0)/2 = 0.2 -> S1 = 0.  dH1/dV0 = 1 - 1/2, dH0/dx0 = dH1/dx1 = 1/2.
    # dL/dx0 = g'(0.25)/2 + g'(-0.8) (1/2) (-1.25 g'(0.25)) (1/2), g' = s (1 - s)
    def g(v):
        s = 1.0 / (1.0 + math.exp(-v))
        return s * (1.0 - s)

    x = torch.tensor([[2.5], [0.4]], dtype=torch.float64, requires_grad=True)
    LIFNode(tau=2.0, step_mode="m")(x).sum().backward()
    expected = [g(0.25) / 2 + g(-0.8) * 0.5 * (-1.25 * g(0.25)) * 0.5, g(-0.8) / 2]
    assert x.grad.squeeze(1).tolist() == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- repr and errors

def test_repr_shows_the_tutorial_fields():
    assert repr(IFNode(v_reset=None)) == (
        "IFNode(\n  v_threshold=1.0, v_reset=None, detach_reset=False\n"
        "  (surrogate_function): Sigmoid(alpha=1.0, spiking=True)\n)"
    )
    text = repr(MultiStepLIFNode(tau=2.0, surrogate_function="atan"))
    assert "step_mode='m'" in text and "tau=2.0" in text and "ATan(alpha=2.0, spiking=True)" in text


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: LIFNode(tau=1.0), r"tau=1.0 is invalid; expected a finite number > 1"),
        (lambda: LIFNode(tau=0.5), r"tau=0.5 is invalid"),
        (lambda: LIFNode(tau=float("inf")), r"tau=inf is invalid"),
        (lambda: LIFNode(decay_input="yes"), r"decay_input='yes' is invalid"),
        (lambda: IFNode(step_mode="multi"), r"step_mode='multi' is invalid; expected 's'"),
        (lambda: IFNode(v_threshold="1"), r"v_threshold='1' is invalid; expected a finite number"),
        (lambda: IFNode(v_reset=float("nan")), r"v_reset=nan is invalid"),
        (lambda: IFNode(detach_reset=1), r"detach_reset=1 is invalid; expected True or False"),
        (lambda: IFNode(surrogate_function="erf"), r"unknown surrogate 'erf'"),
        (lambda: IFNode(surrogate_function=3), r"surrogate_function=3 is invalid"),
    ],
)
def test_bad_arguments_raise_value_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match=r"input shape \(0, 3\) is invalid; expected a time-major sequence"):
        MultiStepIFNode()(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="input of type float is invalid"):
        IFNode()(1.5)
    node = IFNode()
    with pytest.raises(ValueError, match="step_mode='x'"):
        node.step_mode = "x"


def test_package_reexports():
    for name in ("IFNode", "LIFNode", "MultiStepIFNode", "MultiStepLIFNode", "if_step", "lif_step",
                 "lif_multistep", "MemoryModule", "MembraneState"):
        assert hasattr(neurons, name)


@pytest.mark.parametrize("build, message", [
    (lambda: neurons.Leaky(beta=float("nan")), "beta=nan"),
    (lambda: neurons.Leaky(threshold="abc"), "threshold='abc'"),
    (lambda: neurons.SpikingRecurrentCell(4, 3, r=float("nan")),
     "r=nan; expected a finite number"),
    (lambda: neurons.SpikingRecurrentCell(4, 3, alpha="a"),
     "alpha='a'; expected a finite number"),
    (lambda: neurons.SpikingRecurrentCell(
        4, 3, bias_init=float("nan")), "bias_init=nan"),
    (lambda: neurons.BRFCell(4, 3, omega_range=(float("inf"),) * 2),
     "omega_range=(inf, inf); expected (low, high), finite"),
    (lambda: neurons.BRFCell(4, 3, dt="a"), "dt='a'"),
    (lambda: neurons.BRFCell(4, 3, gamma=float("nan")), "gamma=nan"),
    (lambda: neurons.ALIFCell(4, 3, tau_mem=(float("nan"), 1.0)),
     "a finite mean > 0 and a finite std >= 0"),
    (lambda: neurons.LICell(4, 3, tau_out=(-20.0, 5.0)), "LICell: tau_out=(-20.0, 5.0); expected a time constant"),
    (lambda: neurons.ALIFCell(4, 3, tau_adp=(0.0, 1.0)), "tau_adp=(0.0, 1.0); expected a time constant"),
    # a string or a flag is no time constant, although float() takes both
    (lambda: neurons.ALIFCell(4, 3, tau_adp=("20", 5.0)), "tau_adp=('20', 5.0); expected a time constant"),
    (lambda: neurons.LICell(4, 3, tau_out=(20.0, True)), "tau_out=(20.0, True); expected a time constant"),
    (lambda: neurons.BRFCell(4, 3, omega_range=("5", 10.0)), "omega_range=('5', 10.0); expected (low, high)"),
    (lambda: neurons.BRFCell(4, 3, b_offset_range=(0.0, True)), "b_offset_range=(0.0, True); expected (low, high)"),
    (lambda: neurons.BPSANode(decay=1.5), "decay=1.5; expected a leak factor in [0, 1]"),
    (lambda: neurons.BPSANode(threshold=float("nan")), "threshold=nan"),
    (lambda: neurons.BPSANode(dt=0.0), "dt=0.0; expected a positive"),
])
def test_neuron_constants_must_be_finite_numbers(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_resonate_pairs_take_json_lists_of_ints_and_numpy_scalars():
    """Configs hand the pairs over as JSON lists, ints included; the number test must not refuse those."""
    import numpy as np

    brf = neurons.BRFCell(4, 3, omega_range=[5, 10], b_offset_range=[0, 1])
    assert 5.0 <= brf.omega.min().item() and brf.omega.max().item() <= 10.0
    alif = neurons.ALIFCell(4, 3, tau_mem=[20, 5], tau_adp=(np.float32(150.0), np.int64(10)))
    assert alif.tau_mem.shape == (3,) and alif.tau_adp.dtype == torch.float32


def test_simulate_integrate_fire_keeps_the_charged_and_the_reset_potential():
    import pytest
    import torch

    from reprolib.neurons import IFParameters, LIFNode, LIFParameters, simulate_integrate_fire

    x = torch.full((8,), 0.3)
    hard = simulate_integrate_fire(x, IFParameters())
    assert hard["s"].tolist() == [0, 0, 0, 1, 0, 0, 0, 1]  # 0.3, 0.6, 0.9, 1.2 -> fires, resets to 0, again
    assert torch.allclose(hard["h"][:4], torch.tensor([0.3, 0.6, 0.9, 1.2])) and hard["v"][3] == 0.0
    soft = simulate_integrate_fire(x, IFParameters(v_reset=None))
    assert torch.isclose(soft["v"][3], torch.tensor(0.2)) and soft["h"][3] > 1.0  # the overshoot is kept
    assert soft["s"].sum() >= hard["s"].sum()
    # the LIF trace fires exactly where the module does, and its H is the module's charge before the reset
    drive = torch.linspace(0.5, 2.5, 40).unsqueeze(1)  # [T, 1]: one neuron
    lif = simulate_integrate_fire(drive, LIFParameters(tau=5.0))
    node = LIFNode(tau=5.0, step_mode="m")
    with torch.no_grad():
        assert torch.equal(lif["s"], node(drive))
    assert lif["s"].sum() > 0 and torch.all(lif["h"][lif["s"] > 0] >= 1.0)
    # H is the charge before the reset and V what the reset makes of it, for every LIF form and reset
    for decay_input in (True, False):
        for v_reset in (0.0, -0.2, None):
            p = LIFParameters(tau=4.0, decay_input=decay_input, v_reset=v_reset)
            trace = simulate_integrate_fire(drive.double(), p)
            h, v, s = trace["h"], trace["v"], trace["s"]
            assert h.dtype == torch.float64 and torch.equal(s, (h >= 1.0).to(s.dtype)) and s.sum() > 0
            assert torch.equal(v, h - s * 1.0 if v_reset is None else h * (1 - s) + v_reset * s)
            v_before = torch.cat([torch.full_like(v[:1], 0.0 if v_reset is None else v_reset), v[:-1]])
            rest = 0.0 if v_reset is None else v_reset
            charged = (v_before + (drive.double() - (v_before - rest)) / 4.0 if decay_input
                       else v_before - (v_before - rest) / 4.0 + drive.double())
            assert torch.allclose(h, charged)
    with pytest.raises(ValueError, match="tau=0.5 is invalid"):
        simulate_integrate_fire(x, LIFParameters(tau=0.5))
    with pytest.raises(ValueError, match="IFParameters or LIFParameters, got dict"):
        simulate_integrate_fire(x, {"tau": 2.0})
    with pytest.raises(ValueError, match=r"simulate_integrate_fire: input shape \(0,\) is invalid; expected a time-major sequence \[T, \.\.\.\]"):
        simulate_integrate_fire(torch.zeros(0), IFParameters())
