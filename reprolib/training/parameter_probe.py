"""``reprolib probe-parameters RECORD...``: what training did to every parameter of trained runs.

A run record keeps accuracies and activities, not weights; when a result needs explaining (the SRC paper's Fig. 4
order of SRC and LIF activity is reversed in our runs) the first question is what training moved: a LIF layer's
learnable leak ``beta``, threshold and input bias, an SRC layer's bias ``b_h`` (bounded at -4), the scale of the
weights. This probe answers it for any model: per run, each parameter of the network it started from (rebuilt
from the config's seed: :func:`~reprolib.training.build.initial_model`) beside the same parameter in the selected
epoch's weights the run kept in its local checkpoint folder (not committed: the probe runs where the runs were
trained). Nothing is trained and no data is read; where the model allows it (:func:`silent_input_response`), both
networks are run once on an input without spikes, to measure the activity their own parameters produce.

Each parameter is summarised by its shape, mean, standard deviation, minimum, maximum and Frobenius norm; small
ones (a bias vector, a learnable threshold: at most :data:`FULL_VALUES` numbers) are stored whole. Buffers and
frozen parameters are included and marked (``trainable``), so that a frozen readout shows as unchanged.

``--skip-missing`` probes the records whose weights are kept here and lists the others in the file (a results
folder that holds runs trained on several machines); where the output file is already there, the rows it holds
of those other runs are kept where they are of the same run, with the provenance of the probe that measured them
(:func:`~reprolib.training.probe_files.earlier_rows`); ``--compare-with DIR`` says, per run, whether its history is
that of the record of the same config in ``DIR`` (for re-runs of committed records).

The result is one JSON file (``--output``, default ``results/analysis/<experiment>-<scale>-parameters.json``),
written atomically, with the provenance of the probe; the book renders it.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import torch


__all__ = ["FULL_VALUES", "parameter_summary", "silent_input_response", "probe_parameters", "default_output"]

#: parameters with at most this many numbers are stored whole (biases, thresholds), larger ones summarised
FULL_VALUES = 4096


def parameter_summary(model: torch.nn.Module, full_values: int = FULL_VALUES) -> dict[str, dict]:
    """``name -> {shape, numel, trainable, nonfinite, mean, std, min, max, norm[, values]}`` for every floating
    entry of ``model``'s state dict (parameters and buffers), in its order. The statistics are over the finite
    numbers (``nonfinite`` counts the others; None where none is finite, so the file stays standard JSON);
    ``values`` (the flattened numbers, None for a non-finite one) where ``numel <= full_values``. ``std`` is 0 for
    a single number."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    summary = {}
    for name, tensor in model.state_dict().items():
        if not torch.is_floating_point(tensor):  # e.g. a step counter: nothing training moves by gradient
            continue
        values = tensor.detach().to(torch.float64).flatten().cpu()
        finite = values[torch.isfinite(values)]
        entry = {"shape": list(tensor.shape), "numel": values.numel(), "trainable": name in trainable,
                 "nonfinite": values.numel() - finite.numel()}
        stats = ("mean", "std", "min", "max", "norm")
        entry.update(dict.fromkeys(stats) if not finite.numel() else dict(zip(stats, (
            finite.mean().item(), finite.std(correction=0).item(), finite.min().item(), finite.max().item(),
            finite.norm().item()))))
        if values.numel() <= full_values:
            entry["values"] = [v if math.isfinite(v) else None for v in values.tolist()]
        summary[name] = entry
    return summary


def silent_input_response(model: torch.nn.Module, config) -> dict | None:
    """What the model does over the run's ``T`` steps when no input spike arrives at all, i.e. what its own
    biases, thresholds and dynamics produce: ``{"activity": ..., "firing_neurons": ...}``, its activity (its
    ``last_activity``: SRC Eq. 4 over its spiking layers, the measure the records' ``*_activity`` hold) and the
    percentage of its spiking neurons that emit at least one spike (None where the model keeps no
    ``last_spikes``). ``T`` is the encoder's ``num_steps``, else the data set's ``n_time_bins`` (N-MNIST frames).
    None for a model without a flat ``[T, B, in_features]`` input and ``last_activity``
    (:class:`~reprolib.models.src.SpikingStackNetwork` has both), or a config that gives no ``T``."""
    steps = config.encoding_options.get("num_steps") or getattr(config, "dataset_options", {}).get("n_time_bins")
    if not hasattr(model, "last_activity") or not isinstance(getattr(model, "in_features", None), int) or not steps:
        return None
    from reprolib.training.build import preserved_global_rng  # noqa: PLC0415

    # a model with noise draws it: the same noise every time the probe runs
    with torch.no_grad(), preserved_global_rng(seed=0):
        model(torch.zeros(int(steps), 1, model.in_features))
    if model.last_activity is None:
        return None
    spikes = getattr(model, "last_spikes", None)
    firing = (100 * float(torch.cat([(layer > 0).any(dim=0).flatten() for layer in spikes]).double().mean())
              if spikes else None)
    return {"activity": float(model.last_activity), "firing_neurons": firing}


def default_output(experiment: str, scale: str) -> Path:
    from reprolib.paths import results_dir  # noqa: PLC0415

    return results_dir() / "analysis" / f"{experiment}-{scale}-parameters.json"


def probe_parameters(paths: Sequence[str | Path], output: str | Path | None = None, results_dir=None,
                     compare_with=None, progress: bool = True, skip_missing: bool = False) -> Path:
    """Write the initial and learned :func:`parameter_summary` of every run in ``paths`` (records of one
    experiment and scale) to ``output``. Weights are read from ``results_dir`` (default: the folder each record
    sits in). Every record, its model and its kept weights are checked before anything is written: weights kept
    for another epoch than the record selected (a stale checkpoint), or unreadable, are an error; missing weights
    are an error too, unless ``skip_missing``: the record then keeps the row of its own run that the file already
    at ``output`` holds (:func:`~reprolib.training.probe_files.earlier_rows`), or without one is listed in the
    file, not probed."""
    from reprolib.training import probe_files  # noqa: PLC0415

    records, experiment, scale, output, started = probe_files.start_probe(
        paths, "probe-parameters", output, default_output, compare_with)
    kept, missing = probe_files.read_kept_weights(records, results_dir, skip_missing)  # before any model is built
    earlier = probe_files.earlier_rows(output, "parameter-probe", experiment, scale, missing, "runs")
    rows = []
    for i, (record, (blob, weights)) in enumerate(kept, 1):  # the file is written only once every run is measured
        if progress:
            print(f"[{i}/{len(kept)}] {experiment}/{record.hash} seed {record.config.seed}", file=sys.stderr,
                  flush=True)
        model = probe_files.starting_model(record)
        initial = (parameter_summary(model), silent_input_response(model, record.config))
        try:
            model.load_state_dict(weights)
        except RuntimeError as error:  # names that do not match the model its config builds
            raise ValueError(f"{record.path}: its kept weights do not fit the model its config builds "
                             f"({error})") from error
        rows.append({"record": record.hash, "seed": record.config.seed, "model": record.config.model,
                     # what identifies the record's run: a later re-run of the config ends at another time
                     "record_end_time": record.provenance.get("end_time"),
                     "selected_epoch": record.final.get("selected_epoch"),
                     **{key: record.final.get(key) for key in ("test_accuracy", "test_loss", "test_activity")},
                     "weights_sha256": hashlib.sha256(blob).hexdigest(),
                     "initial": initial[0], "learned": parameter_summary(model),
                     "silent_input": {"initial": initial[1], "learned": silent_input_response(model, record.config)},
                     "committed": (probe_files.against_committed(record, compare_with) if compare_with is not None
                                   else None)})
    content = probe_files.with_earlier_rows(rows, earlier, records)
    return probe_files.write_probe(output, "parameter-probe", experiment, scale, started, torch.device("cpu"),
                                   runs=content.pop("rows"), **content)


def configure(parser: argparse.ArgumentParser) -> None:
    from reprolib.training.probe_files import add_probe_arguments  # noqa: PLC0415

    add_probe_arguments(parser, "parameters", compare_with=True, skip_missing=True)


def main(args: argparse.Namespace) -> int:
    from reprolib.training.probe_files import run_probe_command  # noqa: PLC0415

    return run_probe_command("probe-parameters", lambda: probe_parameters(
        args.records, args.output, args.results, args.compare_with, not args.no_progress, args.skip_missing))
