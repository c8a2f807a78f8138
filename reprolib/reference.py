"""The sources' own reported numbers and published curves, as data (labelled *paper* in the book).

Every table returned here carries ``source`` and ``section`` columns saying where each number was published;
the files behind them and their origin are described in ``reprolib/reference_data/README.md``.
A number a source does not report is simply absent: :func:`reported` returns ``None`` for it, and the book
shows "not available" rather than guessing.

>>> from reprolib import reference
>>> reference.reported("src-table2", layers=2, neuron="SRC", dataset="MNIST", encoding="rate")
98.32
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "reference_data"


@dataclass(frozen=True)
class Source:
    key: str
    title: str
    citation: str
    url: str


SOURCES = {
    "sj-clock": Source(
        "sj-clock", "SpikingJelly tutorial: Clock_driven",
        "fangwei123456 et al., SpikingJelly documentation, clock-driven tutorial (2020)",
        "https://github.com/fangwei123456/spikingjelly"),
    "sj-recurrent": Source(
        "sj-recurrent", "SpikingJelly tutorial: Recurrent Connections and Stateful Synapses",
        "fangwei123456, SpikingJelly documentation, clock-driven tutorial 15 (2021)",
        "https://github.com/fangwei123456/spikingjelly"),
    "bpsa": Source(
        "bpsa", "BrainCog lecture 11: BPSA",
        "Shen, Zhao, Zeng, Backpropagation with biologically plausible spatiotemporal adjustment, Patterns 3(6) 2022",
        "https://doi.org/10.1016/j.patter.2022.100522"),
    "src": Source(
        "src", "Spike-based computation using classical recurrent neural networks",
        "De Geeter, Ernst, Drion, arXiv 2306.03623",
        "https://arxiv.org/abs/2306.03623"),
    "brf": Source(
        "brf", "Balanced Resonate-and-Fire Neurons",
        "Higuchi, Kairat, Bohte, Otte, ICML 2024, arXiv 2402.14603",
        "https://github.com/quantling/brf-neurons"),
}

# table name -> (file, source key, section)
TABLES = {
    "src-table2": ("src_table2.csv", "src", "Table 2"),
    "brf-table1": ("brf_table1.csv", "brf", "Table 1"),
    "brf-table2": ("brf_table2.csv", "brf", "Table 2"),
    "brf-table4": ("brf_table4.csv", "brf", "Table 4"),
    "brf-parameters": ("brf_parameters.csv", "brf", "Section 4.4 (parameter analysis, Fig. 5 bottom)"),
    "spikingjelly": ("spikingjelly.csv", None, "logged CSVs published with the tutorials"),
}

SJ_RECURRENT_MODELS = ("plain", "feedback", "stateful-synapse")


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / name)


def table(name: str) -> pd.DataFrame:
    """One reported table (a copy), with ``source`` and ``section`` columns added."""
    if name not in TABLES:
        raise ValueError(f"unknown reference table {name!r}; expected one of {sorted(TABLES)}")
    file, source, section = TABLES[name]
    frame = _read(file).copy()
    if source is None:  # the SpikingJelly file holds both tutorials; its `tutorial` column says which
        frame.insert(0, "source", frame["tutorial"].map({"clock-driven": "sj-clock", "recurrent": "sj-recurrent"}))
    else:
        frame.insert(0, "source", source)
    frame.insert(1, "section", section)
    return frame


def reported(name: str, column: str | None = None, **where) -> float | None:
    """The single reported value matching ``where`` in table ``name``, or ``None`` if the source gives none.

    ``column`` picks the value column; by default the table's main one (test accuracy, or ``value``).
    """
    frame = table(name)
    column = column or _main_column(frame)
    for key, value in where.items():
        if key not in frame.columns:
            raise ValueError(f"table {name!r} has no column {key!r}; columns: {list(frame.columns)}")
        frame = frame[frame[key] == value]
    if len(frame) > 1:
        raise ValueError(f"{len(frame)} rows of {name!r} match {where}; add filters")
    if frame.empty or pd.isna(frame[column].iloc[0]):
        return None
    return float(frame[column].iloc[0])


def _main_column(frame: pd.DataFrame) -> str:
    for column in ("test_accuracy", "value", "training_time"):
        if column in frame.columns:
            return column
    raise ValueError(f"no default value column among {list(frame.columns)}; pass column=")


def source_label(key: str) -> str:
    """A one-line citation for a source key, e.g. for a figure caption."""
    if key not in SOURCES:
        raise ValueError(f"unknown source {key!r}; expected one of {sorted(SOURCES)}")
    return SOURCES[key].citation


# --- published curves ---------------------------------------------------------------------------------------


def _tensorboard_csv(name: str) -> pd.DataFrame:
    frame = _read(f"spikingjelly/{name}.csv")
    return frame.rename(columns={"Step": "step", "Value": "value"})[["step", "value"]]


def sj_lif_mnist_curves() -> dict[str, pd.DataFrame]:
    """Clock-driven tutorial, 2-layer LIF MNIST: accuracy in % per logged step.

    ``train``: training-batch accuracy every 256 iterations (column ``iteration``);
    ``test``: test-set accuracy after each epoch (column ``epoch``).
    """
    train = _tensorboard_csv("sj_lif_train").rename(columns={"step": "iteration", "value": "accuracy"})
    test = _tensorboard_csv("sj_lif_test").rename(columns={"step": "epoch", "value": "accuracy"})
    train["accuracy"] *= 100.0  # logged as fractions; the book uses percent everywhere
    test["accuracy"] *= 100.0
    return {"train": train, "test": test}


def sj_recurrent_curves() -> pd.DataFrame:
    """Recurrent tutorial, sequential Fashion-MNIST: long table ``model, split, metric, epoch, value``.

    ``split`` is ``train`` (accumulated over training batches in train mode) or ``train_eval`` — the published
    "test" curves, which were measured on the 60,000 training images in eval mode (SpikingJelly issue #159).
    ``metric`` is ``accuracy`` (%) or ``loss`` (MSE).
    """
    parts = []
    for model in SJ_RECURRENT_MODELS:
        for file_split, split in (("train", "train"), ("test", "train_eval")):
            for file_metric, metric in (("acc1", "accuracy"), ("loss", "loss")):
                curve = _tensorboard_csv(f"sj_{model}_{file_split}_{file_metric}").rename(columns={"step": "epoch"})
                curve.insert(0, "model", model)
                curve.insert(1, "split", split)
                curve.insert(2, "metric", metric)
                parts.append(curve)
    return pd.concat(parts, ignore_index=True)


def brf_curves() -> pd.DataFrame:
    """BRF released logs (ECG, SHD; BRF / RF / ALIF; 5 runs): ``task, model, run, epoch, val_loss,
    val_accuracy, test_accuracy`` (accuracies in %; epoch 0 is the untrained network)."""
    return _read("brf_curves.csv").copy()


def brf_log_selection() -> pd.DataFrame:
    """The BRF paper's selection rule applied to its released logs (ECG, SHD): per run, the test accuracy at the
    epoch of lowest validation loss; then mean, sample std and run count per task and model.

    Columns ``task, model, test_accuracy_mean, test_accuracy_std, runs, selected_epoch_mean``. These are the
    authors' own runs of the same-size networks, ALIF included (the paper's Table 1 ALIF rows are Yin et al.'s
    larger networks), so they are the like-for-like reference for our ALIF.
    """
    curves = brf_curves()
    picked = curves.loc[curves.groupby(["task", "model", "run"])["val_loss"].idxmin()]
    summary = picked.groupby(["task", "model"]).agg(
        test_accuracy_mean=("test_accuracy", "mean"), test_accuracy_std=("test_accuracy", "std"),
        runs=("run", "nunique"), selected_epoch_mean=("epoch", "mean"))
    return summary.reset_index()
