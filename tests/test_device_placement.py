"""Device placement without a GPU: every model of the experiment presets runs on PyTorch's ``meta`` device.

A tensor created on the CPU inside a forward / step function / loss (``torch.zeros(...)`` without ``device=``,
a state initialised on the CPU, a tensor kept as a plain attribute instead of a buffer, ...) raises as soon as
it meets a meta tensor, exactly where it would meet a CUDA tensor on a GPU. Each case builds the model on the
CPU as the training loop does, moves it with ``.to("meta")``, feeds it a meta batch shaped as the preset's
encoder produces it (the encoder itself runs on meta where it can), runs one forward, the config's loss and
one backward, and checks that the output, the gradients and the activity metrics are on meta.

Not device bugs, so worked around here rather than skipped:

* ``reprolib.metrics.spike_count`` copies the (0-dim) spike count to the CPU once per forward, by design;
  a meta tensor has no data to copy, so it is replaced by a same-device sum for these tests;
* the latency encoder checks the pixel range and the spike times on their values (data-dependent Python
  control flow): it encodes a CPU batch, which is then moved to meta;
* ``seq_nll`` with per-step labels (ECG) counts the labelled steps with ``int(...)`` (data-dependent): those
  cases backpropagate a plain reduction of the output instead;
* sequences are cut to at most 64 steps (S-MNIST has 784; the length does not change where tensors live).
"""

from __future__ import annotations

import json

import pytest
import torch

from reprolib.experiments import get_configs, list_experiments
from reprolib.training.build import build_encoder, build_model
from reprolib.training.losses import get_loss

MAX_STEPS = 64
BATCH = 3

# per-sample shape of each dataset (sequence datasets with a short T)
SAMPLE_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "ecg-qtdb": (16, 4), "shd": (16, 700)}
PER_STEP_LABELS = {"ecg-qtdb"}


def _sample_shape(config) -> tuple:
    if config.dataset == "nmnist-subset":
        return (config.dataset_options["n_time_bins"], 2, 34, 34)
    if config.dataset == "reprolib.training.toy:build_toy_dataset":
        return (config.model_options.get("in_features", 16),)
    return SAMPLE_SHAPES[config.dataset]


def _variant_key(config) -> tuple:
    """What changes the code a model runs (not its sizes): one case per distinct key."""
    options = config.model_options
    return (config.model.rsplit(":", 1)[-1], options.get("neuron"), options.get("arch"), config.dataset.rsplit(":", 1)[-1],
            config.encoding.rsplit(":", 1)[-1], "permuted" if config.encoding_options.get("permutation_seed") is not None else None,
            "noise" if options.get("noise_sigma") else None, "spatial" if options.get("spatial") else None,
            "temporal" if options.get("temporal") else None, "no-bypass" if options.get("relu_bypass") is False else None)


def _cases() -> list:
    cases, seen = [], set()
    for experiment in list_experiments():
        for scale in ("ci", "paper"):
            configs = get_configs(experiment, scale)
            # ci: every distinct variant of the preset; paper: its first config (paper-scale options, e.g. convnet)
            for config in configs if scale == "ci" else configs[:1]:
                key = (_variant_key(config), json.dumps(config.model_options, sort_keys=True) if scale == "paper" else "")
                if key in seen:
                    continue
                seen.add(key)
                parts = [experiment, scale, *(str(v) for v in _variant_key(config) if v is not None)]
                cases.append(pytest.param(config, id="-".join(parts)))
    return cases


def _same_device_spike_count(s_seqs):
    seqs = [s_seqs] if isinstance(s_seqs, torch.Tensor) else list(s_seqs)
    return sum((s.detach() > 0).sum() for s in seqs)


@pytest.fixture
def meta_metrics(monkeypatch):
    """``spike_count`` without its by-design copy to the CPU (impossible on meta), wherever it was imported."""
    import reprolib.metrics
    import reprolib.models.resonate
    import reprolib.models.spikingjelly
    import reprolib.models.src

    for module in (reprolib.metrics, reprolib.models.resonate, reprolib.models.spikingjelly, reprolib.models.src):
        monkeypatch.setattr(module, "spike_count", _same_device_spike_count)


def _encode_on_meta(config) -> torch.Tensor:
    encoder = build_encoder(config)
    x = torch.rand((BATCH, *_sample_shape(config)))
    if config.encoding in ("latency", "latency_src"):  # value checks in Python: encode on the CPU
        x_seq = encoder(x).to("meta")
    else:
        x_seq = encoder(x.to("meta"))
    assert x_seq.device.type == "meta"
    return x_seq[:MAX_STEPS]


@pytest.mark.parametrize("config", _cases())
def test_model_forward_backward_on_meta(config, meta_metrics):
    torch.manual_seed(0)
    model = build_model(config).to("meta")
    model.train()
    x_seq = _encode_on_meta(config)

    out = model(x_seq)
    assert out.device.type == "meta"
    assert out.shape[:2] == x_seq.shape[:2]
    for name in ("last_activity", "last_spike_count"):
        value = getattr(model, name, None)
        assert value is None or value.device.type == "meta", f"{name} is on {value.device}"

    if config.dataset in PER_STEP_LABELS:
        loss = out.float().square().mean()
    else:
        y = torch.zeros(BATCH, dtype=torch.long, device="meta")
        result = get_loss(config.loss, **config.loss_options)(out, y)
        loss = result.loss
        assert result.correct.device.type == "meta"
    assert loss.device.type == "meta"
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads)
    assert all(g.device.type == "meta" for g in grads if g is not None)
    if hasattr(model, "after_optimizer_step"):
        model.after_optimizer_step()
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert tensor.device.type == "meta", f"{name} stayed on {tensor.device}"


def test_bpsa_node_has_no_nan_in_float16():
    """Under CUDA autocast the BPSA nodes run in float16: the 1e-12 guard of ``a / m`` rounds to 0 there, so a
    silent neuron with ``m == 0`` (common after the ReLU) gave 0 / 0 = NaN. Same numbers as float32 now."""
    from reprolib.neurons.bpsa import BPSAParameters, BPSAState, bpsa_multistep

    x = torch.rand(6, 4, 5) * 0.6
    x[:, :, :2] = 0.0  # never fire, membrane stays exactly 0
    for spatial in (True, False):
        params = BPSAParameters(spatial=spatial)
        out32, _ = bpsa_multistep(x, BPSAState(torch.zeros(4, 5)), params)
        out16, _ = bpsa_multistep(x.half(), BPSAState(torch.zeros(4, 5, dtype=torch.half)), params)
        assert not torch.isnan(out16).any()
        assert torch.equal(out16.float(), out32)


def test_bpsa_network_under_float16_autocast_is_finite():
    from reprolib.models.bpsa import build_bpsa_network

    torch.manual_seed(0)
    net = build_bpsa_network(arch="mlp", in_shape=(16,), hidden=(8,), classes=2, voting=2)
    x_seq = torch.rand(4, 3, 16)
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            out = net(x_seq)
    except RuntimeError as error:  # pragma: no cover - old PyTorch without CPU float16 autocast
        pytest.skip(f"CPU float16 autocast unavailable: {error}")
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
