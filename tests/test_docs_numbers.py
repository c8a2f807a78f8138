"""Measured numbers that README.md and CONTRIBUTING.md quote from the committed CPU benchmark record agree with
it, to the digits quoted: re-measuring the record without updating the prose fails here instead of leaving it stale."""

from __future__ import annotations

import json
import re

import pytest

from reprolib.paths import REPO_ROOT

BENCH = REPO_ROOT / "results" / "bench" / "cpu-intel-xeon-processor-1-threads.json"


def _bench() -> dict:
    return json.loads(BENCH.read_text())


def _row(rows: list[dict], **keys) -> dict:
    found = [r for r in rows if all(r.get(k) == v for k, v in keys.items())]
    assert len(found) == 1, f"{len(found)} rows of {BENCH.name} match {keys}"
    return found[0]


def _agrees(quoted: str, value: float) -> bool:
    """``quoted`` is ``value`` rounded to the digits it shows."""
    decimals = len(quoted.partition(".")[2])
    return abs(float(quoted) - value) <= 0.5 * 10 ** -decimals + 1e-12


def _quote(path: str, pattern: str) -> tuple[str, ...]:
    text = " ".join((REPO_ROOT / path).read_text().split())  # line breaks of the prose do not matter
    match = re.search(pattern, text)
    assert match, f"{path} no longer quotes the benchmark record as /{pattern}/: update this test with it"
    return match.groups()


def test_readme_quotes_the_ecg_iteration_and_the_wide_recurrent_layers():
    bench = _bench()
    torch_s, kernel_s, cpu, name = _quote("README.md", r"training iteration ([\d.]+) s -> ([\d.]+) s on one core "
                                                       r"of an? ([\w ]+?) in `results/bench/([\w.-]+)`")
    assert name == BENCH.name
    assert re.sub(r"\((R|TM)\)", "", bench["cpu"]["model"]).split()[:len(cpu.split())] == cpu.split(), cpu
    ecg = _row(bench["iterations"], task="ecg")
    assert _agrees(torch_s, ecg["torch_ms"] / 1000), (torch_s, ecg["torch_ms"])
    assert _agrees(kernel_s, ecg["kernel_ms"] / 1000), (kernel_s, ecg["kernel_ms"])
    brf, alif = _quote("README.md", r"at 200 x 64 x 512 that record has BRF ([\d.]+)x and ALIF ([\d.]+)x")
    for neuron, quoted in (("BRF", brf), ("ALIF", alif)):
        row = _row(bench["results"], neuron=neuron, T=200, B=64, N=512)
        assert _agrees(quoted, row["speedup_vs_torch"]), (neuron, quoted, row["speedup_vs_torch"])


def test_contributing_quotes_the_ecg_speedups():
    bench = _bench()
    iteration, alif = _quote("CONTRIBUTING.md", r"runs a BRF training iteration of the ECG network (\d+)x faster than "
                                                r"`torch` and the ALIF layer alone (\d+)x")
    assert _agrees(iteration, _row(bench["iterations"], task="ecg")["speedup_vs_torch"])
    assert _agrees(alif, _row(bench["results"], neuron="ALIF", T=1300)["speedup_vs_torch"])


def test_readme_and_contributing_quote_the_src_network_steps():
    bench = _bench()
    tasks = ("src-mnist-latency", "src-mnist-rate", "lif-mnist-latency")
    steps = [_row(bench["networks"], task=task) for task in tasks]
    speedups = _quote("README.md", r"latency-coded SRC ([\d.]+)x, rate-coded SRC ([\d.]+)x, "
                                   r"latency-coded LIF ([\d.]+)x PyTorch's speed")
    for quoted, step in zip(speedups, steps):
        assert _agrees(quoted, step["speedup_vs_torch"]), (quoted, step)
    times = _quote("CONTRIBUTING.md", r"([\d.]+) ms with `cpp` against ([\d.]+) ms with the PyTorch loops "
                                      r"\(latency-coded SRC\), ([\d.]+) against ([\d.]+) ms \(rate-coded SRC\), "
                                      r"([\d.]+) against ([\d.]+) ms \(latency-coded LIF\)")
    for (kernel, loop), step in zip(zip(times[::2], times[1::2]), steps):
        assert _agrees(kernel, step["kernel_ms"]) and _agrees(loop, step["torch_ms"]), (kernel, loop, step)


@pytest.mark.parametrize("quoted, value, ok", [("1.07", 1.0684, True), ("1.07", 1.0751, False), ("32", 31.67, True),
                                               ("31", 31.67, False), ("0.034", 0.03374, True)])
def test_agrees_rounds_to_the_quoted_digits(quoted, value, ok):
    assert _agrees(quoted, value) is ok
