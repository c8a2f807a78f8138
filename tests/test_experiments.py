"""Presets: grid sizes, paper settings from the reference files, shared configs, ci scale, overrides."""

from __future__ import annotations

import pytest

from reprolib.config import ConfigError
from reprolib.experiments import PRESETS, describe, get_configs, get_preset, list_experiments

GRID_PER_SEED = {  # configs per seed of each figure / table
    "sj-clock-lif-mnist": 1, "sj-seq-fmnist": 3, "bpsa-simlen": 16, "src-table2": 40, "src-bypass": 2,
    "src-overfit": 3, "src-activity": 16, "src-activity-lif-fixed": 2, "src-lif-reset": 2, "src-depth": 6, "src-noise": 4,
    "brf-smnist": 3, "brf-psmnist": 3, "brf-ecg": 6, "brf-ecg-alif-bias": 2, "brf-shd": 3, "toy": 2,
}


def test_every_source_experiment_is_listed():
    assert set(GRID_PER_SEED) == set(list_experiments())


@pytest.mark.parametrize("experiment", sorted(GRID_PER_SEED))
@pytest.mark.parametrize("scale", ["ci", "paper"])
def test_grid_sizes_and_uniqueness(experiment, scale):
    configs = get_configs(experiment, scale, seeds=[0, 1])
    assert len(configs) == 2 * GRID_PER_SEED[experiment]
    assert len({c.hash for c in configs}) == len(configs)
    assert all(c.scale == scale for c in configs)
    assert get_preset(experiment).notes


def test_default_seeds():
    assert [c.seed for c in get_configs("sj-seq-fmnist", "paper")] == [2020] * 3
    assert len(get_configs("src-bypass", "paper")) == 2 * 5  # 5 models per setting (Fig. 2)
    assert len(get_configs("src-table2", "ci")) == 40


def test_shared_figures_hash_like_table2():
    for scale in ("ci", "paper"):
        table2 = {c.hash: c for c in get_configs("src-table2", scale, seeds=[0, 1, 2])}
        overfit = get_configs("src-overfit", scale, seeds=[0, 1, 2])
        activity = get_configs("src-activity", scale, seeds=[0, 1, 2])
        assert all(c.hash in table2 and table2[c.hash] == c for c in overfit + activity)
        assert {c.model_options["layers"] for c in overfit} == {2, 3, 5}
        assert {(c.dataset, c.encoding, c.model) for c in overfit} == {("fashion-mnist", "latency", "src-net")}
        assert {c.dataset for c in activity} == {"mnist"}


def test_paper_settings_follow_the_sources():
    sj = get_configs("sj-clock-lif-mnist", "paper")[0]
    assert (sj.model, sj.model_options, sj.encoding, sj.encoding_options["num_steps"]) == \
        ("sj-lif-mlp", {"tau": 100.0, "alpha": 1.0}, "poisson", 50)
    assert (sj.optimizer, sj.lr, sj.batch_size, sj.epochs, sj.loss, sj.selection) == ("adam", 1e-3, 128, 100, "rate_mse", "last")

    seq = get_configs("sj-seq-fmnist", "paper")
    assert {c.model for c in seq} == {"sj-plain", "sj-feedback", "sj-stateful-synapse"}
    s = seq[0]
    assert (s.optimizer, s.lr, s.momentum, s.schedule, s.epochs, s.amp, s.seed) == ("sgd", 0.1, 0.9, "cosine", 90, True, 2020)
    assert s.dataset_options == {"normalize": [0.2860, 0.3530]} and s.eval_splits == ("test", "train_eval")

    bpsa = get_configs("bpsa-simlen", "paper", seeds=[0])
    assert {(c.model_options["spatial"], c.model_options["temporal"]) for c in bpsa} == {
        (False, False), (True, False), (False, True), (True, True)}
    assert {c.encoding_options["num_steps"] for c in bpsa} == {2, 4, 8, 16}
    b = bpsa[0]
    assert (b.optimizer, b.lr, b.weight_decay, b.schedule, b.schedule_options["warmup_epochs"], b.epochs) == \
        ("adamw", 1e-3, 1e-4, "warmup_cosine", 5, 300)
    assert b.model_options["arch"] == "convnet" and b.encoding_options["flatten"] is False
    assert get_configs("bpsa-simlen", "ci")[0].model_options["arch"] == "mlp"

    table2 = get_configs("src-table2", "paper", seeds=[0])
    for c in table2:
        decay = 0.99 if c.encoding == "latency" else 0.9
        key = "alpha" if c.model == "src-net" else "beta"
        assert c.model_options[key] == decay
        assert c.epochs == (200 if c.dataset == "fashion-mnist" else 100)
        assert (c.lr, c.schedule, c.grad_clip, c.batch_size, c.loss, c.val_fraction) == (0.005, "cosine", 1.0, 64, "final_ce", 0.1)
        if c.dataset == "nmnist-subset":
            assert c.encoding == "sequence" and c.model_options["in_features"] == 2312
    assert {c.encoding_options.get("gain") for c in table2 if c.encoding == "rate"} == {0.25}
    assert {c.encoding_options["num_steps"] for c in table2 if c.encoding != "sequence"} == {200}

    smnist = {c.model_options["neuron"]: c for c in get_configs("brf-smnist", "paper", seeds=[0])}
    assert smnist["brf"].lr == 0.1 and smnist["brf"].model_options["omega_range"] == [15.0, 50.0]
    assert smnist["brf"].loss_options["label_last"] is True and smnist["brf"].grad_clip == 1.0
    assert smnist["alif"].lr == 0.001 and smnist["alif"].grad_clip is None
    assert smnist["rf"].model_options["omega_range"] == smnist["brf"].model_options["omega_range"]
    assert smnist["brf"].selection == "best_val_loss" and smnist["brf"].schedule == "linear_decay"
    psmnist = {c.model_options["neuron"]: c for c in get_configs("brf-psmnist", "paper", seeds=[0])}
    assert psmnist["brf"].model_options["omega_range"] == [15.0, 85.0] and psmnist["brf"].loss_options["label_last"] is False
    assert psmnist["brf"].encoding_options == {"permutation_seed": 0}
    # the source draws a new permutation in every run: ours comes from the run's seed ($seed)
    runs = get_configs("brf-psmnist", "paper", seeds=[1, 3], neuron=["brf"])
    assert [(c.seed, c.encoding_options["permutation_seed"]) for c in runs] == [(1, 1), (3, 3)]
    assert {c.nonfinite_loss for c in get_configs("brf-ecg", "paper")} == {"stop"}  # the BRF scripts stop at NaN
    # BPSA trains the lecture's neuron (BrainCog's HTDGLIFNode)
    assert {c.model_options["variant"] for c in get_configs("bpsa-simlen", "paper")} == {"braincog"}
    shd = {c.model_options["neuron"]: c for c in get_configs("brf-shd", "paper", seeds=[0])}
    assert (shd["brf"].lr, shd["brf"].batch_size, shd["brf"].epochs, shd["brf"].grad_clip) == (0.075, 32, 20, None)
    assert shd["brf"].model_options["b_offset_range"] == [2.0, 3.0] and shd["alif"].loss_options["skip_steps"] == 10
    ecg = {c.model_options["neuron"]: c for c in get_configs("brf-ecg", "paper", seeds=[0], labels=["source"])}
    assert (ecg["brf"].batch_size, ecg["brf"].epochs, ecg["alif"].lr, ecg["alif"].batch_size) == (16, 400, 0.05, 64)
    # the source's argmax makes unlabelled steps class 0; the "masked" variant keeps the first records' hashes
    assert ecg["brf"].dataset_options == {"unlabelled": "class0"}
    masked = get_configs("brf-ecg", "paper", seeds=[0], labels=["masked"])
    assert all(c.dataset_options == {} for c in masked) and len(masked) == 3


def test_ci_scale_is_small_but_the_same_code_path():
    for experiment in PRESETS:
        paper = get_configs(experiment, "paper", seeds=[0])
        ci = get_configs(experiment, "ci", seeds=[0])
        for p, c in zip(paper, ci):
            assert (p.model, p.dataset, p.encoding, p.loss, p.optimizer) == (c.model, c.dataset, c.encoding, c.loss, c.optimizer)
            assert c.epochs <= 3
            if experiment != "toy":
                assert c.train_subset is not None and c.train_subset <= 1024


def test_grid_overrides():
    configs = get_configs("src-table2", "ci", seeds=[0], layers=[1, 2], input="mnist-rate")
    assert len(configs) == 4 and {c.model_options["layers"] for c in configs} == {1, 2}
    assert get_configs("src-table2", "ci", seeds=[0], layers=[4], input="nmnist", model="lif")[0].model_options["layers"] == 4
    tuned = get_configs("toy", "ci", epochs=5, model_options__hidden=64)
    assert {c.epochs for c in tuned} == {5} and {c.model_options["hidden"] for c in tuned} == {64}
    with pytest.raises(ConfigError, match=r"axis 'input' has no choice 'cifar'.*mnist-rate"):
        get_configs("src-table2", "ci", input="cifar")
    with pytest.raises(ConfigError, match="axis 'layers' has no choice 4"):
        get_configs("src-overfit", "ci", layers=[4])  # a derived figure only narrows its source grid
    with pytest.raises(ConfigError, match="'scale' = 'full'|scale = 'full'"):
        get_configs("toy", "full")
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        get_configs("nope")
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        get_configs("toy", epoch=3)


def test_describe_mentions_grid_and_notes():
    text = describe("src-noise")
    assert "4 configs per seed" in text and "not given in the paper" in text and "noise_sigma" in text


@pytest.mark.parametrize("scale", ["ci", "paper"])
def test_the_reset_probe_is_table2s_lif_with_only_its_reset_changed(scale):
    import torch

    from reprolib.training.build import initial_model

    probes = get_configs("src-lif-reset", scale, seeds=[1])
    assert get_preset("src-lif-reset").seeds["paper"] == [0, 1, 2]
    assert [c.encoding for c in probes] == ["rate", "latency"]
    for probe in probes:
        table2 = get_configs("src-table2", scale, seeds=[1], input=f"mnist-{probe.encoding}", layers=[1],
                             model="lif")[0]
        assert table2.model_options["reset"] == "zero"
        assert probe.to_dict() == {**table2.to_dict(), "experiment": "src-lif-reset",
                                   "model_options": {**table2.model_options, "reset": "subtract"}}
        # the reset has no parameter: the same seed starts from the same weights
        start, same = initial_model(table2).state_dict(), initial_model(probe).state_dict()
        assert start.keys() == same.keys() and all(torch.equal(start[k], same[k]) for k in start)


def test_the_fixed_lif_preset_is_table2s_lif_with_only_its_leak_threshold_and_bias_changed():
    import torch

    from reprolib.training.build import initial_model

    table2 = get_configs("src-table2", "ci", seeds=[0], input="mnist-rate", layers=[1], model="lif")[0]
    fixed, no_bias = get_configs("src-activity-lif-fixed", "ci", seeds=[0])
    assert get_preset("src-activity-lif-fixed").seeds["paper"] == [0, 1, 2]
    for config, changed in ((fixed, {}), (no_bias, {"bias": False})):
        assert config.to_dict() == {**table2.to_dict(), "experiment": "src-activity-lif-fixed", "model_options": {
            **table2.model_options, "learn_beta": False, "learn_threshold": False, **changed}}
    learned, frozen, unbiased = (initial_model(c) for c in (table2, fixed, no_bias))
    assert {"blocks.0.lif.beta", "blocks.0.lif.threshold"} <= {name for name, _ in learned.named_parameters()}
    assert [name for name, _ in frozen.named_parameters()] == ["blocks.0.linear.weight", "blocks.0.linear.bias"]
    assert [name for name, _ in unbiased.named_parameters()] == ["blocks.0.linear.weight"]
    assert float(frozen.blocks[0].lif.beta) == pytest.approx(0.9) and float(frozen.blocks[0].lif.threshold) == 1.0
    # the same seed: 'fixed' starts from Table 2's weights, 'fixed-no-bias' (no bias drawn) from others
    start, same = learned.state_dict(), frozen.state_dict()
    assert all(torch.equal(start[name], same[name]) for name in same)
    assert not torch.equal(start["blocks.0.linear.weight"], unbiased.state_dict()["blocks.0.linear.weight"])
