"""The notebooks' figure helpers (reprolib.plotting) and the single-neuron resonance analyses
(reprolib.resonance), on small synthetic inputs: no data, no run records."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from reprolib import plotting, resonance  # noqa: E402
from reprolib.notebook import NOT_RUN  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _segments_x(collection) -> list[float]:
    """x of each vertical segment of a ``vlines`` collection."""
    return [float(segment[0][0]) for segment in collection.get_segments()]


# --- run records: curves and mean ± std -------------------------------------------------------------------


def _history(hue_values, epochs=3, seeds=(0, 1)):
    return pd.DataFrame([{"epoch": e, "seed": s, "sigma": v, "loss": 10.0 * v + e + s, "acc": 50.0 + e}
                         for v in hue_values for s in seeds for e in range(1, epochs + 1)])


def test_curve_panels_one_curve_per_value_one_panel_per_column_one_legend():
    fig, axes = plotting.figure(1, 2)
    history = _history([0.0, 0.5])
    plotting.curve_panels(axes, history, [("loss", "training loss"), ("acc", "accuracy (%)")], "sigma",
                          label=lambda s: f"σ = {s:g}")
    left, right = axes[0]
    assert [left.get_title(), right.get_title()] == ["training loss", "accuracy (%)"]
    assert left.get_xlabel() == right.get_xlabel() == "epoch"
    assert [line.get_label() for line in left.lines] == ["σ = 0", "σ = 0.5"]
    # the mean over the two seeds of sigma = 0.5: 5 + e + 0.5
    np.testing.assert_allclose(left.lines[1].get_ydata(), [6.5, 7.5, 8.5])
    assert left.get_legend() is not None and right.get_legend() is None
    assert not _texts(left)


def test_curve_panels_say_not_run_on_an_empty_history_and_refuse_extra_panels():
    fig, axes = plotting.figure(1, 2)
    plotting.curve_panels(axes, pd.DataFrame(), [("loss", "a"), ("acc", "b")], "sigma")
    assert all(_texts(ax) == [NOT_RUN] and not ax.lines for ax in axes[0])
    with pytest.raises(ValueError, match="3 panels for 2 axes"):
        plotting.curve_panels(axes, _history([0.0]), [("loss", "a"), ("acc", "b"), ("loss", "c")], "sigma")


def _summary():
    return pd.DataFrame({"model": ["src", "src", "lif", "lif"], "layers": [1, 2, 1, 2],
                         "activity_mean": [0.1, 0.2, np.nan, np.nan], "activity_std": [0.01, np.nan, np.nan, np.nan]})


def test_errorbars_draw_mean_and_std_per_series_and_skip_series_without_runs():
    fig, axes = plotting.figure()
    ax = axes[0, 0]
    drawn = plotting.errorbars(ax, _summary(), "layers", "activity", "model", label=str.upper)
    assert len(drawn) == 1  # LIF has no mean: not drawn
    line = drawn[0].lines[0]
    assert drawn[0].get_label() == "SRC" and line.get_color() == plotting.color("SRC")
    np.testing.assert_allclose(np.asarray(line.get_xdata(), dtype=float), [1, 2])
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), [0.1, 0.2])
    # the error bar of layer 1 spans mean ± std; a missing std is drawn as 0
    bars = drawn[0].lines[2][0].get_segments()
    np.testing.assert_allclose([bars[0][0][1], bars[0][1][1]], [0.09, 0.11])
    np.testing.assert_allclose([bars[1][0][1], bars[1][1][1]], [0.2, 0.2])
    assert not _texts(ax)


def test_errorbars_follow_the_given_order_and_say_not_run_when_nothing_is_drawn():
    frame = _summary().assign(activity_mean=[0.1, 0.2, 0.3, 0.4])
    fig, axes = plotting.figure()
    drawn = plotting.errorbars(axes[0, 0], frame, "layers", "activity", "model", order=["src", "lif"])
    assert [d.get_label() for d in drawn] == ["src", "lif"]
    fig, axes = plotting.figure()
    assert plotting.errorbars(axes[0, 0], _summary().iloc[2:], "layers", "activity", "model") == []
    assert _texts(axes[0, 0]) == [NOT_RUN]
    with pytest.raises(ValueError, match="accuracy_mean"):
        plotting.errorbars(axes[0, 0], _summary(), "layers", "accuracy", "model")


# --- BRF datasets -----------------------------------------------------------------------------------------


def test_pixel_sequence_figure_marks_the_row_in_both_orders():
    image = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4) / 16
    order = torch.tensor([15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0])  # reversed reading order
    fig = plotting.pixel_sequence_figure(image, 7, 3, order, row=1)
    img_ax, plain, permuted = fig.axes
    assert img_ax.get_title() == "MNIST test image 3 (label 7)"
    assert img_ax.lines[0].get_ydata()[0] == 1  # the red row
    assert [plain.get_title(), permuted.get_title()] == ["S-MNIST: 16 steps, 1 input", "PS-MNIST: 16 steps, 1 input"]
    assert permuted.get_xlabel() == "time step" and plain.get_xlim() == (0, 16)
    # row 1 = pixels 4..7: steps 4..7 in reading order, steps 8..11 once reversed
    np.testing.assert_array_equal(plain.lines[1].get_xdata(), [4, 5, 6, 7])
    np.testing.assert_array_equal(permuted.lines[1].get_xdata(), [8, 9, 10, 11])
    np.testing.assert_allclose(permuted.lines[1].get_ydata(), np.array([7, 6, 5, 4]) / 16)
    np.testing.assert_allclose(permuted.lines[0].get_ydata(), np.arange(15, -1, -1) / 16)


def test_pixel_sequence_figure_rejects_a_bad_row_or_permutation():
    image = torch.zeros(1, 4, 4)
    with pytest.raises(ValueError, match="row=4"):
        plotting.pixel_sequence_figure(image, 0, 0, torch.arange(16), row=4)
    with pytest.raises(ValueError, match="not a permutation"):
        plotting.pixel_sequence_figure(image, 0, 0, torch.zeros(16, dtype=torch.long), row=0)


def test_ecg_figure_draws_channel_spikes_and_step_labels():
    x = torch.zeros(10, 3)
    x[[1, 4], 0] = 1.0
    x[7, 2] = 1.0
    y = torch.tensor([-1, 0, 0, 1, 1, 1, -1, 0, 1, -1])
    fig = plotting.ecg_figure(x, y, ["P", "PQ"], index=5)
    channels, labels = fig.axes
    assert channels.get_title() == "ECG-QTDB test sequence 5: 10 steps, 3 spike channels"
    assert [t.get_text() for t in channels.get_yticklabels()] == ["channel 0", "channel 1", "channel 2"]
    assert [_segments_x(c) for c in channels.collections] == [[1.0, 4.0], [], [7.0]]
    assert [_segments_x(c) for c in labels.collections] == [[1.0, 2.0, 7.0], [3.0, 4.0, 5.0, 8.0]]
    assert [t.get_text() for t in labels.get_legend().get_texts()] == ["P", "PQ"]
    assert labels.get_xlabel() == "time step" and labels.get_xlim() == (0, 10)
    with pytest.raises(ValueError, match="at most 6"):
        plotting.ecg_figure(x, y, list("abcdefg"), index=0)


def test_shd_figure_shows_the_sample_channels_by_time():
    spikes = torch.zeros(5, 7)
    spikes[2, 6] = 1.0
    fig = plotting.shd_figure(spikes, 3, index=1)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), spikes.T.numpy())
    assert ax.get_title() == "SHD test sample 1 (label 3): 5 x 7"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("time bin (4 ms)", "channel")


# --- BRF single neurons -----------------------------------------------------------------------------------


def _run(n, spikes_in, spikes_out):
    run = {"u": torch.linspace(-1, 1, n), "v": torch.linspace(1, -1, n), "x": torch.zeros(n), "z": torch.zeros(n)}
    run["x"][spikes_in] = 50.0
    run["z"][spikes_out] = 1.0
    return run


def test_resonator_figure_two_traces_and_the_phase_plane():
    t = torch.arange(6) * 0.5
    runs = {"in phase (ω)": _run(6, [0, 2], [3]), "off resonance (2 ω)": _run(6, [0, 1], [])}
    fig = plotting.resonator_figure(t, runs)
    first, second, phase = fig.axes
    assert first.get_title() == "input in phase (ω)" and second.get_xlabel() == "time (s)"
    assert [line.get_label() for line in first.lines[:2]] == ["u (real part)", "v (imaginary part)"]
    assert [text.get_text() for text in fig.legends[0].get_texts()] == [
        "u (real part)", "v (imaginary part)", "input spike", "output spike", "threshold"]
    assert _segments_x(first.collections[0]) == [0.0, 1.0]  # input spikes at steps 0 and 2
    assert _segments_x(first.collections[1]) == [1.5] and _segments_x(second.collections[1]) == []
    assert [line.get_label() for line in phase.lines] == ["in phase (ω)", "off resonance (2 ω)", "threshold"]
    np.testing.assert_allclose(phase.lines[0].get_xdata(), runs["in phase (ω)"]["u"])
    np.testing.assert_allclose(phase.lines[0].get_ydata(), runs["in phase (ω)"]["v"])
    assert (phase.get_xlabel(), phase.get_ylabel()) == ("u", "v")
    with pytest.raises(ValueError, match="expected two"):
        plotting.resonator_figure(t, {"only": runs["in phase (ω)"]})


def test_resonator_figure_titles_and_legends_leave_the_data_free():
    """Drawn at the book's size with the page's real traces: neighbouring titles do not overlap, and no legend
    covers a panel (the phase plane's legend once hid half of it)."""
    t, runs = resonance.resonance_demo(omega=10.0, b_offset=1.0, kick=0.5, n_input_spikes=4, detuning=1.6)
    fig = plotting.resonator_figure(t, runs)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    first, second, phase = fig.axes
    titles = [ax.title.get_window_extent(renderer) for ax in (first, second, phase)]
    assert titles[0].x1 < titles[1].x0 and titles[1].x1 < titles[2].x0
    legends = [*fig.legends, phase.get_legend()]
    assert first.get_legend() is None and second.get_legend() is None
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in (first, second, phase):
            assert not box.overlaps(ax.get_window_extent(renderer)), (legend, ax)


def test_frequency_response_figure_one_curve_and_marker_per_neuron():
    frequencies = torch.tensor([1.0, 2.0, 3.0])
    responses = {(2.0, 1.0): torch.tensor([0.1, 0.9, 0.2]), (3.0, 0.5): torch.tensor([0.0, 0.1, 0.5])}
    fig = plotting.frequency_response_figure(frequencies, responses)
    ax = fig.axes[0]
    curves = [line for line in ax.lines if line.get_label().startswith("ω")]
    assert [line.get_label() for line in curves] == ["ω = 2, b' = 1", "ω = 3, b' = 0.5"]
    np.testing.assert_allclose(curves[0].get_ydata(), [0.1, 0.9, 0.2])
    markers = [line for line in ax.lines if line not in curves]
    assert [line.get_xdata()[0] for line in markers] == [2.0, 3.0]
    assert [line.get_color() for line in markers] == [line.get_color() for line in curves]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("input frequency (rad/s)", "mean |u|")


def test_spike_train_spacing_amplitude_and_count():
    x = resonance.spike_train(2 * torch.pi / 0.05, steps=30, dt=0.01, kick=0.5, count=3)  # period: 5 steps
    assert torch.nonzero(x).squeeze(1).tolist() == [0, 5, 10]
    assert x.max().item() == pytest.approx(50.0)
    with pytest.raises(ValueError, match="frequency"):
        resonance.spike_train(0.0, steps=10)


def test_periodic_spike_trains_one_spike_per_cycle():
    x = resonance.periodic_spike_trains(torch.tensor([2 * torch.pi, 4 * torch.pi]), steps=100, dt=0.01, kick=0.05)
    assert x.shape == (100, 2)
    assert (x > 0).sum(0).tolist() == [1, 2]  # 1 s: one and two cycles, step 0 counted once
    assert x.max().item() == pytest.approx(5.0)


def test_resonance_demo_fires_in_phase_and_stays_silent_off_resonance():
    t, runs = resonance.resonance_demo(omega=10.0, b_offset=1.0, kick=0.5, n_input_spikes=4, detuning=1.6)
    in_phase, off = runs.values()
    assert list(runs) == ["in phase (ω)", "off resonance (1.6 ω)"]
    assert len(t) == in_phase["u"].shape[0] == round(5.5 * 2 * torch.pi / 10.0 / 0.01)
    assert (in_phase["x"] > 0).sum() == (off["x"] > 0).sum() == 4
    assert in_phase["z"].sum() > 0 and off["z"].sum() == 0


def test_frequency_response_peaks_at_each_neurons_eigenfrequency():
    frequencies = torch.linspace(1.0, 40.0, 40)
    responses = resonance.frequency_response(frequencies, [[10.0, 1.0], [25.0, 1.0]], duration_s=3.0, dt=0.001)
    assert list(responses) == [(10.0, 1.0), (25.0, 1.0)]
    peaks = resonance.response_peaks(frequencies, responses, duration_s=3.0, dt=0.001)
    assert list(peaks.columns) == ["ω", "b'", "peak response at (rad/s)",
                                   "at ω/2 (of the peak)", "at ω/3 (of the peak)"]
    assert peaks["peak response at (rad/s)"].tolist() == [10.0, 25.0]
    # a sub-harmonic drives the resonator once every k cycles: a clear but smaller response, above the valley
    # between it and the peak (for omega = 10: 5 rad/s against 7 rad/s)
    half, third = peaks["at ω/2 (of the peak)"], peaks["at ω/3 (of the peak)"]
    assert ((half > 0.3) & (half < 0.8)).all() and ((third > 0.15) & (third < half)).all()
    response = responses[(10.0, 1.0)]
    assert response[4] > response[6]
    # simulated at exactly omega/3 = 3.33 rad/s, not read at the grid's 3 rad/s
    exact = resonance.frequency_response(torch.tensor([10.0 / 3]), [(10.0, 1.0)], 3.0, 0.001)[(10.0, 1.0)]
    assert third.iloc[0] == pytest.approx(float(exact[0] / response.max()))
    with pytest.raises(ValueError, match="response_pairs item"):
        resonance.check_response_pairs([[2000.0, 1.0]], dt=0.001)
    with pytest.raises(ValueError, match="response_pairs item"):
        resonance.check_response_pairs([[10.0]], dt=0.001)


def test_convergence_figure_draws_logs_and_runs_per_task():
    import pandas as pd

    from reprolib import plotting

    epochs = list(range(0, 401, 50))
    logs = pd.DataFrame({"task": "ECG", "model": "BRF", "epoch": epochs, "test_accuracy": [20 + e / 10 for e in epochs]})
    ours = pd.DataFrame({"neuron": "brf", "epoch": epochs * 2, "seed": [0] * 9 + [1] * 9,
                         "test_accuracy": [25 + e / 10 for e in epochs] * 2})
    fig = plotting.convergence_figure({"ECG": ours, "SHD": pd.DataFrame()}, logs, ["ECG", "SHD", "S-MNIST"], ["brf"],
                                      "prov", "src")
    ecg, shd, smnist, hidden = fig.axes[:4]
    assert ecg.get_title() == "ECG" and ecg.get_xscale() == "symlog"  # 400 epochs: log beyond 10
    assert ecg.get_xlim()[0] == 0  # no negative epochs on the axis
    assert any(list(line.get_ydata()) == [20 + e / 10 for e in epochs] for line in ecg.lines)  # the logs' mean
    assert any("not run yet" in t.get_text() for t in shd.texts) and not hidden.get_visible()
    assert [t.get_text() for t in fig.legends[0].get_texts()][:1] == ["BRF"]


def test_figure_helpers_name_a_bad_argument():
    import numpy as np
    import pandas as pd

    from reprolib import plotting

    fig, axes = plotting.figure(1, 1)
    with pytest.raises(ValueError, match=r"curves: columns \['model'\] are not in the frame"):
        plotting.curves(axes[0, 0], pd.DataFrame({"epoch": [1], "acc": [0.5]}), "acc", hue="model")
    with pytest.raises(ValueError, match="shift_probe_figure: columns .* are not in the frame"):
        plotting.shift_probe_figure(pd.DataFrame(), hue=["model"], label=str)
    with pytest.raises(ValueError, match="row=2.5 must be an integer"):
        plotting.pixel_sequence_figure(np.zeros((28, 28)), 0, 0, np.arange(784), 2.5)
    with pytest.raises(ValueError, match="bin_ms=0 must be a positive number"):
        plotting.shd_figure(np.zeros((10, 4)), 0, 0, bin_ms=0)


def test_charge_fire_reset_figure_has_one_panel_per_neuron_and_reset_with_its_spikes():
    from reprolib.neurons import IFParameters, simulate_integrate_fire

    x = torch.full((8,), 0.3)
    traces = {("IF", reset): simulate_integrate_fire(x, IFParameters(v_reset=v_reset))
              for reset, v_reset in (("hard", 0.0), ("soft", None))}
    fig = plotting.charge_fire_reset_figure(traces)
    assert [ax.get_title() for ax in fig.axes] == ["IF, hard", "IF, soft"]
    ticks = fig.axes[0].collections[0]  # the spike ticks: one segment per spike
    assert len(ticks.get_segments()) == int(traces[("IF", "hard")]["s"].sum()) == 2
    plt.close(fig)
