"""BPSA nodes (paper HTGLIF and BrainCog HTDGLIF) and the ablation networks."""

import pytest
import torch

from reprolib.metrics import count_parameters
from reprolib.models.bpsa import NDropout, VotingLayer, build_bpsa_network
from reprolib.neurons.bpsa import BPSANode, BPSAParameters, BPSAState, bpsa_multistep, bpsa_step


# --------------------------------------------------------------- the two codes, transcribed for comparison

def braincog_htdglif_reference(x_seq, threshold=0.5, dt=1.0):
    """BrainCog HTDGLIFNode as printed in the lecture (IFNode integral with ReLU input)."""
    mem = torch.zeros_like(x_seq[0])
    outs = []
    for x in x_seq:
        mem = mem + torch.relu(x) * dt
        spike = mem.clone()
        spike[(spike < threshold)] = 0.0
        mem = torch.where(mem >= threshold, torch.zeros_like(mem), mem)
        mem = (mem + 0.2 * spike - 0.2 * spike.detach()) * dt
        outs.append(spike)
    return torch.stack(outs)


def paper_htglif_reference(x_seq, threshold=0.5, decay=0.9):
    """BP-STA HTGLIFNode.calc_spike (mem = input on the first step)."""
    mem = None
    outs = []
    for x in x_seq:
        mem = x if mem is None else mem + x
        spike = mem.clone()
        spike[(spike < threshold)] = 0.0
        spike = spike / (mem.detach().clone() + 1e-12)
        mem = torch.where(mem >= threshold, torch.zeros_like(mem), mem)
        mem = mem + 0.2 * spike - 0.2 * spike.detach()
        mem = mem * decay
        outs.append(spike)
    return torch.stack(outs)


@pytest.mark.parametrize("variant,reference", [("braincog", braincog_htdglif_reference),
                                               ("paper", paper_htglif_reference)])
def test_node_matches_source_code_forward_and_backward(variant, reference):
    torch.manual_seed(0)
    x = (torch.rand(12, 3, 5) * 0.8 - 0.1)
    if variant == "paper":
        x = torch.relu(x)  # the paper networks put a ReLU before every node
    weights = torch.randn(12, 3, 5)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref = reference(x_ref)
    out_ours = BPSANode(variant, step_mode="m")(x_ours)
    torch.testing.assert_close(out_ours, out_ref)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    assert (out_ref > 0).any() and (out_ref == 0).any()


def test_output_forms_binary_vs_graded():
    x = torch.tensor([[0.3, 0.7, 1.4]])
    paper, _ = bpsa_step(x, BPSAState(torch.zeros(1, 3)), BPSAParameters("paper"))
    braincog, _ = bpsa_step(x, BPSAState(torch.zeros(1, 3)), BPSAParameters("braincog"))
    assert paper.tolist() == [[0.0, 1.0, 1.0]]
    torch.testing.assert_close(braincog, torch.tensor([[0.0, 0.7, 1.4]]))


@pytest.mark.parametrize("variant", ["paper", "braincog"])
def test_spatial_adjustment_zero_gradient_below_threshold(variant):
    mem = torch.tensor([0.1, 0.49, 0.5, 0.8], requires_grad=True)
    out, _ = bpsa_step(torch.zeros(4), BPSAState(mem), BPSAParameters(variant, spatial=True))
    (grad,) = torch.autograd.grad(out.sum(), mem)
    assert grad[0] == 0 and grad[1] == 0
    expected_firing = torch.tensor([1 / 0.5, 1 / 0.8]) if variant == "paper" else torch.ones(2)
    torch.testing.assert_close(grad[2:], expected_firing)  # paper: 1/mem ("normalised"); braincog: 1
    out, _ = bpsa_step(torch.zeros(4), BPSAState(mem), BPSAParameters(variant, spatial=False))
    (grad,) = torch.autograd.grad(out.sum(), mem)
    assert (grad > 0).all()  # baseline surrogate: sub-threshold neurons get gradient
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0]  # binary spike at mem >= threshold
    assert grad[0].item() == pytest.approx(1.0 / (1 + (torch.pi / 2 * 2 * (0.1 - 0.5)) ** 2))  # ATan(2)


@pytest.mark.parametrize("variant,factor", [("braincog", 1.0), ("paper", 0.9)])
def test_temporal_residual_has_weight_point_two(variant, factor):
    mem = torch.tensor([0.3, 0.8], requires_grad=True)
    _, new = bpsa_step(torch.zeros(2), BPSAState(mem), BPSAParameters(variant, temporal=True))
    (grad,) = torch.autograd.grad(new.mem.sum(), mem)
    residual = 0.2 if variant == "braincog" else 0.2 / 0.8  # per unit of the normalised spike
    torch.testing.assert_close(grad, torch.tensor([factor, factor * residual]))
    _, plain = bpsa_step(torch.zeros(2), BPSAState(mem), BPSAParameters(variant, temporal=False))
    (grad,) = torch.autograd.grad(plain.mem.sum(), mem)
    torch.testing.assert_close(grad, torch.tensor([factor, 0.0]))  # detached hard reset
    torch.testing.assert_close(new.mem, plain.mem)  # backward only: same forward values


def test_gradient_crosses_spikes_only_with_temporal_adjustment():
    # braincog, constant 0.3: fires at t = 1 and t = 3; d out[3] / d x[0] must go through the reset at t = 1
    for temporal, expected in ((True, 0.2), (False, 0.0)):
        x = torch.full((4, 1), 0.3, requires_grad=True)
        out, _ = bpsa_multistep(x, BPSAState(torch.zeros(1)), BPSAParameters("braincog", temporal=temporal))
        assert out[:, 0].tolist() == pytest.approx([0.0, 0.6, 0.0, 0.6])
        (grad,) = torch.autograd.grad(out[3].sum(), x)
        assert grad[0].item() == pytest.approx(expected)
        assert grad[2].item() == pytest.approx(1.0)  # within the current inter-spike interval


def test_baseline_is_surrogate_lif_with_detached_hard_reset():
    torch.manual_seed(0)
    x = torch.rand(10, 2, 3) * 0.4
    out, _ = bpsa_multistep(x, BPSAState(torch.zeros(2, 3)), BPSAParameters("paper", spatial=False, temporal=False))
    v = torch.zeros(2, 3)
    for t in range(10):
        v = v + x[t]
        s = (v >= 0.5).float()
        assert torch.equal(out[t], s)
        v = 0.9 * v * (1 - s)
    # the adjustments change gradients only: the paper variant's spikes are identical for all four settings
    for spatial in (True, False):
        for temporal in (True, False):
            other, _ = bpsa_multistep(x, BPSAState(torch.zeros(2, 3)), BPSAParameters("paper", spatial, temporal))
            assert torch.equal(other, out)


def test_braincog_rectifies_input_and_has_no_leak():
    out, state = bpsa_step(torch.tensor([-1.0, 0.2]), BPSAState(torch.tensor([0.3, 0.1])), BPSAParameters("braincog"))
    torch.testing.assert_close(state.mem, torch.tensor([0.3, 0.3]))
    assert out.tolist() == [0.0, 0.0]


def test_node_modes_warm_up_and_bad_arguments():
    torch.manual_seed(0)
    node = BPSANode("paper", step_mode="m")
    x = torch.rand(6, 2, 4)
    out_m = node(x)
    node.reset()
    node.step_mode = "s"
    torch.testing.assert_close(torch.stack([node(xt) for xt in x]), out_m)
    node.warm_up = True
    assert torch.equal(node(x[0] - 0.5), x[0] - 0.5)
    with pytest.raises(ValueError, match="variant"):
        BPSANode("htg")
    with pytest.raises(ValueError, match="spatial"):
        BPSANode("paper", spatial="yes")
    for decay in (1.5, -0.1):
        with pytest.raises(ValueError, match=rf"decay={decay}; expected a leak factor in \[0, 1\]"):
            BPSANode("paper", decay=decay)
    for decay in (0.0, 1.0):  # the ends are neurons: reset every step, and no leak at all
        BPSANode("paper", decay=decay)


# ------------------------------------------------------------------------------------------------ networks

def test_voting_and_sequence_dropout():
    v = VotingLayer(2)
    torch.testing.assert_close(v(torch.tensor([[1.0, 3.0, 5.0, 7.0]])), torch.tensor([[2.0, 6.0]]))
    drop = NDropout(0.5).train()
    a = drop(torch.ones(4, 100))
    b = drop(torch.ones(4, 100))
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 2.0}  # one mask per sequence
    drop.reset()
    assert not torch.equal(drop(torch.ones(4, 100)), a)
    assert torch.equal(drop.eval()(torch.ones(2, 3)), torch.ones(2, 3))


def test_paper_convnet_shape_for_nmnist():
    net = build_bpsa_network(arch="convnet", in_shape=(2, 34, 34))
    expected = ((2 * 128 * 9 + 128) + 256 + (128 * 128 * 9 + 128) + 256 + (128 * 256 * 9 + 256) + 512
                + (256 * 512 * 9 + 512) + 1024 + (512 * 100 + 100))
    assert count_parameters(net) == expected
    assert sum(isinstance(m, BPSANode) for m in net.modules()) == 5


@pytest.mark.parametrize("in_shape", [(1, 28, 28), (2, 34, 34)])
def test_small_convnet_runs_on_both_inputs(in_shape):
    torch.manual_seed(0)
    net = build_bpsa_network(arch="convnet", in_shape=in_shape, channels=(4, 4, 8, 8), classes=3, voting=2)
    out = net(torch.rand(3, 2, *in_shape))
    assert out.shape == (3, 2, 3)
    out.mean(0).sum().backward()
    assert net.layers[0].weight.grad is not None


@pytest.mark.parametrize("variant", ["paper", "braincog"])
def test_mlp_contract_and_learning_signal(variant):
    torch.manual_seed(0)
    net = build_bpsa_network(variant=variant, arch="mlp", in_shape=(1, 6, 6), hidden=(32,), classes=4, voting=3)
    x = torch.rand(5, 8, 1, 6, 6)
    out = net(x)
    assert out.shape == (5, 8, 4)
    assert net(x.flatten(2)).shape == (5, 8, 4)  # flattened input accepted
    # activity over all node outputs (32 hidden + 12 output neurons), strict > 0
    assert 0 < net.last_activity.item() < 1
    assert net.last_spike_count.item() == pytest.approx(net.last_activity.item() * 5 * 8 * (32 + 12))
    loss = ((out.mean(0) - torch.eye(4)[torch.arange(8) % 4]) ** 2).mean()
    loss.backward()
    assert net.layers[0].weight.grad.abs().sum() > 0


def test_network_bad_arguments():
    with pytest.raises(ValueError, match="arch"):
        build_bpsa_network(arch="resnet")
    with pytest.raises(ValueError, match="in_shape"):
        build_bpsa_network(arch="convnet", in_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="expected"):
        build_bpsa_network(arch="mlp", in_shape=(1, 6, 6))(torch.rand(2, 3, 35))
