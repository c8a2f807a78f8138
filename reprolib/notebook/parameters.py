"""The parameters every book notebook states: checked first, so a bad value fails before anything long starts.

A notebook's papermill ``parameters`` cell is followed by :func:`check_parameters`; the ``check_*`` helpers check a
notebook's own knobs with an error that names the parameter, the bad value and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from reprolib.checks import is_finite_real


SCALES = ("ci", "paper")


@dataclass(frozen=True)
class Parameters:
    """The validated common parameters of a book notebook (``device`` resolved from ``auto``).

    ``seeds`` is ``None`` for "each experiment's own seeds at this scale" (its preset: the source's number of
    runs), which is what the book uses; a tuple of seeds asks for exactly those.
    """

    scale: str
    seeds: tuple[int, ...] | None
    device: str
    train_missing: bool
    knobs: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.knobs[key]

    def seeds_for(self, experiment: str) -> list[int]:
        """The seeds to show for ``experiment``: the given ones, or its preset's at this scale."""
        if self.seeds is not None:
            return list(self.seeds)
        from reprolib.experiments import get_preset  # noqa: PLC0415

        return list(get_preset(experiment).seeds[self.scale])


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` are checked."""
    import torch

    if not isinstance(device, str):
        raise ValueError(f"device must be a string ('auto', 'cpu', 'cuda' or 'cuda:N'), got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but no CUDA device is available; use device='auto' or 'cpu'")
        return device
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` naming both."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"parameter {name}={value!r} is not allowed; expected one of {allowed}")
    return value


def check_subset(name: str, values: Any, allowed: Iterable[Any]) -> list:
    """Return ``values`` as a non-empty list whose items are all in ``allowed``."""
    allowed = list(allowed)
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"parameter {name} must be a list drawn from {allowed}, got {values!r}")
    values = list(values)
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ValueError(f"parameter {name}={values!r}: {bad or 'empty'} not allowed; expected items of {allowed}")
    return values


def check_positive(name: str, value: Any, integer: bool = False) -> Any:
    """Return ``value`` if it is a positive finite number (an ``int`` when ``integer``)."""
    ok_type = isinstance(value, int) if integer else True
    if not is_finite_real(value) or not ok_type or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"parameter {name}={value!r} must be {kind}")
    return value


def check_nonnegative(name: str, value: Any) -> Any:
    """Return ``value`` if it is a finite number >= 0 (a noise level, a rate), else raise a ``ValueError`` naming
    it."""
    if not is_finite_real(value) or value < 0:
        raise ValueError(f"parameter {name}={value!r} must be a finite number >= 0")
    return value


def check_number(name: str, value: Any) -> Any:
    """Return ``value`` unchanged if it is a finite number (not a bool; see :func:`reprolib.checks.is_finite_real`),
    else raise a ``ValueError`` naming it."""
    if not is_finite_real(value):
        raise ValueError(f"parameter {name}={value!r} must be a finite number")
    return value


def check_integer(name: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """Return ``value`` if it is an integer in ``[low, high]`` (``high`` None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"parameter {name}={value!r} must be an integer {span}")
    return value


def check_list(name: str, values: Any, item: Callable[[str, Any], Any] | None = None, length: int | None = None) -> list:
    """Return ``values`` as a list if it is a non-empty list (of ``length`` items, when given) whose items pass
    ``item(f"{name}[i]", value)`` (e.g. :func:`check_positive`), else raise a ``ValueError`` naming it."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValueError(f"parameter {name} must be a list, got {values!r}")
    values = list(values)
    if not values or (length is not None and len(values) != length):
        expected = f"{length} items" if length is not None else "at least one item"
        raise ValueError(f"parameter {name}={values!r} must have {expected}")
    for i, value in enumerate(values):
        if item is not None:
            item(f"{name}[{i}]", value)
    return values


def read_json(path: Path | str) -> Any:
    """The JSON document at ``path``; a ``ValueError`` naming the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not a JSON document ({error})") from None


def check_parameters(scale: str, seeds: Any, device: str, train_missing: Any, **knobs: Any) -> Parameters:
    """Validate the parameters every notebook shares; ``knobs`` are passed through (check them with
    :func:`check_choice` / :func:`check_subset` / :func:`check_positive`).

    ``seeds=None`` means each experiment's own seeds (:meth:`Parameters.seeds_for`). Raises ``ValueError`` naming
    the bad value and what was expected.
    """
    check_choice("scale", scale, SCALES)
    if not isinstance(train_missing, bool):
        raise ValueError(f"parameter train_missing must be true or false, got {train_missing!r}")
    if seeds is None:
        return Parameters(scale=scale, seeds=None, device=resolve_device(device), train_missing=train_missing,
                          knobs=dict(knobs))
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"parameter seeds must be a list of non-negative integers (or null: each experiment's own), "
                         f"got {seeds!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"parameter seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"parameter seeds has duplicates: {seeds!r}")
    return Parameters(scale=scale, seeds=tuple(seeds), device=resolve_device(device),
                      train_missing=train_missing, knobs=dict(knobs))


def preset_seeds(params: Parameters, experiment: str) -> Parameters:
    """``params`` with only the seeds ``experiment``'s preset runs at ``params.scale`` (all of them when none
    of ``params.seeds`` is among them), for a page that shows a preset with fewer seeds than its others."""
    import dataclasses

    from reprolib.experiments import get_preset

    if params.seeds is None:  # already each experiment's own seeds
        return params
    own = get_preset(experiment).seeds.get(params.scale, [])
    kept = tuple(seed for seed in params.seeds if seed in own) or tuple(own)
    return dataclasses.replace(params, seeds=kept)
