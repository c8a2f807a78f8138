"""Networks of the five sources, built by name.

``build_model(name, **options)`` imports the builder lazily. Every model follows one contract so that
the single training loop can drive all of them:

* input: a time-major tensor ``[T, B, F]`` (already encoded);
* output: a time-major tensor ``[T, B, C]`` (output spikes, readout integrator or LI membranes);
  the loss named in the experiment config reduces it over time;
* after each forward the model exposes ``model.last_activity`` (mean fraction of spiking time steps
  of the hidden neurons, a 0-dim tensor) and ``model.last_spike_count`` (total hidden spikes of the
  batch, a 0-dim tensor), or leaves them ``None`` where they do not apply.
"""

from __future__ import annotations

from importlib import import_module

# name -> "module:function"
MODEL_BUILDERS = {
    # SpikingJelly tutorials
    "sj-lif-mlp": "reprolib.models.spikingjelly:build_lif_mlp",             # clock-driven 2-layer LIF MNIST
    "sj-plain": "reprolib.models.spikingjelly:build_plain",                 # sequential F-MNIST ablation
    "sj-feedback": "reprolib.models.spikingjelly:build_feedback",
    "sj-stateful-synapse": "reprolib.models.spikingjelly:build_stateful_synapse",
    # SRC paper
    "src-net": "reprolib.models.src:build_src_network",
    "src-lif-net": "reprolib.models.src:build_lif_network",
    # BRF paper (neuron = "brf" | "rf" | "alif")
    "rsnn": "reprolib.models.resonate:build_rsnn",
    # BPSA
    "bpsa-net": "reprolib.models.bpsa:build_bpsa_network",
}


def get_builder(name: str):
    """The builder function registered as ``name``."""
    try:
        target = MODEL_BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODEL_BUILDERS)}") from None
    module_name, func_name = target.split(":")
    return getattr(import_module(module_name), func_name)


def build_model(name: str, **options):
    """Build the model registered as ``name`` with its options (see each builder's docstring)."""
    return get_builder(name)(**options)
