"""Derive ``brf_curves.csv`` from the per-run CSV logs released with quantling/brf-neurons.

The released logs (``experiments/{ecg,SHD}/csv_files/*.csv``, 30 files, 20 MB) hold every training iteration;
the book only needs the per-epoch evaluation points. This script keeps, per task / model / run / epoch, the
validation loss, validation accuracy and test accuracy, and writes one small long-format CSV next to itself.

    python reprolib/reference_data/derive_brf_curves.py [LOG_DIR]

``LOG_DIR`` defaults to ``../shared/reference/curves/brf-neurons`` (the project's copy of the logs). Epoch 0 is
the evaluation of the untrained network, as in the logs. Accuracies are in percent, as logged.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_LOGS = HERE.parents[2] / "shared" / "reference" / "curves" / "brf-neurons"
OUT = HERE / "brf_curves.csv"

# Log file stem -> model name used in the book. "best" is the BRF run, "vrf-NoR" the vanilla RF without reset.
MODEL_OF_TAG = {"best": "BRF", "vrf-NoR": "RF", "alif": "ALIF", "alif_best": "ALIF"}
TASK_OF_PREFIX = {"ecg": "ECG", "shd": "SHD"}
FILE_PATTERN = re.compile(r"^(?P<task>ecg|shd)_(?P<tag>.+)_model_run_(?P<run>\d+)\.csv$")
# The logs spell the ECG accuracy in lower case; normalise both spellings.
KEPT_METRICS = {"loss/val": "val_loss", "accuracy/val": "val_accuracy", "accuracy/test": "test_accuracy"}


def derive(log_dir: Path) -> list[dict]:
    rows: dict[tuple, dict] = {}
    files = sorted(log_dir.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no BRF log CSVs in {log_dir}")
    for path in files:
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise ValueError(f"unexpected log file name {path.name!r}")
        task, model = TASK_OF_PREFIX[match["task"]], MODEL_OF_TAG[match["tag"]]
        run = int(match["run"])
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                column = KEPT_METRICS.get(record["metric"].lower())
                if column is None:
                    continue
                epoch = int(float(record["step"]))
                key = (task, model, run, epoch)
                rows.setdefault(key, {"task": task, "model": model, "run": run, "epoch": epoch})
                rows[key][column] = round(float(record["value"]), 4)
    return [rows[key] for key in sorted(rows)]


def main(argv: list[str]) -> int:
    log_dir = Path(argv[0]) if argv else DEFAULT_LOGS
    rows = derive(log_dir)
    columns = ["task", "model", "run", "epoch", "val_loss", "val_accuracy", "test_accuracy"]
    with OUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
