"""The SpikingJelly tutorials' pages: their published numbers beside ours."""

from __future__ import annotations

import pandas as pd

from reprolib.notebook.runs import Runs
from reprolib.notebook.tables import paper_vs_ours

#: the recurrent tutorial's final-epoch metrics -> how its page names them (its "test" is the training set in
#: eval mode; the true test set is ours alone)
SJ_RECURRENT_METRICS = {"train_loss": "train loss", "train_accuracy": "train accuracy (%)",
                        "train_eval_accuracy": "training set, eval mode (%) = published \"test\"",
                        "test_accuracy": "true test set (%)"}


def sj_clock_table(runs: Runs) -> pd.DataFrame:
    """The clock-driven tutorial's 2-layer LIF on MNIST: its test accuracy at the last epoch and its best over
    epochs, ours beside them (mean ± std over the page's runs)."""
    from reprolib import reference  # noqa: PLC0415

    ours = runs.summary(["test_accuracy", "best_test_accuracy"], by=[])
    rows = pd.DataFrame([
        {"metric": text,
         "paper": reference.reported("spikingjelly", model="2-layer LIF", metric=paper_metric),
         "ours": ours[f"{metric}_mean"].iloc[0], "ours_std": ours[f"{metric}_std"].iloc[0],
         "runs": ours["n_runs"].iloc[0]}
        for text, paper_metric, metric in (
            ("test accuracy, last epoch (%)", "test_accuracy_final", "test_accuracy"),
            ("best test accuracy over epochs (%)", "test_accuracy_max", "best_test_accuracy"))])
    return paper_vs_ours(rows, ["metric"])


def sj_recurrent_table(runs: Runs) -> pd.DataFrame:
    """The recurrent tutorial's ablation: per model (its names: ``plain``, ``feedback``, ``stateful-synapse``)
    and metric of :data:`SJ_RECURRENT_METRICS`, the published final-epoch value beside ours (losses to 4
    decimals)."""
    from reprolib import reference  # noqa: PLC0415

    summary = runs.summary(list(SJ_RECURRENT_METRICS), by=["model"])
    rows = []
    for _, row in summary.iterrows():
        name = row["model"].removeprefix("sj-")
        for metric, text in SJ_RECURRENT_METRICS.items():
            rows.append({"model": name, "metric": text,
                         "paper": reference.reported("spikingjelly", model=name, metric=f"{metric}_final"),
                         "ours": row[f"{metric}_mean"], "ours_std": row[f"{metric}_std"], "runs": row["n_runs"],
                         "decimals": 4 if metric.endswith("loss") else 2})
    return paper_vs_ours(pd.DataFrame(rows), ["model", "metric"])
