"""The kernel-benchmark records of ``reprolib bench`` (``results/bench/<device>.json``) as the performance page shows
them: per record its provenance, what ``--check`` found, the timings per neuron and shape with a speed-up figure,
the training-iteration rows and the training steps of the SRC paper's networks."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from reprolib.notebook.notes import show_markdown
from reprolib.notebook.parameters import read_json
from reprolib.notebook.run_provenance import format_code_version
from reprolib.notebook.tables import NOT_AVAILABLE, for_display
from reprolib.results.provenance import cpu_text

#: the columns of a record's timing rows the page shows, in this order (those a record lacks are left out)
BENCH_COLUMNS = ["neuron", "T", "B", "N", "torch_ms", "kernel_ms", "spikingjelly_ms", "roofline_ms",
                 "speedup_vs_torch", "kernel_over_roofline", "torch_scan_ms", "kernel_scan_ms", "scan_speedup_vs_torch"]
#: the same for its training-iteration rows
ITERATION_COLUMNS = ["task", "neuron", "B", "T", "torch_ms", "kernel_ms", "speedup_vs_torch", "source_ms"]
#: the same for its training-step rows of the SRC paper's networks
NETWORK_COLUMNS = ["task", "neuron", "B", "T", "input_density", "torch_ms", "kernel_ms", "speedup_vs_torch"]


def bench_records(bench_dir: str | Path = "results/bench") -> dict[str, dict]:
    """File stem -> benchmark record of every ``*.json`` in ``bench_dir`` (relative to the repository root unless
    absolute), sorted by name; a ``ValueError`` naming the parameter when the folder does not exist."""
    from reprolib.paths import REPO_ROOT  # noqa: PLC0415

    folder = Path(bench_dir) if Path(bench_dir).is_absolute() else REPO_ROOT / bench_dir
    if not folder.is_dir():
        raise ValueError(f"parameter bench_dir={str(bench_dir)!r} is not a folder ({folder})")
    return {path.stem: read_json(path) for path in sorted(folder.glob("*.json"))}


def no_bench_note(bench_dir: str | Path) -> str:
    """Markdown for a folder without benchmark records: the command that makes one."""
    return (f"**No benchmark record yet** under `{bench_dir}/`. On a machine with a CUDA GPU run\n\n"
            "```bash\nreprolib bench\n```\n\nand commit the JSON it writes; this page then shows it.")


def no_gpu_bench_note(records: Mapping[str, Mapping]) -> str:
    """Markdown where no committed record was made on a CUDA GPU (empty text otherwise): the CuPy kernels'
    timings and their GPU parity checks are then not in this book, whatever the CPU records show."""
    if any(record.get("device_type") == "cuda" for record in records.values()):
        return ""
    engines = sorted({str(record.get("kernel_engine")) for record in records.values() if record.get("kernel_engine")})
    made_with = f" (fused implementation: {', '.join(f'`{e}`' for e in engines)})" if engines else ""
    return ("**No benchmark record from a GPU is committed yet**, so this book has no timing of the CuPy kernels "
            "and no record of their GPU checks (`tests/test_kernels_gpu.py`, `reprolib bench --check`); the "
            f"records below were made without a GPU{made_with}. On a machine with a CUDA GPU, `reprolib bench` "
            "writes one.")


def _check_text(check: Mapping | None) -> str:
    """What ``reprolib bench --check`` found before timing, when it ran."""
    if not check:
        return ""
    if not check["failures"]:
        return f"\n\nKernel check ({check['engine']}): all {check['checks']} checks agree with the PyTorch loops."
    return (f"\n\n**Kernel check failed** ({check['engine']}): {len(check['failures'])} of {check['checks']} checks; "
            "the kernel columns below time kernels that do not compute what the PyTorch loops do:\n\n"
            + "\n".join(f"* `{failure}`" for failure in check["failures"]))


def bench_code_version(record: Mapping) -> str:
    """The record's code version: its commit (8 characters), ``+dirty`` when the tree was modified."""
    return format_code_version(record.get("git_commit"), record.get("git_dirty"))


def bench_heading(name: str, record: Mapping) -> str:
    """Markdown: the record's device as a heading, then its date, code, CPU, library versions, which engine the
    kernel columns timed and how; a warning for a record its run left incomplete, and the kernel check."""
    cpu = cpu_text(record.get("cpu"))
    host = f"CPU {cpu} · " if cpu else ""
    timing = record.get("timing", {})
    title = str(record.get("device", name))
    if record.get("device_type") == "cpu" and cpu:  # records of two CPU models differ by the model alone
        title += f", {cpu}"
    return (f"### {title}\n\n*{record.get('date', 'unknown date')} · "
            f"code {bench_code_version(record)} · {host}torch {record.get('torch')} · CUDA {record.get('cuda')} · "
            f"CuPy {record.get('cupy') or 'not installed'} · "
            f"kernel columns: {record.get('kernel_engine', 'cupy')} · "
            f"timing: {timing.get('method', '?')}, median of {timing.get('repeats', '?')}*"
            + ("\n\n**Incomplete record**: the run stopped before its last row (a time limit); the rows "
               "below are those it measured." if record.get("complete") is False else "")
            + _check_text(record.get("kernel_check")))


def _source_times(iterations: pd.DataFrame) -> str:
    """``"S-MNIST 1056 ms per iteration"``: the source-code iteration times of a benchmark record's rows (its
    ``source_ms``, where a row has one), named as the paper's Table 4 names the task."""
    from reprolib.kernels.bench import ITERATION_TASKS  # noqa: PLC0415

    if "source_ms" not in iterations:
        return "none in this record"
    rows = iterations.dropna(subset=["source_ms"]).drop_duplicates("task")
    return ", ".join(f"{ITERATION_TASKS.get(task, {}).get('table4_task', task)} {ms:g} ms per iteration"
                     for task, ms in zip(rows["task"], rows["source_ms"])) or "none in this record"


def show_bench_record(name: str, record: Mapping) -> None:
    """Display one benchmark record: :func:`bench_heading`, its timing table and speed-up figure, why columns are
    empty, its training-iteration rows beside the source's time, and its training steps of the SRC paper's
    networks."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from IPython.display import display  # noqa: PLC0415

    from reprolib import plotting  # noqa: PLC0415

    show_markdown(bench_heading(name, record))
    rows = pd.DataFrame(record.get("results", []))
    # a cell left empty is a time this device did not take (SpikingJelly has only an IF/LIF node, ...)
    display(for_display(rows[[c for c in BENCH_COLUMNS if c in rows.columns]].dropna(axis=1, how="all"), 3,
                        missing="not measured"))
    if "speedup_vs_torch" in rows and rows["speedup_vs_torch"].notna().any():
        fig = plotting.speedup_figure(rows.dropna(subset=["speedup_vs_torch"]), str(record.get("device", name)))
        plotting.caption(fig, f"{record.get('device')} · code {bench_code_version(record)} · "
                              f"{str(record.get('date'))[:10]}")
        plt.show()  # here, before the tables below, not at the end of the cell
    notes = [r["notes"] for r in record.get("results", []) if r.get("notes")]
    if notes:  # every row's notes say the same: why a column is empty on this device
        show_markdown("Columns left empty: " + "; ".join(f"**{k}**: {v}" for k, v in notes[0].items()))
    iterations = pd.DataFrame(record.get("iterations", []))
    if not iterations.empty:
        show_markdown("**One training iteration**: " + record.get("iteration_workload", "") + ". "
                      f"`source_ms`: the source's own TorchScript code, timed on an H100 when this project's "
                      f"kernel work was specified ({_source_times(iterations)}): **not a number of the paper**, and not "
                      f"measured here; the other tasks have none. The paper's own training times are its Table 4, "
                      f"below.")
        display(for_display(iterations[[c for c in ITERATION_COLUMNS if c in iterations.columns]], 2,
                            missing=NOT_AVAILABLE))
    networks = pd.DataFrame(record.get("networks", []))
    if not networks.empty:
        show_markdown("**One training step of the SRC paper's networks**: " + record.get("network_workload", "") + ".")
        display(for_display(networks[[c for c in NETWORK_COLUMNS if c in networks.columns]],
                            {"input_density": 5}, missing=NOT_AVAILABLE))
