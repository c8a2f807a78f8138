"""The experiment config: every setting of one training run, typed and validated.

One :class:`ExperimentConfig` fully describes one run of the single training loop
(:func:`reprolib.training.train`). It is frozen, validated on construction (bad input fails here, before any
data is loaded, with a message naming the key, the value and what is allowed) and identified by
:func:`config_hash`, which names its run record ``results/<experiment>/<hash>.json``.

Model, dataset and encoder options are free-form dictionaries: their builders validate them (the training
loop builds them before loading data, so those errors also come early). Names are looked up in the
registries (``reprolib.models.MODEL_BUILDERS``, ``reprolib.data.DATASETS``, ``reprolib.encoding``) or may be
given as ``"package.module:function"`` to plug in a builder without touching a registry.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "cosine", "step", "linear_decay", "warmup_cosine")
LOSSES = ("rate_mse", "final_ce", "seq_nll")
SCALES = ("ci", "paper")
EVAL_SPLITS = ("val", "test", "train_eval")
SELECTIONS = ("best_val_loss", "last")
#: what a run does when its training loss turns NaN or infinite (see ExperimentConfig.nonfinite_loss)
NONFINITE_LOSS = ("error", "stop")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
#: an experiment name is the folder of its records under the results folder
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Allowed options (name -> default) per schedule and per loss; defaults are filled in on construction so
# that two configs meaning the same run hash the same.
SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "cosine": {"T_max": None, "eta_min": 0.0},  # T_max None = the number of epochs
    "step": {"step_size": 30, "gamma": 0.1},
    "linear_decay": {},  # BRF "LinearLR": factor 1 - epoch / epochs
    "warmup_cosine": {"warmup_epochs": 5},  # BP-STA: lr / (w - e) for e < w, then cosine to 0
}
LOSS_OPTIONS: dict[str, dict[str, Any]] = {
    "rate_mse": {},
    "final_ce": {},
    "seq_nll": {"label_last": False, "skip_steps": 0},
}

# Keys left out of the hash: they say where and how a run executes, not what it computes. nonfinite_loss
# changes nothing in a run whose loss stays finite, and a run whose loss does not writes no record under
# "error", so a hash still names one outcome; leaving it out keeps the records made before it existed valid.
HASH_EXCLUDED = ("device", "backend", "flush_denormal", "nonfinite_loss")
#: implementations of the neuron time loops (reprolib.kernels): same equations, different code and speed
BACKENDS = ("torch", "auto", "cupy", "cpp")


class ConfigError(ValueError):
    """A config key has a value that is not allowed (the message names key, value and what is allowed)."""


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"config key {key!r} = {value!r} is not allowed; expected {allowed}")


def _plain(value: Any, key: str) -> Any:
    """Deep copy of ``value`` as JSON-compatible containers (tuples become lists); rejects other objects."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(key, value, "a mapping with string keys")
            out[k] = _plain(v, f"{key}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(key, value, "a finite number")
        return value
    _fail(key, value, "JSON-compatible values (numbers, strings, booleans, None, lists, mappings)")


@dataclass(frozen=True)
class ExperimentConfig:
    """All settings of one training run (see the module docstring and CONTRIBUTING.md)."""

    experiment: str
    dataset: str
    model: str
    encoding: str
    dataset_options: dict = field(default_factory=dict)
    encoding_options: dict = field(default_factory=dict)  # the number of time steps T lives here (num_steps)
    model_options: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "none"
    schedule_options: dict = field(default_factory=dict)
    batch_size: int = 128
    eval_batch_size: int | None = None  # None = batch_size
    drop_last: bool = False  # drop the last incomplete training batch (SpikingJelly scripts do)
    epochs: int = 1
    grad_clip: float | None = None  # max global gradient norm
    loss: str = "rate_mse"
    loss_options: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    # the neuron time-loop implementation handed to builders that take ``backend`` (unless model_options
    # sets one): "torch" loops, "cupy" fused CUDA kernels, "cpp" the fastest CPU path (whole-sequence C++
    # loops; for the SRC paper's networks, sparse input matmuls: reprolib.models.src.cpu_path), "auto"
    backend: str = "torch"
    amp: bool = False  # mixed precision; only takes effect on CUDA
    # CPU only: treat float32 numbers below 1.2e-38 as zero while the run trains and evaluates
    # (torch.set_flush_denormal). Once a network fits its data, gradients fall into that range and every
    # operation on them takes a slow path: a 3-layer N-MNIST LIF step went from 0.9 s to 4.7 s (5x). Values that
    # small change no weight (Adam divides by sqrt(v) + 1e-8), so this is "how", like backend, not "what"
    flush_denormal: bool = False
    scale: str = "ci"
    val_fraction: float = 0.0
    split_seed: int = 0
    train_subset: int | None = None
    val_subset: int | None = None
    test_subset: int | None = None
    eval_splits: tuple = ("test",)
    eval_before_training: bool = False  # an "epoch 0" evaluation of the untrained model (BRF curves)
    selection: str = "last"
    # a NaN or infinite training loss: "error" stops the run without a record (NonFiniteLossError); "stop" ends
    # training there, as the BRF scripts do, and writes the record of the epochs evaluated so far, its
    # ``final.stopped_early`` naming epoch and batch (the selected epoch is then one of those)
    nonfinite_loss: str = "error"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)

        for key in ("experiment", "dataset", "model", "encoding"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                _fail(key, value, "a non-empty string")
        if not EXPERIMENT_NAME.match(self.experiment) or ".." in self.experiment:
            _fail("experiment", self.experiment, "a name of letters, digits, '.', '_' and '-' (the folder of its "
                  "records), not a path")

        for key in ("dataset_options", "encoding_options", "model_options", "schedule_options", "loss_options"):
            value = getattr(self, key)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                _fail(key, value, "a mapping of option names to values")
            set_(key, _plain(value, key))

        self._check_choice("optimizer", OPTIMIZERS)
        self._check_choice("schedule", SCHEDULES)
        self._check_choice("loss", LOSSES)
        self._check_choice("scale", SCALES)
        self._check_choice("selection", SELECTIONS)
        self._check_choice("nonfinite_loss", NONFINITE_LOSS)

        for key, minimum in (("lr", None), ("momentum", 0.0), ("weight_decay", 0.0), ("val_fraction", 0.0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                _fail(key, value, "a finite number")
            set_(key, float(value))
        if not self.lr > 0:
            _fail("lr", self.lr, "a number > 0")
        if self.momentum < 0:
            _fail("momentum", self.momentum, "a number >= 0")
        if self.weight_decay < 0:
            _fail("weight_decay", self.weight_decay, "a number >= 0")
        if not 0.0 <= self.val_fraction < 1.0:
            _fail("val_fraction", self.val_fraction, "a fraction in [0, 1)")

        for key in ("batch_size", "epochs"):
            self._check_int(key, minimum=1)
        for key in ("seed", "split_seed"):
            self._check_int(key, minimum=0)
        for key in ("eval_batch_size", "train_subset", "val_subset", "test_subset"):
            if getattr(self, key) is not None:
                self._check_int(key, minimum=1, allowed="a positive integer or None")

        if self.grad_clip is not None:
            value = self.grad_clip
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                _fail("grad_clip", value, "a positive number (max global gradient norm) or None")
            set_("grad_clip", float(value))

        for key in ("amp", "drop_last", "eval_before_training", "flush_denormal"):
            if not isinstance(getattr(self, key), bool):
                _fail(key, getattr(self, key), "true or false")

        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            _fail("device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
        if self.backend not in BACKENDS:
            _fail("backend", self.backend, f"one of {list(BACKENDS)}")

        splits = self.eval_splits
        if isinstance(splits, str) or not isinstance(splits, (list, tuple)):
            _fail("eval_splits", splits, f"a list with items from {list(EVAL_SPLITS)}")
        for split in splits:
            if split not in EVAL_SPLITS:
                _fail("eval_splits", list(splits), f"a list with items from {list(EVAL_SPLITS)}")
        if not splits:
            _fail("eval_splits", list(splits), "at least one split (a record without one has no accuracy)")
        if len(set(splits)) != len(splits):
            _fail("eval_splits", list(splits), "a list without repeated items")
        set_("eval_splits", tuple(splits))
        if "val" in splits and self.val_fraction == 0:
            _fail("eval_splits", list(splits), "no 'val' when val_fraction is 0 (there is no validation set)")
        if self.selection == "best_val_loss" and "val" not in splits:
            _fail("selection", self.selection, "'last' unless eval_splits contains 'val'")

        set_("schedule_options", self._with_defaults("schedule_options", SCHEDULE_OPTIONS[self.schedule]))
        set_("loss_options", self._with_defaults("loss_options", LOSS_OPTIONS[self.loss]))
        self._check_schedule_options()
        self._check_loss_options()

    # -- helpers -------------------------------------------------------------------------------------
    def _check_choice(self, key: str, allowed: tuple) -> None:
        if getattr(self, key) not in allowed:
            _fail(key, getattr(self, key), f"one of {list(allowed)}")

    def _check_int(self, key: str, minimum: int, allowed: str | None = None) -> None:
        value = getattr(self, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            _fail(key, value, allowed or f"an integer >= {minimum}")

    def _with_defaults(self, key: str, defaults: dict) -> dict:
        options = getattr(self, key)
        owner = self.schedule if key == "schedule_options" else self.loss
        for name in options:
            if name not in defaults:
                raise ConfigError(
                    f"config key '{key}.{name}' = {options[name]!r} is not an option of {owner!r}; "
                    f"expected options from {sorted(defaults) or '[] (it takes none)'}"
                )
        return {**defaults, **options}

    def _check_schedule_options(self) -> None:
        o = self.schedule_options
        if self.schedule == "cosine":
            if o["T_max"] is not None and (isinstance(o["T_max"], bool) or not isinstance(o["T_max"], int) or o["T_max"] < 1):
                _fail("schedule_options.T_max", o["T_max"], "a positive integer or None (= epochs)")
            _check_number("schedule_options.eta_min", o["eta_min"], minimum=0.0)
        elif self.schedule == "step":
            if isinstance(o["step_size"], bool) or not isinstance(o["step_size"], int) or o["step_size"] < 1:
                _fail("schedule_options.step_size", o["step_size"], "a positive integer (epochs)")
            _check_number("schedule_options.gamma", o["gamma"], minimum=0.0)
        elif self.schedule == "warmup_cosine":
            w = o["warmup_epochs"]
            if isinstance(w, bool) or not isinstance(w, int) or w < 0:
                _fail("schedule_options.warmup_epochs", w, "an integer >= 0")

    def _check_loss_options(self) -> None:
        o = self.loss_options
        if self.loss == "seq_nll":
            if not isinstance(o["label_last"], bool):
                _fail("loss_options.label_last", o["label_last"], "true or false")
            s = o["skip_steps"]
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                _fail("loss_options.skip_steps", s, "an integer >= 0")

    # -- conversions ---------------------------------------------------------------------------------
    @property
    def hash(self) -> str:
        return config_hash(self)

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (tuples as lists); ``from_dict(to_dict())`` gives an equal config."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        """Build a config from a mapping; unknown keys fail, naming the key and the allowed keys."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a mapping of keys to values, got {type(data).__name__}")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ConfigError(
                f"unknown config key {unknown[0]!r} (value {data[unknown[0]]!r}); allowed keys: {sorted(allowed)}"
            )
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise ConfigError(f"config key {missing[0]!r} is missing; it is required (required keys: {required})")
        return cls(**{k: copy.deepcopy(v) for k, v in data.items()})

    def flat(self) -> dict:
        """The config as one flat dict with dotted keys for options (``model_options.layers``)."""
        return flatten(self.to_dict())


# Config values stay JSON types (int, float) rather than reprolib.checks.is_finite_real's any real scalar: the config
# is hashed from its canonical JSON, which an np.float32 or a Fraction would not survive.
def _check_number(key: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        _fail(key, value, f"a number >= {minimum}")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict:
    """Flatten nested option dicts into dotted keys (lists are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def canonical_json(data: Any) -> str:
    """The one JSON spelling used for hashes and checksums (sorted keys, no spaces)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(config: ExperimentConfig) -> str:
    """Stable 16-hex-digit identity of a run: sha256 of the sorted JSON of the config without the keys of
    :data:`HASH_EXCLUDED` (``device``, ``backend``, ``flush_denormal``: where and how it runs the same equations;
    ``nonfinite_loss``: what a diverged run leaves).

    Top-level fields that hold their default value are left out of the hashed JSON, so adding a new
    field with a default later keeps every existing record's hash (and so its file name) valid.
    """
    data = config.to_dict()
    for key in HASH_EXCLUDED:
        data.pop(key, None)
    for f in dataclasses.fields(config):
        if f.name in data and _field_default(f) is not _NO_DEFAULT and data[f.name] == _jsonable(_field_default(f)):
            del data[f.name]
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


_NO_DEFAULT = object()


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _NO_DEFAULT


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def set_dotted(data: dict, dotted_key: str, value: Any) -> None:
    """``set_dotted(d, "model_options.layers", 3)`` sets ``d["model_options"]["layers"] = 3`` in place."""
    parts = dotted_key.split(".")
    target = data
    for i, part in enumerate(parts[:-1]):
        if part not in target or target[part] is None:
            target[part] = {}
        if not isinstance(target[part], dict):
            raise ConfigError(
                f"cannot set {dotted_key!r}: {'.'.join(parts[:i + 1])!r} is {target[part]!r}, not a mapping of options"
            )
        target = target[part]
    target[parts[-1]] = copy.deepcopy(value)


def with_overrides(config: ExperimentConfig, overrides: Mapping[str, Any]) -> ExperimentConfig:
    """A new config with dotted-key overrides applied, e.g. ``{"model_options.layers": 3, "lr": 0.01}``.

    The top-level key must exist (``modell.x`` fails, naming the allowed keys); the result is validated again.
    """
    data = config.to_dict()
    allowed = set(data)
    for key, value in overrides.items():
        top = key.split(".")[0]
        if top not in allowed:
            raise ConfigError(f"unknown config key {top!r} in override {key!r}={value!r}; allowed keys: {sorted(allowed)}")
        if "." in key and not isinstance(data[top], dict):
            raise ConfigError(f"config key {top!r} has no options; cannot override {key!r}={value!r}")
        set_dotted(data, key, value)
    return ExperimentConfig.from_dict(data)


def parse_value(text: str) -> Any:
    """Parse a command-line value: JSON (``3``, ``0.1``, ``true``, ``[1,2]``, ``null``), Python spellings
    ``True``/``False``/``None``, else the plain string."""
    python_words = {"True": True, "False": False, "None": None}
    if text in python_words:
        return python_words[text]
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def parse_assignments(items: list[str] | None, flag: str = "--set") -> dict[str, Any]:
    """``["a.b=3", "lr=0.1"]`` -> ``{"a.b": 3, "lr": 0.1}``; a malformed item fails naming it."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r} is not of the form key=value")
        out[key.strip()] = parse_value(text.strip())
    return out


def parse_selection(items: list[str] | None) -> dict[str, list]:
    """``--select`` items ``key=value`` -> ``{key: [values]}``; a key given twice matches either value, and
    ``config_hash=a,b`` lists several hashes."""
    criteria: dict[str, list] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--select {item!r} is not of the form key=value")
        key = key.strip()
        values = text.strip().split(",") if key == "config_hash" else [parse_value(text.strip())]
        criteria.setdefault(key, []).extend(values)
    return criteria


def select_configs(configs: list[ExperimentConfig], criteria: Mapping[str, list]) -> list[ExperimentConfig]:
    """The configs whose flattened values (dotted keys, plus ``config_hash``) match every criterion."""
    if not criteria:
        return list(configs)
    flats = [{**c.flat(), "config_hash": config_hash(c)} for c in configs]
    known = set().union(*flats) if flats else set()
    for key in criteria:
        if key not in known:
            raise ConfigError(f"--select key {key!r} is not a config key of these runs; allowed: {sorted(known)}")

    def matches(flat: dict) -> bool:
        return all(key in flat and any(flat[key] == value for value in values) for key, values in criteria.items())

    return [c for c, flat in zip(configs, flats) if matches(flat)]
