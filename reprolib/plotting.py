"""Matplotlib helpers shared by the book's notebooks: one look, provenance under every figure.

* :func:`figure` makes a figure with a grid of axes in the book's style;
* :func:`band` draws a mean curve with a ± std band over runs (seeds);
* :func:`mark` annotates a point (e.g. the last value, or where 95 % of the final accuracy is reached);
* :func:`caption` writes the provenance line (and the source's citation) under the figure.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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
    for value, group in frame.groupby(hue, sort=True):
        value = value[0] if len(hue) == 1 and isinstance(value, tuple) else value
        text = label(value) if label else (str(value) if not isinstance(value, tuple) else ", ".join(map(str, value)))
        key = value if isinstance(value, str) else None
        group = group.dropna(subset=[y])
        if not group.empty:
            lines.append(band(ax, group, x, y, label=text, color=color(key) if key else None, **style))
    return lines
