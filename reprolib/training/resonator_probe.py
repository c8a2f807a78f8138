"""``reprolib probe-resonators RECORD...``: where training moved the RF / BRF neurons' frequencies and dampings.

The BRF paper's Fig. 5 (bottom) plots, for every run, each hidden neuron's angular frequency ``omega`` against its
damping ``b_c = p(omega) - b'`` before and after training, with the divergence boundary ``p(omega)``; its text
reads the learned clusters off the plot (ECG: near 2 rad/s, the rate of spikes about every 300 steps). This probe
reads the same numbers off runs trained here. The initial parameters are rebuilt from the config's seed (the
training loop builds its model right after seeding: :func:`~reprolib.training.build.initial_model`); the learned
ones are the selected epoch's weights the run kept in its local checkpoint folder (not committed, so the probe
runs where the runs were trained). Nothing is trained or evaluated.

``compare_with`` (``--compare-with DIR``) names a results folder with records of the same configs, e.g. the
committed ``results/`` when the probed runs are re-runs of its records: the file then says, per run, whether the
two histories are identical, i.e. whether the probed weights are the ones behind the committed numbers.

The result is one JSON file (``--output``, default ``results/analysis/<experiment>-<scale>-resonators.json``),
written atomically, with one entry per run and the provenance of the probe; the book renders it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from reprolib.config import ConfigError

__all__ = ["resonator_parameters", "probe_resonators", "default_output"]


def resonator_parameters(model: torch.nn.Module) -> dict:
    """The hidden RF / BRF layer of ``model`` (its ``hidden`` attribute, as in :class:`~reprolib.models.resonate.RSNN`):
    ``{"neuron": "rf" | "brf", "dt", "omega": [...], "damping": [...]}``, one value per neuron, as the neuron step
    uses them (:func:`~reprolib.neurons.resonate.frequency_and_damping`). ``ValueError`` for another model."""
    from reprolib.neurons.resonate import BRFCell, RFCell, frequency_and_damping  # noqa: PLC0415

    hidden = getattr(model, "hidden", None)
    if not isinstance(hidden, RFCell):
        raise ValueError(f"the model's hidden layer is {type(hidden).__name__}; expected RF or BRF neurons "
                         "(a resonator network: model 'rsnn' with neuron 'rf' or 'brf')")
    balanced = isinstance(hidden, BRFCell)
    with torch.no_grad():
        omega, damping = frequency_and_damping(hidden.neuron_parameters(), balanced)
    return {"neuron": "brf" if balanced else "rf", "dt": float(hidden.dt), "omega": omega.tolist(),
            "damping": damping.tolist()}


def default_output(experiment: str, scale: str) -> Path:
    from reprolib.paths import results_dir  # noqa: PLC0415

    return results_dir() / "analysis" / f"{experiment}-{scale}-resonators.json"


def probe_resonators(paths: Sequence[str | Path], output: str | Path | None = None, results_dir=None,
                     compare_with=None, progress: bool = True, skip_other_models: bool = False) -> Path:
    """Write the initial and learned ``omega`` / damping of every run in ``paths`` (records of one experiment and
    scale, of resonator networks) to ``output``. Weights are read from ``results_dir`` (default: the folder each
    record sits in). Every record, its model and its kept weights are checked before anything is written; weights
    kept for another epoch than the record selected (a stale checkpoint) are an error. A record of another model
    (an ALIF network) is an error too, unless ``skip_other_models``: it is then listed in the file, not probed."""
    from reprolib.training import checkpoint as ckpt  # noqa: PLC0415
    from reprolib.training import probe_files  # noqa: PLC0415

    records, experiment, scale, output, started = probe_files.start_probe(
        paths, "probe-resonators", output, default_output, compare_with)
    runs, skipped = [], []
    for record in records:  # every check first: nothing is written for a set that has a bad record
        model = probe_files.starting_model(record)
        try:
            initial = resonator_parameters(model)
        except ValueError as error:
            if skip_other_models:
                skipped.append(record.hash)
                continue
            raise ConfigError(f"{record.path}: {error} (--skip-other-models leaves such records out)") from None
        runs.append((record, model, initial, *ckpt.read_selected_weights(
            record, probe_files.weights_root(record, results_dir))))
    if not runs:
        raise ConfigError(f"none of the {len(records)} records is of an RF or BRF network")
    rows = []
    for i, (record, model, initial, blob, weights) in enumerate(runs, 1):
        if progress:
            print(f"[{i}/{len(runs)}] {experiment}/{record.hash} seed {record.config.seed}", file=sys.stderr,
                  flush=True)
        model.load_state_dict(weights)
        learned = resonator_parameters(model)
        rows.append({"record": record.hash, "seed": record.config.seed, "neuron": initial["neuron"],
                     "dt": initial["dt"], "selected_epoch": record.final.get("selected_epoch"),
                     "weights_sha256": hashlib.sha256(blob).hexdigest(),
                     "test_accuracy": record.final.get("test_accuracy"),
                     "initial": {k: initial[k] for k in ("omega", "damping")},
                     "learned": {k: learned[k] for k in ("omega", "damping")},
                     "committed": (probe_files.against_committed(record, compare_with) if compare_with is not None
                                   else None)})
    return probe_files.write_probe(output, "resonator-probe", experiment, scale, started, torch.device("cpu"),
                                   runs=rows, skipped_other_models=sorted(skipped))


def configure(parser: argparse.ArgumentParser) -> None:
    from reprolib.training.probe_files import add_probe_arguments  # noqa: PLC0415

    add_probe_arguments(parser, "resonators", compare_with=True)
    parser.add_argument("--skip-other-models", action="store_true",
                        help="leave out records of networks without RF / BRF neurons (ALIF) and list them in the file "
                             "(default: such a record is an error)")


def main(args: argparse.Namespace) -> int:
    from reprolib.training.probe_files import run_probe_command  # noqa: PLC0415

    return run_probe_command("probe-resonators", lambda: probe_resonators(
        args.records, args.output, args.results, args.compare_with, not args.no_progress, args.skip_other_models))
