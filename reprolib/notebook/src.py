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
