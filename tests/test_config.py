"""ExperimentConfig: validation messages name key, value and what is allowed; hashes are stable."""

from __future__ import annotations

import pytest

from reprolib.config import (
    ConfigError,
    ExperimentConfig,
    config_hash,
    parse_assignments,
    parse_selection,
    parse_value,
    select_configs,
    with_overrides,
)

BASE = dict(experiment="unit", dataset="mnist", model="sj-lif-mlp", encoding="poisson",
            encoding_options={"num_steps": 8}, model_options={"tau": 100.0})


def make(**changes) -> ExperimentConfig:
    return ExperimentConfig.from_dict({**BASE, **changes})


def test_defaults_are_filled_in_and_round_trip():
    config = make(schedule="cosine", loss="seq_nll")
    assert config.schedule_options == {"T_max": None, "eta_min": 0.0}
    assert config.loss_options == {"label_last": False, "skip_steps": 0}
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["eval_splits"] == ["test"]


@pytest.mark.parametrize("changes, fragments", [
    ({"optimizer": "rmsprop"}, ["'optimizer'", "'rmsprop'", "['adam', 'adamw', 'sgd']"]),
    ({"schedule": "exp"}, ["'schedule'", "'exp'", "warmup_cosine"]),
    ({"loss": "ce"}, ["'loss'", "'ce'", "rate_mse"]),
    ({"lr": -1}, ["'lr'", "-1", "> 0"]),
    ({"lr": "fast"}, ["'lr'", "'fast'", "finite number"]),
    ({"batch_size": 0}, ["'batch_size'", "0", ">= 1"]),
    ({"epochs": True}, ["'epochs'", "True", "integer"]),
    ({"grad_clip": 0.0}, ["'grad_clip'", "0.0", "positive"]),
    ({"device": "gpu"}, ["'device'", "'gpu'", "cuda:N"]),
    ({"backend": "triton"}, ["'backend'", "'triton'", "'cpp'"]),
    ({"scale": "huge"}, ["'scale'", "'huge'", "['ci', 'paper']"]),
    ({"val_fraction": 1.0}, ["'val_fraction'", "1.0", "[0, 1)"]),
    ({"eval_splits": ["test", "holdout"]}, ["'eval_splits'", "holdout", "train_eval"]),
    ({"eval_splits": ["val", "test"]}, ["'eval_splits'", "val_fraction is 0"]),
    ({"selection": "best_val_loss"}, ["'selection'", "best_val_loss", "'val'"]),
    ({"amp": "yes"}, ["'amp'", "'yes'", "true or false"]),
    ({"train_subset": -3}, ["'train_subset'", "-3", "positive integer or None"]),
    ({"schedule": "step", "schedule_options": {"step": 3}}, ["schedule_options.step", "'step'", "step_size"]),
    ({"schedule": "cosine", "schedule_options": {"T_max": 0}}, ["schedule_options.T_max", "0"]),
    ({"loss": "seq_nll", "loss_options": {"skip_steps": -1}}, ["loss_options.skip_steps", "-1", ">= 0"]),
    ({"loss": "rate_mse", "loss_options": {"label_last": True}}, ["loss_options.label_last", "'rate_mse'", "takes none"]),
    ({"model_options": {"tau": float("nan")}}, ["model_options.tau", "nan", "finite"]),
    ({"model": ""}, ["'model'", "non-empty string"]),
])
def test_bad_values_name_key_value_and_allowed(changes, fragments):
    with pytest.raises(ConfigError) as info:
        make(**changes)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_unknown_and_missing_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'learning_rate'.*allowed keys"):
        ExperimentConfig.from_dict({**BASE, "learning_rate": 0.1})
    data = dict(BASE)
    del data["dataset"]
    with pytest.raises(ConfigError, match=r"'dataset' is missing"):
        ExperimentConfig.from_dict(data)


def test_hash_is_stable_ignores_device_and_key_order():
    a = make(model_options={"tau": 100.0, "alpha": 1.0})
    b = make(model_options={"alpha": 1.0, "tau": 100.0}, device="cpu")
    c = make(model_options={"alpha": 1.0, "tau": 100.0}, backend="cpp")  # same equations, other code
    assert config_hash(a) == config_hash(b) == config_hash(c) == a.hash
    assert len(a.hash) == 16
    assert config_hash(make(lr=0.002)) != a.hash
    assert config_hash(make(model_options={"tau": 100.0, "alpha": 2.0})) != a.hash
    # a default spelled out hashes like the default left implicit
    assert make(schedule="cosine").hash == make(schedule="cosine", schedule_options={"eta_min": 0.0}).hash
    # pinned: a change of the hash scheme would orphan every committed record
    assert make().hash == make().hash and make().hash == config_hash(ExperimentConfig.from_dict(make().to_dict()))


def test_with_overrides_dotted_and_validated():
    config = make()
    changed = with_overrides(config, {"model_options.alpha": 4.0, "lr": 0.01, "encoding_options.num_steps": 16})
    assert changed.model_options == {"tau": 100.0, "alpha": 4.0}
    assert changed.lr == 0.01 and changed.encoding_options["num_steps"] == 16
    assert config.model_options == {"tau": 100.0}  # the original is untouched
    with pytest.raises(ConfigError, match="unknown config key 'modell'"):
        with_overrides(config, {"modell.x": 1})
    with pytest.raises(ConfigError, match="'optimizer'"):
        with_overrides(config, {"optimizer": "lbfgs"})
    with pytest.raises(ConfigError, match="has no options"):
        with_overrides(config, {"lr.x": 1})


def test_command_line_values():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("True") is True and parse_value("None") is None and parse_value("[1, 2]") == [1, 2]
    assert parse_value("adamw") == "adamw"
    assert parse_assignments(["a.b=3", "lr = 0.1"]) == {"a.b": 3, "lr": 0.1}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["epochs"])


def test_select_configs():
    configs = [make(seed=s, model_options={"tau": t}) for s in (0, 1) for t in (2.0, 100.0)]
    assert len(select_configs(configs, parse_selection(["model_options.tau=2.0"]))) == 2
    assert len(select_configs(configs, parse_selection(["seed=1", "model_options.tau=2.0"]))) == 1
    assert len(select_configs(configs, parse_selection(["seed=0", "seed=1"]))) == 4
    wanted = [configs[0].hash, configs[3].hash]
    assert select_configs(configs, parse_selection([f"config_hash={','.join(wanted)}"])) == [configs[0], configs[3]]
    with pytest.raises(ConfigError, match="'colour' is not a config key"):
        select_configs(configs, {"colour": ["red"]})


def test_hash_survives_a_new_field_with_a_default():
    """Records are named by the hash: a field added later (left at its default) must not rename them."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class FutureConfig(ExperimentConfig):
        new_option: int = 7

    config = make(seed=3)
    future = FutureConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ExperimentConfig)})
    assert config_hash(future) == config_hash(config)
    # ... while a non-default value of the new field does change the identity
    assert config_hash(dataclasses.replace(future, new_option=8)) != config_hash(config)
