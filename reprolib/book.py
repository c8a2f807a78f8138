"""Build the book: execute every notebook of ``_toc.yml`` with papermill, then run Jupyter Book.

``python -m reprolib.book build [--scale ci|paper] [--train-missing] [--out DIR] [--only NAME ...]``

1. The book's sources (``_config.yml``, ``_toc.yml``, ``book/``) are copied into ``<out>/src``.
2. Each notebook listed in ``_toc.yml`` is executed by papermill with the parameters of
   ``book/params.yml`` (defaults, then the notebook's overrides, then the command-line overrides)
   into ``<out>/src/notebooks/``. A failing cell stops the build with the notebook's name. With ``--only``,
   the other notebooks are staged unexecuted (their pages show code without outputs). Kernels run with
   matplotlib's inline backend even when ``MPLBACKEND=Agg`` is exported (``make`` does).
3. ``jupyter-book build`` runs on the staged folder with warnings as errors (``-W -n --keep-going``),
   producing ``<out>/html/index.html``. Jupyter Book itself executes nothing (``execute_notebooks: off``).

Executed outputs live only under ``<out>``; nothing executed is written back into ``notebooks/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from reprolib.paths import REPO_ROOT

BOOK_FILES = ("_config.yml", "_toc.yml")
#: written into every output folder a build uses: a build replaces src/, html/ and jb/ only where it finds it
BUILD_MARKER = ".reprolib-book-build"
BUILD_FOLDERS = ("src", "html", "jb")
COMMON_PARAMETERS = ("scale", "seeds", "device", "train_missing")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
BOOK_DIRS = ("book",)


def toc_files(root: Path = REPO_ROOT) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (the root included), in order, without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def notebooks_in_toc(root: Path = REPO_ROOT) -> list[Path]:
    """The notebooks the book shows, as paths relative to the repository root."""
    out = []
    for entry in toc_files(root):
        path = Path(entry).with_suffix(".ipynb")
        if (root / path).exists():
            out.append(path)
    return out


def notebook_parameters(name: str, overrides: dict | None = None, root: Path = REPO_ROOT) -> dict:
    """Parameters for notebook ``name`` (stem): defaults, then per-notebook, then ``overrides``."""
    spec = yaml.safe_load((root / "book" / "params.yml").read_text()) or {}
    params = dict(spec.get("defaults") or {})
    params.update((spec.get("notebooks") or {}).get(name) or {})
    params.update(overrides or {})
    return params


def notebook_parameter_names(name: str, root: Path = REPO_ROOT) -> set[str]:
    """The names the ``parameters`` cell of notebook ``name`` (stem) defines, as papermill reads them."""
    import papermill as pm

    (path,) = [p for p in notebooks_in_toc(root) if p.stem == name]
    return set(pm.inspect_notebook(str(root / path)))


class BuildArgumentError(ValueError):
    """A bad argument of a book build, found before anything is staged (``python -m reprolib.book`` exits 2)."""


def check_build(out: Path | str, overrides: dict, only: list[str] | None = None, root: Path = REPO_ROOT) -> Path:
    """Check a build's arguments before anything is staged or executed; returns the resolved ``out``. Raises
    :class:`BuildArgumentError` (a ValueError) naming the bad value: an ``out`` that is a file, or that holds
    src/, html/ or jb/ folders another program made (a build replaces them); an ``only`` name that is not a
    notebook of the book; an override that no notebook to execute defines; a shared parameter (scale, seeds,
    device, train_missing) a notebook would refuse in its first cell."""
    from reprolib import notebook as nb
    from reprolib.paths import check_results_folder

    try:
        out = check_results_folder(out, "--out")
    except ValueError as error:
        raise BuildArgumentError(str(error)) from None
    if out.exists() and not (out / BUILD_MARKER).exists() and out != (root / "_build").resolve():
        taken = [f"{name}/" for name in BUILD_FOLDERS if (out / name).exists()]
        if taken:
            raise BuildArgumentError(
                f"--out {str(out)!r} holds {', '.join(taken)} that no book build made (no {BUILD_MARKER} file, which "
                "builds since 992124c write), and a build replaces them; expected a new or empty folder, or one a "
                "build wrote (delete an older build's folder first)")
    stems = [p.stem for p in notebooks_in_toc(root)]
    unknown = sorted(set(only or []) - set(stems))
    if unknown:
        raise BuildArgumentError(f"--only {unknown} is not a notebook of the book; expected some of {stems}")
    executed = [s for s in stems if not only or s in only]
    defined = set().union(*(notebook_parameter_names(s, root) for s in executed)) if executed else set()
    undefined = sorted(set(overrides) - defined)
    if undefined:
        raise BuildArgumentError(f"--set {undefined}: no notebook to execute has such a parameter; expected some "
                                 f"of {sorted(defined)}")
    for stem in executed:
        params = notebook_parameters(stem, overrides, root)
        try:
            nb.check_parameters(*(params.get(k) for k in COMMON_PARAMETERS))
        except ValueError as error:
            raise BuildArgumentError(f"notebook {stem}: {error}") from None
    return out


def kernel_options() -> dict:
    """papermill keyword arguments for the book's kernels: a kernel manager that gives each kernel CurveZMQ keys
    where jupyter_client can (``transport_encryption = "auto"``: only for a kernelspec that declares support, as
    ipykernel's does since 7.3). The kernel and its client talk over local TCP either way; with the keys that
    traffic is encrypted, and ipykernel stops printing a warning about it at every notebook of a build. Empty
    where the installed jupyter_client has no such setting."""
    from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415 - papermill's own dependency

    if "transport_encryption" not in AsyncKernelManager.class_trait_names():
        return {}
    from traitlets import default  # noqa: PLC0415

    class EncryptedKernelManager(AsyncKernelManager):
        @default("transport_encryption")
        def _default_transport_encryption(self) -> str:
            return "auto"

    return {"kernel_manager_class": EncryptedKernelManager}


def execute_notebooks(stage: Path, overrides: dict, only: list[str] | None = None, root: Path = REPO_ROOT,
                      log=print) -> list[Path]:
    """Execute the toc's notebooks with papermill into ``stage``; returns the executed paths."""
    import papermill as pm

    # The kernels inherit our environment; `make` exports MPLBACKEND=Agg (right for scripts and tests), which
    # would make every figure of a notebook silently vanish. Kernels get the inline backend instead.
    saved_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    try:
        return _execute_all(pm, stage, overrides, only, root, log)
    finally:
        if saved_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved_backend


def _execute_all(pm, stage: Path, overrides: dict, only, root: Path, log) -> list[Path]:
    executed = []
    kernel = kernel_options()
    for rel in notebooks_in_toc(root):
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if only and rel.stem not in only:
            # staged unexecuted, so the toc stays whole: the page shows its code without outputs
            shutil.copy2(root / rel, target)
            continue
        params = notebook_parameters(rel.stem, overrides, root)
        log(f"[book] executing {rel} with {params}")
        start = time.perf_counter()
        try:
            pm.execute_notebook(str(root / rel), str(target), parameters=params, cwd=str(root / rel.parent),
                                kernel_name="python3", progress_bar=False, log_output=False, **kernel)
        except pm.PapermillExecutionError as err:
            raise RuntimeError(f"notebook {rel} failed in cell {err.exec_count}: {err.ename}: {err.evalue} (the "
                               f"executed copy, with the traceback, is {target})") from err
        tidy_parameter_cells(target)
        log(f"[book] {rel} done in {time.perf_counter() - start:.1f} s")
        executed.append(target)
    return executed


def tidy_parameter_cells(path: Path) -> None:
    """In an executed notebook, drop the default ``parameters`` cell from the page and fold the
    ``injected-parameters`` cell (the values the page was built with) behind a "show" toggle, so that a page
    opens with its text and results rather than two blocks of settings."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        elif "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(notebook, path)


def stage_sources(stage: Path, root: Path = REPO_ROOT) -> None:
    """Copy the book's non-notebook sources into a fresh ``stage`` folder."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy2(root / name, stage / name)
    for name in BOOK_DIRS:
        shutil.copytree(root / name, stage / name)


def build(out: Path | str = REPO_ROOT / "_build", overrides: dict | None = None, only: list[str] | None = None,
          root: Path = REPO_ROOT, log=print) -> Path:
    """Execute the notebooks and build the HTML book; returns the path of ``index.html``."""
    out = check_build(out, overrides or {}, only, root)
    out.mkdir(parents=True, exist_ok=True)
    (out / BUILD_MARKER).write_text("made by python -m reprolib.book build, which replaces src/, html/ and jb/ here\n")
    stage = out / "src"
    stage_sources(stage, root)
    execute_notebooks(stage, overrides or {}, only=only, root=root, log=log)
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    # jupyter-book writes <path-output>/_build/html; build into a scratch folder and move it into place.
    scratch = out / "jb"
    if scratch.exists():
        shutil.rmtree(scratch)
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage), "--path-output", str(scratch),
           "--builder", "html", "-W", "-n", "--keep-going"]
    log("[book] " + " ".join(cmd))
    env = dict(os.environ, MPLBACKEND="Agg")
    subprocess.run(cmd, check=True, env=env)
    shutil.move(str(scratch / "_build" / "html"), str(html))
    shutil.rmtree(scratch, ignore_errors=True)
    index = html / "index.html"
    if not index.exists():
        raise RuntimeError(f"the book build produced no {index}")
    return index


def _parse_value(text: str):
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reprolib.book", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute the notebooks and build the book")
    b.add_argument("--out", default=str(REPO_ROOT / "_build"), help="output folder (html/ and src/ go there)")
    b.add_argument("--scale", choices=["ci", "paper"], help="override the scale of every notebook")
    b.add_argument("--train-missing", action="store_true", help="train configs whose run record is missing")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any notebook parameter (YAML value), e.g. --set seeds=[0]")
    b.add_argument("--only", nargs="*", help="execute only these notebooks (stems)")
    args = parser.parse_args(argv)
    overrides: dict = {}
    if args.scale:
        overrides["scale"] = args.scale
    if args.train_missing:
        overrides["train_missing"] = True
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            overrides[key] = _parse_value(value)
        except yaml.YAMLError as error:
            parser.error(f"--set {item!r}: the value is not YAML ({str(error).splitlines()[0]})")
    try:
        index = build(args.out, overrides, only=args.only)  # checks its arguments before it stages anything
    except BuildArgumentError as error:
        parser.error(str(error))
    except RuntimeError as error:  # a notebook failed: its executed copy under <out>/src shows the cell
        print(f"[book] error: {error}", file=sys.stderr)
        return 1
    print(f"[book] {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
