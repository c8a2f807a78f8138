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
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from reprolib.config import ConfigError
from reprolib.paths import check_output_file

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


def _record_root(record) -> Path:
    """The results folder a record sits in (``<root>/<experiment>/<hash>.json``): its checkpoints are there too."""
    return Path(record.path).resolve().parents[1]


def _against_committed(record, compare_with) -> dict | None:
    """Whether ``record``'s history is that of the record of the same config under ``compare_with`` (None where
    there is none); ``same_record`` when that is the probed record's own file (trained where it is probed)."""
    from reprolib.results.records import read_record, record_path  # noqa: PLC0415
    from reprolib.training.rerun import compare_runs  # noqa: PLC0415

    path = record_path(record.config, compare_with)
    if not path.is_file():
        return None
    shown = f"{record.config.experiment}/{path.name}"
    if path.resolve() == Path(record.path).resolve():
        return {"record": shown, "same_record": True}
    _, summary = compare_runs(read_record(path), record)
    return {"record": shown, "same_record": False, "epochs": summary["epochs"], "identical": summary["identical"],
            "max_abs_accuracy_diff_pp": summary["max_abs_accuracy_diff_pp"]}


def probe_resonators(paths: Sequence[str | Path], output: str | Path | None = None, results_dir=None,
                     compare_with=None, progress: bool = True, skip_other_models: bool = False) -> Path:
    """Write the initial and learned ``omega`` / damping of every run in ``paths`` (records of one experiment and
    scale, of resonator networks) to ``output``. Weights are read from ``results_dir`` (default: the folder each
    record sits in). Every record, its model and its kept weights are checked before anything is written; weights
    kept for another epoch than the record selected (a stale checkpoint) are an error. A record of another model
    (an ALIF network) is an error too, unless ``skip_other_models``: it is then listed in the file, not probed."""
    from reprolib.results import provenance  # noqa: PLC0415
    from reprolib.results.records import atomic_write_text, read_records_of_one_kind  # noqa: PLC0415
    from reprolib.training import checkpoint as ckpt  # noqa: PLC0415
    from reprolib.training.build import initial_model  # noqa: PLC0415
    from reprolib.training.rerun import rerun_config  # noqa: PLC0415

    records, experiment, scale = read_records_of_one_kind(paths, "probe-resonators")
    output = check_output_file(output if output is not None else default_output(experiment, scale))
    if compare_with is not None and not Path(compare_with).is_dir():
        raise ValueError(f"--compare-with {str(compare_with)!r} is not a folder; expected a results folder")
    started = provenance.utc_now()
    runs, skipped = [], []
    for record in records:  # every check first: nothing is written for a set that has a bad record
        try:
            model = initial_model(rerun_config(record, device="cpu"))  # a backend that runs here
        except RuntimeError as error:  # e.g. the cpp backend without a compiler
            raise ValueError(f"{record.path}: its model cannot be built here ({error})") from error
        try:
            initial = resonator_parameters(model)
        except ValueError as error:
            if skip_other_models:
                skipped.append(record.hash)
                continue
            raise ConfigError(f"{record.path}: {error} (--skip-other-models leaves such records out)") from None
        root = Path(results_dir) if results_dir is not None else _record_root(record)
        runs.append((record, model, initial, *ckpt.read_selected_weights(record, root)))
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
                     "committed": _against_committed(record, compare_with) if compare_with is not None else None})
    payload = {"kind": "resonator-probe", "experiment": experiment, "scale": scale, "runs": rows,
               "skipped_other_models": sorted(skipped),
               "provenance": {**provenance.collect(torch.device("cpu"), scale), "start_time": started,
                              "end_time": provenance.utc_now()}}
    atomic_write_text(output, json.dumps({"payload": payload}, indent=1, sort_keys=True) + "\n")
    return output


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", nargs="+", metavar="RECORD", help="run record JSON files of one experiment")
    parser.add_argument("--output", default=None,
                        help="JSON path (default results/analysis/<experiment>-<scale>-resonators.json)")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="results folder holding the checkpoints (default: the folder each record sits in)")
    parser.add_argument("--compare-with", default=None, metavar="DIR",
                        help="results folder with records of the same configs (e.g. results/ for re-runs of its "
                             "records): say per run whether its history is identical to that record's")
    parser.add_argument("--skip-other-models", action="store_true",
                        help="leave out records of networks without RF / BRF neurons (ALIF) and list them in the file "
                             "(default: such a record is an error)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")


def main(args: argparse.Namespace) -> int:
    from reprolib.results.records import CorruptRecordError  # noqa: PLC0415

    try:
        out = probe_resonators(args.records, args.output, args.results, args.compare_with, not args.no_progress,
                               args.skip_other_models)
    except (ConfigError, CorruptRecordError, FileNotFoundError, ValueError) as error:
        print(f"reprolib probe-resonators: error: {error}", file=sys.stderr)
        return 2
    print(f"reprolib probe-resonators: wrote {out}")
    return 0
