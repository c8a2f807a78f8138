"""The probe commands (probe-shift, probe-resonators, probe-parameters) share their arguments and their errors."""

from __future__ import annotations

import json

import pytest

from reprolib.config import with_overrides
from reprolib.experiments import get_configs
from reprolib.training import train


@pytest.mark.parametrize("command, experiment, axes, written", [
    ("probe-shift", "src-table2", dict(input="nmnist", layers=1, model="lif"), "rows"),
    ("probe-resonators", "brf-ecg", dict(neuron="rf"), "runs"),
    ("probe-parameters", "src-activity", dict(input="mnist-rate", layers=[1], model="src"), "runs"),
])
def test_probe_command_writes_its_file_or_says_what_is_wrong(command, experiment, axes, written, data_root,
                                                             results_tmp, tmp_path, capsys):
    from reprolib.cli import main

    config = with_overrides(get_configs(experiment, "ci", seeds=[0], **axes)[0], {"device": "cpu"})
    record = train(config, results_dir=results_tmp, progress=False)
    out = tmp_path / "probe.json"
    assert main([command, str(record.path), "--output", str(out), "--results", str(results_tmp),
                 "--no-progress"]) == 0
    assert f"reprolib {command}: wrote {out}" in capsys.readouterr().out
    payload = json.loads(out.read_text())["payload"]
    assert payload["experiment"] == config.experiment and len(payload[written]) >= 1
    # a record that is not there, and an output that is a folder: exit 2, the reason on stderr, nothing written
    assert main([command, str(tmp_path / "missing.json"), "--output", str(tmp_path / "x.json")]) == 2
    assert f"reprolib {command}: error:" in capsys.readouterr().err
    assert main([command, str(record.path), "--output", str(tmp_path), "--no-progress"]) == 2
    assert "is a folder; expected a file name" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    assert "results/analysis/<experiment>-<scale>-" in help_text and "--no-progress" in help_text
