"""Resonate-and-fire family (RF, BRF), ALIF, LI readout and the BRF paper's RSNN."""

import math

import pytest
import torch

from reprolib.metrics import count_parameters
from reprolib.models.resonate import RSNN_PRESETS, build_rsnn
from reprolib.neurons.resonate import (ALIFCell, ALIFParameters, ALIFState, BRFCell, LICell, RFParameters,
                                       RFState, alif_step, brf_step, divergence_boundary, rf_step,
                                       simulate_resonator)


def zeros_state(*shape):
    z = torch.zeros(*shape)
    return RFState(z, z, z, z)


def test_divergence_boundary_values_and_sustained_oscillation():
    assert divergence_boundary(torch.tensor(70.0)).item() == pytest.approx(-28.586, abs=1e-3)  # paper example
    assert torch.isnan(divergence_boundary(torch.tensor(101.0)))
    # at b = p(omega) the Euler step has modulus exactly 1: a kick neither grows nor decays
    omega = torch.tensor([10.0, 50.0, 90.0])
    b = divergence_boundary(omega)
    modulus = (1 + 0.01 * b) ** 2 + (0.01 * omega) ** 2
    torch.testing.assert_close(modulus, torch.ones(3))


def test_rf_resonates_at_its_eigenfrequency():
    omega = 10.0
    t = torch.arange(3000) * 0.01
    amplitude = {}
    for w_in in (2.5, 10.0, 40.0):
        x = torch.sin(w_in * t)
        amplitude[w_in] = simulate_resonator(x, omega, 1.0, balanced=False)["u"][1000:].abs().max().item()
    assert amplitude[10.0] > 3 * amplitude[40.0]
    assert amplitude[10.0] > 3 * amplitude[2.5]


def test_brf_stays_bounded_where_vanilla_rf_diverges():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5000, 4, generator=gen) * 20 - 10  # long, bounded random drive
    omega, b_offset = 90.0, 0.1  # (1 - dt b')^2 + (dt omega)^2 > 1: vanilla RF's Euler step explodes
    brf = simulate_resonator(x, omega, b_offset, balanced=True)
    rf = simulate_resonator(x, omega, b_offset, balanced=False)
    brf_mag = torch.sqrt(brf["u"] ** 2 + brf["v"] ** 2)
    assert torch.isfinite(brf_mag).all() and brf_mag.max() < 10.0
    rf_mag = torch.sqrt(rf["u"] ** 2 + rf["v"] ** 2)
    assert not (torch.isfinite(rf_mag).all() and rf_mag.max() < 1e6)


def test_simulate_resonator_refuses_an_empty_or_scalar_input():
    for bad in (torch.zeros(0), torch.tensor(1.0)):
        with pytest.raises(ValueError, match=r"simulate_resonator: input shape \((0,)?\) is invalid; "
                                             r"expected a time-major sequence \[T, \.\.\.\]"):
            simulate_resonator(bad, omega=10.0, b_offset=1.0)


def test_q_rises_by_one_after_a_spike_then_decays_by_gamma():
    x = torch.zeros(60)
    x[0] = 150.0  # u[0] = dt * 150 = 1.5 > theta = 1: one spike
    out = simulate_resonator(x, omega=10.0, b_offset=1.0, balanced=True)
    assert out["z"][0] == 1 and out["z"][1:].sum() == 0
    expected_q = 0.9 ** torch.arange(60, dtype=torch.float32)
    torch.testing.assert_close(out["q"], expected_q)
    # threshold of step t is 1 + q[t-1]
    torch.testing.assert_close(out["threshold"][1:], 1 + expected_q[:-1])


def test_brf_step_matches_code_equations():
    gen = torch.Generator().manual_seed(0)
    u, v, q = (torch.randn(2, 3, generator=gen) for _ in range(3))
    q = q.abs()
    x = torch.randn(2, 3, generator=gen) * 50
    omega = torch.tensor([-20.0, 30.0, 40.0])  # sign ignored (|omega|)
    b_off = torch.tensor([0.5, -0.2, 1.0])
    z, s = brf_step(x, RFState(torch.zeros(2, 3), u, v, q), RFParameters(omega, b_off))
    w = omega.abs()
    p = (-1 + torch.sqrt(1 - (0.01 * w) ** 2)) / 0.01
    b = p - b_off.abs() - q
    u_new = u + 0.01 * (b * u - w * v + x)
    v_new = v + 0.01 * (w * u + b * v)
    torch.testing.assert_close(s.u, u_new)
    torch.testing.assert_close(s.v, v_new)
    torch.testing.assert_close(z, (u_new - 1 - q > 0).float())
    torch.testing.assert_close(s.q, 0.9 * q + z)
    # vanilla RF: b = -|b'|, fixed threshold, q untouched
    z_rf, s_rf = rf_step(x, RFState(torch.zeros(2, 3), u, v, q), RFParameters(omega, b_off))
    torch.testing.assert_close(s_rf.u, u + 0.01 * (-b_off.abs() * u - w * v + x))
    torch.testing.assert_close(z_rf, (s_rf.u - 1 > 0).float())
    torch.testing.assert_close(s_rf.q, q)


def test_spike_is_strict_and_uses_double_gaussian_gradient():
    u = torch.tensor([[0.0]])
    # x chosen so that u[t] = 1 exactly: no spike with the strict Heaviside
    z, _ = rf_step(torch.tensor([[100.0]]), RFState(u, u, u, u), RFParameters(torch.tensor([1e-3]), torch.tensor([0.0])))
    assert z.item() == 0
    x = torch.tensor([[100.0]], requires_grad=True)
    z, _ = rf_step(x, RFState(u, u, u, u), RFParameters(torch.tensor([1e-3]), torch.tensor([0.0])))
    z.sum().backward()
    assert x.grad.item() == pytest.approx(0.01 * 0.4388, rel=1e-3)  # dt * DoubleGaussian'(0)


def test_alif_threshold_adapts_after_spikes():
    tau_m, tau_a = torch.tensor([20.0]), torch.tensor([200.0])
    params = ALIFParameters(tau_m, tau_a)
    state = ALIFState(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    spikes, thresholds = [], []
    for _ in range(400):
        z, state = alif_step(torch.full((1, 1), 0.5), state, params)
        spikes.append(z.item())
        thresholds.append(0.01 + 1.8 * state.a.item())
    times = [t for t, s in enumerate(spikes) if s]
    assert len(times) >= 4
    first = times[0]
    rho = math.exp(-1 / 200)
    # a rises by (1 - rho) the step after a spike, then decays by rho
    assert thresholds[first + 1] == pytest.approx(0.01 + 1.8 * (rho * ((thresholds[first] - 0.01) / 1.8) + (1 - rho)), rel=1e-5)
    assert thresholds[first + 1] > thresholds[first]
    intervals = [b - a for a, b in zip(times, times[1:])]
    assert intervals[-1] > intervals[0]  # spike-frequency adaptation


def test_alif_soft_reset_keeps_gradient():
    x = torch.full((1, 1), 5.0, requires_grad=True)
    params = ALIFParameters(torch.tensor([20.0]), torch.tensor([200.0]))
    state = ALIFState(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    z, new = alif_step(x, state, params)
    assert z.item() == 1
    new.u.sum().backward()
    alpha = math.exp(-1 / 20)
    # d(u' - z theta)/dx = (1 - alpha) (1 - theta * surrogate'(u' - theta)); non-detached reset enters it
    y = (1 - alpha) * 5.0 - 0.01
    s1, s2, p = 0.5, 3.0, 0.15
    dg = 0.5 * ((1 + p) * math.exp(-0.5 * (y / s1) ** 2) / (s1 * math.sqrt(2 * math.pi))
                - 2 * p * math.exp(-0.5 * (y / s2) ** 2) / (s2 * math.sqrt(2 * math.pi)))
    assert x.grad.item() == pytest.approx((1 - alpha) * (1 - 0.01 * dg), rel=1e-5)


def test_li_readout_equation():
    torch.manual_seed(0)
    li = LICell(3, 2, tau_out=(20.0, 5.0), step_mode="m")
    z = (torch.rand(6, 1, 3) > 0.5).float()
    u_seq = li(z)
    alpha = torch.exp(-1 / li.tau_out.abs())
    u = torch.zeros(1, 2)
    for t in range(6):
        u = alpha * u + (1 - alpha) * (z[t] @ li.weight.t())
        torch.testing.assert_close(u_seq[t], u)


@pytest.mark.parametrize("task,expected", [("smnist", 68874), ("psmnist", 68874), ("ecg", 1734), ("shd", 108820)])
@pytest.mark.parametrize("neuron", ["brf", "rf", "alif"])
def test_parameter_counts_equal_paper_table1(task, neuron, expected):
    assert count_parameters(build_rsnn(**RSNN_PRESETS[(task, neuron)])) == expected


def test_alif_with_biases_has_yin_ecg_count():
    assert count_parameters(build_rsnn(**{**RSNN_PRESETS[("ecg", "alif")], "bias": True})) == 1776


def test_presets_initialise_as_table3():
    torch.manual_seed(0)
    net = build_rsnn(**RSNN_PRESETS[("shd", "brf")])
    assert 5.0 <= net.hidden.omega.min() and net.hidden.omega.max() <= 10.0
    assert 2.0 <= net.hidden.b_offset.min() and net.hidden.b_offset.max() <= 3.0
    assert net.hidden.bias is None and net.out.bias is None
    assert net.hidden.weight.shape == (128, 828)
    bound = math.sqrt(6 / (128 + 828))  # Xavier uniform on the whole [x, z] matrix
    assert net.hidden.weight.abs().max() <= bound and net.hidden.weight.abs().max() > 0.9 * bound
    alif = build_rsnn(**RSNN_PRESETS[("ecg", "alif")])
    assert abs(alif.hidden.tau_adp.mean().item() - 7.0) < 0.2


def test_rsnn_forward_contract_and_gradients():
    torch.manual_seed(0)
    net = build_rsnn("brf", in_features=2, hidden=16, classes=3, omega_range=(5.0, 10.0))
    x = torch.rand(40, 4, 2) * 300
    out = net(x)
    assert out.shape == (40, 4, 3)
    spikes = net.last_spikes
    assert net.last_spike_count.item() == spikes.sum().item() > 0
    assert net.last_activity.item() == pytest.approx(spikes.mean().item())
    out[-1].sum().backward()
    for name in ("weight", "omega", "b_offset"):
        assert getattr(net.hidden, name).grad.abs().sum() > 0, name
    assert net.out.tau_out.grad.abs().sum() > 0
    torch.testing.assert_close(net(x), out)  # state reset at each forward


@pytest.mark.parametrize("cls,kwargs", [(BRFCell, dict(omega_range=(5.0, 10.0))), (ALIFCell, {})])
def test_single_and_multi_step_agree(cls, kwargs):
    torch.manual_seed(0)
    cell = cls(3, 5, step_mode="m", **kwargs)
    x = torch.rand(30, 2, 3) * 100
    z_m = cell(x)
    cell.reset()
    cell.step_mode = "s"
    torch.testing.assert_close(torch.stack([cell(xt) for xt in x]), z_m)


def test_recurrence_uses_previous_spikes():
    torch.manual_seed(0)
    cell = BRFCell(1, 2, omega_range=(5.0, 5.0), b_offset_range=(1.0, 1.0), step_mode="s")
    with torch.no_grad():
        cell.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 5000.0, 0.0]]))  # neuron 1 driven by neuron 0
    z0 = cell(torch.tensor([[500.0]]))
    assert z0.tolist() == [[1.0, 0.0]]  # neuron 1 sees z[t-1] = 0 at t = 0
    z1 = cell(torch.tensor([[0.0]]))
    assert z1[0, 1] == 1.0  # ... and the spike of neuron 0 one step later


def test_clamp_omega_avoids_nan():
    # |omega| > 1/dt: p(omega) is NaN in the code (the membrane turns NaN; NaN never spikes)
    net = build_rsnn("brf", in_features=1, hidden=4, classes=2, omega_range=(120.0, 130.0))
    net(torch.rand(5, 1, 1))
    assert torch.isnan(net.hidden.u).all()
    net = build_rsnn("brf", in_features=1, hidden=4, classes=2, omega_range=(120.0, 130.0), clamp_omega=True)
    net(torch.rand(5, 1, 1))
    assert torch.isfinite(net.hidden.u).all() and torch.isfinite(net.hidden.v).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="neuron"):
        build_rsnn("lif")
    with pytest.raises(ValueError, match="omega_range"):
        build_rsnn("brf", omega_range=(50.0, 15.0))
    with pytest.raises(ValueError, match="tau_out"):
        build_rsnn("brf", tau_out=(20.0, -1.0))
    with pytest.raises(ValueError, match=r"\[T, B, m\]"):
        build_rsnn("brf")(torch.zeros(5, 2, 3))


def test_readout_bias_initialised_as_the_source_or_as_nn_linear():
    torch.manual_seed(0)
    uniform = LICell(36, 6, tau_out=(20.0, 0.5), bias=True)
    assert uniform.bias.abs().max() <= 1 / 6 and uniform.bias.abs().min() > 0   # U(+-1/sqrt(36)), nn.Linear's
    zero = LICell(36, 6, tau_out=(20.0, 0.5), bias=True, bias_init="zero")     # the BRF source's LICell
    assert torch.equal(zero.bias.detach(), torch.zeros(6)) and zero.bias.requires_grad
    with pytest.raises(ValueError, match="bias_init='normal'"):
        LICell(36, 6, bias=True, bias_init="normal")


def test_ecg_alif_bias_probe_keeps_the_hashes_of_its_committed_records():
    """Adding the released-script variant must not orphan the committed alif-bias records."""
    from reprolib.experiments import get_configs

    hashes = {c.hash: c for c in get_configs("brf-ecg-alif-bias", "paper")}
    assert {"a5ecb238582a19a7", "9d6ea302c0ff766c", "5d04e6f25c6a46d8"} <= set(hashes)
    script = [c for c in hashes.values() if c.batch_size == 4]
    assert len(script) == 3 and all(c.model_options["readout_bias_init"] == "zero" and c.model_options["bias"]
                                    for c in script)
