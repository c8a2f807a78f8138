"""Our LIF against SpikingJelly's own ``LIFNode`` (when SpikingJelly is importable; the benchmark compares
their speed, so they must first compute the same thing): identical spikes and membranes, equal gradients.

Not installed by ``make test`` (SpikingJelly 2.0 pulls torchaudio, tensorboard, SciencePlots ...); run it with
``pip install --no-deps spikingjelly==2.0.0 'loguru<1'`` or on a machine that has it.
"""

from __future__ import annotations

import pytest
import torch

sj = pytest.importorskip("spikingjelly.activation_based.neuron", reason="SpikingJelly is not installed")

from reprolib import surrogate as S  # noqa: E402
from reprolib.kernels import bench  # noqa: E402
from reprolib.neurons.integrate_fire import MultiStepLIFNode  # noqa: E402


@pytest.mark.parametrize("backend", ["torch", "cpp"])
def test_lif_equals_spikingjelly_lifnode(backend):
    if backend == "cpp":
        from reprolib.kernels import cpu

        if not cpu.cpp_available():
            pytest.skip("no C++ compiler")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, 33, generator=g) * 0.6 + 0.8
    cot = torch.randn(50, 4, 33, generator=g)
    theirs_x, ours_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    theirs = bench.spikingjelly_lif("cpu")(theirs_x)
    ours = MultiStepLIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                            surrogate_function=S.Sigmoid(alpha=4.0), backend=backend)(ours_x)
    assert 0.05 < float(ours.mean()) < 0.95
    assert torch.equal(theirs, ours)
    (theirs * cot).sum().backward()
    (ours * cot).sum().backward()
    torch.testing.assert_close(ours_x.grad, theirs_x.grad, rtol=1e-5, atol=1e-6)
