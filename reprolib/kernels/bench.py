"""``reprolib bench``: forward + backward time of multi-step neuron layers, PyTorch loop vs fused kernels.

For each neuron type (LIF, LEAKY: the SRC paper's snnTorch-style LIF baseline, SRC, BRF, ALIF) and shape ``T, B, N`` it times one forward and backward pass of

* ``torch``: the PyTorch time loop of :mod:`reprolib.neurons` (the reference implementation);
* ``kernel``: the fused CuPy kernel of :mod:`reprolib.kernels` on a GPU; on a CPU the same sources built as C++
  (``backend="cpp"``: one scan call per layer, and for BRF / ALIF the whole-sequence loops of
  :mod:`reprolib.kernels.cpu`); the record's ``kernel_engine`` says which;
* ``spikingjelly``: SpikingJelly's multi-step ``LIFNode`` on its fastest path for the device (LIF only, when
  SpikingJelly is installed; see :func:`spikingjelly_lif`);

and, end to end, one training iteration of the BRF paper's network (``iterations``: S-MNIST batch 256 and
T = 784, the issue's 50 ms target against 1,056 ms that issue 7 measured for the source's code on an H100, not a
number of the paper; ECG batch 16 and T = 1300), PyTorch loops
vs the fused backend. Per layer it also times, for BRF and ALIF, ``torch_scan`` / ``kernel_scan``: the neuron alone driven by a known input current
(no recurrent matrix; a step-function loop vs one scan kernel). BRF and ALIF ``torch`` / ``kernel`` time the
recurrent layer of the BRF paper (``W [N, 2N]`` on ``[x[t], z[t-1]]``; the recurrent matmul runs once per step
in both). LIF uses SpikingJelly 2.0's defaults (tau 2, hard reset to 0, Sigmoid alpha 4, ``decay_input``), so
the SpikingJelly column runs the same neuron.

HBM roofline: a differentiable multi-step layer must at least read its input and write its spikes (forward),
write and read back one saved state per element, and read the spike gradient and write the input gradient
(backward): ``6 x T x B x N x 4 bytes`` (float32) divided by the device's peak memory bandwidth
(``2 x memory clock x bus width``, from the CUDA device properties; ``--peak-bandwidth`` overrides). For the
recurrent types the matmuls are not counted, so their roofline is a loose lower bound.

``networks``: one training step of the SRC paper's 1-layer MNIST networks of Table 2 (SRC latency- and
rate-coded, LIF latency-coded) at their paper-scale configs, PyTorch loops vs the fused backend (on a CPU the
``cpp`` path its CPU records were trained with): see :data:`NETWORK_STEPS`.

``encoders``: the spike encoders that draw random numbers, at the sizes of the runs that use them (``rate``: the
SRC paper's MNIST batch, T = 200, B = 64, gain 0.25; ``poisson``: SpikingJelly's clock-driven MNIST, T = 50,
B = 128), timed against the formulation of their sources (snnTorch's ``repeat`` / ``torch.bernoulli``;
``torch.rand(...) <= x``) and checked to give the same spikes for the same seed.

Timing: CUDA events around each forward + backward, after warm-up (which also compiles the kernels), median of
the repeats (``time.perf_counter`` on CPU). The JSON record (device, date, versions, git commit) goes to
``results/bench/<device>.json`` (:func:`bench_file_stem`) for the book's performance chapter. On a machine without
CUDA the PyTorch loop and the C++ build run (by default at the small shape 28,128,32); the SpikingJelly column is
``null`` with the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pandas is imported where a table is made, not when the benchmark runs
    import pandas as pd

__all__ = ["configure", "main", "run_bench", "run_iterations", "run_network_steps", "run_encoders", "encoder_table",
           "SHAPES", "NEURONS", "ITERATION_TASKS", "NETWORK_STEPS", "peak_bandwidth"]

SHAPES = ((200, 64, 512), (784, 256, 256), (200, 256, 512), (28, 128, 32))
CPU_SHAPES = ((28, 128, 32),)
NEURONS = ("LIF", "SRC", "BRF", "ALIF", "LEAKY")
BYTES_PER_ELEMENT_PASS = 6 * 4
ROOFLINE_DEFINITION = (
    "6 float32 arrays of T*B*N elements must cross HBM (forward: read input, write spikes, write one saved state; "
    "backward: read spike gradient, read the saved state, write input gradient) at the device's peak bandwidth "
    "(2 x memory clock x bus width); recurrent matmuls (BRF, ALIF) not counted"
)

# peak HBM bandwidth in GB/s by device name, used when the properties are not exposed
_KNOWN_BANDWIDTH = {"H100 PCIe": 2039.0, "H100 NVL": 3938.0, "H100": 3352.0, "H200": 4800.0,
                    "A100-SXM4-80GB": 2039.0, "A100 80GB PCIe": 1935.0, "A100": 1555.0, "V100": 900.0}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--neurons", nargs="+", default=list(NEURONS), type=str.upper, choices=NEURONS,
                        help="neuron types to time (default: all)")
    parser.add_argument("--shapes", nargs="+", default=None, metavar="T,B,N",
                        help="shapes T,B,N (default: the four of issue 7 on CUDA, 28,128,32 on CPU)")
    parser.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per column (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (compiles the kernels)")
    parser.add_argument("--max-torch-seconds", type=float, default=60.0,
                        help="skip the PyTorch-loop repeats beyond this budget per column (fewer repeats, noted)")
    parser.add_argument("--peak-bandwidth", type=float, default=None, metavar="GB/s",
                        help="peak memory bandwidth for the roofline (default: from the device properties)")
    parser.add_argument("--no-spikingjelly", action="store_true", help="do not time SpikingJelly even if installed")
    parser.add_argument("--check", action="store_true",
                        help="first compare every kernel with the PyTorch implementation on this device (the CuPy "
                             "kernels on a GPU, the cpp builds on a CPU); failures go into the JSON's kernel_check, "
                             "the timing still runs, and the exit code is 1 (as it is, with or without --check, "
                             "when an encoder's spikes differ from its source's formulation)")
    parser.add_argument("--iterations", nargs="+", default=None, choices=[*ITERATION_TASKS, "none"],
                        help="also time one full training iteration of the BRF paper's network on these tasks "
                             "(default: smnist and ecg on CUDA, ecg on CPU; 'none' skips)")
    parser.add_argument("--networks", nargs="+", default=None, choices=[*NETWORK_STEPS, "none"],
                        help="also time one training step of these networks of the SRC paper's Table 2 at their "
                             "paper-scale configs (default: all three; 'none' skips)")
    parser.add_argument("--output", default=None,
                        help="JSON path (default: results/bench/<device>.json, on a CPU cpu-<model>-<N>-threads.json)")


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        T, B, N = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"shape {text!r} is invalid; expected T,B,N (three positive integers)") from None
    if min(T, B, N) <= 0:
        raise ValueError(f"shape {text!r} is invalid; expected three positive integers")
    return T, B, N


def peak_bandwidth(device: torch.device) -> tuple[float | None, str]:
    """Peak memory bandwidth in GB/s and where it came from."""
    if device.type != "cuda":
        return None, "not applicable on CPU"
    props = torch.cuda.get_device_properties(device)
    clock = getattr(props, "memory_clock_rate", None)
    width = getattr(props, "memory_bus_width", None)
    source = "torch.cuda.get_device_properties"
    if not clock or not width:
        try:
            from reprolib.kernels.dispatch import import_cupy  # noqa: PLC0415

            attrs = import_cupy().cuda.runtime.getDeviceProperties(device.index or 0)
            clock, width, source = attrs["memoryClockRate"], attrs["memoryBusWidth"], "cudaGetDeviceProperties"
        except Exception:  # noqa: BLE001 - fall back to the table
            clock = width = None
    if clock and width:
        return 2.0 * clock * 1e3 * width / 8.0 / 1e9, f"{source}: 2 x {clock} kHz x {width} bit"
    for key, value in _KNOWN_BANDWIDTH.items():
        if key in props.name:
            return value, f"datasheet value for {key}"
    return None, "unknown (pass --peak-bandwidth)"


# --------------------------------------------------------------------------------------------------
# the timed workloads: each builder returns a closure doing one forward + backward


def _lif_case(impl: str, engine: str, T, B, N, device, gen):
    from reprolib import surrogate as S  # noqa: PLC0415
    from reprolib.neurons import integrate_fire as IF  # noqa: PLC0415

    x = (torch.randn(T, B, N, generator=gen) * 0.6 + 0.8).to(device).requires_grad_()
    p = IF.LIFParameters(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                         surrogate_function=S.Sigmoid(alpha=4.0))
    v0 = torch.zeros(B, N, device=device)
    if impl == "spikingjelly":
        node = spikingjelly_lif(device)

        def run():
            node.reset()
            node(x).sum().backward()
        return run
    if impl == "kernel":
        from reprolib.kernels.lif import lif_multistep  # noqa: PLC0415

        fn = partial(lif_multistep, engine=engine)
    else:
        fn = IF.lif_multistep

    def run():
        s, _ = fn(x, v0, p)
        s.sum().backward()
    return run


def spikingjelly_lif(device):
    """SpikingJelly's multi-step ``LIFNode`` with the benchmark's LIF settings, on its fastest path for ``device``:
    0.x takes ``backend="cupy"`` (GPU) / ``"torch"``; 2.x has no ``backend`` and dispatches to its fused CUDA
    operators itself on CUDA tensors."""
    import inspect  # noqa: PLC0415

    from spikingjelly.activation_based import neuron, surrogate  # noqa: PLC0415

    options = dict(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                   surrogate_function=surrogate.Sigmoid(alpha=4.0), step_mode="m")
    if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:
        options["backend"] = "cupy" if torch.device(device).type == "cuda" else "torch"
    return neuron.LIFNode(**options).to(device)


def _leaky_case(impl: str, engine: str, T, B, N, device, gen):
    """The SRC paper's LIF baseline: snnTorch-style Leaky, learnable beta and threshold, reset to zero."""
    from reprolib.neurons import leaky as L  # noqa: PLC0415

    x = (torch.randn(T, B, N, generator=gen) * 0.6 + 0.3).to(device).requires_grad_()
    beta = torch.tensor(0.9, device=device, requires_grad=True)
    thr = torch.tensor(1.0, device=device, requires_grad=True)
    p = L.LeakyParameters(beta, thr, "zero")
    state = L.LeakyState(torch.zeros(B, N, device=device))
    if impl == "kernel":
        from reprolib.kernels import leaky as K  # noqa: PLC0415

        # on a CPU, backend="cpp" is the dedicated C++ scan, not the emulated CUDA source
        fn = K.leaky_multistep_cpp if engine == "cpp" else partial(K.leaky_multistep_cuda, engine=engine)
    else:
        fn = L.leaky_multistep

    def run():
        s, _ = fn(x, state, p)
        s.sum().backward()
    return run


def _src_case(impl: str, engine: str, T, B, N, device, gen):
    from reprolib.neurons import src as R  # noqa: PLC0415

    I = (torch.randn(T, B, N, generator=gen) * 3.0 + 2.0).to(device).requires_grad_()
    b = torch.full((N,), -6.0, device=device, requires_grad=True)
    state = R.src_initial_state((B, N), device=device)
    p = R.SRCParameters(b_h=b)
    if impl == "kernel":
        from reprolib.kernels.src import src_multistep, src_multistep_cpp  # noqa: PLC0415

        # on a CPU, backend="cpp" is the time-outer C++ scan, not the emulated CUDA source
        fn = src_multistep_cpp if engine == "cpp" else partial(src_multistep, engine=engine)
    else:
        fn = R.src_multistep

    def run():
        s, _ = fn(I, state, p)
        s.sum().backward()
    return run


def _resonate_case(model: str, impl: str, engine: str, T, B, N, device, gen):
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    if model == "ALIF":
        params = R.ALIFParameters((torch.randn(N, generator=gen) * 5 + 20).to(device).requires_grad_(),
                                  (torch.randn(N, generator=gen) * 50 + 200).to(device).requires_grad_())
        state = R.ALIFState(*(torch.zeros(B, N, device=device) for _ in range(3)))
    else:
        params = R.RFParameters((torch.rand(N, generator=gen) * 35 + 15).to(device).requires_grad_(),
                                (torch.rand(N, generator=gen) * 0.9 + 0.1).to(device).requires_grad_())
        state = R.RFState(*(torch.zeros(B, N, device=device) for _ in range(4)))
    name = model.lower()
    if impl in ("torch", "kernel"):
        x = (torch.rand(T, B, N, generator=gen) < 0.2).float().to(device)
        w = (torch.randn(N, 2 * N, generator=gen) * (4.0 if model == "BRF" else 1.0) / (2 * N) ** 0.5)
        w = w.to(device).requires_grad_()
        if impl == "kernel":
            from reprolib.kernels import resonate as K  # noqa: PLC0415

            fn = partial(getattr(K, f"{name}_multistep"), engine=engine)
        else:
            fn = getattr(R, f"{name}_multistep")

        def run():
            z, _ = fn(x, w, state, params)
            z.sum().backward()
        return run
    cur = (torch.randn(T, B, N, generator=gen) * (30.0 if model == "BRF" else 1.0)
           + (10.0 if model == "BRF" else 0.2)).to(device).requires_grad_()
    if impl == "kernel_scan":
        from reprolib.kernels import resonate as K  # noqa: PLC0415

        scan = partial(getattr(K, f"{name}_scan"), engine=engine)

        def run():
            z, _ = scan(cur, state, params)
            z.sum().backward()
        return run
    step = getattr(R, f"{name}_step")

    def run():
        st, zs = state, []
        for c in cur:
            z, st = step(c, st, params)
            zs.append(z)
        torch.stack(zs).sum().backward()
    return run


# --------------------------------------------------------------------------------------------------
# end to end: one training iteration of the BRF paper's RSNN (issue 7's S-MNIST target)

#: batch, steps, loss and optimiser settings of the BRF paper's scripts (reference brf-neurons.md section 3), and
#: the training samples and epochs of a full run there (S-MNIST 54,000 of 60,000; ECG 557 of 618 sequences)
ITERATION_TASKS = {
    "smnist": {"batch": 256, "T": 784, "label_last": True, "grad_clip": 1.0, "lr": 0.1, "train_samples": 54_000,
               "epochs": 300, "table4_task": "S-MNIST"},
    "ecg": {"batch": 16, "T": 1300, "label_last": False, "grad_clip": None, "lr": 0.1, "train_samples": 557,
            "epochs": 400, "table4_task": "ECG"},
}
#: NOT a number of the paper: the source's own TorchScript code timed for one S-MNIST iteration on an H100 when
#: the project's kernel work was specified (its issue 7), not measured here. The paper's own times are its Table 4
#: (reprolib.reference.table("brf-table4")), whole runs on the authors' GPUs.
SOURCE_ITERATION_MS = {"smnist": 1056.0}


def projected_training_hours(task: str, iteration_ms: float) -> float:
    """Hours of training iterations alone for a full run of ``task`` (``ITERATION_TASKS``) at ``iteration_ms``
    per iteration: ``ceil(train_samples / batch) * epochs`` iterations, no evaluation passes and no data
    loading. A projection to set beside the paper's Table 4, not a measured run."""
    if task not in ITERATION_TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(ITERATION_TASKS)}")
    if isinstance(iteration_ms, bool) or not isinstance(iteration_ms, (int, float)) or not iteration_ms > 0:
        raise ValueError(f"iteration_ms={iteration_ms!r} is not allowed; expected a positive number of milliseconds")
    spec = ITERATION_TASKS[task]
    iterations = -(-spec["train_samples"] // spec["batch"]) * spec["epochs"]
    return iterations * iteration_ms / 3.6e6


def training_time_table(records: dict) -> pd.DataFrame:
    """The paper's Table 4 (training time of a whole BRF-RSNN run, per task, in its printed unit) beside our
    :func:`projected_training_hours` from the ``iterations`` rows of each benchmark record in ``records``
    (name -> record dict): a column per record (named by its key and device) and implementation (the PyTorch
    loop, and the record's ``kernel_engine``: the CuPy kernels, or the C++ loops on a CPU), ``NaN`` where a record
    has no such row."""
    from reprolib import reference  # noqa: PLC0415

    paper = reference.table("brf-table4")
    paper["column"] = "paper: " + paper["optimisation"] + (" + " + paper["gradient"]).where(paper["gradient"] == "FGI", "")
    table = paper.pivot(index=["task", "unit"], columns="column", values="training_time")
    table = table[list(paper["column"].drop_duplicates())]  # the paper's column order
    table = table.reindex(list(paper["task"].drop_duplicates()), level="task").reset_index()  # and row order
    table.columns.name = None
    for name, record in records.items():
        engine = record.get("kernel_engine", "cupy")
        for row in record.get("iterations", []):
            task = ITERATION_TASKS.get(row.get("task"), {}).get("table4_task")
            for impl, label in (("torch_ms", "PyTorch loop"), ("kernel_ms", engine)):
                if task is None or row.get(impl) is None:
                    continue
                hours = projected_training_hours(row["task"], float(row[impl]))
                where = table["task"] == task
                factor = 60.0 if (table.loc[where, "unit"] == "min").all() else 1.0
                column = f"ours, {name} ({record.get('device', '?')}): {label} (projected)"
                table.loc[where, column] = hours * factor
    return table


def _iteration_case(task: str, backend: str, device, gen, neuron: str = "brf"):
    """One training iteration: forward over T steps, per-step log-softmax NLL (label-last on S-MNIST), backward,
    gradient clipping where the source clips, Adam step; random inputs of the task's shape. The weights are
    seeded in a fork of the global RNGs (:func:`~reprolib.training.build.preserved_global_rng`), so the caller's
    random state is left as it was."""
    from reprolib.models.resonate import RSNN_PRESETS, RSNN_TASK_SIZES, build_rsnn  # noqa: PLC0415
    from reprolib.training.build import preserved_global_rng  # noqa: PLC0415
    from reprolib.training.loop import optimizer_step  # noqa: PLC0415
    from reprolib.training.losses import make_seq_nll  # noqa: PLC0415

    spec = ITERATION_TASKS[task]
    m, _, classes = RSNN_TASK_SIZES[task]
    B, T = spec["batch"], spec["T"]
    with preserved_global_rng(seed=0):
        model = build_rsnn(**RSNN_PRESETS[(task, neuron)], backend=backend).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    loss_fn = make_seq_nll(label_last=spec["label_last"], skip_steps=0)
    if task == "smnist":
        x = torch.rand(T, B, m, generator=gen).to(device)  # one grey value per step
        y = torch.randint(0, classes, (B,), generator=gen).to(device)
    else:
        x = (torch.rand(T, B, m, generator=gen) < 0.05).float().to(device)  # level-crossing events
        y = torch.randint(0, classes, (B, T), generator=gen).to(device)

    def run():
        optimizer_step(loss_fn(model(x), y).loss, model, optimizer, spec["grad_clip"])
    run.model = model  # for tests
    return run


def run_iterations(tasks, device: torch.device, repeats: int = 5, warmup: int = 2, max_torch_seconds: float = 60.0,
                   log=print, on_row=None) -> list[dict]:
    """Time one BRF training iteration per task with the PyTorch loops and with the fused backend;
    ``on_row(rows)`` after each task, as in :func:`run_bench`."""
    gen = torch.Generator().manual_seed(0)
    rows = []
    for task in tasks:
        spec = ITERATION_TASKS[task]
        row = {"task": task, "neuron": "BRF", "B": spec["batch"], "T": spec["T"], "notes": {},
               "source_ms": SOURCE_ITERATION_MS.get(task)}
        _time_torch_and_kernel(row, f"iteration {task:6s}", lambda backend: _iteration_case(task, backend, device, gen),
                               device, warmup, repeats, max_torch_seconds, log)
        rows.append(row)
        if on_row is not None:
            on_row(rows)
    return rows


def _time_torch_and_kernel(row: dict, label: str, make_run, device: torch.device, warmup: int, repeats: int,
                           max_torch_seconds: float, log) -> None:
    """Fill ``row``'s ``torch_ms``, ``kernel_ms`` (the device's fused engine; ``None`` and a note where it cannot
    run or fails: one failing column must not lose the rows after it on a lent GPU), ``speedup_vs_torch`` and
    timing notes, timing ``make_run(backend)()`` for each backend."""
    engine, reason = kernel_engine_for(device)
    for impl, backend in (("torch", "torch"), ("kernel", engine)):
        if impl == "kernel" and reason is not None:
            row["kernel_ms"], row["notes"]["kernel"] = None, reason
            continue
        budget = max_torch_seconds if impl == "torch" else float("inf")
        try:
            ms, n = _time(make_run(backend), device, warmup, repeats, budget)
        except Exception as err:  # noqa: BLE001 - as in run_bench: the record names the failure
            row[f"{impl}_ms"], row["notes"][impl] = None, f"{type(err).__name__}: {err}"
            log(f"{label} {impl}: failed: {type(err).__name__}: {err}")
            continue
        row[f"{impl}_ms"] = ms
        if n < repeats:
            row["notes"][impl] = f"{n} repeats (time budget)"
        log(f"{label} B={row['B']} T={row['T']} {impl:7s} ({backend}) {ms:10.3f} ms")
    t, k = row.get("torch_ms"), row.get("kernel_ms")
    row["speedup_vs_torch"] = t / k if t and k else None


# --------------------------------------------------------------------------------------------------
# end to end: one training step of the SRC paper's Table 2 networks, as `reprolib sweep src-table2` trains them

#: name -> (preset, grid choices, neuron type): the 1-layer MNIST networks of the SRC paper's Table 2 with records
#: trained on a CPU (the others of the table differ in depth and data set, not in what a step runs)
NETWORK_STEPS = {
    "src-mnist-latency": ("src-table2", {"input": "mnist-latency", "layers": 1, "model": "src"}, "SRC"),
    "src-mnist-rate": ("src-table2", {"input": "mnist-rate", "layers": 1, "model": "src"}, "SRC"),
    "lif-mnist-latency": ("src-table2", {"input": "mnist-latency", "layers": 1, "model": "lif"}, "LEAKY"),
}
NETWORK_WORKLOAD = (
    "one training step of a network of the SRC paper's Table 2 at its paper-scale config (`reprolib sweep src-table2 "
    "--scale paper`) with the code of this benchmark record: encode a batch of images into spikes, forward, loss, "
    "backward, gradient clipping, optimiser step and the model's own after-step (the SRC cells' bias projection), "
    "with the config's flush_denormal and, on a CPU, the host-memory setting of a training run (host_memory, for "
    "the whole record); "
    "`torch`: the PyTorch time loops and dense input matmuls, `kernel`: the run's fused backend (`cpp` on a CPU: "
    "C++ scans and sparse input matmuls). One batch of synthetic images with MNIST's share of lit pixels, reused "
    "from the seed-0 initial weights; input_density: the share of input spikes in the encoded batch. Not timed: "
    "data loading and the training loop's bookkeeping, so an epoch of a record (844 such steps and its "
    "evaluations) takes longer than 844 of these")


def synthetic_mnist(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Images ``[batch, 1, 28, 28]`` in [0, 1] with MNIST's pixel statistics to first order: 18 % of the pixels
    lit, 43 % of those at 1 and the others uniform below 0.9, a mean lit value of 0.69 (MNIST's test images: 18 %
    lit, 43 % of them above 0.9, mean lit value 0.67). The spike encoders' cost, and the sparse input matmul's,
    follow how many pixels are lit and how bright."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r} is not allowed; expected a positive integer")
    shape = (batch, 1, 28, 28)
    lit = torch.rand(shape, generator=generator) < 0.18
    full = torch.rand(shape, generator=generator) < 0.43
    value = torch.where(full, 1.0, 0.9 * torch.rand(shape, generator=generator))
    return torch.where(lit, value, 0.0)


def network_step_config(name: str):
    """The paper-scale config (seed 0) of the network step ``name`` (:data:`NETWORK_STEPS`)."""
    from reprolib.experiments import get_configs  # noqa: PLC0415

    if name not in NETWORK_STEPS:
        raise ValueError(f"unknown network step {name!r}; expected one of {sorted(NETWORK_STEPS)}")
    experiment, choices, _ = NETWORK_STEPS[name]
    (config,) = get_configs(experiment, "paper", seeds=[0], **{key: [value] for key, value in choices.items()})
    return config


def _network_step_case(name: str, backend: str, device: torch.device):
    """``run()`` doing one training step of :func:`network_step_config` with ``backend`` on ``device`` and
    returning its loss (the initial weights seeded as a run of seed 0 seeds them, without touching the global
    RNGs; the same images for every backend; ``run.model`` is the model), and the share of input spikes in its
    encoded batch."""
    from reprolib.config import with_overrides  # noqa: PLC0415
    from reprolib.training.build import build_parts, preserved_global_rng  # noqa: PLC0415
    from reprolib.training.loop import optimizer_step  # noqa: PLC0415
    from reprolib.training.schedules import build_optimizer  # noqa: PLC0415

    config = with_overrides(network_step_config(name), {"backend": backend, "device": str(device)})
    with preserved_global_rng():
        parts = build_parts(config, before_model=lambda: torch.manual_seed(config.seed))
    model = parts.model.to(device)
    optimizer = build_optimizer(config, model.parameters())
    gen = torch.Generator().manual_seed(0)
    x = synthetic_mnist(config.batch_size, gen).to(device)
    y = torch.randint(0, int(config.model_options.get("classes", 10)), (config.batch_size,), generator=gen).to(device)
    encode_gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        density = float(parts.encoder(x, generator=encode_gen).float().mean())

    def run():
        with torch.no_grad():  # as the training loop encodes: outside autograd
            x_seq = parts.encoder(x, generator=encode_gen)
        loss = parts.loss_fn(model(x_seq), y).loss
        optimizer_step(loss, model, optimizer, config.grad_clip)
        return loss.detach()
    run.model = model  # for tests: the gradients of its last step stay on the parameters
    return run, density


def run_network_steps(names, device: torch.device, repeats: int = 5, warmup: int = 2, max_torch_seconds: float = 60.0,
                      log=print, on_row=None) -> list[dict]:
    """Time one training step of each network of :data:`NETWORK_STEPS` in ``names`` with the PyTorch loops and
    with the fused backend; ``on_row(rows)`` after each network, as in :func:`run_bench`. The config's
    ``flush_denormal`` holds while its steps run (as in training) and is switched off after, as training does; at
    least one untimed step first (the kernels' first-call builds). :func:`main` applies a CPU training run's
    host-memory setting to the whole benchmark."""
    rows = []
    for name in names:
        config = network_step_config(name)
        row = {"task": name, "neuron": NETWORK_STEPS[name][2], "B": config.batch_size,
               "T": config.encoding_options["num_steps"], "notes": {}}

        def make_run(backend, name=name, row=row):
            run, row["input_density"] = _network_step_case(name, backend, device)
            return run
        torch.set_flush_denormal(config.flush_denormal)
        try:
            _time_torch_and_kernel(row, f"network step {name:17s}", make_run, device, max(warmup, 1), repeats,
                                   max_torch_seconds, log)
        finally:
            torch.set_flush_denormal(False)
        rows.append(row)
        if on_row is not None:
            on_row(rows)
    return rows


#: encoder -> (T, B, options): the batches of the runs that use them (SRC Table 2 MNIST; SpikingJelly clock-driven)
ENCODER_CASES = {"rate": (200, 64, {"gain": 0.25}), "poisson": (50, 128, {})}


def _encoder_reference(name: str, T: int, options: dict):
    """The source's own formulation of the encoder: snnTorch's spikegen.rate (repeat, scale and shift, clamp,
    Bernoulli); SpikingJelly's single-step PoissonEncoder (``rand_like(x).le(x)``) called at each of T steps."""
    if name == "rate":
        gain, offset = options.get("gain", 1.0), options.get("offset", 0.0)
        return lambda x, g: torch.bernoulli(torch.clamp(x.repeat(T, *([1] * x.dim())) * gain + offset, 0, 1),
                                            generator=g)
    return lambda x, g: torch.stack([
        torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype).le(x).to(x.dtype) for _ in range(T)])


def run_encoders(device: torch.device, repeats: int = 10, warmup: int = 2, log=print) -> list[dict]:
    """Time each random encoder of :data:`ENCODER_CASES` on an MNIST-like batch (a third of the pixels black)
    against its source's formulation, after checking that both give the same spikes from the same seed."""
    from reprolib.encoding import get_encoder  # noqa: PLC0415

    rows = []
    for name, (T, B, options) in ENCODER_CASES.items():
        x = torch.rand(B, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        x = torch.where(x < 0.33, 0.0, x).to(device)
        ours, reference = get_encoder(name, num_steps=T, flatten=False, **options), _encoder_reference(name, T, options)
        row = {"encoder": name, "T": T, "B": B, "features": 784}
        try:
            gen = lambda: torch.Generator(device=device).manual_seed(7)  # noqa: E731
            identical = bool(torch.equal(ours(x, gen()), reference(x, gen())))
            g = gen()
            reference_ms, _ = _time(lambda: reference(x, g), device, warmup, repeats, float("inf"))
            reprolib_ms, _ = _time(lambda: ours(x, g), device, warmup, repeats, float("inf"))
        except Exception as error:  # the kernel rows measured before stay; the record names the failure
            rows.append({**row, "source_formulation_ms": None, "reprolib_ms": None, "speedup": None,
                         "identical_spikes": None, "error": f"{type(error).__name__}: {error}"})
            log(f"encoder {name:8s} failed: {type(error).__name__}: {error}")
            continue
        rows.append({**row, "source_formulation_ms": reference_ms, "reprolib_ms": reprolib_ms,
                     "speedup": reference_ms / reprolib_ms, "identical_spikes": identical})
        log(f"encoder {name:8s} T={T} B={B}: source formulation {reference_ms:8.2f} ms, reprolib {reprolib_ms:8.2f} ms, "
            f"same spikes: {identical}")
    return rows


def encoder_table(records: dict) -> pd.DataFrame:
    """The ``encoders`` rows of each benchmark record in ``records`` (name -> record dict), one table; records
    measured before the encoders were benchmarked contribute nothing."""
    import pandas as pd  # noqa: PLC0415

    rows = [{"record": name, "device": record.get("device"), **row}
            for name, record in records.items() for row in record.get("encoders", [])]
    return pd.DataFrame(rows, columns=["record", "device", "encoder", "T", "B", "features", "source_formulation_ms",
                                       "reprolib_ms", "speedup", "identical_spikes"])


def _builder(neuron: str, impl: str, engine: str):
    if neuron == "LIF":
        return lambda *a: _lif_case(impl, engine, *a)
    if neuron == "SRC":
        return lambda *a: _src_case(impl, engine, *a)
    if neuron == "LEAKY":
        return lambda *a: _leaky_case(impl, engine, *a)
    return lambda *a: _resonate_case(neuron, impl, engine, *a)


def _time(run, device: torch.device, warmup: int, repeats: int, budget_s: float) -> tuple[float, int]:
    """Median milliseconds of ``run()`` and the number of timed repeats (fewer when over ``budget_s``)."""
    for _ in range(warmup):
        run()
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        if device.type == "cuda":
            # on the device's stream (record() alone takes the current device's, wrong for --device cuda:1)
            stream = torch.cuda.current_stream(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            run()
            end.record(stream)
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - started > budget_s:
            break
    return statistics.median(times), len(times)


def _spikingjelly_version() -> str | None:
    try:
        from importlib import metadata  # noqa: PLC0415

        return metadata.version("spikingjelly")
    except Exception:  # noqa: BLE001
        return None


def _cupy_version() -> str | None:
    from reprolib.kernels.dispatch import _cupy_or_error  # noqa: PLC0415

    cupy, _ = _cupy_or_error()
    return getattr(cupy, "__version__", None) if cupy is not None else None


def device_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "device"


def bench_file_stem(device: torch.device) -> str:
    """The default name (without ``.json``) of a benchmark record made on ``device``: the GPU's name, or on a CPU
    its model and thread count, ``cpu-amd-epyc-1-threads``: the times of two CPU models differ, so a record of one
    must not overwrite the other's."""
    from reprolib.results.provenance import cpu_description, device_name  # noqa: PLC0415

    if device.type == "cuda":
        return device_slug(device_name(device))
    model = re.sub(r"\((R|TM)\)", " ", cpu_description()["model"], flags=re.IGNORECASE)
    return device_slug(f"cpu {model} {torch.get_num_threads()} threads")


def kernel_engine_for(device: torch.device) -> tuple[str, str | None]:
    """The fused implementation timed in the ``kernel`` columns on ``device`` and why it cannot run (or None):
    the CuPy kernels on CUDA, the same sources built as C++ (``backend="cpp"``) on the CPU."""
    from reprolib.kernels import cpu  # noqa: PLC0415
    from reprolib.kernels.dispatch import BackendUnavailable, resolve_backend  # noqa: PLC0415

    if device.type != "cuda":
        return "cpp", None if cpu.cpp_available() else "no C++ compiler (g++) for the cpp backend"
    try:
        resolve_backend("cupy", torch.empty(0, device=device))
    except BackendUnavailable as err:
        return "cupy", str(err)
    return "cupy", None


def run_bench(neurons, shapes, device: torch.device, repeats: int = 20, warmup: int = 3,
              peak_gbps: float | None = None, spikingjelly: bool = True, max_torch_seconds: float = 60.0,
              log=print, on_row=None) -> dict:
    """Time every (neuron, shape, implementation) and return the JSON-ready record.

    ``on_row(record)``, when given, is called with the record so far after each (neuron, shape) row, so that a
    caller can save partial results: on a lent GPU machine a command that runs past its limit is killed."""
    from reprolib.results.provenance import cpu_description, device_name, git_state, utc_now  # noqa: PLC0415

    kernel_engine, kernel_reason = kernel_engine_for(device)
    sj_version = _spikingjelly_version() if spikingjelly else None
    sj_reason = None
    if not spikingjelly:
        sj_reason = "disabled (--no-spikingjelly)"
    elif sj_version is None:
        sj_reason = "SpikingJelly is not installed"
    if peak_gbps is None:
        peak_gbps, bw_source = peak_bandwidth(device)
    else:
        bw_source = "--peak-bandwidth"
    gen = torch.Generator().manual_seed(0)
    rows = []
    name = device_name(device)
    record = {
        "schema": 1,
        "kind": "kernel-benchmark",
        "device": name,
        "device_type": device.type,
        "cpu": cpu_description(),  # the host CPU: what a CPU record times, and what feeds a GPU
        "date": utc_now(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cupy": _cupy_version(),
        "spikingjelly": sj_version,
        "kernel_engine": kernel_engine,
        **git_state(),
        "peak_bandwidth_GBps": peak_gbps,
        "peak_bandwidth_source": bw_source,
        "roofline_definition": ROOFLINE_DEFINITION,
        "timing": {"method": "CUDA events" if device.type == "cuda" else "time.perf_counter",
                   "warmup": warmup, "repeats": repeats, "statistic": "median",
                   "workload": "one forward + backward of the layer, loss = sum of the spikes"},
        "results": rows,
    }
    for neuron in neurons:
        impls = ["torch", "kernel"] + (["spikingjelly"] if neuron == "LIF" else [])
        if neuron in ("BRF", "ALIF"):
            impls += ["torch_scan", "kernel_scan"]
        for T, B, N in shapes:
            row = {"neuron": neuron, "T": T, "B": B, "N": N, "notes": {}}
            for impl in impls:
                key = f"{impl}_ms"
                reason = None
                if impl.startswith("kernel"):
                    reason = kernel_reason
                elif impl == "spikingjelly":
                    reason = sj_reason
                if reason is not None:
                    row[key] = None
                    row["notes"][impl] = reason
                    continue
                run = _builder(neuron, impl, kernel_engine)(T, B, N, device, gen)
                budget = max_torch_seconds if impl.startswith("torch") else float("inf")
                try:
                    ms, n = _time(run, device, warmup, repeats, budget)
                except Exception as err:  # noqa: BLE001 - one failing column must not lose the others
                    row[key] = None
                    row["notes"][impl] = f"{type(err).__name__}: {err}"
                    log(f"{neuron} {T},{B},{N} {impl}: failed: {err}")
                    continue
                row[key] = ms
                if n < repeats:
                    row["notes"][impl] = f"{n} repeats (time budget)"
                log(f"{neuron:5s} T,B,N={T},{B},{N} {impl:13s} {ms:10.3f} ms")
                del run
            bytes_moved = BYTES_PER_ELEMENT_PASS * T * B * N
            row["bytes_roofline"] = bytes_moved
            row["roofline_ms"] = bytes_moved / (peak_gbps * 1e9) * 1e3 if peak_gbps else None
            k, t, sj, r = row.get("kernel_ms"), row.get("torch_ms"), row.get("spikingjelly_ms"), row["roofline_ms"]
            row["speedup_vs_torch"] = t / k if k and t else None
            row["kernel_over_spikingjelly"] = k / sj if k and sj else None
            row["kernel_over_roofline"] = k / r if k and r else None
            if row.get("kernel_scan_ms") and row.get("torch_scan_ms"):
                row["scan_speedup_vs_torch"] = row["torch_scan_ms"] / row["kernel_scan_ms"]
            rows.append(row)
            if on_row is not None:
                on_row(record)
    return record


def _task_list(flag: str, chosen, default) -> list[str]:
    """The ``--iterations`` / ``--networks`` names to time: ``default`` when the flag is absent, none for
    ``none``, each name once; ValueError for ``none`` beside names."""
    if chosen is None:
        return list(default)
    if "none" in chosen:
        if len(chosen) > 1:
            raise ValueError(f"{flag} {' '.join(chosen)} is not allowed; expected 'none' alone or names without it")
        return []
    return list(dict.fromkeys(chosen))


def _checked_arguments(args) -> tuple[torch.device, list, Path]:
    """The device, shapes and output file of ``reprolib bench``, or ValueError naming the bad argument: all
    checked before the first kernel is timed."""
    from reprolib.config import ConfigError  # noqa: PLC0415
    from reprolib.training.build import resolve_device  # noqa: PLC0415

    try:
        device = resolve_device(args.device or "auto")
    except ConfigError as error:
        raise ValueError(f"--device: {error}") from None
    if args.repeats < 1 or args.warmup < 0:
        raise ValueError(f"--repeats {args.repeats} / --warmup {args.warmup} invalid; expected >= 1 / >= 0")
    for flag, value in (("--max-torch-seconds", args.max_torch_seconds), ("--peak-bandwidth", args.peak_bandwidth)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{flag} {value} is not allowed; expected a positive number")
    shapes = [_parse_shape(s) for s in args.shapes] if args.shapes else list(SHAPES if device.type == "cuda" else CPU_SHAPES)
    _task_list("--iterations", args.iterations, ())
    _task_list("--networks", args.networks, ())
    if args.output:
        out = Path(args.output)
    else:
        from reprolib.paths import results_dir  # noqa: PLC0415

        out = results_dir() / "bench" / f"{bench_file_stem(device)}.json"
    from reprolib.paths import check_output_file  # noqa: PLC0415

    return device, shapes, check_output_file(out)


def main(args) -> int:
    from reprolib.training.host_memory import current_setting, keep_freed_host_memory  # noqa: PLC0415

    try:
        device, shapes, out = _checked_arguments(args)
        # a CPU training run keeps freed host memory (reprolib.training.host_memory); the benchmark times what it runs
        host_memory = keep_freed_host_memory() if device.type == "cpu" else current_setting()
    except ValueError as err:
        print(f"reprolib bench: error: {err}", file=sys.stderr)
        return 2
    check = None
    if args.check:
        engine, reason = kernel_engine_for(device)
        if reason is not None:
            print(f"reprolib bench: --check cannot run the {engine} kernels here: {reason}")
            return 2
        failures, total = _check_all(device, engine)
        # timed all the same (a lent GPU's minutes are few), with the failures in the record for all to see
        check = {"engine": engine, "checks": total, "failures": failures}
        if failures:
            print(f"reprolib bench: {len(failures)} kernel check(s) failed; timing anyway, the record says so")
    out.parent.mkdir(parents=True, exist_ok=True)
    # saved after every row, marked incomplete until the end: a killed run still leaves what it measured
    extra = {} if check is None else {"kernel_check": check}
    record = run_bench(args.neurons, shapes, device, repeats=args.repeats, warmup=args.warmup,
                       peak_gbps=args.peak_bandwidth, spikingjelly=not args.no_spikingjelly,
                       max_torch_seconds=args.max_torch_seconds,
                       on_row=lambda so_far: _save({**so_far, **extra}, out, complete=False))
    record.update(extra, host_memory=host_memory)
    tasks = _task_list("--iterations", args.iterations, ["smnist", "ecg"] if device.type == "cuda" else ["ecg"])
    record["iteration_workload"] = ("one training iteration of the BRF paper's RSNN (BRF, hidden 256 on S-MNIST, 36 on "
                                    "ECG): forward, per-step log-softmax NLL, backward, clipping where the source "
                                    "clips, Adam step; random inputs of the task's shape")
    record["iterations"] = run_iterations(tasks, device, repeats=min(args.repeats, 5), warmup=min(args.warmup, 2),
                                          max_torch_seconds=args.max_torch_seconds,
                                          on_row=lambda rows: _save({**record, "iterations": rows}, out, complete=False))
    networks = _task_list("--networks", args.networks, NETWORK_STEPS)
    if networks:
        record["network_workload"] = NETWORK_WORKLOAD
        record["networks"] = run_network_steps(
            networks, device, repeats=min(args.repeats, 5), warmup=min(args.warmup, 2),
            max_torch_seconds=args.max_torch_seconds,
            on_row=lambda rows: _save({**record, "networks": rows}, out, complete=False))
    record["encoders"] = run_encoders(device, repeats=min(args.repeats, 10), warmup=min(args.warmup, 2))
    _save(record, out, complete=True)
    print(f"reprolib bench: wrote {out}")
    different = [row["encoder"] for row in record["encoders"] if not row["identical_spikes"]]
    if different:
        print(f"reprolib bench: the {', '.join(different)} encoder(s) gave other spikes than their source's formulation "
              "(or failed: see the record's encoders rows)")
    return 1 if (check is not None and check["failures"]) or different else 0


def _save(record: dict, out: Path, complete: bool) -> None:
    """Write ``record`` to ``out`` atomically (the run records' writer: a temporary file renamed over it, removed
    if that fails), with ``complete`` saying whether every requested row was measured."""
    from reprolib.results.records import atomic_write_text  # noqa: PLC0415

    atomic_write_text(out, json.dumps({**record, "complete": complete}, indent=1) + "\n")


def _check_all(device, engine: str = "cupy") -> tuple[list[str], int]:
    """Run every kernel check of :mod:`reprolib.kernels.verify` on ``device`` with ``engine`` (``cupy`` on a
    GPU, ``cpp`` on the CPU); returns one line per failed check (a check that raises, e.g. a kernel that does
    not compile, counts as failed and the others still run), and the number of checks run."""
    from reprolib.kernels import leaky, lif, verify  # noqa: PLC0415

    failures: list[str] = []
    total = 0

    def record(check, label: str, rtol: float = 1e-5) -> None:
        nonlocal total
        total += 1
        try:
            report = check()
            failure = None if report.ok(rtol) else f"{label}: {report}"
        except Exception as err:  # noqa: BLE001 - on a first GPU run every check should still report
            failure = f"{label}: {type(err).__name__}: {err}"
        if failure is not None:
            failures.append(failure)
            print(f"check failed: {failure}")

    for options in lif.lif_option_sets():
        kw = verify.lif_kwargs(options)
        record(partial(verify.check_lif, **kw, T=64, shape=(5, 37), device=device, engine=engine), f"lif {kw}")
    for options in leaky.leaky_option_sets():
        record(partial(verify.check_leaky, **options, T=64, shape=(5, 37), device=device, engine=engine),
               f"leaky {options}")
    src_engine = "cpp-scan" if engine == "cpp" else engine  # what backend="cpp" runs for SRC
    for bypass in (False, True):
        for detach in (False, True):
            for zs in ("previous", "current"):
                record(partial(verify.check_src, relu_bypass=bypass, detach=detach, zs_from=zs, device=device,
                               engine=src_engine), f"src bypass={bypass} detach={detach} zs={zs}")
        record(partial(verify.check_src, relu_bypass=bypass, detach=False, device=device, engine=src_engine,
                       noise_sigma=0.1), f"src bypass={bypass} noise 0.1")
    for model in ("rf", "brf", "alif"):
        for mode in ("recurrent", "scan"):
            # the one-launch / whole-sequence recurrent layer sums z W_rec in another order than the GEMM
            record(partial(verify.check_resonate, model=model, mode=mode, device=device, engine=engine),
                   f"{model} {mode}", 2e-5 if mode == "recurrent" else 1e-5)
    record(partial(verify.check_li, device=device, engine=engine), "li readout")
    print(f"reprolib bench --check: {len(failures)} failure(s) of {total} checks")
    return failures, total
