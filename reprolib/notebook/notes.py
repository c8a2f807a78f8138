"""Markdown notes of a page: what is missing (runs, data sets), the command that completes it, the settings."""

from __future__ import annotations

import shlex
from typing import Any, Mapping, Sequence

import pandas as pd

from reprolib.notebook.parameters import check_choice
from reprolib.notebook.tables import NOT_RUN


def sweep_command(experiment: str, scale: str, seeds: Sequence[int], **selection: Any) -> str:
    """The exact command line that produces the missing records of ``experiment``.

    ``selection``: grid axis -> the labels this page uses (``reprolib sweep --select axis=label``, repeated per label).
    """
    parts = ["reprolib", "sweep", experiment, "--scale", scale, "--seeds", *[str(s) for s in seeds]]
    for key, value in selection.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            parts += ["--select", f"{key}={item}"]
    return " ".join(shlex.quote(p) for p in parts)


def missing_runs_note(experiment: str, scale: str, seeds: Sequence[int], missing: int, total: int,
                      train_missing: bool, **grid: Any) -> str:
    """Markdown saying how many configs have no record and how to complete them (empty if none is missing)."""
    if missing == 0:
        return ""
    command = sweep_command(experiment, scale, seeds, **grid)
    why = ("`train_missing` is false, so this page only renders records that exist"
           if not train_missing else "they could not be trained here: see above")
    return (f"**{missing} of {total} runs of `{experiment}` have no record at scale `{scale}`** ({why}); "
            f"their cells read *{NOT_RUN}*. To complete this page, run\n\n```bash\n{command}\n```\n\n"
            f"then rebuild the book (`make book`).")


def dataset_note(name: str, status: str, command: str | None = None) -> str:
    """Markdown for a dataset that is ``missing`` or a ``subset`` (empty when ``status`` is ``found``)."""
    check_choice("status", status, ("found", "missing", "subset"))
    if status == "found":
        return ""
    if status == "subset":
        text = (f"**{name}: only a subset of the dataset is available here**, so our numbers for it are not "
                f"comparable with the source's.")
    else:
        text = f"**{name} is not available on this machine**, so the cells that need it read *{NOT_RUN}*."
    if command:
        text += f" Where the full data exists (`$REPROLIB_DATA`, see `reprolib data`), complete it with\n\n```bash\n{command}\n```"
    return text


def dataset_status(name: str) -> str:
    """``found``, ``subset`` or ``missing`` for dataset ``name`` under ``$REPROLIB_DATA`` (or the download cache).

    A dataset whose files fail their checksum counts as missing (the loader would refuse it).
    """
    from reprolib.data import resolve_root
    from reprolib.data.catalog import check_availability
    from reprolib.paths import cache_dir

    status = check_availability(name, resolve_root(None), cache_dir()).status
    return status if status in ("found", "subset") else "missing"


def show_markdown(text: str) -> None:
    """Display Markdown in a notebook (a no-op for empty text)."""
    if not text:
        return
    from IPython.display import Markdown, display

    display(Markdown(text))


def settings_dropdown(experiments: Sequence[str]) -> str:
    """MyST: a folded block with each experiment's preset notes -- the source's settings we follow, the choices
    the source leaves open and where we deviate -- so a reader can check a number against them."""
    from reprolib.experiments import get_preset

    body = "\n\n".join(f"**`{name}`**: {get_preset(name).notes}" for name in experiments)
    return f"```{{dropdown}} Settings, open choices and deviations from the source\n{body}\n```"


def show_tables(parts: Mapping[str, pd.DataFrame], index: Sequence[str]) -> None:
    """Display each table of ``parts`` (name -> paper-vs-ours table) under its name in bold, indexed by ``index``:
    one table per quantity, narrow enough to read beside the text."""
    from IPython.display import display  # noqa: PLC0415

    for name, part in parts.items():
        show_markdown(f"**{name}**")
        display(part.set_index(list(index)))
