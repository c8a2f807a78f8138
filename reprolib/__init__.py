"""reprolib: reproducible spiking-neural-network research.

Sub-packages (imported lazily so that ``import reprolib`` stays cheap and never needs CuPy):

* :mod:`reprolib.surrogate`, :mod:`reprolib.neurons`, :mod:`reprolib.layers`, :mod:`reprolib.functional`
  -- the SpikingJelly-style neuron core (single- and multi-step);
* :mod:`reprolib.models` -- networks of the five sources (SRC, BRF/RF/ALIF, BPSA, SpikingJelly tutorials);
* :mod:`reprolib.data`, :mod:`reprolib.encoding` -- offline, checksummed datasets and spike encoders;
* :mod:`reprolib.config`, :mod:`reprolib.training`, :mod:`reprolib.results`, :mod:`reprolib.sweep`
  -- one training loop, run records with provenance, sweeps on Dask;
* :mod:`reprolib.kernels` -- optional CuPy fused kernels behind the same neuron API.
* :mod:`reprolib.paths` -- where data, caches and records live; :mod:`reprolib.checks` -- the shared "finite number" test.
"""

from importlib import import_module as _import_module

__version__ = "0.1.0"

_SUBMODULES = {
    "surrogate", "neurons", "layers", "functional", "models", "data", "encoding", "config",
    "training", "results", "sweep", "experiments", "metrics", "kernels", "paths", "reference", "checks",
}


def __getattr__(name):
    if name in _SUBMODULES:
        return _import_module(f"reprolib.{name}")
    raise AttributeError(f"module 'reprolib' has no attribute {name!r}")
