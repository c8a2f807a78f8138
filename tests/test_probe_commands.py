"""The probe commands (probe-shift, probe-resonators, probe-parameters) share their arguments and their errors."""

from __future__ import annotations

import json

import pytest

from reprolib.config import with_overrides
from reprolib.experiments import get_configs
from reprolib.training import train


@pytest.mark.parametrize("command, experiment, axes, check", [
    ("probe-shift", "src-table2", dict(input="nmnist", layers=1, model="lif"),
     lambda payload: {row["dy"] for row in payload["rows"]} == {0, -1, 1}),
    ("probe-resonators", "brf-ecg", dict(neuron="rf"), lambda payload: payload["runs"][0]["neuron"] == "rf"),
    ("probe-parameters", "src-activity", dict(input="mnist-rate", layers=[1], model="src"),
     lambda payload: "blocks.0.b_h" in payload["runs"][0]["learned"]),
])
def test_probe_command_writes_its_file_or_says_what_is_wrong(command, experiment, axes, check, data_root, results_tmp,
                                                             tmp_path, capsys):
    from reprolib.cli import main

    config = with_overrides(get_configs(experiment, "ci", seeds=[0], **axes)[0], {"device": "cpu"})
    elsewhere = tmp_path / "elsewhere"  # not the results folder ($REPROLIB_RESULTS): a re-runs folder, say
    record = train(config, results_dir=elsewhere, progress=False)
    out = tmp_path / "probe.json"
    # --results names where the kept weights are; without it, every probe looks beside the record
    assert main([command, str(record.path), "--output", str(out), "--results", str(results_tmp),
                 "--no-progress"]) == 2
    assert "no kept weights" in capsys.readouterr().err and not out.exists()
    assert main([command, str(record.path), "--output", str(out), "--no-progress"]) == 0
    assert f"reprolib {command}: wrote {out}" in capsys.readouterr().out
    payload = json.loads(out.read_text())["payload"]
    assert payload["experiment"] == config.experiment and check(payload)
    # a record that is not there, and an output that is a folder: exit 2 with the reason on stderr
    assert main([command, str(tmp_path / "missing.json"), "--output", str(tmp_path / "x.json")]) == 2
    assert f"reprolib {command}: error:" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    assert main([command, str(record.path), "--output", str(tmp_path), "--results", str(elsewhere),
                 "--no-progress"]) == 2
    assert "is a folder; expected a file name" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    assert "results/analysis/<experiment>-<scale>-" in help_text and "--no-progress" in help_text
