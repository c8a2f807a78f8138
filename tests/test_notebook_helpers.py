"""Notebook helpers: parameter validation, provenance, paper-vs-ours tables, missing-run notes."""

import math

import pandas as pd
import pytest

from reprolib import notebook as nb


def test_check_parameters_accepts_the_book_defaults():
    params = nb.check_parameters(scale="paper", seeds=[0, 1, 2], device="auto", train_missing=False, layers=[1, 2])
    assert params.scale == "paper" and params.seeds == (0, 1, 2)
    assert params.device in ("cpu", "cuda")
    assert params["layers"] == [1, 2]


@pytest.mark.parametrize("kwargs, message", [
    (dict(scale="huge"), "scale='huge'"),
    (dict(seeds="0"), "seeds"),
    (dict(seeds=[]), "seeds"),
    (dict(seeds=[0, 0]), "duplicates"),
    (dict(seeds=[-1]), "seeds"),
    (dict(device="tpu"), "device"),
    (dict(train_missing="yes"), "train_missing"),
])
def test_check_parameters_rejects_bad_values_with_a_clear_message(kwargs, message):
    base = dict(scale="ci", seeds=[0], device="cpu", train_missing=True)
    with pytest.raises(ValueError, match=message):
        nb.check_parameters(**{**base, **kwargs})


def test_knob_checks():
    assert nb.check_choice("encoding", "rate", ["rate", "latency"]) == "rate"
    with pytest.raises(ValueError, match="encoding='phase'"):
        nb.check_choice("encoding", "phase", ["rate", "latency"])
    assert nb.check_subset("layers", [1, 5], [1, 2, 3, 5]) == [1, 5]
    with pytest.raises(ValueError, match=r"\[4\]"):
        nb.check_subset("layers", [1, 4], [1, 2, 3, 5])
    with pytest.raises(ValueError, match="positive integer"):
        nb.check_positive("steps", 0, integer=True)


RECORD = {
    "config": {"scale": "ci", "seed": 0},
    "provenance": {"git_commit": "0123456789abcdef", "git_dirty": True, "device": "cpu",
                   "end": "2026-11-23T13:00:00+00:00"},
}


def test_provenance_line_names_scale_seeds_code_device_date():
    other = {**RECORD, "config": {"scale": "ci", "seed": 1}}
    line = nb.provenance_line([RECORD, other])
    assert "scale ci" in line and "2 seeds" in line and "01234567+dirty" in line
    assert "cpu" in line and "2026-11-23" in line
    assert "no run records" in nb.provenance_line([], scale="paper")


def test_paper_vs_ours_marks_missing_numbers():
    frame = pd.DataFrame({
        "item": ["a", "b", "c"],
        "paper": [90.0, math.nan, 80.0],
        "ours": [91.5, 70.0, math.nan],
        "ours_std": [0.5, math.nan, math.nan],
        "runs": [3, 1, math.nan],
    })
    table = nb.paper_vs_ours(frame, ["item"])
    assert list(table.columns) == ["item", "paper", "ours", "difference"]
    assert table.loc[0, "difference"] == "+1.50" and table.loc[0, "ours"] == "91.50 ± 0.50 (n=3)"
    assert table.loc[1, "paper"] == nb.NOT_AVAILABLE and table.loc[1, "difference"] == nb.NOT_AVAILABLE
    assert table.loc[2, "ours"] == nb.NOT_RUN and table.loc[2, "difference"] == nb.NOT_RUN


def test_missing_runs_note_gives_the_exact_sweep_command():
    note = nb.missing_runs_note("src-table2", "paper", [0, 1, 2], missing=40, total=40, train_missing=False)
    assert "reprolib sweep src-table2 --scale paper --seeds 0 1 2" in note
    assert nb.missing_runs_note("src-table2", "paper", [0], missing=0, total=4, train_missing=False) == ""


def test_dataset_note():
    assert nb.dataset_note("SHD", "found") == ""
    assert "not available" in nb.dataset_note("SHD", "missing", "reprolib sweep brf-shd --scale paper --seeds 0")
    with pytest.raises(ValueError):
        nb.dataset_note("SHD", "gone")


def test_record_info_names_a_non_default_backend():
    from reprolib.notebook import record_info

    base = {"config": {"seed": 0, "scale": "paper"}, "provenance": {"device_name": "cpu (x86_64, 1 threads)"}}
    assert record_info(base)["device"] == "cpu (x86_64, 1 threads)"  # records from before the backend field
    cpp = {**base, "config": {**base["config"], "backend": "cpp"}}
    assert record_info(cpp)["device"] == "cpu (x86_64, 1 threads), cpp backend"
