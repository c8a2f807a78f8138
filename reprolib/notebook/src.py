"""The SRC paper's pages: its Table 2 beside ours, and the labels its figures use."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from reprolib.notebook.runs import Runs

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


def network_label(model: str, layers: int) -> str:
    """``SRC, 1 layer`` / ``LIF, 5 layers``: how the pages name one network of the grid."""
    return f"{model.upper()}, {layers} layer{'s' if layers != 1 else ''}"


def activity_order(runs: Runs) -> pd.DataFrame:
    """The paper's Fig. 4 claim beside our runs, per input and depth: the paper gives no values, only the order
    (SRC more active than LIF without hidden layers, i.e. at 1 layer; less active with hidden layers). ``ours``
    is SRC minus LIF mean test activity over the seeds both have (:func:`reprolib.notebook.paired_gap`),
    ``after epoch 1`` the same gap after the first epoch (whether training made the order or the initial
    weights did), ``agrees`` whether our order is the paper's. Groups without both models are left out."""
    from reprolib.notebook.findings import paired_gap  # noqa: PLC0415

    table = runs.table
    if table.empty:
        return pd.DataFrame(columns=["input", "layers", "paper", "ours", "wins", "after epoch 1", "agrees"])
    gaps = paired_gap(table, ["input", "layers"], "model", "src", "lif", reported=lambda cell: None,
                      metric="test_activity")
    history = runs.history()
    first = history[history["epoch"] == history["epoch"].min()]
    early = paired_gap(first, ["input", "layers"], "model", "src", "lif", reported=lambda cell: None,
                       metric="test_activity").set_index(["input", "layers"])["ours"]
    gaps["paper"] = ["SRC > LIF" if int(layers) == 1 else "SRC < LIF" for layers in gaps["layers"]]
    gaps["wins"] = [f"SRC higher in {w} seeds" for w in gaps["wins"]]
    gaps["after epoch 1"] = [early.get((i, l), float("nan")) for i, l in zip(gaps["input"], gaps["layers"])]
    gaps["agrees"] = [(gap > 0) == (int(layers) == 1) for gap, layers in zip(gaps["ours"], gaps["layers"])]
    return gaps.drop(columns="same order")[["input", "layers", "paper", "ours", "wins", "after epoch 1", "agrees"]]


def activity_order_findings(order: pd.DataFrame) -> str:
    """Markdown, one line per row of :func:`activity_order`: where our order of SRC and LIF activity is the
    paper's and where it is the opposite, with the gap, the seeds and the gap after the first epoch."""
    lines = []
    for row in order.to_dict("records"):
        where = f"{row['input']}, {int(row['layers'])} layer{'s' if int(row['layers']) != 1 else ''}"
        verdict = "as in the paper" if row["agrees"] else "**the opposite of the paper's order**"
        lines.append(f"* {where}: {verdict} ({row['paper']}): SRC minus LIF activity {row['ours']:+.4f}, "
                     f"{row['wins']}; {row['after epoch 1']:+.4f} after the first epoch.")
    return "\n".join(lines)


def initial_activity(runs: Runs, samples: int = 256, encoding_seed: int = 0) -> pd.DataFrame:
    """The activity (SRC Eq. 4, the records' ``test_activity``) of each recorded run's network *before training*:
    the model rebuilt from the run's seed (:func:`reprolib.training.build.initial_model`, the run's own initial
    weights) on the first ``samples`` test images, encoded as the run encodes them (generator seeded with
    ``encoding_seed``). LIF runs are also measured with snnTorch's subtracting reset (the reference's ambiguity
    A3; ours resets to zero), to see whether that choice moves the starting point. Beside it, the run's activity
    after the first epoch and as recorded (the record's test activity), from the record. Reads the test images:
    call it only where the data is found."""
    import torch  # noqa: PLC0415

    from reprolib.config import with_overrides  # noqa: PLC0415
    from reprolib.training.build import build_encoder, dataset_loader, initial_model  # noqa: PLC0415

    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples = {samples!r}; expected a positive int")
    columns = ["input", "layers", "model", "seed", "reset", "at initialisation", "after epoch 1", "as recorded"]
    if runs.table.empty:
        return pd.DataFrame(columns=columns)
    recorded = runs.table.set_index("config_hash")
    history = runs.history()
    rows, images = [], {}
    for config in runs.configs:
        if config.hash not in recorded.index:
            continue
        run = recorded.loc[config.hash]
        if config.dataset not in images:
            test = dataset_loader(config)("test")
            images[config.dataset] = torch.stack([test[i][0] for i in range(min(samples, len(test)))])
        first = history[(history["config_hash"] == config.hash)].sort_values("epoch")["test_activity"]
        variants = [(config.model_options.get("reset", ""), config, True)]  # the SRC has no reset option
        if run["model"] == "lif":
            variants.append(("subtract", with_overrides(config, {"model_options.reset": "subtract"}), False))
        for reset, variant, own in variants:
            model = initial_model(variant).eval()
            spikes = build_encoder(variant)(images[config.dataset], generator=torch.Generator().manual_seed(
                encoding_seed))
            with torch.no_grad():
                model(spikes)
            rows.append({"input": run["input"], "layers": int(run["layers"]), "model": run["model"],
                         "seed": int(run["seed"]), "reset": reset,
                         "at initialisation": float(model.last_activity),
                         "after epoch 1": float(first.iloc[0]) if own and len(first) else float("nan"),
                         "as recorded": float(run["test_activity"]) if own else float("nan")})
    return pd.DataFrame(rows, columns=columns)


def initial_activity_findings(table: pd.DataFrame) -> str:
    """Markdown from :func:`initial_activity`: per input and depth, the range of SRC and LIF activity before
    training, after the first epoch and as recorded; whether the two start about equally active (their ranges
    overlap: training makes the order), already in the recorded order, or in the opposite one; and how far the
    subtracting reset moves the LIF's starting activity."""
    def span(values: pd.Series) -> str:
        low, high = f"{values.min():.3f}", f"{values.max():.3f}"
        return low if low == high else f"{low}-{high}"

    lines = []
    own = table[table["reset"] != "subtract"]
    for (name, layers), group in own.groupby(["input", "layers"], sort=False):
        by_model = {model: group[group["model"] == model] for model in ("src", "lif")}
        if any(part.empty for part in by_model.values()):
            continue
        parts = [f"{stage}: " + ", ".join(f"{model.upper()} {span(part[stage].dropna())}"
                                          for model, part in by_model.items() if part[stage].notna().any())
                 for stage in ("at initialisation", "after epoch 1", "as recorded")]
        text = f"* {name}, {layers} layer{'s' if layers != 1 else ''}: " + "; ".join(parts) + "."
        start = {model: part["at initialisation"] for model, part in by_model.items()}
        end = {model: part["as recorded"].mean() for model, part in by_model.items()}
        overlap = start["src"].max() >= start["lif"].min() and start["lif"].max() >= start["src"].min()
        ratio = start["src"].mean() / start["lif"].mean() if start["lif"].mean() > 0 else float("inf")
        if overlap:
            verdict = "about equally active, so training makes the order of the recorded activities"
        elif (start["src"].mean() > start["lif"].mean()) == (end["src"] > end["lif"]):
            verdict = "already in the recorded order: the initial weights and dynamics set it and training keeps it"
        else:
            verdict = "in the opposite order to the recorded one: training reverses it"
        text += f" Before training the two are {verdict} (SRC / LIF at initialisation {ratio:.2f})."
        lif = table[(table["input"] == name) & (table["layers"] == layers) & (table["model"] == "lif")]
        paired = lif.pivot_table(index="seed", columns="reset", values="at initialisation")
        if "subtract" in paired and len(paired.columns) == 2:
            change = 100 * (paired["subtract"] / paired.drop(columns="subtract").iloc[:, 0] - 1)
            low, high = f"{change.min():+.0f}", f"{change.max():+.0f}"
            small = change.abs().max() < 10
            text += (f" With snnTorch's subtracting reset the untrained LIF's activity changes by "
                     f"{low if low == high else low + ' to ' + high} %: the reset choice "
                     f"{'barely moves' if small else 'moves'} the starting point (what it does to training is not "
                     "measured here).")
        lines.append(text)
    return "\n".join(lines)
