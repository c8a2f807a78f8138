"""Activity, spike-count, SOP and parameter-count metrics."""

import pytest
import torch
from torch import nn

from reprolib.metrics import (count_parameters, firing_rate_per_neuron, relative_spiking_steps, sop_per_step,
                              spike_count, spike_onset_count, spiking_step_fraction, synaptic_operations)


def test_relative_spiking_steps_is_strict():
    # SRC-like graded output: zeros must not count (a non-strict Heaviside would give 1.0)
    s = torch.tensor([[0.0], [0.3], [0.9], [0.0]]).unsqueeze(-1)  # [T=4, B=1, N=1]
    assert spiking_step_fraction(s).item() == pytest.approx(0.5)
    assert relative_spiking_steps(torch.zeros(5, 2, 3)).item() == 0.0


def test_relative_spiking_steps_weighs_each_neuron_equally_across_layers():
    layer_a = torch.ones(4, 1, 1)          # 1 neuron always active
    layer_b = torch.zeros(4, 1, 3)         # 3 silent neurons
    assert relative_spiking_steps([layer_a, layer_b]).item() == pytest.approx(0.25)
    per_neuron = spiking_step_fraction(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).unsqueeze(1))
    torch.testing.assert_close(per_neuron, torch.tensor([[1.0, 0.5]]))


def test_spike_counts_and_onsets():
    s = torch.tensor([0.0, 0.2, 0.8, 0.1, 0.0, 0.5, 0.0, 1.0]).view(8, 1, 1)
    assert spike_count(s).item() == 5         # spiking steps
    assert spike_onset_count(s).item() == 3   # spike events
    binary = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert spike_count([binary, binary]).item() == 6
    assert spike_onset_count(torch.ones(3, 2)).item() == 2


def test_brf_sop_definitions_reproduce_table1_ratios():
    # SOP per sample = total spikes / samples; per step = SOP / T (BRF Table 1: 15,462.6 / 784 = 19.72)
    assert synaptic_operations(154626, 10) == pytest.approx(15462.6)
    assert sop_per_step(15462.6, 784) == pytest.approx(19.72, abs=0.005)
    assert sop_per_step(3502.6, 250) == pytest.approx(14.01, abs=0.005)
    assert firing_rate_per_neuron(3502.6 * 2, 2, 250, 128) == pytest.approx(3502.6 / (250 * 128))


def test_count_parameters_trainable_only():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))
    net[1].weight.requires_grad_(False)
    net.register_buffer("frozen", torch.ones(100))
    assert count_parameters(net) == 16
    assert count_parameters(net, trainable_only=False) == 24


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="s_seq"):
        spiking_step_fraction(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="num_samples"):
        synaptic_operations(10, 0)
    with pytest.raises(ValueError, match="num_steps"):
        sop_per_step(1.0, -1)
    with pytest.raises(ValueError, match="nn.Module"):
        count_parameters([torch.zeros(3)])
    with pytest.raises(ValueError, match="empty"):
        relative_spiking_steps([])


def test_relative_spiking_steps_takes_a_count_made_already():
    from reprolib.metrics import spike_count

    layers = [torch.tensor([[[0.0, 1.0, 0.5]], [[-1.0, 0.0, 2.0]]]), torch.tensor([[[1.0]], [[0.0]]])]
    count = spike_count(layers)
    assert count.item() == 4
    assert relative_spiking_steps(layers, count).item() == relative_spiking_steps(layers).item() == 4 / 8
    with pytest.raises(ValueError):
        relative_spiking_steps([torch.zeros(0, 2)], count)  # the sequences are still checked


def test_relative_spiking_steps_refuses_layers_of_other_t_or_b():
    a, b = torch.ones(4, 2, 3), torch.ones(5, 2, 3)
    with pytest.raises(ValueError, match="expected the same T and B in every layer"):
        relative_spiking_steps([a, b])
    assert float(relative_spiking_steps([a, a], spiking=torch.tensor(12))) == 0.25
    # a given count is taken as it is (reading it would sync a GPU in every forward), even on the meta device
    meta = torch.ones(4, 2, 3, device="meta")
    assert relative_spiking_steps(meta, spiking=torch.tensor(3, device="meta")).device.type == "meta"
