"""Recurrent containers, stateful synapse, sequence containers and functional helpers, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reprolib import functional
from reprolib.layers import (
    ElementWiseRecurrentContainer,
    LinearRecurrentContainer,
    MultiStepContainer,
    SeqToANNContainer,
    SynapseFilter,
    synapse_filter_step,
)
from reprolib.neurons import IFNode, LIFNode, MultiStepIFNode
from reprolib.surrogate import ATan

# ----------------------------------------------------------------------------- ElementWiseRecurrentContainer

TUTORIAL_PRINTOUT = """ElementWiseRecurrentContainer(
  (sub_module): IFNode(
    v_threshold=1.0, v_reset=None, detach_reset=False
    (surrogate_function): Sigmoid(alpha=1.0, spiking=True)
  )
)"""


def test_tutorial_printout_if_soft_reset_with_added_feedback_spikes_every_step():
    # recurrent tutorial 1.3: t=0: v = 1.5 -> spike, v = 0.5; then the fed-back spike keeps pushing v to 1.5
    net = ElementWiseRecurrentContainer(IFNode(v_reset=None), element_wise_function=lambda x, y: x + y)
    assert repr(net) == TUTORIAL_PRINTOUT
    T = 8
    x = torch.zeros(T)
    x[0] = 1.5
    outputs = [net(x[t]).item() for t in range(T)]
    assert outputs == [1.0] * T
    assert net.sub_module.v.item() == pytest.approx(0.5)
    functional.reset_net(net)
    assert net.y is None and net.sub_module.v is None


def test_element_wise_function_gets_the_input_first_as_the_tutorial_writes():
    calls = []

    def record(x, y_prev):  # the tutorial's i[t] = f(x[t], y[t-1])
        calls.append((y_prev.clone(), x.clone()))
        return x - y_prev  # not symmetric: the order matters

    net = ElementWiseRecurrentContainer(nn.Identity(), record)
    x_seq = torch.tensor([[3.0], [5.0], [11.0]])
    out = [net(x).item() for x in x_seq]
    # y0 = 3 - 0 = 3; y1 = 5 - 3 = 2; y2 = 11 - 2 = 9
    assert out == [3.0, 2.0, 9.0]
    assert calls[0][0].tolist() == [0.0] and calls[1][0].tolist() == [3.0] and calls[1][1].tolist() == [5.0]


def test_element_wise_container_multi_step_equals_single_step():
    torch.manual_seed(1)
    x_seq = torch.rand(7, 3, 4)
    single = ElementWiseRecurrentContainer(IFNode(v_reset=None), lambda x, y: x + 0.5 * y)
    expected = torch.stack([single(x) for x in x_seq])
    multi = ElementWiseRecurrentContainer(IFNode(v_reset=None), lambda x, y: x + 0.5 * y, step_mode="m")
    torch.testing.assert_close(multi(x_seq), expected)
    assert expected.sum() > 0


# ----------------------------------------------------------------------------- LinearRecurrentContainer

def test_linear_recurrent_container_shapes_match_spikingjelly():
    c = LinearRecurrentContainer(IFNode(), in_features=32, out_features=32)
    assert c.rc.weight.shape == (32, 64) and c.rc.bias.shape == (32,)
    c2 = LinearRecurrentContainer(nn.Linear(5, 3), in_features=5, out_features=3, bias=False)
    assert c2.rc.weight.shape == (5, 8) and c2.rc.bias is None
    assert c2(torch.ones(4, 5)).shape == (4, 3)


def test_linear_recurrent_container_concatenates_input_first_by_hand():
    c = LinearRecurrentContainer(nn.Identity(), in_features=2, out_features=2, bias=False)
    with torch.no_grad():
        # i = [x0 + 2 y0, x1 + 3 y1] when x comes first in the concatenation
        c.rc.weight.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 3.0]]))
    x = torch.ones(1, 2)
    out = [c(x).squeeze(0).tolist() for _ in range(3)]
    # y0 = [1, 1]; y1 = [1 + 2, 1 + 3] = [3, 4]; y2 = [1 + 6, 1 + 12] = [7, 13]
    assert out == [[1.0, 1.0], [3.0, 4.0], [7.0, 13.0]]


def test_linear_recurrent_container_with_if_neuron_by_hand():
    # in = out = 1, rc weight [[1.0, 0.5]], bias 0.1, IF hard reset:
    # t0: i = 0.5 + 0 + 0.1 = 0.6 -> v 0.6, y 0 | t1: i = 0.6 -> v 1.2 -> y 1, v 0
    # t2: i = 0.5 + 0.5 + 0.1 = 1.1 -> y 1, v 0 | t3 (x = 0): i = 0.5 + 0.1 = 0.6 -> y 0
    c = LinearRecurrentContainer(IFNode(), in_features=1, out_features=1)
    with torch.no_grad():
        c.rc.weight.copy_(torch.tensor([[1.0, 0.5]]))
        c.rc.bias.fill_(0.1)
    x_seq = torch.tensor([0.5, 0.5, 0.5, 0.0]).reshape(4, 1, 1)
    single = torch.stack([c(x) for x in x_seq]).flatten().tolist()
    assert single == [0.0, 1.0, 1.0, 0.0]
    assert c.sub_module.v.item() == pytest.approx(0.6)
    functional.reset_net(c)
    assert c.y is None and c.sub_module.v is None
    c.step_mode = "m"
    assert c(x_seq).flatten().tolist() == single
    assert MultiStepContainer(LinearRecurrentContainer(IFNode(), 1, 1)).__class__ is MultiStepContainer


def test_linear_recurrent_container_gradient_flows_through_feedback():
    torch.manual_seed(0)
    c = LinearRecurrentContainer(IFNode(surrogate_function=ATan(), detach_reset=True), 3, 3, step_mode="m")
    x = (3 * torch.rand(5, 2, 3)).requires_grad_(True)
    out = c(x)
    assert out[:-1].sum() > 0  # some spikes are fed back
    out.sum().backward()
    assert c.rc.weight.grad is not None and c.rc.weight.grad[:, 3:].abs().sum() > 0


# ----------------------------------------------------------------------------- SynapseFilter

def test_synapse_filter_by_hand():
    f = SynapseFilter(tau=2.0)
    spikes = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    out = [f(s.reshape(1)).item() for s in spikes]
    # 1 | 1 - 1/2 = 0.5 | 0.25 | spike: no decay, +1 -> 1.25 | 2.25 | 2.25/2 = 1.125
    assert out == pytest.approx([1.0, 0.5, 0.25, 1.25, 2.25, 1.125])
    # non-binary input, formula applied literally: I = 1 - (1 - 0.5) * 1 / 2 + 0.5 = 1.25
    assert synapse_filter_step(torch.tensor(0.5), torch.tensor(1.0), 0.5).item() == pytest.approx(1.25)
    assert f.tau == 2.0 and list(f.parameters()) == []


def test_learnable_synapse_filter_by_hand():
    f = SynapseFilter(tau=4.0, learnable=True, step_mode="m")
    params = list(f.parameters())
    assert len(params) == 1 and params[0].shape == ()  # one scalar shared by all synapses
    assert f.w.item() == pytest.approx(-math.log(3.0))
    assert f.inv_tau.item() == pytest.approx(0.25) and f.tau == pytest.approx(4.0)
    out = f(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    # channel 0: 1, 0.75, 0.5625 ; channel 1: 0, 1, 0.75
    assert out[:, 0].tolist() == pytest.approx([1.0, 0.75, 0.5625])
    assert out[:, 1].tolist() == pytest.approx([0.0, 1.0, 0.75])
    # L = I0[2] = (1 - k)^2, k = sigmoid(w): dL/dw = -2 (1 - k) k (1 - k) = -2 * 0.75 * 0.25 * 0.75
    out[2, 0].backward()
    assert f.w.grad.item() == pytest.approx(-0.28125)


def test_synapse_filter_multi_step_equals_single_step_and_resets():
    x_seq = (torch.rand(9, 2, 3) > 0.5).float()
    single = SynapseFilter(tau=3.0, learnable=True)
    expected = torch.stack([single(x) for x in x_seq])
    multi = MultiStepContainer(SynapseFilter(tau=3.0, learnable=True))
    torch.testing.assert_close(multi(x_seq), expected)
    functional.reset_net(multi)
    assert multi[0].current is None


# ----------------------------------------------------------------------------- containers and functional

def test_seq_to_ann_container_equals_per_step_application():
    torch.manual_seed(0)
    layers = SeqToANNContainer(nn.Linear(4, 3), nn.ReLU())
    x_seq = torch.randn(5, 2, 4)
    out = layers(x_seq)
    assert out.shape == (5, 2, 3)
    torch.testing.assert_close(out, torch.stack([layers[1](layers[0](x)) for x in x_seq]))
    conv = SeqToANNContainer(nn.Conv2d(1, 2, 3, padding=1))
    assert conv(torch.randn(3, 2, 1, 6, 6)).shape == (3, 2, 2, 6, 6)


def test_functional_helpers_accept_modules_and_lists():
    lin = nn.Linear(3, 2)
    x_seq = torch.randn(4, 5, 3)
    expected = torch.stack([lin(x) for x in x_seq])
    torch.testing.assert_close(functional.seq_to_ann_forward(x_seq, lin), expected)
    torch.testing.assert_close(functional.seq_to_ann_forward(x_seq, [lin, nn.Identity()]), expected)
    node = IFNode()
    spikes = functional.multi_step_forward(torch.full((3, 1), 0.6), node)
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0]  # 0.6 | 1.2 -> spike, 0 | 0.6


def test_reset_net_resets_every_stateful_module():
    net = nn.Sequential(
        SeqToANNContainer(nn.Linear(4, 4)),
        MultiStepIFNode(),
        MultiStepContainer(LinearRecurrentContainer(LIFNode(tau=2.0), 4, 4)),
        MultiStepContainer(ElementWiseRecurrentContainer(IFNode(v_reset=None), lambda x, y: x + y)),
        MultiStepContainer(SynapseFilter(tau=2.0, learnable=True)),
    )
    net(torch.rand(3, 2, 4))
    stateful = [m for m in net.modules() if hasattr(m, "memories")]
    assert len(stateful) == 6
    assert all(value is not None for m in stateful for value in m.memories().values())
    functional.reset_net(net)
    assert all(value is None for m in stateful for value in m.memories().values())


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SynapseFilter(tau=1.0), r"tau=1.0 is invalid; expected a finite number > 1"),
        (lambda: SynapseFilter(tau=2.0, learnable="yes"), r"learnable='yes' is invalid"),
        (lambda: SynapseFilter(step_mode="x"), r"step_mode='x' is invalid"),
        (lambda: LinearRecurrentContainer(IFNode(), 0, 3), r"in_features=0 is invalid; expected a positive integer"),
        (lambda: LinearRecurrentContainer(MultiStepIFNode(), 3, 3), r"step_mode='m'; expected step_mode='s'"),
        (lambda: ElementWiseRecurrentContainer(IFNode(), "add"), r"element_wise_function='add' is invalid"),
        (lambda: MultiStepContainer(MultiStepIFNode()), r"MultiStepIFNode with step_mode='m'"),
        (lambda: SeqToANNContainer(nn.Linear(2, 2), IFNode()), r"IFNode is stateful; expected stateless modules"),
        (lambda: functional.reset_net("net"), r"net of type str is invalid"),
    ],
)
def test_bad_arguments_raise_value_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_inputs_raise_value_errors():
    c = LinearRecurrentContainer(IFNode(), 3, 3)
    with pytest.raises(ValueError, match=r"input shape \(2, 4\) is invalid; expected \[..., 3\]"):
        c(torch.zeros(2, 4))
    c(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"state shape \(2, 3\) does not match the expected \(5, 3\)"):
        c(torch.zeros(5, 3))
    wrong = LinearRecurrentContainer(IFNode(), 3, 2)  # an IF neuron keeps 3 features, not 2
    with pytest.raises(ValueError, match=r"sub_module output shape \(2, 3\) is invalid; expected \(2, 2\)"):
        wrong(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"expected \[T, B, ...\] \(at least 2 dims\)"):
        functional.seq_to_ann_forward(torch.zeros(3), nn.Identity())
    with pytest.raises(ValueError, match="time-major sequence"):
        functional.multi_step_forward(torch.zeros(0, 2), nn.Identity())
