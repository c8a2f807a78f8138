"""SpikingJelly tutorial networks: structure, parameter counts, and forward passes recomputed from the equations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reprolib.models import build_model
from reprolib.models.spikingjelly import (
    FeedbackNet,
    LIFMLP,
    PlainNet,
    StatefulSynapseNet,
    build_feedback,
    build_lif_mlp,
    build_plain,
    build_stateful_synapse,
)
from reprolib.neurons import IFParameters, LIFParameters, MembraneState, if_multistep, if_step, lif_multistep
from reprolib.surrogate import ATan, Sigmoid

# IF of the recurrent tutorial: V_th 1, hard reset 0, detach_reset, ATan(2)
TUTORIAL_IF = IFParameters(v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate_function=ATan())


def _n_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _amplify(model, factor=3.0):
    # random init rarely drives the output IF neurons over threshold; larger weights make the
    # recomputation below exercise spikes and resets in both layers
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                p.mul_(factor)
    return model


@pytest.fixture
def x_seq():
    torch.manual_seed(0)
    return torch.randn(8, 3, 28) * 2.0


def test_parameter_counts_of_the_recurrent_tutorial():
    assert _n_params(build_plain()) == 1258
    assert _n_params(build_stateful_synapse()) == 1259
    assert _n_params(build_feedback()) == 3338
    assert _n_params(build_stateful_synapse(learnable=False)) == 1258
    # clock-driven MLP: 784*196 + 196*10, no biases
    assert _n_params(build_lif_mlp()) == 784 * 196 + 196 * 10 == 155624


def test_registry_names_build_the_right_classes():
    assert isinstance(build_model("sj-lif-mlp"), LIFMLP)
    assert isinstance(build_model("sj-plain"), PlainNet)
    assert isinstance(build_model("sj-feedback", hidden=16), FeedbackNet)
    assert isinstance(build_model("sj-stateful-synapse", tau=3.0), StatefulSynapseNet)


def test_recurrent_tutorial_neurons_are_configured_as_in_the_tutorial():
    for model in (build_plain(), build_feedback(), build_stateful_synapse()):
        nodes = [m for m in model.modules() if hasattr(m, "v_threshold")]
        assert len(nodes) == 2
        for node in nodes:
            assert node.v_threshold == 1.0 and node.v_reset == 0.0 and node.detach_reset
            assert isinstance(node.surrogate_function, ATan) and node.surrogate_function.alpha == 2.0
        assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Linear))
    syn = build_stateful_synapse().syn[0]
    assert syn.learnable and syn.w.item() == 0.0  # w = -ln(2 - 1)


def test_lif_mlp_defaults_are_the_clock_driven_tutorial():
    model = build_lif_mlp()
    for node in (model.sn1, model.sn2):
        assert node.tau == 100.0 and node.v_threshold == 1.0 and node.v_reset == 0.0 and not node.detach_reset
        assert repr(node.surrogate_function) == "Sigmoid(alpha=1.0, spiking=True)"
    assert model.fc1[0].weight.shape == (196, 784) and model.fc1[0].bias is None
    assert model.fc2[0].weight.shape == (10, 196) and model.fc2[0].bias is None
    out = model((torch.rand(4, 2, 1, 28, 28) < 0.5).float())  # images are flattened per step
    assert out.shape == (4, 2, 10)
    assert isinstance(build_lif_mlp(surrogate="atan", alpha=2.0).sn1.surrogate_function, ATan)


def _check_contract(model, out, hidden):
    assert model.last_activity.dim() == 0 and model.last_spike_count.dim() == 0
    assert model.last_activity.item() == pytest.approx(hidden.mean().item())
    assert model.last_spike_count.item() == hidden.sum().item()
    assert hidden.sum() > 0 and out.sum() > 0  # the comparison exercised spikes in both layers


def test_plain_net_forward_recomputed_from_equations(x_seq):
    model = _amplify(build_plain())
    out = model(x_seq)
    fc1, fc2 = model.fc1[0], model.fc2[0]
    s1, _ = if_multistep(F.linear(x_seq, fc1.weight, fc1.bias), torch.zeros(3, 32), TUTORIAL_IF)
    s2, _ = if_multistep(F.linear(s1, fc2.weight, fc2.bias), torch.zeros(3, 10), TUTORIAL_IF)
    assert out.shape == (8, 3, 10)
    torch.testing.assert_close(out, s2)
    _check_contract(model, out, s1)


def test_feedback_net_forward_recomputed_from_equations(x_seq):
    model = _amplify(build_feedback())
    out = model(x_seq)
    fc1, rc, fc2 = model.fc1[0], model.sn1[0].rc, model.fc2[0]
    # s1[t] = IF(W_rc [fc1(x[t]); s1[t-1]] + b_rc), s1[-1] = 0
    state, s_prev, s1 = MembraneState(torch.zeros(3, 32)), torch.zeros(3, 32), []
    for x in x_seq:
        i = F.linear(torch.cat([F.linear(x, fc1.weight, fc1.bias), s_prev], dim=-1), rc.weight, rc.bias)
        s_prev, state = if_step(i, state, TUTORIAL_IF)
        s1.append(s_prev)
    s1 = torch.stack(s1)
    s2, _ = if_multistep(F.linear(s1, fc2.weight, fc2.bias), torch.zeros(3, 10), TUTORIAL_IF)
    torch.testing.assert_close(out, s2)
    _check_contract(model, out, s1)
    assert s1[:-1].sum() > 0  # some spikes were actually fed back


def test_stateful_synapse_net_forward_recomputed_from_equations(x_seq):
    model = _amplify(build_stateful_synapse())
    out = model(x_seq)
    fc1, fc2 = model.fc1[0], model.fc2[0]
    s1, _ = if_multistep(F.linear(x_seq, fc1.weight, fc1.bias), torch.zeros(3, 32), TUTORIAL_IF)
    # I[t] = I[t-1] - (1 - s1[t]) I[t-1] / 2 + s1[t]  (tau = 2: sigmoid(0) = 1/2)
    current, currents = torch.zeros(3, 32), []
    for s in s1:
        current = current - (1 - s) * current / 2 + s
        currents.append(current)
    s2, _ = if_multistep(F.linear(torch.stack(currents), fc2.weight, fc2.bias), torch.zeros(3, 10), TUTORIAL_IF)
    torch.testing.assert_close(out, s2)
    _check_contract(model, out, s1)


def test_lif_mlp_forward_recomputed_from_equations():
    torch.manual_seed(1)
    model = _amplify(build_lif_mlp(in_features=12, hidden=6, classes=3, tau=2.0), factor=4.0)
    x_seq = (torch.rand(10, 4, 12) < 0.6).float()
    out = model(x_seq)
    params = LIFParameters(tau=2.0, surrogate_function=Sigmoid())
    s1, _ = lif_multistep(F.linear(x_seq, model.fc1[0].weight), torch.zeros(4, 6), params)
    s2, _ = lif_multistep(F.linear(s1, model.fc2[0].weight), torch.zeros(4, 3), params)
    torch.testing.assert_close(out, s2)
    _check_contract(model, out, s1)


@pytest.mark.parametrize("build", [build_plain, build_feedback, build_stateful_synapse])
def test_state_is_reset_at_the_start_of_every_forward(build, x_seq):
    model = _amplify(build())
    first = model(x_seq)
    # the second forward must not start from the membranes left by the first
    torch.testing.assert_close(model(x_seq), first)
    # a batch of another size works too (would fail with stale state)
    assert model(x_seq[:, :2]).shape == (8, 2, 10)


@pytest.mark.parametrize("build", [build_plain, build_feedback, build_stateful_synapse])
def test_gradients_reach_the_first_layer(build, x_seq):
    model = _amplify(build())
    rate = model(x_seq).mean(0)
    F.mse_loss(rate, F.one_hot(torch.tensor([0, 1, 2]), 10).float()).backward()
    grad = model.fc1[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    if isinstance(model, StatefulSynapseNet):
        assert model.syn[0].w.grad.abs() > 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: build_plain()(torch.zeros(8, 3, 27)), r"input shape \(8, 3, 27\) is invalid; expected \[T, B, 28\]"),
        (lambda: build_plain()(torch.zeros(3, 28)), r"input \(3, 28\) is invalid; expected a time-major tensor"),
        (lambda: build_feedback(hidden=0), r"hidden=0 is invalid; expected a positive integer"),
        (lambda: build_stateful_synapse(tau=0.5), r"tau=0.5 is invalid"),
        (lambda: build_lif_mlp(tau=1.0), r"tau=1.0 is invalid"),
        (lambda: build_lif_mlp(surrogate="relu"), r"unknown surrogate 'relu'"),
        (lambda: build_plain(backend="no-such-backend"), r"backend='no-such-backend' is invalid"),
    ],
)
def test_bad_arguments_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
