"""The book: every notebook is listed, parameterised and clean; it renders without records at paper scale;
and the whole book builds at ci scale, training what is missing (slow, but part of the default suite)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from reprolib import book
from reprolib.notebook import NOT_AVAILABLE, NOT_RUN
from reprolib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = ("scale", "seeds", "device", "train_missing")
# Pages that must show a figure whatever data and records exist (neuron simulations, published curves).
ALWAYS_FIGURES = ("sj-neuron-dynamics", "sj-surrogate", "sj-containers", "src-neuron-simulations", "brf-resonance",
                  "bpsa-gradient-flow", "sj-lif-mnist", "sj-seq-fmnist", "brf-convergence")


def _parameters_cell(notebook) -> str:
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0].source


def _execute(name: str, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    import papermill as pm

    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(REPO_ROOT / "notebooks" / f"{name}.ipynb"), str(out), parameters=parameters,
                        cwd=str(REPO_ROOT / "notebooks"), kernel_name="python3", progress_bar=False,
                        **book.kernel_options())
    return nbformat.read(out, as_version=4)


def _text_outputs(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for kind in ("text/markdown", "text/plain", "text/html"):
                parts.append(str(output.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def _page_text(path: Path) -> str:
    """The visible text of an HTML page (code blocks are split into highlighted spans)."""
    import html as html_lib

    text = re.sub(r"<(script|style).*?</\1>", "", path.read_text(), flags=re.S)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))


def test_book_kernels_run_with_transport_encryption_and_without_its_warning(tmp_path, capfd):
    import papermill as pm
    from jupyter_client.manager import AsyncKernelManager

    options = book.kernel_options()
    if "transport_encryption" not in AsyncKernelManager.class_trait_names():
        assert options == {}  # an older jupyter_client: papermill's defaults
        return
    assert options["kernel_manager_class"]().transport_encryption == "auto"
    source = tmp_path / "two.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print(1 + 1)")]
    nbformat.write(notebook, source)
    pm.execute_notebook(str(source), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                        **options)
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"] == "2\n"
    assert "without encryption" not in capfd.readouterr().err  # the kernel's own stderr is this process's


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    in_toc = {p.stem for p in book.notebooks_in_toc()}
    assert in_toc == {p.stem for p in NOTEBOOKS}
    for entry in book.toc_files():
        assert (REPO_ROOT / f"{entry}.md").exists() or (REPO_ROOT / f"{entry}.ipynb").exists(), entry


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterised(path):
    # nbformat 4.5 cells carry an id; nbformat.read would add missing ones silently (with a warning at build time)
    ids = [cell.get("id") for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), f"cells without an id or with a repeated one: {ids}"
    notebook = nbformat.read(path, as_version=4)
    source = _parameters_cell(notebook)
    for name in REQUIRED_PARAMETERS:
        assert re.search(rf"^{name}\s*=", source, re.M), f"parameters cell lacks {name}"
    for cell in notebook.cells:  # executed outputs live only under _build
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit notebooks without outputs"
    assert notebook.metadata.kernelspec.name == "python3"


def test_params_yml_names_only_existing_notebooks():
    spec = book.yaml.safe_load((REPO_ROOT / "book" / "params.yml").read_text())
    assert set(spec["defaults"]) >= set(REQUIRED_PARAMETERS)
    assert set(spec.get("notebooks") or {}) <= {p.stem for p in NOTEBOOKS}


def test_figures_are_shown_even_with_mplbackend_agg(tmp_path, results_tmp, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # make and the test suite export it; kernels inherit it
    notebook = _execute("sj-surrogate", tmp_path)
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2


def test_performance_page_renders_a_benchmark_record(tmp_path):
    import json

    bench = tmp_path / "bench"
    bench.mkdir()
    row = {"neuron": "LIF", "T": 8, "B": 4, "N": 8, "torch_ms": 2.0, "kernel_ms": 0.5, "speedup_vs_torch": 4.0,
           "notes": {}}
    (bench / "gpu.json").write_text(json.dumps({"kind": "kernel-benchmark", "device": "Test GPU", "date": "2026-01-01",
                                                "git_commit": "abcdef0123", "results": [row]}))
    text = _text_outputs(_execute("kernel-benchmark", tmp_path, bench_dir=str(bench)))
    assert "Test GPU" in text and "abcdef01" in text and "0.5" in text and "Incomplete record" not in text
    assert "No benchmark record has encoder rows yet" in text  # a record from before the encoders were timed
    encoder = {"encoder": "rate", "T": 200, "B": 64, "features": 784, "source_formulation_ms": 85.25,
               "reprolib_ms": 30.5, "speedup": 2.8, "identical_spikes": True}
    (bench / "gpu.json").write_text(json.dumps({"kind": "kernel-benchmark", "device": "Test GPU", "date": "2026-01-01",
                                                "git_commit": "abcdef0123", "results": [row], "encoders": [encoder]}))
    step = {"task": "src-mnist-latency", "neuron": "SRC", "B": 64, "T": 200, "input_density": 0.000891,
            "torch_ms": 175.25, "kernel_ms": 49.75, "speedup_vs_torch": 3.52, "notes": {}}
    (bench / "gpu.json").write_text(json.dumps({"kind": "kernel-benchmark", "device": "Test GPU", "date": "2026-01-01",
                                                "git_commit": "abcdef0123", "results": [row], "encoders": [encoder],
                                                "network_workload": "one training step", "networks": [step]}))
    text = _text_outputs(_execute("kernel-benchmark", tmp_path, bench_dir=str(bench)))
    assert "85.25" in text and "30.5" in text and "No benchmark record has encoder rows" not in text
    assert "training step of the SRC paper's networks" in text and "0.00089" in text and "175.25" in text
    # a record left by a run stopped at its time limit says so
    (bench / "gpu.json").write_text(json.dumps({"kind": "kernel-benchmark", "device": "Test GPU", "date": "2026-01-01",
                                                "git_commit": "abcdef0123", "results": [row], "complete": False}))
    assert "Incomplete record" in _text_outputs(_execute("kernel-benchmark", tmp_path, bench_dir=str(bench)))
    # and one whose kernels failed their check before the timing shows the failures above the numbers
    check = {"engine": "cupy", "checks": 40, "failures": ["li readout: RuntimeError: planted"]}
    (bench / "gpu.json").write_text(json.dumps({"kind": "kernel-benchmark", "device": "Test GPU", "date": "2026-01-01",
                                                "git_commit": "abcdef0123", "results": [row], "kernel_check": check}))
    text = _text_outputs(_execute("kernel-benchmark", tmp_path, bench_dir=str(bench)))
    assert "Kernel check failed" in text and "1 of 40 checks" in text and "li readout: RuntimeError: planted" in text
    (tmp_path / "none").mkdir()  # a folder without records (one that does not exist is an error, tested apart)
    empty = _text_outputs(_execute("kernel-benchmark", tmp_path, bench_dir=str(tmp_path / "none")))
    assert "No benchmark record yet" in empty and "reprolib bench" in empty


def test_a_bad_parameter_fails_in_the_first_cells(tmp_path, results_tmp):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as info:
        _execute("src-table2", tmp_path, scale="huge")
    assert info.value.ename == "ValueError" and "scale='huge'" in info.value.evalue
    assert info.value.exec_count <= 3


@pytest.mark.parametrize("name, parameters, message", [
    ("sj-surrogate", {"alphas": 2.0}, "parameter alphas must be a list, got 2.0"),
    ("bpsa-simlen", {"simulation_lengths": [8, 0]}, "parameter simulation_lengths[1]=0 must be a positive integer"),
    ("brf-datasets", {"mnist_index": -1}, "parameter mnist_index=-1 must be an integer >= 0"),
    ("src-neuron-simulations", {"noise_seeds": 5}, "parameter noise_seeds must be a list, got 5"),
    ("brf-resonance", {"response_pairs": [[10.0, "x"]]}, "response_pairs item [10.0, 'x']: expected [omega, b'], two finite"),
    ("kernel-benchmark", {"bench_dir": "no/such/folder"}, "parameter bench_dir='no/such/folder' is not a folder"),
    ("src-noise", {"noise_levels": [0.0, -0.1]}, "parameter noise_levels[1]=-0.1 must be a finite number >= 0"),
    ("src-neuron-simulations", {"noise_sigma": -1.0}, "parameter noise_sigma=-1.0 must be a finite number >= 0"),
])
def test_a_bad_notebook_knob_is_named_in_the_first_cells(tmp_path, results_tmp, name, parameters, message):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as info:
        _execute(name, tmp_path, scale="ci", train_missing=False, **parameters)
    assert info.value.ename == "ValueError" and message in info.value.evalue, info.value.evalue
    assert info.value.exec_count <= 3


def test_experiment_notebook_renders_at_paper_scale_without_records(tmp_path, results_tmp):
    notebook = _execute("src-table2", tmp_path, scale="paper", seeds=[0, 1, 2, 3, 4], train_missing=False)
    text = _text_outputs(notebook)
    assert "reprolib sweep src-table2 --scale paper --seeds 0 1 2 3 4" in text
    assert NOT_RUN in text
    assert "97.27" in text  # the paper's numbers are there without any run
    assert not any(results_tmp.iterdir()), "nothing may be trained when train_missing is false"


@pytest.mark.slow
def test_whole_book_builds_at_ci_scale(tmp_path, results_tmp):
    index = book.build(tmp_path / "build", {"scale": "ci", "train_missing": True, "seeds": [0]}, log=lambda *_: None)
    assert index.exists()
    html = index.parent
    for path in NOTEBOOKS:
        page = html / "notebooks" / f"{path.stem}.html"
        assert page.exists(), f"no page for {path.stem}"
        text = page.read_text()
        assert "Traceback" not in text, f"{path.stem} shows an error"
        if path.stem in ALWAYS_FIGURES:
            assert "<img" in text, f"{path.stem} shows no figure"
    for chapter in ("intro", "reproduce-and-fork", "performance", "src", "brf"):
        assert (html / "book" / f"{chapter}.html").exists()

    # Key results: the SRC Table 2 renders paper, ours and difference at ci scale, with provenance.
    assert "<table" in (html / "notebooks" / "src-table2.html").read_text()
    table2 = _page_text(html / "notebooks" / "src-table2.html")
    assert "97.27" in table2 and "difference" in table2 and "scale ci" in table2
    # The SpikingJelly recurrent page compares on the training set and shows the true test set apart.
    seq = _page_text(html / "notebooks" / "sj-seq-fmnist.html")
    assert "training set, eval mode" in seq and "true test set" in seq
    # BPSA: the source's numbers are not available, and the page says so.
    assert NOT_AVAILABLE in _page_text(html / "notebooks" / "bpsa-simlen.html")
    # BRF Table 1 at ci: SHD is missing here and its rows read "not run yet" with the command.
    brf = _page_text(html / "notebooks" / "brf-table1.html")
    assert "91.70 ± 0.80" in brf and "reprolib sweep brf-shd --scale ci --seeds 0" in brf and NOT_RUN in brf
    if os.environ.get("REPROLIB_DATA"):
        from reprolib.results import read_record

        records = [read_record(p) for p in results_tmp.glob("*/*.json")]
        assert records, "train_missing=true at ci scale must write run records"
        assert all(record.config.scale == "ci" for record in records)
        for name in ("src-table2", "src-depth", "bpsa-simlen", "brf-table1"):
            page = (html / "notebooks" / f"{name}.html").read_text()
            assert "<img" in page or "<table" in page, name


def test_parameter_cells_are_tidied_on_the_page(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("scale = 'ci'", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("scale = 'paper'", metadata={"tags": ["injected-parameters"]}),
                      nbformat.v4.new_code_cell("print(scale)")]
    path = tmp_path / "page.ipynb"
    nbformat.write(notebook, path)
    book.tidy_parameter_cells(path)
    tags = [cell.metadata.get("tags", []) for cell in nbformat.read(path, as_version=4).cells]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "hide-input"], []]


@pytest.mark.parametrize("arguments, message", [
    (["--out", "{user}", "--only", "sj-surrogate"], "holds src/ that no book build made"),
    (["--out", "{file}"], "is a file; expected a folder"),
    (["--out", "{file}/sub"], "is below the file"),
    (["--set", "seeds=[0"], "the value is not YAML"),
    (["--set", "scale=huge", "--only", "sj-surrogate"], "notebook sj-surrogate: parameter scale='huge' is not allowed"),
    (["--set", "seed=[0]", "--only", "sj-surrogate"], "--set ['seed']: no notebook to execute has such a parameter"),
    (["--only", "no-such-notebook"], "--only ['no-such-notebook'] is not a notebook of the book"),
])
def test_book_build_refuses_bad_arguments_before_staging_anything(tmp_path, capsys, monkeypatch, arguments, message):
    monkeypatch.setattr(book, "execute_notebooks", lambda *a, **k: pytest.fail("executed despite a bad argument"))
    (tmp_path / "user" / "src").mkdir(parents=True)
    (tmp_path / "user" / "src" / "mine.txt").write_text("a reader's own file")
    (tmp_path / "file").write_text("")
    arguments = [a.format(user=tmp_path / "user", file=tmp_path / "file") for a in arguments]
    if "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "new")]
    with pytest.raises(SystemExit) as exit_info:
        book.main(["build", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "user" / "src" / "mine.txt").read_text() == "a reader's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "user"]


def test_book_build_reuses_its_own_output_folder(tmp_path):
    out = tmp_path / "out"
    (out / "html").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds html/ that no book build made"):
        book.check_build(out, {}, only=["sj-surrogate"])
    (out / book.BUILD_MARKER).write_text("")  # what a build writes first
    assert book.check_build(out, {"seeds": [0]}, only=["sj-surrogate"]) == out.resolve()
