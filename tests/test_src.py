"""SRC neuron, SRC / LIF networks of the SRC paper (De Geeter et al.), and the snnTorch-Leaky LIF baseline."""

import pytest
import torch

from reprolib.neurons.leaky import Leaky, LeakyParameters, LeakyState, leaky_multistep
from reprolib.neurons.src import (SRCParameters, SRCState, SpikingRecurrentCell, simulate_src_neuron,
                                  src_initial_state, src_multistep, src_step)
from reprolib.models.src import FrozenLeakyReadout, build_lif_network, build_src_network, readout_matrix
from reprolib.metrics import count_parameters


def onsets(s):
    active = (s > 0).tolist()
    return [t for t, a in enumerate(active) if a and (t == 0 or not active[t - 1])]


# ----------------------------------------------------------------------------------------- spike generation

def test_bias_minus4_fires_spontaneously_with_reference_onsets():
    out = simulate_src_neuron(torch.zeros(200), b_h=-4.0)
    # reference 2.5: first onset at step 15, then every 24 steps (zero input, zero state, z_s from h[t-1])
    assert onsets(out["s"]) == list(range(15, 200, 24))
    assert out["h"].max().item() == pytest.approx(0.91, abs=0.01)


@pytest.mark.parametrize("b_h", [-5.0, -6.0])
def test_lower_bias_stays_silent_without_input(b_h):
    out = simulate_src_neuron(torch.zeros(200), b_h=b_h)
    assert (out["s"] == 0).all()
    assert (out["h"] < 0).all()


def test_spike_lasts_several_steps_then_refractory_period():
    out = simulate_src_neuron(torch.zeros(100), b_h=-4.0)
    h, s = out["h"], out["s"]
    first = onsets(s)[0]
    width = 0
    while s[first + width] > 0:
        width += 1
    assert width == 3  # continuous-valued spike of several steps (not a one-step LIF spike)
    assert 0 < s[first] < s[first + 1]  # rising flank, values in (0, 1)
    # refractory: after the spike, h is strongly negative and h_s stays high (slow negative feedback)
    end = first + width
    assert (h[end:end + 10] < -0.5).all()
    neg = out["negative_feedback"][end:end + 4]
    assert (neg < -2.0).all() and (neg.diff() > 0).all()  # relaxes slowly (z_s back at 0.9)


def test_refractory_period_blocks_a_second_pulse():
    # after a warm-up at rest, a pulse of 4 fires; the same pulse 10 steps later does not, 18 steps later it does
    for delay, expected in ((10, [40]), (18, [40, 58])):
        x = torch.zeros(100)
        x[40] = x[40 + delay] = 4.0
        assert onsets(simulate_src_neuron(x, b_h=-6.0)["s"]) == expected


def test_zs_switches_to_dep_during_spike_and_back_to_hyp():
    out = simulate_src_neuron(torch.zeros(60), b_h=-4.0)
    h, zs = out["h"], out["zs"]
    # z_s[t] is computed from h[t-1] (default zs_from="previous")
    expected = torch.where(torch.cat([torch.zeros(1), h[:-1]]) > 0.5, 0.0, 0.9)
    assert torch.equal(zs, expected)
    assert (zs == 0.0).any() and (zs == 0.9).any()
    # during a spike h_s catches up with h[t-1] immediately (z_s = 0)
    t = int((zs == 0).nonzero()[0])
    assert out["hs"][t].item() == pytest.approx(h[t - 1].item())


def test_fixed_zs_gives_longer_spikes_than_variable_zs():
    fixed = simulate_src_neuron(torch.full((200,), 2.5), b_h=-6.0, zs_hyp=0.9, zs_dep=0.9)
    variable = simulate_src_neuron(torch.full((200,), 2.5), b_h=-6.0, zs_hyp=0.9, zs_dep=0.0)
    width = lambda s: (s > 0).sum().item() / max(len(onsets(s)), 1)
    assert len(onsets(variable["s"])) > 0 and len(onsets(fixed["s"])) > 0
    assert width(fixed["s"]) > width(variable["s"])


def test_only_input_plus_bias_matters_for_constant_input():
    shifted = simulate_src_neuron(torch.full((200,), 2.0), b_h=-6.0)
    assert onsets(shifted["s"]) == list(range(15, 200, 24))
    faster = simulate_src_neuron(torch.full((200,), 3.0), b_h=-6.0)
    assert onsets(faster["s"])[:4] == [11, 30, 50, 70]
    weak = simulate_src_neuron(torch.full((200,), 1.5), b_h=-6.0)
    assert weak["h"].max() < 0.5


def test_zs_from_current_same_pattern_different_onsets():
    prev = simulate_src_neuron(torch.zeros(200), b_h=-4.0, zs_from="previous")
    cur = simulate_src_neuron(torch.zeros(200), b_h=-4.0, zs_from="current")
    assert len(onsets(cur["s"])) > 0
    assert onsets(cur["s"]) != onsets(prev["s"])
    assert (simulate_src_neuron(torch.zeros(200), b_h=-5.0, zs_from="current")["s"] == 0).all()


def test_noise_resamples_feedback_gains():
    x = torch.full((200,), 2.5)
    a = simulate_src_neuron(x, -6.0, noise_sigma=0.2, generator=torch.Generator().manual_seed(1))
    b = simulate_src_neuron(x, -6.0, noise_sigma=0.2, generator=torch.Generator().manual_seed(2))
    a2 = simulate_src_neuron(x, -6.0, noise_sigma=0.2, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a["h"], b["h"])  # Fig. 6: same input, different outputs
    assert torch.equal(a["h"], a2["h"])
    gains = a["positive_feedback"][:-1] / a["h"][:-1]
    assert gains.mean().item() == pytest.approx(2.0, abs=0.06)
    assert gains.std().item() == pytest.approx(0.2, abs=0.05)


def test_simulate_many_neurons_at_once():
    out = simulate_src_neuron(torch.zeros(100), b_h=torch.tensor([-4.0, -5.0]))
    assert out["h"].shape == out["x"].shape == (100, 2)
    assert onsets(out["s"][:, 0]) == list(range(15, 100, 24)) and (out["s"][:, 1] == 0).all()


def test_noisy_layer_is_reproducible_with_a_generator():
    torch.manual_seed(0)
    layer = SpikingRecurrentCell(4, 6, noise_sigma=0.2, bias_init=-4.0, step_mode="m")
    x = (torch.rand(40, 2, 4) < 0.5).float()
    runs = []
    for seed in (1, 1, 2):
        layer.reset()
        layer.generator = torch.Generator().manual_seed(seed)
        runs.append(layer(x))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_simulate_rejects_bad_options():
    with pytest.raises(ValueError, match="zs_from"):
        simulate_src_neuron(torch.zeros(5), -4.0, zs_from="next")
    for bad in (torch.zeros(0), torch.tensor(1.0)):  # no step, or no time axis
        with pytest.raises(ValueError, match=r"simulate_src_neuron: input shape \((0,)?\) is invalid; "
                                             r"expected a time-major sequence \[T, \.\.\.\]"):
            simulate_src_neuron(bad, -4.0)


# ------------------------------------------------------------------------------------------ layer dynamics

def test_src_step_matches_equations():
    g = torch.Generator().manual_seed(0)
    state = SRCState(torch.randn(3, 5, generator=g), torch.rand(3, 5, generator=g) * 2 - 1,
                     torch.rand(3, 5, generator=g) * 2 - 1)
    current = torch.randn(3, 5, generator=g)
    b_h = torch.linspace(-6, -4, 5)
    s, new = src_step(current, state, SRCParameters(b_h=b_h, alpha=0.9))
    i = 0.9 * state.i + current
    x = 3 * torch.tanh(i / 3)
    h = torch.tanh(x + 2 * state.h - 7 * state.hs + b_h)
    zs = torch.where(state.h > 0.5, 0.0, 0.9)
    hs = zs * state.hs + (1 - zs) * state.h
    torch.testing.assert_close(new.i, i)
    torch.testing.assert_close(new.h, h)
    torch.testing.assert_close(new.hs, hs)
    torch.testing.assert_close(s, torch.relu(h))


def test_single_and_multi_step_modes_agree():
    torch.manual_seed(0)
    layer = SpikingRecurrentCell(6, 4, bias_init=-4.5, step_mode="m")
    x = (torch.rand(30, 2, 6) < 0.5).float()
    out_m = layer(x)
    layer.reset()
    layer.step_mode = "s"
    out_s = torch.stack([layer(xt) for xt in x])
    torch.testing.assert_close(out_m, out_s)
    assert (out_m > 0).any()


def test_relu_bypass_gradient_where_h_negative():
    params_on = SRCParameters(b_h=torch.tensor([-6.0, -6.0, -1.0, 0.0]))
    current = torch.tensor([[0.0, 1.0, 3.0, 5.0]], requires_grad=True)
    state = src_initial_state((1, 4))
    s, new = src_step(current, state, params_on._replace(relu_bypass=False))
    s.sum().backward()
    grad_off = current.grad.clone()
    current.grad = None
    s, _ = src_step(current, state, params_on)
    s.sum().backward()
    negative = new.h < 0
    assert negative.any() and (~negative).any()
    assert (grad_off[negative] == 0).all() and (grad_off[~negative] > 0).all()
    assert (current.grad > 0).all()  # bypass: d s / d h = 1 everywhere


def test_detach_recurrence_changes_gradients_not_values():
    torch.manual_seed(0)
    current = (torch.randn(20, 1, 3) * 2).requires_grad_()
    results = {}
    for detach in (True, False):
        params = SRCParameters(b_h=torch.full((3,), -4.0), detach_recurrence=detach)
        s, _ = src_multistep(current, src_initial_state((1, 3)), params)
        s[-1].sum().backward()
        results[detach] = (s.detach(), current.grad.clone())
        current.grad = None
    torch.testing.assert_close(results[True][0], results[False][0])
    assert not torch.allclose(results[True][1], results[False][1])


def test_bias_projection_and_clamp():
    layer = SpikingRecurrentCell(3, 2, step_mode="m")
    assert torch.equal(layer.b_h.data, torch.full((2,), -6.0))
    with torch.no_grad():
        layer.b_h.copy_(torch.tensor([-3.0, -5.0]))
    layer.after_optimizer_step()
    assert torch.equal(layer.b_h.data, torch.tensor([-4.0, -5.0]))

    clamped = SpikingRecurrentCell(3, 2, bias_bound="clamp", step_mode="m")
    with torch.no_grad():
        clamped.b_h.copy_(torch.tensor([-3.0, -5.0]))
    clamped.after_optimizer_step()
    assert torch.equal(clamped.b_h.data, torch.tensor([-3.0, -5.0]))  # parameter left alone
    assert torch.equal(clamped.neuron_parameters().b_h, torch.tensor([-4.0, -5.0]))  # bound in forward
    clamped(torch.ones(5, 1, 3)).sum().backward()
    assert clamped.b_h.grad[0] == 0 and clamped.b_h.grad[1] != 0


def test_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="bias_bound"):
        SpikingRecurrentCell(3, 2, bias_bound="sometimes")
    with pytest.raises(ValueError, match="zs_from"):
        SpikingRecurrentCell(3, 2, zs_from="future")
    with pytest.raises(ValueError, match="bias_init"):
        SpikingRecurrentCell(3, 2, bias_init=-2.0)
    with pytest.raises(ValueError, match=r"\[T, B, in\]"):
        SpikingRecurrentCell(3, 2, step_mode="m")(torch.zeros(4, 3))


# ------------------------------------------------------------------------------------------------ networks

def test_readout_matrix_and_dynamics():
    w = readout_matrix(3, group_size=2)
    assert torch.equal(w, torch.tensor([[1.0, 1.0, -0.1, -0.1, -0.1, -0.1],
                                        [-0.1, -0.1, 1.0, 1.0, -0.1, -0.1],
                                        [-0.1, -0.1, -0.1, -0.1, 1.0, 1.0]]))
    readout = FrozenLeakyReadout(3, 2)
    assert count_parameters(readout) == 0 and count_parameters(readout, trainable_only=False) == 0
    s = torch.rand(4, 1, 6)
    o = readout(s)
    expected = torch.zeros(1, 3)
    for t in range(4):
        expected = 0.99 * expected + s[t] @ w.t()
        torch.testing.assert_close(o[t], expected)


def test_src_network_shapes_contract_and_parameters():
    torch.manual_seed(0)
    net = build_src_network(in_features=12, layers=3, hidden=8, classes=4, group_size=5)
    x = (torch.rand(15, 2, 12) < 0.3).float()
    out = net(x)
    assert out.shape == (15, 2, 4)
    # trainable: W_s and b_h of each layer, nothing in the readout
    assert count_parameters(net) == (12 * 8 + 8) + (8 * 8 + 8) + (8 * 20 + 20)
    total = sum(s.numel() for s in net.last_spikes)
    manual = sum((s > 0).sum() for s in net.last_spikes)
    assert net.last_spike_count.item() == manual.item()
    assert net.last_activity.item() == pytest.approx(manual.item() / total)
    assert net(x).shape == out.shape  # state reset on each forward: same input, same output
    torch.testing.assert_close(net(x), out)


def test_five_layer_bypass_reaches_first_layer():
    torch.manual_seed(0)
    x = (torch.rand(25, 2, 20) < 0.3).float()
    grads = {}
    for bypass in (True, False):
        torch.manual_seed(1)
        net = build_src_network(20, layers=5, hidden=16, classes=2, group_size=3, relu_bypass=bypass)
        out = net(x)
        torch.nn.functional.cross_entropy(out[-1], torch.tensor([0, 1])).backward()
        grads[bypass] = net.blocks[0].weight.grad
        final_h = net.blocks[-1].h
        # deep layers are silent at -6 bias, i.e. h < 0: without bypass nothing flows back
        assert (net.last_spikes[-1] == 0).all() and (final_h < 0).all()
    assert grads[True].abs().sum() > 0
    assert (grads[False] == 0).all()


def test_after_optimizer_step_projects_all_layers():
    net = build_src_network(4, layers=2, hidden=3, classes=2, group_size=2)
    with torch.no_grad():
        for block in net.blocks:
            block.b_h.fill_(0.0)
    net.after_optimizer_step()
    assert all((block.b_h == -4.0).all() for block in net.blocks)


def test_network_rejects_bad_input():
    net = build_src_network(4, layers=1, classes=2, group_size=2)
    with pytest.raises(ValueError, match=r"\[T, B, 4\]"):
        net(torch.zeros(3, 2, 5))
    with pytest.raises(ValueError, match="layers"):
        build_src_network(4, layers=0)


# --------------------------------------------------------------------------------- LIF baseline vs snnTorch

@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_leaky_equals_snntorch_step_by_step(reset):
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    current = (torch.randn(40, 3, 7) * 0.8 + 0.4)
    ours = Leaky(beta=0.9, threshold=1.0, learn_beta=True, learn_threshold=True, reset=reset, step_mode="s")
    ref = snn.Leaky(beta=0.9, threshold=1.0, learn_beta=True, learn_threshold=True, reset_mechanism=reset)
    x_ours = current.clone().requires_grad_()
    x_ref = current.clone().requires_grad_()
    mem = ref.reset_mem()
    loss_ours = loss_ref = 0.0
    for t in range(current.shape[0]):
        spk_o = ours(x_ours[t])
        spk_r, mem = ref(x_ref[t], mem)
        assert torch.equal(spk_o, spk_r)
        torch.testing.assert_close(ours.mem, mem)
        loss_ours = loss_ours + (spk_o * (t + 1)).sum() + ours.mem.sum() * 0.01
        loss_ref = loss_ref + (spk_r * (t + 1)).sum() + mem.sum() * 0.01
    assert current.shape[0] > 0 and ours.mem is not None
    loss_ours.backward()
    loss_ref.backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    torch.testing.assert_close(ours.beta.grad, ref.beta.grad)
    torch.testing.assert_close(ours.threshold.grad, ref.threshold.grad)


def test_leaky_multistep_equals_single_step_and_clamps_beta():
    torch.manual_seed(0)
    current = torch.randn(20, 2, 3) + 0.5
    params = LeakyParameters(beta=torch.tensor(1.7), threshold=1.0, reset="subtract")
    spikes, state = leaky_multistep(current, LeakyState(torch.zeros(2, 3)), params)
    params_one = params._replace(beta=torch.tensor(1.0))
    spikes_one, state_one = leaky_multistep(current, LeakyState(torch.zeros(2, 3)), params_one)
    assert torch.equal(spikes, spikes_one)  # beta clamped to 1 as in snnTorch
    layer = Leaky(beta=0.9, step_mode="m")
    out_m = layer(current)
    layer.reset()
    layer.step_mode = "s"
    torch.testing.assert_close(torch.stack([layer(c) for c in current]), out_m)


def test_lif_network_counts_and_contract():
    torch.manual_seed(0)
    net = build_lif_network(12, layers=2, hidden=8, classes=3, group_size=4)
    out = net(torch.rand(10, 2, 12) * 2)
    assert out.shape == (10, 2, 3)
    # Linear weights + biases + one beta and one threshold per layer
    assert count_parameters(net) == (12 * 8 + 8 + 2) + (8 * 12 + 12 + 2)
    spikes = net.last_spikes
    assert net.last_spike_count.item() == int(sum(s.sum() for s in spikes).item())
    with pytest.raises(ValueError, match="reset"):
        build_lif_network(12, layers=2, reset="soft")


def test_src_constants_may_be_tensors_or_numpy_scalars_but_not_nan():
    import numpy as np

    from reprolib.neurons.src import SRCParameters, src_initial_state, src_multistep

    x = torch.randn(5, 2, 4)
    for params in (SRCParameters(r=torch.full((4,), 2.0)), SRCParameters(alpha=np.float32(0.9))):
        out, _ = src_multistep(x, src_initial_state((2, 4)), params)
        assert out.shape == x.shape
    with pytest.raises(ValueError, match="r_s=nan; expected a finite number or a tensor"):
        src_multistep(x, src_initial_state((2, 4)), SRCParameters(r_s=float("nan")))
