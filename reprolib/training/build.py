"""From an :class:`~reprolib.config.ExperimentConfig` to the parts of its run, before any data is read.

:func:`build_parts` builds the loss, encoder, dataset loader and model of a config; :func:`check_config` and
:func:`config_errors` run the same building to refuse a bad name or option before a run or sweep starts (a
builder's own error becomes a :class:`~reprolib.config.ConfigError` that names the part and its options).
:func:`resolve_device` and :func:`derived_seed` give a run its device and the independent seeds of its shuffle,
encoder and evaluations; :func:`evaluation_set` the samples a run evaluates on. The training loop
(:mod:`reprolib.training.loop`) and everything that evaluates a run's weights again use these, so they see the
same model, encoder and samples.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from contextlib import contextmanager
from importlib import import_module
from typing import Callable, NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from reprolib.config import ConfigError, ExperimentConfig
from reprolib.training.losses import get_loss


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else CPU; a CUDA device that is absent fails."""
    from reprolib.config import DEVICE_PATTERN  # noqa: PLC0415

    if not isinstance(spec, str) or not DEVICE_PATTERN.match(spec):
        raise ConfigError(f"device {spec!r} is not allowed; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key 'device' = {spec!r} is not available on this machine (no CUDA); use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"config key 'device' = {spec!r} is not available on this machine: it has "
                          f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def derived_seed(seed: int, purpose: str) -> int:
    """Independent, stable 63-bit seed for one purpose (shuffle, encoding, one split's subset ...)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:8], "little") & (2**63 - 1)


def _import_target(path: str, key: str) -> Callable:
    module_name, _, attr = path.partition(":")
    try:
        return getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"config key {key!r} = {path!r} cannot be imported ({error}); expected 'package.module:function'") from None


def build_model(config: ExperimentConfig) -> torch.nn.Module:
    """The config's model; ``config.backend`` goes to builders that take ``backend`` (model_options wins)."""
    if ":" in config.model:
        builder = _import_target(config.model, "model")
    else:
        from reprolib.models import get_builder

        builder = get_builder(config.model)
    options = dict(config.model_options)
    signature = inspect.signature(builder)
    if "backend" not in options and "backend" in signature.parameters:
        options["backend"] = config.backend
    try:
        signature.bind(**options)
    except TypeError as error:  # an option the builder does not take: a user's mistake, no traceback needed
        raise ConfigError(f"{config.model!r} does not accept model_options = {dict(config.model_options)!r}: "
                          f"{error}; it takes {list(signature.parameters)}") from None
    return builder(**options)


@contextmanager
def preserved_global_rng(seed: int | None = None):
    """Run the block with the global RNGs restored after it: the CPU's and every CUDA device's (``manual_seed``
    seeds them all, so a block that seeds as a run does must fork them all), for code that rebuilds a run's
    random draws without moving the caller's; seeded with ``torch.manual_seed(seed)`` first where ``seed`` is
    given."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def initial_model(config: ExperimentConfig) -> torch.nn.Module:
    """The model a run of ``config`` starts from, on the CPU: built right after ``torch.manual_seed(config.seed)``,
    as :func:`build_parts` builds it for the training loop, so its weights are the run's initial ones. The global
    RNGs (the CPU's and every CUDA device's, which ``manual_seed`` seeds too) are left as they were."""
    with preserved_global_rng(config.seed):
        return build_model(config)


def build_encoder(config: ExperimentConfig):
    if ":" in config.encoding:
        encoder = _import_target(config.encoding, "encoding")(**config.encoding_options)
    else:
        from reprolib.encoding import get_encoder

        encoder = get_encoder(config.encoding, **config.encoding_options)
    # Encoders are callables ``encoder(x, generator=None)`` (reprolib.encoding) or objects with ``encode``.
    encode = getattr(encoder, "encode", encoder)
    if not callable(encode):
        raise ConfigError(f"config key 'encoding' = {config.encoding!r} built {encoder!r}, which is not callable as "
                          "encode(x, generator=None)")
    return encode


def dataset_loader(config: ExperimentConfig) -> Callable[[str], Dataset]:
    """A function split -> dataset; the dataset name is checked now, the data is read only when called."""
    options = {**config.dataset_options, "val_fraction": config.val_fraction, "split_seed": config.split_seed}
    if ":" in config.dataset:
        factory = _import_target(config.dataset, "dataset")
        return lambda split: factory(split=split, root=None, **options)
    data = import_module("reprolib.data")
    known = getattr(data, "DATASETS", None)
    if known is not None and config.dataset not in known:
        raise ConfigError(f"config key 'dataset' = {config.dataset!r} is not allowed; expected one of {sorted(known)}")
    return lambda split: data.load_dataset(config.dataset, split, **options)


def check_config(config: ExperimentConfig) -> None:
    """Everything that can be checked without data, on any machine: names resolve, builders accept their options
    (a builder's own error is reported as a ConfigError that names the options it was given). Whether the device
    exists is checked where the run trains (a sweep may submit from a machine without a GPU)."""
    build_parts(config)


class _Parts(NamedTuple):
    loss_fn: Callable
    encoder: Callable
    load_split: Callable  # split name -> dataset (the data is read when called)
    model: nn.Module


def build_parts(config: ExperimentConfig, before_model: Callable[[], None] = lambda: None) -> _Parts:
    """Build the loss, encoder, dataset loader and model of ``config`` (no data is read), each under
    :func:`refused_options`; ``before_model`` runs just before the model is built (a run seeds the RNG there, so
    that the model's initial weights depend on the seed alone)."""
    with refused_options(config, "loss"):
        loss_fn = get_loss(config.loss, **config.loss_options)
    with refused_options(config, "encoding"):
        encoder = build_encoder(config)
    with refused_options(config, "dataset"):
        load_split = dataset_loader(config)
    before_model()
    with refused_options(config, "model"):
        model = build_model(config)
    return _Parts(loss_fn, encoder, load_split, model)


#: how Python words a call with an option a function does not take, or without one it needs
_OPTION_MISMATCH = re.compile(r"unexpected keyword argument|missing \d+ required (positional|keyword-only) argument")


@contextmanager
def refused_options(config: ExperimentConfig, part: str):
    """Report a builder's own error (TypeError / ValueError / RuntimeError) while ``part`` (``model``,
    ``encoding``, ``loss``, ``dataset``) of ``config`` is built as a ConfigError naming the part and its options;
    the builder's error stays its cause, so a bug inside a builder keeps its traceback in a sweep's report."""
    try:
        yield
    except ConfigError:
        raise
    except (TypeError, ValueError, RuntimeError) as error:
        given = getattr(config, f"{part}_options")
        message = (f"{getattr(config, part)!r} does not accept {part}_options = {dict(given)!r}: "
                   f"{type(error).__name__}: {error}")
        if isinstance(error, TypeError) and _OPTION_MISMATCH.search(str(error)):
            # an option name that a builder forwarding **options passed on: the user's mistake, no traceback
            raise ConfigError(message) from None
        raise ConfigError(message) from error


def config_errors(configs) -> list[tuple[ExperimentConfig, Exception | None]]:
    """``(config, error or None)`` for each config after :func:`check_config`, which runs once per distinct set
    of what it checks (names and options), not once per seed or device."""
    from reprolib.config import canonical_json  # noqa: PLC0415

    seen: dict[str, Exception | None] = {}
    out = []
    for config in configs:
        data = config.to_dict()
        key = canonical_json({k: data[k] for k in ("model", "model_options", "encoding", "encoding_options",
                                                   "dataset", "dataset_options", "loss", "loss_options")})
        if key not in seen:
            try:
                check_config(config)
                seen[key] = None
            except Exception as error:  # noqa: BLE001 - reported per config by the callers
                seen[key] = error
        out.append((config, seen[key]))
    return out


def split_subset(dataset: Dataset, size: int | None, split_seed: int, split: str) -> Dataset:
    """The first ``size`` items of a ``split_seed`` permutation (ci scale), or the whole dataset."""
    if size is None or size >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(derived_seed(split_seed, f"subset:{split}")))
    return Subset(dataset, order[:size].sort().values.tolist())


def evaluation_set(config: ExperimentConfig, split: str, load_split: Callable[[str], Dataset] | None = None) -> Dataset:
    """The ``val`` or ``test`` samples a run evaluates on: the split, cut to ``val_subset`` / ``test_subset``
    as the run does (the same samples, for anything that evaluates a run's weights again)."""
    load_split = load_split or dataset_loader(config)
    size = config.val_subset if split == "val" else config.test_subset
    return split_subset(load_split(split), size, config.split_seed, split)
