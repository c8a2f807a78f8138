"""The SRC paper's pages: its Table 2 beside ours, and the labels its figures use."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import pandas as pd

from reprolib.notebook.runs import Runs
from reprolib.notebook.tables import format_number, is_missing, value_range

#: our ``input`` labels of the ``src-table2`` grid -> the (dataset, encoding) of Table 2's column
SRC_TABLE2_COLUMNS = {"mnist-rate": ("MNIST", "rate"), "mnist-latency": ("MNIST", "latency"),
                      "fmnist-rate": ("Fashion-MNIST", "rate"), "fmnist-latency": ("Fashion-MNIST", "latency"),
                      "nmnist": ("N-MNIST", "events")}


def src_table2_number(cell: Mapping) -> float | None:
    """Table 2's number for one cell (``input``, ``layers``, ``model``) of our grid; None where it gives none."""
    from reprolib import reference  # noqa: PLC0415

    dataset, encoding = SRC_TABLE2_COLUMNS[cell["input"]]
    return reference.reported("src-table2", layers=int(cell["layers"]), neuron=cell["model"].upper(),
                              dataset=dataset, encoding=encoding)


def src_table2_summary(runs: Runs) -> pd.DataFrame:
    """Our mean test accuracy per input, depth and model, with ``neuron`` (the paper's name: SRC, LIF) and
    ``paper`` (Table 2's number, NaN where it gives none) beside it."""
    summary = runs.summary(["test_accuracy"], by=["input", "layers", "model"])
    summary["neuron"] = summary["model"].str.upper()
    summary["paper"] = [src_table2_number(row) for row in summary.to_dict("records")]
    return summary


def layers_label(layers: int) -> str:
    """``1 layer`` / ``5 layers``: a network's depth as the pages write it."""
    layers = int(layers)
    return f"{layers} layer{'s' if layers != 1 else ''}"


def network_label(model: str, layers: int) -> str:
    """``SRC, 1 layer`` / ``LIF, 5 layers``: how the pages name one network of the grid."""
    return f"{model.upper()}, {layers_label(layers)}"


def src_minus_lif(table: pd.DataFrame, reported=lambda cell: None, metric: str = "test_accuracy") -> pd.DataFrame:
    """SRC minus LIF per input and depth over their paired seeds: :func:`reprolib.notebook.paired_gap` on the
    ``model`` axis, with its counts named as the pages name the networks (``SRC higher``, ``LIF higher``).
    ``reported(cell)``: the paper's number for a cell (None where it gives none)."""
    from reprolib.notebook.findings import paired_gap  # noqa: PLC0415

    return paired_gap(table, ["input", "layers"], "model", "src", "lif", reported=reported,
                      metric=metric).rename(columns={"src higher": "SRC higher", "lif higher": "LIF higher"})


def activity_order(runs: Runs) -> pd.DataFrame:
    """The paper's Fig. 4 claim beside our runs, per input and depth: the paper gives no values, only the order
    (SRC more active than LIF without hidden layers, i.e. at 1 layer; less active with hidden layers). ``ours``
    is SRC minus LIF mean test activity over the seeds both have (:func:`reprolib.notebook.paired_gap`),
    ``after epoch 1`` the same gap after the first epoch (whether training made the order or the initial
    weights did), ``paired seeds``, ``SRC higher`` and ``LIF higher`` how many seeds both models have and in how
    many of them each is the more active, ``agrees`` whether our order is the paper's in every paired seed (None
    where the seeds disagree or tie). Groups without both models are left out."""
    table = runs.table
    columns = ["input", "layers", "paper", "ours", "paired seeds", "SRC higher", "LIF higher", "after epoch 1",
               "agrees"]
    if table.empty:
        return pd.DataFrame(columns=columns)

    # the paper's order as a sign (1 for the more active model), so that paired_gap's "same order" compares it
    # with ours (None where our gap is zero)
    def paper_sign(cell) -> float:
        return 1.0 if (int(cell["layers"]) == 1) == (cell["model"] == "src") else 0.0

    gaps = src_minus_lif(table, paper_sign, metric="test_activity")
    history = runs.history()
    first = history[history["epoch"] == 1]  # after one epoch of training (epoch 0, where there is one, is untrained)
    early = src_minus_lif(first, metric="test_activity").set_index(["input", "layers"])["ours"]
    gaps["paper"] = ["SRC > LIF" if int(layers) == 1 else "SRC < LIF" for layers in gaps["layers"]]
    gaps["after epoch 1"] = [early.get((i, l), float("nan")) for i, l in zip(gaps["input"], gaps["layers"])]
    # an order holds only where every paired seed shows it: with the SRC higher in some seeds and lower (or equal)
    # in others the mean gap's sign says nothing, and ``agrees`` is None
    gaps["agrees"] = [same if paired in (src, lif) else None for same, src, lif, paired
                      in zip(gaps["same order"], gaps["SRC higher"], gaps["LIF higher"], gaps["paired seeds"])]
    return gaps[columns]


def activity_order_findings(order: pd.DataFrame) -> str:
    """Markdown, one line per row of :func:`activity_order`: where our order of SRC and LIF activity is the
    paper's in every paired seed, where it is the opposite in every one, and where the seeds disagree, with the
    mean gap, the seeds and the gap after the first epoch; a single paired seed is said to be one."""
    lines = []
    for row in order.to_dict("records"):
        where = f"{row['input']}, {layers_label(row['layers'])}"
        higher, lower, paired = int(row["SRC higher"]), int(row["LIF higher"]), int(row["paired seeds"])
        every = "in the one paired seed" if paired == 1 else f"in every one of {paired} paired seeds"
        verdict = ("no order (equal activities)" if higher == lower == 0
                   else "no consistent order across seeds" if paired not in (higher, lower)
                   else "no order" if is_missing(row["agrees"])
                   else f"as in the paper {every}" if row["agrees"]
                   else f"**the opposite of the paper's order** {every}")
        early = ("" if is_missing(row["after epoch 1"])
                 else f"; {row['after epoch 1']:+.4f} after the first epoch")
        ties = paired - higher - lower
        lines.append(f"* {where}: {verdict} ({row['paper']}): SRC minus LIF activity {row['ours']:+.4f}, "
                     f"SRC higher in {higher} of {paired} seed{'s' if paired != 1 else ''}"
                     f"{f' (equal in {ties})' if ties else ''}{early}.")
    return "\n".join(lines)


def initial_activity(runs: Runs, samples: int = 128, seeds: Sequence[int] | None = (0, 1)) -> pd.DataFrame:
    """The activity (SRC Eq. 4, the records' ``test_activity``) of each recorded run's network *before training*:
    the model rebuilt from the run's seed (:func:`reprolib.training.build.initial_model`, the run's own initial
    weights) evaluated as the run evaluates its test set (:func:`reprolib.training.loop.evaluation_pass`, the same
    encoder draws) on its first ``samples`` test samples. LIF runs are also measured with snnTorch's subtracting
    reset (the reference's ambiguity A3; ours resets to zero), to see whether that choice moves the starting point.
    Beside it, the run's activity after the first epoch and as recorded, from the record. ``seeds``: the runs'
    seeds to measure (None: all; each run costs a forward pass over ``samples``, seconds for a 5-layer network on
    one core). Reads the test set: call it only where the data is found."""
    import torch  # noqa: PLC0415
    from torch.utils.data import Subset  # noqa: PLC0415

    from reprolib.config import with_overrides  # noqa: PLC0415
    from reprolib.training.build import build_encoder, evaluation_set, initial_model  # noqa: PLC0415
    from reprolib.training.losses import get_loss  # noqa: PLC0415
    from reprolib.training.loop import evaluation_pass  # noqa: PLC0415

    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples = {samples!r}; expected a positive int")
    columns = ["input", "layers", "model", "seed", "reset", "at initialisation", "after epoch 1", "as recorded"]
    if runs.table.empty:
        return pd.DataFrame(columns=columns)
    recorded = runs.table.set_index("config_hash")
    history = runs.history()
    rows, test_sets = [], {}
    for config in runs.configs:
        if config.hash not in recorded.index or (seeds is not None and config.seed not in seeds):
            continue
        run = recorded.loc[config.hash]
        key = (config.dataset, repr(sorted(config.dataset_options.items())), config.test_subset, config.split_seed)
        if key not in test_sets:
            test = evaluation_set(config, "test")
            test_sets[key] = Subset(test, range(min(samples, len(test))))
        own_history = history[history["config_hash"] == config.hash]
        # after one epoch of training (an epoch 0, where a run evaluates before training, is the untrained model)
        first = own_history.loc[own_history["epoch"] == 1, "test_activity"]
        variants = [(config.model_options.get("reset", ""), config, True)]  # the SRC has no reset option
        if run["model"] == "lif":
            variants.append(("subtract", with_overrides(config, {"model_options.reset": "subtract"}), False))
        for reset, variant, own in variants:
            with torch.no_grad():
                meter = evaluation_pass(initial_model(variant), build_encoder(variant),
                                        get_loss(variant.loss, **variant.loss_options), test_sets[key], variant,
                                        "test", torch.device("cpu"))
            rows.append({"input": run["input"], "layers": int(run["layers"]), "model": run["model"],
                         "seed": int(run["seed"]), "reset": reset,
                         "at initialisation": meter.metrics("test")["test_activity"],
                         "after epoch 1": float(first.iloc[0]) if own and len(first) else float("nan"),
                         "as recorded": float(run["test_activity"]) if own else float("nan")})
    return pd.DataFrame(rows, columns=columns)


def _starting_order(by_model: Mapping[str, pd.DataFrame], tolerance: float) -> str:
    """One sentence: how SRC and LIF activity compare before training and whether that says what made the
    recorded order. A cause is named only where both models have two or more paired seeds and every seed shows
    the same order, before training (where they are apart) and as recorded. The sentence names the seeds: only
    those measured untrained take part, which may be fewer than the seeds with records."""
    paired = pd.concat({model: part.set_index("seed")[["at initialisation", "as recorded"]]
                        for model, part in by_model.items()}, axis=1).dropna()
    start_src, start_lif = paired[("src", "at initialisation")], paired[("lif", "at initialisation")]
    end_higher = paired[("src", "as recorded")] > paired[("lif", "as recorded")]
    ratio = start_src.mean() / start_lif.mean() if start_lif.mean() > 0 else float("inf")
    seeds = f"{len(paired)} paired seed{'s' if len(paired) != 1 else ''}" + (
        f": {', '.join(map(str, paired.index))}" if len(paired) else "")
    level = (f"about equally active (SRC / LIF {ratio:.2f}, {seeds})" if abs(ratio - 1) <= tolerance
             else f"{'SRC' if ratio > 1 else 'LIF'} more active (SRC / LIF {ratio:.2f}, {seeds})")
    if len(paired) < 2:
        return f"Before training: {level}; too few paired seeds ({len(paired)}) to say what makes the recorded order."
    if end_higher.nunique() != 1:
        return f"Before training: {level}; the recorded order differs between seeds."
    if abs(ratio - 1) <= tolerance:
        return f"Before training: {level}, and every seed ends in the same order: training makes it."
    start_higher = start_src > start_lif
    if start_higher.nunique() != 1:
        return f"Before training: {level} on average, but not in every seed."
    same = bool(start_higher.iloc[0] == end_higher.iloc[0])
    return (f"Before training: {level} in every seed, "
            + ("already the recorded order: training keeps it." if same else "the opposite of the recorded order: "
               "training reverses it."))


def initial_activity_findings(table: pd.DataFrame, tolerance: float = 0.1) -> str:
    """Markdown from :func:`initial_activity`: per input and depth, the range of SRC and LIF activity before
    training, after the first epoch and as recorded; how the two start (:func:`_starting_order`, ``tolerance``:
    the relative gap of their means below which they count as equally active); and how far the subtracting
    reset moves the LIF's starting activity."""
    lines = []
    own = table[table["reset"] != "subtract"]
    for (name, layers), group in own.groupby(["input", "layers"], sort=False):
        by_model = {model: group[group["model"] == model] for model in ("src", "lif")}
        if any(part.empty for part in by_model.values()):
            continue
        parts = [f"{stage}: " + ", ".join(f"{model.upper()} {value_range(part[stage])}"
                                          for model, part in by_model.items() if part[stage].notna().any())
                 for stage in ("at initialisation", "after epoch 1", "as recorded")]
        text = f"* {name}, {layers_label(layers)}: " + "; ".join(parts) + "."
        text += " " + _starting_order(by_model, tolerance)
        lif = table[(table["input"] == name) & (table["layers"] == layers) & (table["model"] == "lif")]
        paired = lif.pivot_table(index="seed", columns="reset", values="at initialisation")
        if "subtract" in paired and len(paired.columns) == 2:
            change = 100 * (paired["subtract"] / paired.drop(columns="subtract").iloc[:, 0] - 1)
            small = change.abs().max() < 10
            text += (f" With snnTorch's subtracting reset the untrained LIF's activity changes by "
                     f"{value_range(change, '{:+.0f}')} %: the reset choice "
                     f"{'barely moves' if small else 'moves'} the starting point (what it does to training: the "
                     "section on the LIF with snnTorch's reset, below).")
        lines.append(text)
    return "\n".join(lines)


#: state-dict entries of a layer (``blocks.<i>.<name>``) that :func:`learned_parameters` reads, and their labels
_LAYER_PARAMETERS = {"weight": "input weights, norm", "linear.weight": "input weights, norm",
                     "linear.bias": "input bias, mean", "lif.beta": "leak beta", "lif.threshold": "threshold",
                     "b_h": "bias b_h, mean"}
#: how close (absolute) an SRC bias must be to its bound to count as at it: training leaves biases a hair below
#: the bound (-4.000005) where the projection has pushed them back, so an exact comparison would miss them
BOUND_TOLERANCE = 0.01
AT_BOUND = f"b_h within {BOUND_TOLERANCE} of its bound (%)"
POSITIVE_BIAS = "input bias > 0 (%)"
SILENT = "activity without input spikes"
FIRING = "neurons firing without input (%)"
RECORDED = "test activity, as recorded"
#: quantities whose learned / initial ratio reads as a scale factor (positive magnitudes); a ratio of signed
#: means (a bias from -6 to -5.26: 0.88) or of shares would not
_SCALES = ("input weights, norm", "threshold")


def _src_bias_bound(config) -> float | None:
    """The upper bound on an SRC layer's ``b_h`` in ``config`` (its ``bias_max``, else the builder's default); None
    where the config keeps no bound (``bias_bound="none"``)."""
    import inspect  # noqa: PLC0415

    from reprolib.models.src import build_src_network  # noqa: PLC0415

    defaults = inspect.signature(build_src_network).parameters
    if config.model_options.get("bias_bound", defaults["bias_bound"].default) == "none":
        return None
    return float(config.model_options.get("bias_max", defaults["bias_max"].default))


def _share(entry: Mapping, counts) -> float:
    """The percentage of the finite numbers of a probe entry (its ``values``) for which ``counts(value)`` holds;
    NaN where none is finite."""
    values = [v for v in entry["values"] if v is not None]
    return 100 * sum(map(counts, values)) / len(values) if values else float("nan")


def _probe_rows(run: Mapping, config) -> list[dict]:
    """One parameter-probe run (:mod:`reprolib.training.parameter_probe`) as rows ``layer, quantity, initial,
    learned``: the layer quantities of :data:`_LAYER_PARAMETERS`, the shares beside the biases (where the probe
    stored their values), and the network's activity without input spikes (layer None)."""
    import re  # noqa: PLC0415

    rows = []
    for name, initial in run["initial"].items():
        match = re.fullmatch(r"blocks\.(\d+)\.(.+)", name)
        if not match or match.group(2) not in _LAYER_PARAMETERS:
            continue
        learned, layer = run["learned"][name], int(match.group(1)) + 1
        stat = "norm" if match.group(2).endswith("weight") else "mean"
        rows.append({"layer": layer, "quantity": _LAYER_PARAMETERS[match.group(2)], "initial": initial[stat],
                     "learned": learned[stat]})
        if "values" not in initial or "values" not in learned:
            continue  # too large to be stored whole: no share
        if match.group(2) == "linear.bias":
            rows.append({"layer": layer, "quantity": POSITIVE_BIAS,
                         **{stage: _share(entry, lambda v: v > 0)
                            for stage, entry in (("initial", initial), ("learned", learned))}})
        elif match.group(2) == "b_h" and (bound := _src_bias_bound(config)) is not None:
            rows.append({"layer": layer, "quantity": AT_BOUND,
                         **{stage: _share(entry, lambda v: v >= bound - BOUND_TOLERANCE)
                            for stage, entry in (("initial", initial), ("learned", learned))}})
    silent = run.get("silent_input") or {}
    if silent.get("learned") is not None:
        for key, quantity in (("activity", SILENT), ("firing_neurons", FIRING)):
            rows.append({"layer": None, "quantity": quantity, "initial": (silent.get("initial") or {}).get(key),
                         "learned": silent["learned"].get(key)})
    return rows


def _probed_same_run(run: Mapping, record: Mapping) -> bool:
    """Whether a parameter-probe row read the weights of the run the page's record describes: the record's end
    time where the probe kept it (a re-run of the config ends at another time), and its selected epoch and test
    metrics (accuracy in percent on the page, a fraction in the probe), each where both have it."""
    if run.get("record_end_time") and not is_missing(record.get("provenance.end_time")):
        if run["record_end_time"] != record["provenance.end_time"]:
            return False
    pairs = [(run.get("selected_epoch"), record.get("selected_epoch"), 1.0),
             *((run.get(key), record.get(key), scale) for key, scale in
               (("test_accuracy", 100.0), ("test_loss", 1.0), ("test_activity", 1.0)))]
    return all(abs(scale * float(probed) - float(recorded)) <= 1e-9 * max(1.0, abs(float(recorded)))
               for probed, recorded, scale in pairs if probed is not None and not is_missing(recorded))


def learned_parameters(runs: Runs, results_dir=None) -> tuple[pd.DataFrame, str] | None:
    """What training moved in the page's runs, from the committed parameter probe (``reprolib probe-parameters``,
    :mod:`reprolib.training.parameter_probe`): one row per probed run, layer and quantity, with the page's axis
    columns, ``seed``, ``initial``, ``learned`` and ``ratio`` (learned / initial, for the magnitudes in
    :data:`_SCALES` only). Per layer: the input weights (Frobenius norm), and what each neuron learns besides them:
    the LIF's leak ``beta`` (the neuron uses it clamped to [0, 1]), ``threshold`` and input bias (mean, and the
    share of neurons whose bias is positive), the SRC's bias ``b_h`` (mean, and the share of neurons within
    :data:`BOUND_TOLERANCE` of its bound). Per network (layer None): its activity over the run's steps without
    any input spike and the share of its neurons that fire then, and the test activity the record states. A
    probe row that did not read the record's run (:func:`_probed_same_run`: trained again after the probe) is
    left out. With the caption line: how many of the page's runs the probe read, and why the others are not
    shown (the table is empty where every probed run was trained again). ``None`` where no probe is committed at
    this scale or none of its runs is on the page."""
    from reprolib.notebook.probes import committed_probe  # noqa: PLC0415

    found = committed_probe(runs, "parameters", results_dir)
    if found is None:
        return None
    payload, axes = found
    configs = {config.hash: config for config in runs.configs}
    recorded = runs.table.set_index("config_hash")
    rows, outdated = [], set()
    for run in payload["runs"]:
        if run["record"] not in recorded.index:
            continue
        record = recorded.loc[run["record"]]
        if not _probed_same_run(run, record):
            outdated.add(run["record"])
            continue
        base = {"record": run["record"], "seed": run["seed"]}
        rows += [{**base, **row} for row in _probe_rows(run, configs[run["record"]])]
        rows.append({**base, "layer": None, "quantity": RECORDED, "initial": float("nan"),
                     "learned": float(record["test_activity"])})
    columns = ["record", "seed", "layer", "quantity", "initial", "learned"]
    if not rows and not outdated:
        return None  # none of the probe's runs is on this page
    table = pd.DataFrame(rows, columns=columns).merge(axes, on="record", how="inner")
    for column in ("initial", "learned"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["layer"] = table["layer"].astype("Int64")  # 1, 2 ...; missing for the network's own rows
    table["ratio"] = [learned / initial if quantity in _SCALES and initial else float("nan")
                      for quantity, initial, learned in zip(table["quantity"], table["initial"], table["learned"])]
    order = [c for c in ("input", "layers", "model") if c in table.columns]
    # quantities in a fixed order (the probe file's names are sorted): weights first, then the neuron's own, then
    # the network's activity
    labels = [*dict.fromkeys(_LAYER_PARAMETERS.values()), POSITIVE_BIAS, AT_BOUND, SILENT, FIRING, RECORDED]
    table = (table.assign(_rank=table["quantity"].map({label: i for i, label in enumerate(labels)}),
                          _layer=table["layer"].astype(float).fillna(float("inf")))
             .sort_values([*order, "seed", "_layer", "_rank"], kind="stable").reset_index(drop=True))
    return table[[*order, "seed", "layer", "quantity", "initial", "learned", "ratio"]], _probe_caption(
        payload, recorded, set(table["record"]), outdated)


def _probe_caption(payload: Mapping, recorded: pd.DataFrame, shown: set, outdated: set) -> str:
    """:func:`~reprolib.notebook.probes.probe_line` for :func:`learned_parameters`, with why each of the page's
    other runs is not shown: no kept weights where the probe ran, trained again after it, recorded after it, or
    (a record older than the probe) not given to it."""
    from reprolib.notebook.probes import probe_line  # noqa: PLC0415

    skipped = set(payload.get("skipped_without_weights", []))
    started = str(payload["provenance"].get("start_time") or "")
    reasons: dict[str, int] = {}
    for record, row in recorded.iterrows():
        if record in shown:
            continue
        ended = str(row.get("provenance.end_time") or "")
        reason = ("no kept weights where the probe ran" if record in skipped
                  else "trained again after the probe" if record in outdated
                  else "recorded after the probe" if started and ended > started
                  else "not given to the probe")
        reasons[reason] = reasons.get(reason, 0) + 1
    why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
    return probe_line(payload, len(shown), len(recorded), shown=shown) + (f" · not probed: {why}" if why else "")


def learned_parameter_findings(table: pd.DataFrame) -> str:
    """Markdown from :func:`learned_parameters`, one line per input and depth: per model and layer, how far
    training moved each quantity (the range over the probed seeds); for LIF layers how the input weights grew
    relative to the threshold (the drive a spike needs scales with the threshold) and whether the leak is gone
    (``beta`` at or above 1, which the neuron clamps to 1); per model, the activity without input spikes (and
    the share of neurons that fire then) beside the recorded test activity, and the first as a percentage of the
    second, seed by seed: two levels compared (above 100 %, the input lowers the activity overall), not which
    neurons fire."""
    lines = []
    for (name, layers), group in table.groupby(["input", "layers"], sort=False):
        parts = []
        for model, rows in group.groupby("model", sort=False):
            seeds = sorted(int(s) for s in rows["seed"].unique())
            said = [_layer_finding(own, int(layer), int(layers), len(seeds))
                    for layer, own in rows.dropna(subset=["layer"]).groupby("layer")]
            network = rows[rows["layer"].isna()].pivot_table(index="seed", columns="quantity", values="learned")
            if {SILENT, RECORDED} <= set(network.columns):
                # per seed, the two levels compared: above 100 % the input lowers the activity overall. Levels
                # only: the input also changes which neurons fire, which this does not see
                share = 100 * network[SILENT] / network[RECORDED].where(network[RECORDED] > 0)
                firing = (f" from {value_range(network[FIRING], '{:.0f}')} % of its neurons"
                          if FIRING in network.columns else "")
                said.append(f"trained, without input spikes: activity {value_range(network[SILENT])}{firing}, "
                            f"against {value_range(network[RECORDED])} recorded with its test inputs "
                            f"({value_range(share, '{:.0f}')} % of it)")
            parts.append(f"{model.upper()} (seed{'s' if len(seeds) > 1 else ''} "
                         f"{', '.join(map(str, seeds))}): " + "; ".join(said))
        lines.append(f"* {name}, {layers_label(layers)}: " + ". ".join(parts) + ".")
    return "\n".join(lines)


def _layer_finding(own: pd.DataFrame, layer: int, layers: int, seeds: int) -> str:
    """One layer's part of :func:`learned_parameter_findings`."""
    values = own.set_index(["quantity", "seed"])
    quantities = list(dict.fromkeys(own["quantity"]))
    text = []
    for quantity in quantities:
        at = values.loc[quantity]
        if quantity in (AT_BOUND, POSITIVE_BIAS):
            what = f"b_h within {BOUND_TOLERANCE} of its bound" if quantity == AT_BOUND else "input bias > 0"
            text.append(f"{value_range(at['learned'], '{:.0f}')} % with {what}")
        elif quantity.startswith("input weights"):
            text.append(f"input weights ×{value_range(at['ratio'], '{:.1f}')}")
        else:
            text.append(f"{quantity.split(',')[0]} {value_range(at['initial'], '{:.2f}')} → "
                        f"{value_range(at['learned'], '{:.2f}')}")
    if {"input weights, norm", "threshold"} <= set(quantities):
        threshold = values.loc["threshold", "ratio"]
        if (threshold > 0).all():  # a threshold at or below zero has no 'per unit'
            per_threshold = values.loc["input weights, norm", "ratio"] / threshold
            text.append(f"input weights per unit threshold ×{value_range(per_threshold, '{:.1f}')}")
    if "leak beta" in quantities:
        no_leak = int((values.loc["leak beta", "learned"] >= 1).sum())
        text.append(f"no leak left (beta clamped to 1) in {no_leak} of {seeds} seed{'s' if seeds > 1 else ''}")
    return (f"layer {layer}: " if layers > 1 else "") + ", ".join(text)


def leak_clamp_note(moved: tuple[pd.DataFrame, str] | None) -> Callable[[Mapping, pd.DataFrame], str]:
    """For :func:`~reprolib.notebook.findings.table_findings`' ``explain``: what the committed parameter probe
    (:func:`learned_parameters`' result ``moved``, None where there is none) says about a LIF cell's learned
    leak: in how many of the probed runs ``beta`` ended at or above 1, which the neuron uses as 1 (no leak left;
    above 1 the clamp passes no gradient back), with the range of the threshold in those layers. ""
    for other cells, and where no run of the cell was probed or none reached the clamp."""
    table = moved[0] if moved is not None else pd.DataFrame()

    def note(cell: Mapping, group: pd.DataFrame) -> str:
        if table.empty or cell.get("model") != "lif":
            return ""
        own = table[(table["input"] == cell["input"]) & (table["layers"] == cell["layers"])
                    & (table["model"] == "lif") & table["seed"].isin(group["seed"])]
        beta = own[own["quantity"] == "leak beta"]
        clamped = beta[beta["learned"] >= 1]
        if clamped.empty:
            return ""
        seeds = sorted(int(s) for s in beta["seed"].unique())
        where = "" if cell["layers"] == 1 else f" (in {clamped['layer'].nunique()} of its {cell['layers']} layers)"
        # the threshold of the same layers of the same runs
        threshold = own[own["quantity"] == "threshold"].merge(clamped[["seed", "layer"]], on=["seed", "layer"])
        moved_to = (f"; the threshold there went from {value_range(threshold['initial'], '{:.2f}')} to "
                    f"{value_range(threshold['learned'], '{:.2f}')}" if not threshold.empty else "")
        probed = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        above = " (above 1 the clamp passes no gradient back, so only Adam's momentum moves it)" \
            if (clamped["learned"] > 1).any() else ""
        return (f" The parameter probe of the runs' kept weights (the activity page's; probed: {probed}) finds the "
                f"learned leak beta at or above 1 in {clamped['seed'].nunique()} of {len(seeds)}{where} (beta "
                f"{value_range(clamped['learned'])}): the neuron uses it as 1, no leak left{above}{moved_to}.")
    return note


#: the SRC paper's Fig. 4 test networks, as the page names them: Table 2's two 1-layer networks and the variants
#: of the ``src-activity-lif-fixed`` preset (its ``lif_parameters`` labels)
FIXED_LIF_NETWORKS = {"src": "SRC (Table 2)", "lif": "LIF (Table 2: leak, threshold learned)",
                      "fixed": "LIF, leak and threshold fixed",
                      "fixed-no-bias": "LIF, leak and threshold fixed, no bias"}
#: the column of :func:`fixed_lif_activity` with a network's activity minus Table 2's LIF's, same seeds
CHANGE_FROM_LEARNED = "this minus Table 2's LIF"
#: how :func:`fixed_lif_findings` writes a difference of activities
_SIGNED = "{:+.4f}"


def _activity_by_seed(table: pd.DataFrame, network: str) -> pd.Series:
    """One network's test activity per seed (the mean, should a seed repeat), seeds without a number left out."""
    own = table[table["network"] == network].dropna(subset=["test_activity"])
    return own.groupby("seed")["test_activity"].mean().astype(float)


def fixed_lif_activity(runs: Runs, fixed: Runs) -> pd.DataFrame:
    """The 1-layer rate-coded MNIST networks of Fig. 4, one row each: the SRC and LIF of Table 2 (``runs``, the
    ``src-activity`` records) and the LIF trained with its leak and threshold fixed (``fixed``, the
    ``src-activity-lif-fixed`` records). Per network: runs, seeds, mean test activity and its std, mean test
    accuracy (percent); then, over the seeds both networks have (a seed fixes the initial weights, the batch
    order and the input spikes; every seed has the same data split), its activity minus Table 2's LIF's
    (:data:`CHANGE_FROM_LEARNED`) and the SRC's minus its (``SRC minus this``), with how many seeds pair with the
    SRC (``paired seeds``) and in how many of them the SRC is more active (``SRC higher``) or less (``SRC lower``),
    as in :func:`reprolib.notebook.paired_gap`. Runs without an activity are left out; so are networks without
    a run. Raises ``ValueError`` naming a column a table lacks."""
    columns = ["network", "runs", "seeds", "test activity", "std", "test accuracy (%)", CHANGE_FROM_LEARNED,
               "SRC minus this", "paired seeds", "SRC higher", "SRC lower"]
    parts = []
    for table, needed, label in ((runs.table, ["input", "layers", "model"], "model"),
                                 (fixed.table, ["lif_parameters"], "lif_parameters")):
        if table.empty:
            continue
        lacking = [c for c in [*needed, "seed", "test_activity", "test_accuracy"] if c not in table.columns]
        if lacking:
            raise ValueError(f"fixed_lif_activity: a runs table has no column {lacking}; columns: "
                             f"{list(map(str, table.columns))}")
        if label == "model":  # Table 2's runs: only the 1-layer rate-coded MNIST networks take part
            table = table[(table["input"] == "mnist-rate") & (pd.to_numeric(table["layers"], errors="coerce") == 1)]
        parts.append(table.assign(network=table[label].map(FIXED_LIF_NETWORKS)))
    parts = [part for part in parts if not part.empty]
    if not parts:
        return pd.DataFrame(columns=columns)
    both = pd.concat(parts, ignore_index=True)
    src, learned = FIXED_LIF_NETWORKS["src"], FIXED_LIF_NETWORKS["lif"]
    activity = {network: _activity_by_seed(both, network) for network in FIXED_LIF_NETWORKS.values()}
    rows = []
    for network in FIXED_LIF_NETWORKS.values():
        own = both[both["network"] == network]
        if own.empty:
            continue
        mine = activity[network]
        seeds = ", ".join(map(str, mine.index))
        without = sorted(set(own["seed"]) - set(mine.index))
        if without:  # a run whose record has no activity (e.g. one that stopped on a NaN loss)
            seeds += f" (no activity: seed {', '.join(map(str, without))})"
        row = {"network": network, "runs": len(own), "seeds": seeds,
               "test activity": mine.mean(), "std": mine.std(), "test accuracy (%)": own["test_accuracy"].mean()}
        if network not in (src, learned):
            shared = sorted(set(mine.index) & set(activity[learned].index))
            row[CHANGE_FROM_LEARNED] = (mine[shared].mean() - activity[learned][shared].mean() if shared
                                        else float("nan"))
        if network != src:
            shared = sorted(set(mine.index) & set(activity[src].index))
            gap = activity[src][shared] - mine[shared]
            row.update({"SRC minus this": gap.mean() if shared else float("nan"), "paired seeds": len(shared),
                        "SRC higher": int((gap > 0).sum()), "SRC lower": int((gap < 0).sum())})
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    counts = ["paired seeds", "SRC higher", "SRC lower"]
    out[counts] = out[counts].astype("Int64")  # counts, none for the SRC itself
    return out


def fixed_lif_findings(table: pd.DataFrame) -> str:
    """Markdown from :func:`fixed_lif_activity`, one line per LIF trained with fixed parameters: its activity, how
    it moved from Table 2's LIF of the same seeds, and the order of SRC and LIF seed by seed: the paper's (SRC more
    active at one layer) only where every paired seed shows it, the opposite likewise, else no consistent order;
    a single paired seed is said to be one."""
    lines = []
    for row in table.to_dict("records"):
        if row["network"] in (FIXED_LIF_NETWORKS["src"], FIXED_LIF_NETWORKS["lif"]):
            continue
        plural = "s" if "," in str(row["seeds"]).split(" (")[0] else ""
        said = [f"activity {row['test activity']:.4f} over seed{plural} {row['seeds']}, "
                f"test accuracy {row['test accuracy (%)']:.2f} %"]
        change = row[CHANGE_FROM_LEARNED]
        if not is_missing(change):
            said.append(f"{format_number(change, _SIGNED)} against Table 2's LIF of the same seeds")
        paired = 0 if is_missing(row["paired seeds"]) else int(row["paired seeds"])
        if paired == 0:
            said.append("no SRC run of the same seed to compare with yet")
        else:
            higher, lower = int(row["SRC higher"]), int(row["SRC lower"])
            order = ("the paper's order (SRC more active)" if higher == paired
                     else "**the opposite of the paper's order**" if lower == paired
                     else f"no consistent order (SRC higher in {higher}, lower in {lower})")
            seeds = "in the one paired seed" if paired == 1 else f"in every one of {paired} paired seeds"
            said.append(f"SRC minus it {format_number(row['SRC minus this'], _SIGNED)} on average; "
                        + (f"{order} {seeds}" if higher == paired or lower == paired
                           else f"{order} of {paired} paired seeds"))
        lines.append(f"* {row['network']}: " + "; ".join(said) + ".")
    return "\n".join(lines)


#: the two LIF resets compared on the Table 2 page (``src-lif-reset``), as it names them
LIF_RESETS = {"zero": "to zero (Table 2's preset)", "subtract": "subtract the threshold (snnTorch's default)"}
#: the column of :func:`lif_reset_table` with the subtractive reset's accuracy minus reset-to-zero's, paired seeds
SUBTRACT_MINUS_ZERO = "subtract minus zero (pp)"


def lif_reset_table(runs: Runs, reset_runs: Runs) -> pd.DataFrame:
    """Table 2's 1-layer MNIST LIF (``runs``: the ``src-table2`` records, which reset to zero) beside the same
    networks with snnTorch's subtractive reset (``reset_runs``: the ``src-lif-reset`` records), one row per input
    and reset: runs, seeds, mean ± std test accuracy (percent), Table 2's number and ours minus it, mean test
    activity, how many runs fell sharply between epochs (:func:`reprolib.notebook.findings.unstable_drops`); and
    for the subtractive reset, over the seeds both resets have (a seed gives both the same weights, split, batch
    order and input spikes), its accuracy minus reset-to-zero's (:data:`SUBTRACT_MINUS_ZERO`), with the number of
    those seeds and of those where it scored higher. Inputs without a run of the subtractive reset are left out.
    Raises ``ValueError`` naming a column a table lacks."""
    from reprolib.notebook.findings import _mean_spread, paired_gap, _run_drops  # noqa: PLC0415

    columns = ["input", "reset", "runs", "seeds", "test accuracy (%)", "paper (LIF)", "ours minus paper",
               "test activity", "runs with sharp falls", SUBTRACT_MINUS_ZERO, "paired seeds", "subtract higher"]
    probe = reset_runs.table
    if probe.empty:
        return pd.DataFrame(columns=columns)
    needed = ["input", "layers", "model", "seed", "test_accuracy", "test_activity", "dataset", "history"]
    for name, table in (("Table 2", runs.table), ("reset probe", probe)):
        lacking = [c for c in needed if c not in table.columns] if not table.empty else []
        if lacking:
            raise ValueError(f"lif_reset_table: the {name} runs have no column {lacking}; columns: "
                             f"{list(map(str, table.columns))}")
    zero = runs.table
    if not zero.empty:
        zero = zero[(zero["model"] == "lif") & (pd.to_numeric(zero["layers"], errors="coerce") == 1)]
    both = pd.concat([zero.assign(reset="zero"), probe.assign(reset="subtract")], ignore_index=True)
    # subtract minus zero over the seeds both resets have, as the page's other paired comparisons count them
    gaps = paired_gap(both, ["input"], "reset", "subtract", "zero", reported=lambda cell: None).set_index("input")
    rows = []
    for name in dict.fromkeys(probe["input"]):
        for reset in LIF_RESETS:
            own = both[(both["input"] == name) & (both["reset"] == reset)]
            if own.empty:
                continue
            paper = src_table2_number({"input": name, "layers": 1, "model": "lif"})
            values = own["test_accuracy"].astype(float)
            subsets = own["test_subset"] if "test_subset" in own else [None] * len(own)
            falls = sum(bool(_run_drops(h, d, s)[1]) for h, d, s in zip(own["history"], own["dataset"], subsets))
            rows.append({"input": name, "reset": LIF_RESETS[reset], "runs": len(own),
                         "seeds": ", ".join(map(str, sorted(own["seed"].unique()))),
                         "test accuracy (%)": _mean_spread(values), "paper (LIF)": paper,
                         "ours minus paper": values.mean() - paper if paper is not None else float("nan"),
                         "test activity": own["test_activity"].astype(float).mean(), "runs with sharp falls": falls})
            if reset == "subtract" and name in gaps.index:
                gap = gaps.loc[name]
                rows[-1].update({SUBTRACT_MINUS_ZERO: gap["ours"], "paired seeds": gap["paired seeds"],
                                 "subtract higher": gap["subtract higher"]})
    table = pd.DataFrame(rows, columns=columns)
    for count in ("paired seeds", "subtract higher"):  # counts stay whole numbers beside the rows without them
        table[count] = table[count].astype("Int64")
    return table


def lif_reset_findings(table: pd.DataFrame) -> str:
    """Markdown from :func:`lif_reset_table`, one line per input with both resets on paired seeds: which reset
    scored higher and by how much, in how many of the paired seeds, and each reset's distance from Table 2's LIF."""
    lines = []
    for name, group in table.groupby("input", sort=False):
        paired = group.dropna(subset=[SUBTRACT_MINUS_ZERO])
        if paired.empty:
            continue
        row = paired.iloc[0]
        gap, n, higher = float(row[SUBTRACT_MINUS_ZERO]), int(row["paired seeds"]), int(row["subtract higher"])
        distance = "; ".join(f"{reset}: {format_number(r['ours minus paper'], '{:+.2f}')} pp from Table 2's LIF"
                             for reset, r in zip(group["reset"], group.to_dict("records")))
        lines.append(f"* {name}: the subtractive reset scored {abs(gap):.2f} pp {'higher' if gap > 0 else 'lower'} "
                     f"than reset to zero over {n} paired seed{'s' if n != 1 else ''} (higher in {higher} of {n}). "
                     f"{distance[0].upper()}{distance[1:]}.")
    return "\n".join(lines) or "*No input has runs of both resets on the same seed yet.*"


def lif_reset_activity_findings(runs: Runs, reset_runs: Runs) -> str:
    """Markdown for the activity page, one line per input of the ``src-lif-reset`` runs (``reset_runs``): Fig. 4's
    order at 1 layer (the SRC more active than the LIF) checked with each LIF reset, over the seeds that the SRC,
    Table 2's LIF (reset to zero; both from ``runs``) and the subtractive reset all have: each one's mean test
    activity over those seeds."""
    table, probe = runs.table, reset_runs.table
    if probe.empty or table.empty:
        return "*No run of the subtractive reset has a record yet.*"
    one_layer = table[pd.to_numeric(table["layers"], errors="coerce") == 1]
    lines = []
    for name in dict.fromkeys(probe["input"]):
        activity = {
            "SRC": one_layer[(one_layer["input"] == name) & (one_layer["model"] == "src")],
            "zero": one_layer[(one_layer["input"] == name) & (one_layer["model"] == "lif")],
            "subtract": probe[probe["input"] == name]}
        activity = {key: runs_.groupby("seed")["test_activity"].mean().astype(float).dropna()
                    for key, runs_ in activity.items()}
        seeds = sorted(set.intersection(*(set(values.index) for values in activity.values())))
        if not seeds:
            continue
        src = activity["SRC"][seeds].mean()
        parts = []
        for reset in ("zero", "subtract"):
            lif = activity[reset][seeds].mean()
            order = ("the SRC more active, Fig. 4's order" if src > lif
                     else "the LIF more active, the opposite of Fig. 4's order")
            parts.append(f"LIF with reset {'to zero' if reset == 'zero' else 'by subtraction'} {lif:.4f} ({order})")
        lines.append(f"* {name}, 1 layer, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}: SRC "
                     f"{src:.4f}; " + "; ".join(parts) + ".")
    return "\n".join(lines) or "*No seed has runs of the SRC and of both LIF resets yet.*"
