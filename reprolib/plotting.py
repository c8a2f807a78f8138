"""Matplotlib helpers shared by the book's notebooks: one look, provenance under every figure.

* :func:`figure` makes a figure with a grid of axes in the book's style;
* :func:`band` draws a mean curve with a ± std band over runs (seeds);
* :func:`mark` annotates a point (e.g. the last value, or where 95 % of the final accuracy is reached);
* :func:`caption` writes the provenance line (and the source's citation) under the figure;
* :func:`curve_panels` and :func:`errorbars` draw run records (per-epoch curves, mean ± std summaries);
* the BRF pages' figures: :func:`pixel_sequence_figure`, :func:`ecg_figure`, :func:`shd_figure` (the datasets),
  :func:`resonator_figure`, :func:`frequency_response_figure` (single neurons, see :mod:`reprolib.resonance`) and
  :func:`convergence_figure`;
* the sources' curves or numbers beside ours: :func:`sj_clock_figure`, :func:`sj_recurrent_figure` (the SpikingJelly
  tutorials), :func:`paper_scatter_figure` (ours against a table's numbers), :func:`depth_figure` (SRC Figure 5),
  :func:`row_profile_figure` and :func:`shift_probe_figure` (the N-MNIST subset's offset);
* :func:`speedup_figure`: the kernel benchmark's speed-up over the PyTorch loop;
* :func:`charge_fire_reset_figure`: IF / LIF traces of :func:`reprolib.neurons.simulate_integrate_fire`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprolib.checks import is_finite_real
from reprolib.notebook.tables import NOT_RUN


def _inline_in_kernels() -> None:
    """In a Jupyter kernel started with ``MPLBACKEND=Agg`` (``make`` exports it), figures would never be shown:
    switch to the inline backend there. Scripts and tests keep Agg."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book extras
        return
    shell = get_ipython()
    if shell is None or "IPKernelApp" not in shell.config:
        return
    if "inline" not in plt.get_backend():
        shell.run_line_magic("matplotlib", "inline")
    # twice the pixels: the book's page scales images down to its column, which keeps them sharp
    shell.run_line_magic("config", "InlineBackend.figure_formats = ['retina']")


_inline_in_kernels()

# One colour per compared model across the book, so "BRF" or "SRC" looks the same on every page.
MODEL_COLORS = {
    "SRC": "C0", "LIF": "C1",
    "BRF": "C0", "RF": "C2", "ALIF": "C1",
    "plain": "C0", "feedback": "C1", "stateful-synapse": "C2",
    "baseline": "C7", "spatial": "C0", "temporal": "C1", "both": "C3",
}
PAPER_STYLE = dict(linestyle="--", alpha=0.8)


def color(name: str, default: str | None = None) -> str | None:
    return MODEL_COLORS.get(name, default)


#: widest figure (inches) the book shows at its natural size; wider ones are scaled down as a whole, so
#: their text stays readable once the page fits the image to its column
MAX_FIGURE_WIDTH = 8.0


def figure(rows: int = 1, cols: int = 1, width: float = 5.0, height: float = 3.4, **kwargs):
    """A figure with ``rows x cols`` axes of ``width x height`` inches each (always a 2-D array of axes),
    constrained layout, light grid; scaled down as a whole to at most :data:`MAX_FIGURE_WIDTH` wide."""
    scale = min(1.0, MAX_FIGURE_WIDTH / (width * cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols * scale, height * rows * scale), squeeze=False,
                             layout="constrained", **kwargs)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    return fig, axes


def band(ax, frame: pd.DataFrame, x: str, y: str, label: str | None = None, color: str | None = None,
         **style):
    """Plot the mean of ``y`` over rows sharing ``x`` (runs), with a ± std band when there are several runs."""
    stats = frame.groupby(x)[y].agg(["mean", "std", "count"]).reset_index()
    if len(stats) < 10:  # short (ci-scale) curves: show the points, a single epoch has no line
        style = {"marker": "o", "markersize": 4, **style}
    line, = ax.plot(stats[x], stats["mean"], label=label, color=color, **style)
    if (stats["count"] > 1).any():
        std = stats["std"].fillna(0.0)
        ax.fill_between(stats[x], stats["mean"] - std, stats["mean"] + std, color=line.get_color(), alpha=0.2,
                        linewidth=0)
    return line


def mark(ax, x: float, y: float, text: str | None = None, color: str | None = None, marker: str = "o",
         side: str = "left"):
    """Mark one point, optionally annotated (the tutorial's "(99, 0.921)" style) on its ``side``."""
    ax.plot([x], [y], marker=marker, color=color or "C3", markersize=6, zorder=5)
    if text:
        offset, align = ((-10, -14), "right") if side == "left" else ((10, -4), "left")
        ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, ha=align, fontsize=8)


def caption(fig, provenance: str, source: str | None = None) -> None:
    """Write the provenance line (and the source shown for comparison) under ``fig``."""
    text = provenance if source is None else f"{provenance}\npaper: {source}"
    fig.supxlabel(text, fontsize=7, color="0.35", ha="center")


def no_data(ax, message: str) -> None:
    """Say on an empty axes why there is nothing to plot (e.g. not run yet at this scale)."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4",
            wrap=True)


def heatmap(ax, image: np.ndarray, title: str | None = None, cmap: str = "gray_r", **kwargs):
    """Show an image / raster without ticks clutter."""
    ax.imshow(image, cmap=cmap, aspect="auto", interpolation="nearest", **kwargs)
    if title:
        ax.set_title(title)
    ax.grid(False)


def legend_once(axes: Sequence, **kwargs) -> None:
    """A single legend on the first axes that has labelled artists."""
    for ax in np.ravel(axes):
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=8, **kwargs)
            return


def curves(ax, frame: pd.DataFrame, y: str, hue: str | Sequence[str], x: str = "epoch", label=None, **style):
    """One :func:`band` per value of ``hue`` (one or several columns), coloured by :data:`MODEL_COLORS` when the
    value is a known model name. ``label(value) -> str`` formats the legend entry."""
    if frame.empty or y not in frame.columns:
        return []
    lines = []
    hue = [hue] if isinstance(hue, str) else list(hue)
    absent = [h for h in (*hue, x) if h not in frame.columns]
    if absent:  # a one-row frame would otherwise be drawn with the column's name as its label
        raise ValueError(f"curves: columns {absent} are not in the frame; expected some of {list(frame.columns)}")
    for value, group in frame.groupby(hue, sort=True):
        value = value[0] if len(hue) == 1 and isinstance(value, tuple) else value
        text = label(value) if label else (str(value) if not isinstance(value, tuple) else ", ".join(map(str, value)))
        key = value if isinstance(value, str) else None
        group = group.dropna(subset=[y])
        if not group.empty:
            lines.append(band(ax, group, x, y, label=text, color=color(key) if key else None, **style))
    return lines


def curve_panels(axes, history: pd.DataFrame, panels: Sequence[tuple[str, str]], hue: str | Sequence[str],
                 label=None, xlabel: str = "epoch", empty: str = NOT_RUN) -> None:
    """One panel per ``(column, title)`` of ``panels`` on ``axes`` (in order): :func:`curves` of ``column``
    against ``xlabel`` per value of ``hue``, the panel saying ``empty`` when ``history`` has no rows; then a
    single legend (:func:`legend_once`)."""
    axes = list(np.ravel(axes))
    if len(panels) > len(axes):
        raise ValueError(f"{len(panels)} panels for {len(axes)} axes; expected at most one panel per axes")
    for ax, (column, title) in zip(axes, panels):
        if history.empty:
            no_data(ax, empty)
        curves(ax, history, column, hue, label=label)
        ax.set(title=title, xlabel=xlabel)
    legend_once(axes)


def errorbars(ax, summary: pd.DataFrame, x: str, y: str, hue: str, order: Sequence | None = None, label=str,
              empty: str = NOT_RUN) -> list:
    """Mean ± std of metric ``y`` against ``x`` from a run summary (columns ``{y}_mean``, ``{y}_std``), one
    series per value of ``hue`` (in ``order``, else sorted), named ``label(value)`` and coloured by that name
    (:data:`MODEL_COLORS`). Series without a mean are skipped; the axes says ``empty`` when none has one.
    Returns the drawn series."""
    mean, std = f"{y}_mean", f"{y}_std"
    missing = [c for c in (x, hue, mean, std) if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the columns {missing}; expected {x!r}, {hue!r}, {mean!r} and {std!r}")
    drawn = []
    for value in sorted(summary[hue].dropna().unique()) if order is None else order:
        part = summary[summary[hue] == value].dropna(subset=[mean])
        if len(part):
            text = label(value)
            drawn.append(ax.errorbar(part[x], part[mean], yerr=part[std].fillna(0), marker="o", capsize=3,
                                     color=color(text), label=text))
    if not drawn:
        no_data(ax, empty)
    return drawn


def row_profile_figure(profiles: dict, offsets=None):
    """Fraction of events per sensor row (top row first) for each split of ``profiles`` ({split: [rows]}),
    e.g. ``centroid_offsets().attrs["row_profiles"]``; the two splits' mean rows marked when ``offsets`` (that
    table) is given."""
    fig, axes = figure(1, 1, width=5.0, height=3.0)
    ax = axes[0, 0]
    for split, profile in profiles.items():
        ax.plot(np.arange(len(profile)), 100 * np.asarray(profile), marker=".", label=f"{split} recordings",
                color={"train": "tab:blue", "test": "tab:red"}.get(split))
    if offsets is not None:
        overall = offsets.loc["all (class-weighted)"]
        for split, colour in (("train", "tab:blue"), ("test", "tab:red")):
            ax.axvline(overall[f"{split} y"], color=colour, ls="--", lw=0.8)
    ax.set(xlabel="sensor row (0 = top)", ylabel="events in the row (%)", title="where the events fall, by row")
    ax.legend(fontsize=8)
    return fig, axes


def shift_probe_figure(frame: pd.DataFrame, hue: Sequence[str], label: Callable[[tuple], str]):
    """Accuracy against a vertical shift of the inputs (:func:`reprolib.notebook.shift_probe`), validation and
    test side by side: mean ± std over runs, one series per ``hue`` group named ``label(group values)``."""
    absent = [c for c in ("split", "dy", "dx", "accuracy", *hue) if c not in frame.columns]
    if absent:
        raise ValueError(f"shift_probe_figure: columns {absent} are not in the frame (an empty probe?); expected "
                         "the rows of reprolib.notebook.shift_probe")
    rows = frame[frame["dx"] == 0].copy()
    rows["series"] = [label(tuple(v)) for v in rows[list(hue)].itertuples(index=False)]
    fig, axes = figure(1, 2, width=4.2, height=3.2, sharey=True)
    for ax, split in zip(axes[0], ("val", "test")):
        part = rows[rows["split"] == split]
        summary = (part.groupby(["series", "dy"])["accuracy"].agg(accuracy_mean="mean", accuracy_std="std")
                   .reset_index())
        errorbars(ax, summary, "dy", "accuracy", "series")
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set(xlabel="inputs moved down by (rows)", title={"val": "validation (training recordings)",
                                                            "test": "test recordings"}[split])
    axes[0, 0].set_ylabel("accuracy (%)")
    if len(rows):
        axes[0, 1].legend(fontsize=7)
    return fig, axes


# --- BRF: the datasets (paper Figure 4) -------------------------------------------------------------------

#: colours of the ECG-QTDB waveform segments P, PQ, QR, RS, ST, TP, as in the BRF paper
ECG_SEGMENT_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:cyan", "tab:olive", "tab:purple")


def _row_steps(order: np.ndarray, row: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps at which image ``row`` is fed: in reading order, and once permuted by ``order``
    (``order[step]`` is the pixel fed at ``step``)."""
    in_reading_order = np.arange(row * width, (row + 1) * width)
    return in_reading_order, np.nonzero(np.isin(order, in_reading_order))[0]


def pixel_sequence_figure(image, label, index: int, order, row: int):
    """S-MNIST and PS-MNIST: left the image ``[1, H, W]`` (or ``[H, W]``) with ``row`` in red; right its
    ``H * W``-step pixel sequences in reading order and permuted by ``order`` (``order[step]`` = pixel fed at
    ``step``, :func:`reprolib.encoding.pixel_permutation`), the pixels of ``row`` as red dots. ``label`` and
    ``index`` (of the test image) go in the title. Returns the figure."""
    image = np.asarray(image)
    height, width = image.shape[-2:]
    pixels, order = image.reshape(-1), np.asarray(order)
    if not np.array_equal(np.sort(order), np.arange(pixels.size)):
        raise ValueError(f"order of shape {order.shape} is not a permutation of the {pixels.size} pixels")
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < height:
        raise ValueError(f"row={row!r} must be an integer in 0..{height - 1}")
    red_plain, red_permuted = _row_steps(order, row, width)

    fig = plt.figure(figsize=(8, 2.6), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 2.6, 0.01])
    ax_img = fig.add_subplot(grid[:, 0])
    ax_img.imshow(image.reshape(height, width), cmap="gray_r")
    ax_img.axhline(row, color="r", lw=2, alpha=0.6)
    ax_img.set(title=f"MNIST test image {index} (label {label})", xticks=[], yticks=[])
    for grid_row, (name, sequence, red) in enumerate((("S-MNIST", pixels, red_plain),
                                                       ("PS-MNIST", pixels[order], red_permuted))):
        ax = fig.add_subplot(grid[grid_row, 1])
        ax.plot(sequence, lw=0.7, color="0.3")
        ax.plot(red, sequence[red], "r.", ms=4)
        ax.set(title=f"{name}: {pixels.size} steps, 1 input", xlim=(0, pixels.size), ylabel="pixel")
    ax.set_xlabel("time step")
    return fig


def ecg_figure(x, y, classes: Sequence[str], index: int, split: str = "test"):
    """One ECG-QTDB sequence: the spike channels of ``x [T, C]`` as ticks and, below, the label of every
    step of ``y [T]`` coloured by :data:`ECG_SEGMENT_COLORS` (one legend entry per name of ``classes``;
    unlabelled ``-1`` steps stay white). Returns the figure."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"x {x.shape} and y {y.shape}; expected x [T, C] and y [T]")
    if len(classes) > len(ECG_SEGMENT_COLORS):
        raise ValueError(f"{len(classes)} classes; expected at most {len(ECG_SEGMENT_COLORS)} (one colour each)")
    fig, axes = figure(2, 1, width=11, height=1.6, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    channels, labels_ax = axes[0, 0], axes[1, 0]
    n_channels = x.shape[1]
    for c in range(n_channels):
        channels.vlines(np.nonzero(x[:, c])[0], c + 0.1, c + 0.9, color="k", lw=0.8)
    channels.set(yticks=np.arange(n_channels) + 0.5, yticklabels=[f"channel {c}" for c in range(n_channels)],
                 title=f"ECG-QTDB {split} sequence {index}: {len(y):,} steps, {n_channels} spike channels")
    for k, (name, segment_color) in enumerate(zip(classes, ECG_SEGMENT_COLORS)):
        labels_ax.vlines(np.nonzero(y == k)[0], 0, 1, color=segment_color, lw=1, label=name)
    labels_ax.set(yticks=[], xlabel="time step", xlim=(0, len(y)))
    labels_ax.legend(ncol=6, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def shd_figure(spikes, label, index: int, split: str = "test", bin_ms: float = 4.0):
    """One SHD sample ``[T, channels]`` as a raster (time bins of ``bin_ms`` across). Returns the figure."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 2:
        raise ValueError(f"spikes of shape {spikes.shape}; expected [T, channels]")
    if not is_finite_real(bin_ms) or bin_ms <= 0:
        raise ValueError(f"bin_ms={bin_ms!r} must be a positive number of milliseconds")
    fig, axes = figure(1, 1, width=8, height=3.2)
    heatmap(axes[0, 0], spikes.T,
            title=f"SHD {split} sample {index} (label {label}): {spikes.shape[0]} x {spikes.shape[1]}")
    axes[0, 0].set(xlabel=f"time bin ({bin_ms:g} ms)", ylabel="channel")
    return fig


# --- BRF: single resonate-and-fire neurons ---------------------------------------------------------------


def resonator_figure(t, runs: dict, threshold: float = 1.0):
    """The BRF README animation as a still. ``runs`` holds exactly two inputs (name -> traces ``x``, ``u``,
    ``v``, ``z`` over ``t [T]``, as :func:`reprolib.resonance.resonance_demo` returns them): one panel each
    with ``u``, ``v``, input spikes (ticks below), output spikes (ticks above) and the threshold; the third
    panel shows both in the phase plane ``(u, v)``. Returns the figure.

    Short panel titles (the input's name) keep neighbouring titles apart, and the legends sit outside the
    data: the traces' in a row above the panels, the phase plane's to its right.
    """
    if len(runs) != 2:
        raise ValueError(f"{len(runs)} runs ({list(runs)}); expected two (in phase, off resonance)")
    fig, axes = figure(1, 3, width=4, height=3.2)
    phase = axes[0, 2]
    # the phase plane's two curves get colours of their own: C0 / C1 are u / v in the trace panels
    for ax, (name, run), phase_color in zip(axes[0, :2], runs.items(), ("C2", "C4")):
        ax.plot(t, run["u"], label="u (real part)")
        ax.plot(t, run["v"], label="v (imaginary part)", alpha=0.7)
        ax.vlines(t[run["x"] > 0], -1.6, -1.3, color="k", lw=1.5, label="input spike")
        ax.vlines(t[run["z"] > 0], 1.3, 1.6, color="r", lw=1.5, label="output spike")
        ax.axhline(threshold, color="r", ls="--", lw=0.8, label="threshold")
        ax.set(title=f"input {name}", xlabel="time (s)", ylim=(-1.7, 1.7))
        phase.plot(run["u"], run["v"], lw=1, color=phase_color, label=name)
    phase.axvline(threshold, color="r", ls="--", lw=0.8, label="threshold")
    phase.set(title="phase plane", xlabel="u", ylabel="v", aspect="equal")
    axes[0, 0].set_ylabel("membrane")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center", ncol=5, fontsize=7,
               frameon=False)
    phase.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return fig


def frequency_response_figure(frequencies, responses: dict):
    """BRF paper Figure 3: one response curve per neuron of ``responses`` (``{(omega, b'): response [F]}``
    over ``frequencies [F]``, as :func:`reprolib.resonance.frequency_response` returns it), with a dotted line
    at each neuron's ``omega``. Returns the figure."""
    fig, axes = figure(1, 1, width=8, height=3.2)
    ax = axes[0, 0]
    for (omega, b_offset), response in responses.items():
        line, = ax.plot(frequencies, response, label=f"ω = {omega:g}, b' = {b_offset:g}")
        ax.axvline(omega, color=line.get_color(), ls=":", lw=1)
    ax.set(xlabel="input frequency (rad/s)", ylabel="mean |u|", title="BRF frequency response")
    ax.legend(fontsize=8)
    return fig


def charge_fire_reset_figure(traces: Mapping[tuple[str, str], Mapping], v_threshold: float = 1.0):
    """One panel per neuron (rows) and reset (columns) of ``traces`` (``{(neuron, reset): trace}``, each trace as
    :func:`reprolib.neurons.simulate_integrate_fire` returns it for one neuron): ``V`` after the reset (line),
    ``H`` before it (dots), the spikes (ticks at the top) and the threshold. Returns the figure."""
    rows = list(dict.fromkeys(neuron for neuron, _ in traces))
    cols = list(dict.fromkeys(reset for _, reset in traces))
    fig, axes = figure(len(rows), len(cols), width=5, height=2.8, sharex=True)
    for (neuron, reset), trace in traces.items():
        ax = axes[rows.index(neuron), cols.index(reset)]
        t = np.arange(len(trace["v"]))
        spiked = np.asarray(trace["s"]) > 0
        ax.plot(t, trace["v"], label="V[t] (after reset)")
        ax.plot(t, trace["h"], ".", ms=4, label="H[t] (charged)")
        ax.vlines(t[spiked], 1.25 * v_threshold, 1.45 * v_threshold, color="k", lw=1.5)  # above the threshold
        ax.axhline(v_threshold, color="r", ls="--", lw=0.8, label="V_th")
        ax.set(title=f"{neuron}, {reset}", ylim=(-0.1, 1.5 * v_threshold))
    for ax in axes[-1]:
        ax.set_xlabel("time step t")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    return fig


def speedup_figure(rows: pd.DataFrame, title: str):
    """The kernel benchmark's speed-up over the PyTorch time loop, one bar per neuron and shape (``rows``: a
    benchmark record's rows with ``neuron, T, B, N, speedup_vs_torch``), on a log axis. Returns the figure."""
    fig, axes = figure(1, 1, width=7, height=3)
    ax = axes[0, 0]
    labels = [f"{r.neuron} {r.T},{r.B},{r.N}" for r in rows.itertuples()]
    ax.bar(labels, rows["speedup_vs_torch"], color=[color(n, "C0") for n in rows["neuron"]])
    ax.axhline(1.0, color="0.5", lw=0.8)  # below the line the PyTorch loop is faster
    ax.set(ylabel="speed-up vs PyTorch loop", yscale="log", title=title)
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    return fig


def paper_scatter_figure(summary: pd.DataFrame, inputs: Sequence[str], title: str, provenance: str, source: str):
    """Ours against the paper's number, one point per cell (``summary``: rows with ``neuron``, ``input``,
    ``paper`` and ``test_accuracy_mean``; NaN rows left out), coloured by neuron, one marker per input (up to five,
    in the order of ``inputs``), with the diagonal where ours equals the paper's. Returns the figure."""
    fig, axes = figure(1, 1, width=5, height=4.4)
    ax = axes[0, 0]
    done = summary.dropna(subset=["test_accuracy_mean", "paper"])
    for (neuron, name), group in done.groupby(["neuron", "input"]):
        ax.scatter(group["paper"], group["test_accuracy_mean"], color=color(neuron),
                   marker="osD^v"[list(inputs).index(name)], label=f"{neuron}, {name}", s=25)
    low = min([70.0, *done["test_accuracy_mean"]]) if len(done) else 70.0
    ax.plot([low, 100], [low, 100], color="0.5", lw=0.8)
    ax.set(xlabel="paper test accuracy (%)", ylabel="ours (%)", title=title)
    if len(done):
        ax.legend(fontsize=6, ncol=2)
    else:
        no_data(ax, NOT_RUN)
    caption(fig, provenance, source)
    return fig


def depth_figure(history: pd.DataFrame, summary: pd.DataFrame, label: Callable[[tuple], str], provenance: str,
                 source: str):
    """SRC paper Figure 5: validation loss and accuracy curves per network (left), the mean epoch duration per
    network, and the test accuracy (solid) and loss (dashed) against the number of hidden layers (right).
    ``history``: :meth:`reprolib.notebook.Runs.history` with ``model`` and ``layers``; ``summary``: its summary of
    ``test_loss``, ``test_accuracy`` and ``mean_epoch_time_s`` by model and layers; ``label((model, layers))``
    names a network. Returns the figure."""
    fig, axes = figure(2, 2, width=4.8, height=3.0)
    curve_panels(axes[:, 0], history, [("val_loss", "validation cross-entropy"),
                                       ("val_accuracy", "validation accuracy (%)")], ["model", "layers"], label=label)
    done = summary.dropna(subset=["mean_epoch_time_s_mean"])
    ax = axes[0, 1]
    ax.bar([label(k) for k in zip(done["model"], done["layers"])], done["mean_epoch_time_s_mean"],
           color=[color(m.upper()) for m in done["model"]])
    ax.set(title="mean epoch duration (s)")
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    ax = axes[1, 1]
    twin = ax.twinx()
    for model, group in done.groupby("model"):
        ax.plot(group["layers"] - 1, group["test_accuracy_mean"], "o-", color=color(model.upper()),
                label=f"{model.upper()} accuracy")
        twin.plot(group["layers"] - 1, group["test_loss_mean"], "s--", color=color(model.upper()),
                  label=f"{model.upper()} loss")
    ax.set(title="test set vs depth", xlabel="number of hidden layers", ylabel="accuracy (%) (solid)")
    twin.set_ylabel("cross-entropy (dashed)")
    if done.empty:
        for a in (axes[0, 1], axes[1, 1]):
            no_data(a, NOT_RUN)
    caption(fig, provenance, source)
    return fig


def sj_clock_figure(history: pd.DataFrame, paper: Mapping[str, pd.DataFrame], iterations_per_epoch: int,
                    provenance: str, source: str):
    """The clock-driven tutorial's curves beside ours: accuracy on training batches (top; the tutorial logs it per
    iteration, ``iterations_per_epoch`` turn those into epochs) and on the test set (bottom), each end marked.
    ``paper``: :func:`reprolib.reference.sj_lif_mnist_curves`; ``history``: our runs' curves (percent). The
    tutorial counts epochs from 0; its test point of epoch ``e`` is drawn at ``e + 1``, after that epoch's
    training, as ours. Returns the figure."""
    fig, axes = figure(2, 1, width=8, height=2.8, sharex=True)
    top, bottom = axes[:, 0]
    top.plot(paper["train"]["iteration"] / iterations_per_epoch, paper["train"]["accuracy"], lw=0.8,
             label="paper (training batch)", **PAPER_STYLE)
    bottom.plot(paper["test"]["epoch"] + 1, paper["test"]["accuracy"], label="paper", **PAPER_STYLE)
    last = paper["test"].iloc[-1]
    mark(bottom, last["epoch"] + 1, last["accuracy"],
         f"paper (epoch {int(last['epoch'])} counted from 0, {last['accuracy']:.1f})")
    if not history.empty:
        band(top, history, "epoch", "train_accuracy", label="ours (training epoch)")
        band(bottom, history, "epoch", "test_accuracy", label="ours")
        mean = history.groupby("epoch")["test_accuracy"].mean()
        mark(bottom, mean.index[-1], mean.iloc[-1], f"ours ({mean.index[-1]}, {mean.iloc[-1]:.1f})",
             color="C0", marker="^", side="right")
    else:
        no_data(bottom, NOT_RUN)
    top.set(title="Accuracy on training batches", ylabel="accuracy (%)")
    bottom.set(title="Accuracy on the test set", xlabel="epoch", ylabel="accuracy (%)")
    top.legend(fontsize=8)
    bottom.legend(fontsize=8, loc="lower center")
    caption(fig, provenance, source)
    return fig


#: the recurrent tutorial's published panels: (title, its metric, its split, our history column)
SJ_RECURRENT_PANELS = [("train loss", "loss", "train", "train_loss"),
                       ("train accuracy (%)", "accuracy", "train", "train_accuracy"),
                       ("\"test\" (%) = train set, eval mode", "accuracy", "train_eval", "train_eval_accuracy")]


def sj_recurrent_figure(history: pd.DataFrame, paper: pd.DataFrame, names: Sequence[str], provenance: str,
                        source: str):
    """The recurrent tutorial's three published curves (:data:`SJ_RECURRENT_PANELS`) per model of ``names``
    (dashed; ``paper``: :func:`reprolib.reference.sj_recurrent_curves`) beside ours (``history`` with ``model``
    in the tutorial's names). Returns the figure."""
    fig, axes = figure(1, 3, width=4.2, height=3.4)
    for ax, (title, metric, split, ours_column) in zip(axes[0], SJ_RECURRENT_PANELS):
        for name in names:
            curve = paper[(paper.model == name) & (paper.metric == metric) & (paper.split == split)]
            ax.plot(curve["epoch"] + 1, curve["value"], color=color(name), label=f"{name} (paper)", **PAPER_STYLE)
        curves(ax, history, ours_column, "model", label=lambda m: f"{m} (ours)")
        ax.set(title=title, xlabel="epoch")
    axes[0, 0].legend(fontsize=7)
    caption(fig, provenance, source)
    return fig


def convergence_figure(histories: dict, logs: pd.DataFrame, tasks: Sequence[str], neurons: Sequence[str],
                       provenance: str, source: str):
    """The BRF paper's convergence figure: test accuracy per epoch, one panel per task (2 columns).

    ``histories``: task -> per-epoch history of our runs (columns ``neuron``, ``epoch``, ``test_accuracy``);
    ``logs``: the released logs (columns ``task``, ``model``, ``epoch``, ``test_accuracy``). Dashed lines are
    the logs' mean, solid bands our mean +- std; a dot marks where a mean curve first reaches 95 % of its final
    value (open: logs, filled: ours). Where a panel spans more than 50 epochs its axis is linear up to 10 and
    logarithmic beyond, so that the first epochs, where the neurons differ, stay readable next to 400-epoch runs.
    """
    from reprolib.notebook import convergence_epochs  # noqa: PLC0415

    cols = 2
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = figure(rows, cols, width=3.6, height=2.6)
    for ax, task in zip(axes.flat, tasks):
        history = histories.get(task, pd.DataFrame())
        drawn = False
        for neuron in neurons:
            model = neuron.upper()  # the paper's name
            log = logs[(logs.task == task) & (logs.model == model)]
            if len(log):
                mean = log.groupby("epoch")["test_accuracy"].mean()
                ax.plot(mean.index, mean, color=color(model), **PAPER_STYLE)
                epoch95 = convergence_epochs(mean, [0.95])[0.95]
                ax.plot([epoch95], [mean[epoch95]], "o", mfc="white", color=color(model))
                drawn = True
            ours = history[history["neuron"] == neuron] if len(history) else history
            if len(ours):
                band(ax, ours, "epoch", "test_accuracy", color=color(model))
                mean = ours.groupby("epoch")["test_accuracy"].mean()
                epoch95 = convergence_epochs(mean, [0.95])[0.95]
                ax.plot([epoch95], [mean[epoch95]], "o", color=color(model))
                drawn = True
        if not drawn:
            no_data(ax, NOT_RUN)
        elif ax.get_xlim()[1] > 50:  # long runs: keep the first epochs readable
            ax.set_xscale("symlog", linthresh=10, linscale=0.6)
            ax.set_xlim(left=0)  # the autoscale margin would otherwise reach negative epochs (a "-10^1" tick)
        ax.set(title=task, xlabel="epoch", ylabel="test accuracy (%)")
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=color(n.upper()), lw=2) for n in neurons]
    handles += [plt.Line2D([], [], color="0.3", **PAPER_STYLE), plt.Line2D([], [], color="0.3")]
    labels = [n.upper() for n in neurons] + ["released logs (paper)", "ours (mean, band: std)"]
    fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), fontsize=7, frameon=False)
    caption(fig, provenance, source + "; dots: 95 % of the final mean accuracy")
    return fig


def learned_parameters_figure(neurons: pd.DataFrame, paper_marks: Mapping[str, float], provenance: str, source: str):
    """The BRF paper's Fig. 5 (bottom) for one task and model: each hidden neuron's angular frequency against its
    damping before (grey) and after training (coloured), with the divergence boundary ``p(omega)`` dashed, and
    beside it the histogram of the frequencies. ``neurons``: rows of :func:`reprolib.notebook.resonator_probe`
    (``stage``, ``omega``, ``damping``, ``dt``, ``model``); ``paper_marks``: label -> frequency (rad/s) the paper
    names, drawn as vertical lines on the histogram."""
    import torch  # noqa: PLC0415

    from reprolib.neurons.resonate import divergence_boundary  # noqa: PLC0415

    absent = [c for c in ("stage", "omega", "damping", "dt", "model") if c not in neurons.columns]
    if absent:
        raise ValueError(f"learned_parameters_figure: columns {absent} are not in the frame; expected the neuron "
                         "rows of reprolib.notebook.resonator_probe")
    if neurons["dt"].nunique() > 1:
        raise ValueError(f"learned_parameters_figure: runs with different time steps {sorted(neurons['dt'].unique())} "
                         "have different divergence boundaries; plot them apart")
    models = sorted(neurons["model"].unique())
    if len(models) > 1:
        raise ValueError(f"learned_parameters_figure: neurons of several models {models}; plot one model at a time")
    fig, axes = figure(1, 2, width=4.2, height=3.3)
    scatter, histogram = axes[0]
    learned_color = color(models[0].upper(), "C0") if models else "C0"
    styles = {"initial": dict(color="0.6", s=10, alpha=0.6), "learned": dict(color=learned_color, s=12, alpha=0.7)}
    name = models[0].upper() if models else ""
    for stage, style in styles.items():
        part = neurons[neurons["stage"] == stage]
        scatter.scatter(part["omega"], part["damping"], label=f"{stage} {name} ({len(part)} neurons)", **style)
    dt = float(neurons["dt"].iloc[0]) if len(neurons) else 0.01
    top = max(float(neurons["omega"].max()) * 1.1, 1.0) if len(neurons) else 10.0
    omega = torch.linspace(0.0, min(top, 1.0 / dt), 200, dtype=torch.float64)
    scatter.plot(omega.numpy(), divergence_boundary(omega, dt).numpy(), "k--", lw=1,
                 label="divergence boundary p(\u03c9)")
    damping = "b_c = p(\u03c9) \u2212 |b\u2032|" if models == ["brf"] else "damping b = \u2212|b\u2032|"
    scatter.set(xlabel="\u03c9 (rad/s)", ylabel=damping, xlim=(0, top))
    scatter.legend(fontsize=7)
    bins = np.linspace(0.0, top, 40)
    for stage, style in styles.items():
        histogram.hist(neurons.loc[neurons["stage"] == stage, "omega"], bins=bins, color=style["color"],
                       alpha=0.6, label=stage)
    for i, (label, value) in enumerate(paper_marks.items()):
        histogram.axvline(value, color=f"C{3 + i}", **PAPER_STYLE, label=f"paper: {label} ({value:g} rad/s)")
    histogram.set(xlabel="\u03c9 (rad/s)", ylabel="neurons (all runs)", xlim=(0, top))
    histogram.legend(fontsize=6, loc="upper right")
    caption(fig, provenance, source)
    return fig
