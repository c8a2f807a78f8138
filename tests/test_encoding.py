"""Spike encoders: shapes, statistics, determinism, and side by side with snnTorch's spikegen."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import pytest
import torch

from reprolib.encoding import ENCODERS, get_encoder, pixel_permutation

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from snntorch import spikegen


def image_batch(batch: int = 4, seed: int = 0) -> torch.Tensor:
    """MNIST-like batch: many exact zeros (background), some exact ones, the rest in between."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 28, 28, generator=g)
    x[x < 0.4] = 0.0
    x[x > 0.95] = 1.0
    return x


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ----------------------------------------------------------------------------------------- rate / poisson


def test_rate_is_identical_to_snntorch_for_the_same_seed():
    x = image_batch()
    torch.manual_seed(123)
    expected = spikegen.rate(x, num_steps=30, gain=0.25)
    got = get_encoder("rate", num_steps=30, gain=0.25, flatten=False)(x, torch.Generator().manual_seed(123))
    assert got.shape == (30, 4, 1, 28, 28)
    assert torch.equal(got, expected)


def test_rate_with_offset_and_first_spike_time_matches_snntorch():
    x = image_batch(seed=1)
    torch.manual_seed(5)
    expected = spikegen.rate(x, num_steps=20, gain=0.5, offset=0.1, first_spike_time=3)
    got = get_encoder("rate", num_steps=20, gain=0.5, offset=0.1, first_spike_time=3, flatten=False)(
        x, torch.Generator().manual_seed(5)
    )
    assert torch.equal(got, expected)
    assert got[:3].sum() == 0


@pytest.mark.parametrize("shape", [(5, 7), (3, 1, 6, 4), (2, 3, 4, 5, 2), (28, 28, 1, 64)])  # the last: the C++ draws
def test_rate_draws_as_the_repeated_probabilities_do_for_any_layout(shape):
    # The encoder broadcasts the per-pixel probabilities over time instead of repeating the batch T times
    # (snnTorch's formulation, written out here): same spikes, also for a non-contiguous (transposed) batch.
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(2)).transpose(0, -1)
    assert not x.is_contiguous()
    probabilities = torch.clamp(x.repeat(9, *([1] * x.dim())) * 0.3 + 0.05, 0, 1)
    expected = torch.bernoulli(probabilities, generator=torch.Generator().manual_seed(8))
    got = get_encoder("rate", num_steps=9, gain=0.3, offset=0.05, flatten=False)(x, torch.Generator().manual_seed(8))
    assert torch.equal(got, expected) and got.is_contiguous()


@pytest.mark.parametrize("device", DEVICES)
def test_rate_mean_is_gain_times_pixel(device):
    pixels = torch.tensor([0.0, 0.2, 0.5, 1.0], device=device).repeat(2000, 1)  # [B=2000, 4]
    spikes = get_encoder("rate", num_steps=50, gain=0.25)(pixels, torch.Generator(device=device).manual_seed(0))
    assert spikes.device.type == device and spikes.shape == (50, 2000, 4)
    rate = spikes.mean(dim=(0, 1)).cpu()
    # 100,000 Bernoulli draws per pixel: std <= 0.0014, tolerance ~ 5 sigma
    assert torch.allclose(rate, 0.25 * torch.tensor([0.0, 0.2, 0.5, 1.0]), atol=0.007)
    assert rate[0] == 0  # black pixels never spike


def test_poisson_is_spikingjelly_s_comparison_for_the_same_seed():
    # SpikingJelly's PoissonEncoder: torch.rand_like(x).le(x). A batch large enough for the C++ draws.
    x = image_batch(batch=64)
    expected = (torch.rand((20, 64, 1, 28, 28), generator=torch.Generator().manual_seed(4)) <= x).float()
    got = get_encoder("poisson", num_steps=20, flatten=False)(x, torch.Generator().manual_seed(4))
    assert torch.equal(got, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_poisson_rate_equals_pixel_and_is_seeded(device):
    pixels = torch.tensor([0.0, 0.3, 0.7, 1.0], device=device).repeat(1000, 1)
    encode = get_encoder("poisson", num_steps=100)
    first = encode(pixels, torch.Generator(device=device).manual_seed(7))
    again = encode(pixels, torch.Generator(device=device).manual_seed(7))
    other = encode(pixels, torch.Generator(device=device).manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    rate = first.mean(dim=(0, 1)).cpu()
    assert torch.allclose(rate, torch.tensor([0.0, 0.3, 0.7, 1.0]), atol=0.01)
    assert rate[-1] == 1.0  # u <= p with u in [0, 1): a white pixel spikes at every step


# ---------------------------------------------------------------------------------------------- latency


@pytest.mark.parametrize(
    "options",
    [
        dict(num_steps=200, tau=10, threshold=0.01, linear=True, normalize=True, clip=True),  # SRC
        dict(num_steps=50, tau=20, threshold=0.05, linear=True),
        dict(num_steps=100, tau=5, threshold=0.01, normalize=True, clip=True),  # log code
        dict(num_steps=100, tau=5, threshold=0.05),
        dict(num_steps=60, tau=30, linear=True, normalize=True, first_spike_time=5),
    ],
)
def test_latency_is_identical_to_snntorch(options):
    x = image_batch(batch=6, seed=2)
    expected = spikegen.latency(x, **options)
    got = get_encoder("latency", flatten=False, **options)(x)
    assert torch.equal(got, expected)


def test_latency_src_preset_is_the_papers_snntorch_call():
    x = image_batch(batch=3, seed=3)
    expected = spikegen.latency(x, num_steps=200, tau=10, threshold=0.01, linear=True, normalize=True, clip=True)
    got = get_encoder("latency_src")(x)
    assert got.shape == (200, 3, 784)
    assert torch.equal(got, expected.flatten(2))


def test_latency_src_spike_times_follow_the_normalised_linear_formula():
    # normalize=True replaces tau=10 by num_steps - 1 = 199: t = round(199 (1 - p)), half to even.
    pixels = torch.tensor([[1.0, 0.5, 0.25, 0.01, 0.0099, 0.0]])
    spikes = get_encoder("latency_src")(pixels)
    assert spikes.sum(0).tolist() == [[1, 1, 1, 1, 0, 0]]  # clip: below threshold 0.01 -> silent
    times = spikes.argmax(0)[0, :4].tolist()
    assert times == [0, 100, 149, 197]  # 99.5 -> 100; 149.25 -> 149; 197.01 -> 197


@pytest.mark.parametrize("device", DEVICES)
def test_latency_one_spike_at_most_and_brighter_fires_no_later(device):
    x = image_batch(batch=8, seed=4).to(device)
    spikes = get_encoder("latency_src")(x)
    assert spikes.device.type == device
    counts = spikes.sum(0)
    assert counts.max() <= 1
    flat = x.flatten(1)
    assert torch.equal(counts > 0, flat >= 0.01)  # every pixel above threshold spikes exactly once
    times = torch.where(counts > 0, spikes.argmax(0), torch.full_like(counts, 10_000, dtype=torch.long)).float()
    order = flat.argsort(dim=1, descending=True)
    sorted_times = times.gather(1, order)
    sorted_pixels = flat.gather(1, order)
    fired = sorted_pixels >= 0.01
    for row_times, row_fired in zip(sorted_times, fired):
        t = row_times[row_fired]
        assert torch.all(t[1:] >= t[:-1])  # decreasing brightness -> non-decreasing time


def test_clip_removes_the_cap_spikes_of_dark_pixels():
    x = image_batch(batch=4, seed=5)
    unclipped = get_encoder("latency_src", clip=False)(x)
    clipped = get_encoder("latency_src")(x)
    dark = x.flatten(1) < 0.01
    cap_step = round(199 * 0.99)  # 197.01 -> 197: where all dark pixels would otherwise fire
    assert dark.any()
    assert torch.all(unclipped[cap_step][dark] == 1)
    assert clipped[:, dark].sum() == 0
    assert torch.equal(clipped[:, ~dark], unclipped[:, ~dark])


def test_latency_rejects_inputs_outside_unit_interval_and_out_of_range_times():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        get_encoder("latency_src")(torch.tensor([[-0.5, 0.2]]))
    with pytest.raises(ValueError, match="exceeds num_steps"):
        get_encoder("latency", num_steps=10, tau=50, linear=True)(torch.tensor([[0.0, 0.5]]))


# ------------------------------------------------------------------------------------- deterministic codes


def test_direct_repeats_input():
    x = image_batch(batch=2)
    out = get_encoder("direct", num_steps=5)(x)
    assert out.shape == (5, 2, 784)
    assert all(torch.equal(out[t], x.flatten(1)) for t in range(5))
    assert get_encoder("direct", num_steps=5, flatten=False)(x).shape == (5, 2, 1, 28, 28)


def test_columns_feeds_column_t_at_step_t():
    x = image_batch(batch=3)
    out = get_encoder("columns")(x)
    assert out.shape == (28, 3, 28)
    assert torch.equal(out[7, 2], x[2, 0, :, 7])  # step 7 = column 7, top to bottom
    assert torch.equal(out, x.squeeze(1).permute(2, 0, 1))  # SpikingJelly's x.squeeze(1).permute(2, 0, 1)


def test_pixels_row_major_and_fixed_permutation():
    x = image_batch(batch=2)
    out = get_encoder("pixels")(x)
    assert out.shape == (784, 2, 1)
    assert out[28 * 3 + 5, 1, 0] == x[1, 0, 3, 5]  # row 3, column 5
    permuted = get_encoder("pixels", permutation_seed=0)(x)
    order = pixel_permutation(784, 0)
    assert sorted(order.tolist()) == list(range(784))
    assert torch.equal(permuted[:, :, 0], out[order, :, 0])
    # Fixed forever for this torch version family: changing it silently would change PS-MNIST itself.
    assert order[:8].tolist() == [60, 361, 167, 578, 107, 772, 313, 626]
    assert not torch.equal(order, pixel_permutation(784, 1))


def test_permutation_is_identical_in_another_process():
    code = "from reprolib.encoding import pixel_permutation; print(pixel_permutation(784, 3).tolist())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == str(pixel_permutation(784, 3).tolist())


def test_sequence_is_time_major():
    x = torch.arange(2 * 5 * 3 * 4, dtype=torch.float32).reshape(2, 5, 3, 4)  # [B, T, ...]
    out = get_encoder("sequence")(x)
    assert out.shape == (5, 2, 12)
    assert torch.equal(out[4, 1], x[1, 4].flatten())
    assert get_encoder("sequence", flatten=False)(x).shape == (5, 2, 3, 4)


# ------------------------------------------------------------------------------------------- bad input


def test_bad_names_and_options_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown encoder 'poison'"):
        get_encoder("poison", num_steps=3)
    with pytest.raises(ValueError, match="num_steps=0"):
        get_encoder("rate", num_steps=0)
    with pytest.raises(ValueError, match="Bad options"):
        get_encoder("columns", num_steps=28)
    with pytest.raises(ValueError, match="threshold"):
        get_encoder("latency", num_steps=10, threshold=1.5)
    with pytest.raises(ValueError, match=r"one channel"):
        get_encoder("columns")(torch.zeros(2, 3, 28, 28))
    assert set(ENCODERS) == {"poisson", "rate", "latency", "direct", "columns", "pixels", "sequence"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generator_on_the_wrong_device_is_rejected():
    with pytest.raises(ValueError, match="generator is on cpu"):
        get_encoder("poisson", num_steps=2)(torch.rand(2, 3, device="cuda"), torch.Generator())


def test_without_generator_the_global_rng_is_used():
    x = torch.full((3, 10), 0.5)
    encode = get_encoder("rate", num_steps=8)
    torch.manual_seed(11)
    first = encode(x)
    torch.manual_seed(11)
    assert torch.equal(encode(x), first)


@pytest.mark.parametrize("name, options, message", [
    ("rate", {"gain": float("nan")}, "gain=nan must be a finite number"),
    ("rate", {"gain": "abc"}, "gain='abc' must be a finite number"),
    ("rate", {"offset": float("inf")}, "offset=inf must be a finite number"),
    ("rate", {"first_spike_time": True}, "first_spike_time=True must be an integer"),
    ("latency", {"tau": float("inf")}, "tau=inf must be a finite number"),
    ("latency", {"epsilon": -1.0}, "epsilon=-1.0 must be > 0"),
    ("latency", {"normalize": "yes"}, "normalize='yes' must be True or False"),
    ("poisson", {"flatten": "no"}, "flatten='no' must be True or False"),
])
def test_encoder_options_are_checked_by_name(name, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        get_encoder(name, num_steps=4, **options)


@pytest.mark.parametrize("name", ["rate", "poisson", "latency"])
def test_a_nan_input_is_refused_not_encoded(name):
    x = torch.full((2, 3), 0.5)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match=f"{name}: the batch holds NaN values"):
        get_encoder(name, num_steps=4)(x, torch.Generator().manual_seed(0))
