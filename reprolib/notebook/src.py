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
