"""Optional fused CUDA kernels (compiled at run time with CuPy) behind the pure neuron functions.

Importing this package never imports CuPy; CuPy is imported the first time a CUDA tensor asks for it.

* :func:`resolve_backend` (``"auto" | "torch" | "cupy"``), :func:`cupy_available`, :class:`BackendUnavailable`,
  :class:`KernelUnsupported` -- see :mod:`reprolib.kernels.dispatch`;
* IF / LIF scans with the signature of :func:`reprolib.neurons.lif_multistep` -- :mod:`reprolib.kernels.lif`;
* the SRC recurrence with the signature of :func:`reprolib.neurons.src.src_multistep` -- :mod:`reprolib.kernels.src`;
* RF / BRF / ALIF recurrent layers (one fused kernel per step, the recurrent matmul in cuBLAS) with the
  signatures of :mod:`reprolib.neurons.resonate`, and their feed-forward scans -- :mod:`reprolib.kernels.resonate`;
* the LI readout scan of the BRF networks -- :mod:`reprolib.kernels.leaky_integrator`;
* ``backend="cpp"`` for CPU tensors: whole-sequence C++ loops of the RF / BRF / ALIF recurrent layers (for the
  small recurrent networks where per-step framework overhead dominates) -- :mod:`reprolib.kernels.cpu` --,
  time-outer vectorised scans of IF / LIF and SRC that call the CUDA kernels' step functions, and the LI scan
  compiled as C++;
* sparse input matmuls for event data on the CPU (part of ``backend="cpp"`` of the SRC paper's networks) --
  :mod:`reprolib.kernels.sparse`; the snnTorch-style Leaky neuron as a C++ scan -- :mod:`reprolib.kernels.leaky`;
* ``reprolib bench`` -- :mod:`reprolib.kernels.bench`.

Importing the package registers ``"cupy"``, ``"auto"`` and ``"cpp"`` in ``IFNode.multistep_backends`` and
``LIFNode.multistep_backends`` (the neuron core imports it lazily when such a backend is asked for).
"""

from __future__ import annotations

from reprolib.kernels import cpu, leaky, leaky_integrator, lif, resonate, sparse, src
from reprolib.kernels.dispatch import (
    BACKENDS,
    BackendUnavailable,
    KernelUnsupported,
    cupy_available,
    resolve_backend,
    to_cupy,
)
from reprolib.kernels.leaky_integrator import li_multistep, li_multistep_auto, li_multistep_cpp
from reprolib.kernels.lif import if_multistep, if_multistep_auto, lif_multistep, lif_multistep_auto
from reprolib.kernels.resonate import (
    alif_multistep,
    alif_multistep_auto,
    alif_multistep_cpp,
    alif_scan,
    brf_multistep,
    brf_multistep_auto,
    brf_multistep_cpp,
    brf_scan,
    rf_multistep,
    rf_multistep_auto,
    rf_multistep_cpp,
    rf_scan,
)
from reprolib.kernels.src import src_multistep, src_multistep_auto, src_multistep_cpp

__all__ = [
    "BACKENDS", "BackendUnavailable", "KernelUnsupported", "cupy_available", "resolve_backend", "to_cupy",
    "if_multistep", "lif_multistep", "if_multistep_auto", "lif_multistep_auto", "src_multistep",
    "src_multistep_auto", "src_multistep_cpp", "brf_multistep", "rf_multistep", "alif_multistep", "brf_multistep_auto",
    "rf_multistep_auto", "alif_multistep_auto", "brf_multistep_cpp", "rf_multistep_cpp", "alif_multistep_cpp",
    "li_multistep", "li_multistep_auto", "li_multistep_cpp", "leaky_integrator", "cpu", "brf_scan", "rf_scan", "alif_scan", "register_backends",
    "lif", "src", "resonate", "sparse", "leaky",
]


def register_backends() -> None:
    """Put the fused implementations into the neuron modules' backend tables (idempotent).

    * ``IFNode.multistep_backends`` / ``LIFNode.multistep_backends``: ``"cupy"`` and ``"auto"``;
    * ``reprolib.neurons.src.MULTISTEP_BACKENDS`` and the ``multistep_backends`` dict that ``RFCell``, ``BRFCell``,
      ``ALIFCell`` define in their own class body (these also get ``"cpp"``), where those tables exist (a subclass that inherits its
      parent's table is left alone, so an RF kernel never lands in the BRF table);
    * ``Leaky.multistep_backends`` and ``LICell.multistep_backends``: ``"cupy"``, ``"auto"`` and ``"cpp"``.
    """
    from importlib import import_module  # noqa: PLC0415

    integrate_fire = import_module("reprolib.neurons.integrate_fire")
    for node, fused, auto in (
        (integrate_fire.IFNode, if_multistep, if_multistep_auto),
        (integrate_fire.LIFNode, lif_multistep, lif_multistep_auto),
    ):
        node.multistep_backends["cupy"] = fused
        node.multistep_backends["auto"] = auto
        node.multistep_backends["cpp"] = cpu.cpp_backend(fused, f"{fused.__name__}_cpp")
    src_module = import_module("reprolib.neurons.src")
    table = getattr(src_module, "MULTISTEP_BACKENDS", None)
    if isinstance(table, dict):
        table["cupy"] = src_multistep
        table["auto"] = src_multistep_auto
        table["cpp"] = src_multistep_cpp
    resonate_module = import_module("reprolib.neurons.resonate")
    for name, fused, auto, cpp in (
        ("RFCell", rf_multistep, rf_multistep_auto, rf_multistep_cpp),
        ("BRFCell", brf_multistep, brf_multistep_auto, brf_multistep_cpp),
        ("ALIFCell", alif_multistep, alif_multistep_auto, alif_multistep_cpp),
    ):
        cls = getattr(resonate_module, name, None)
        table = vars(cls).get("multistep_backends") if cls is not None else None
        if isinstance(table, dict):
            table["cupy"] = fused
            table["auto"] = auto
            table["cpp"] = cpp
    leaky_node = getattr(import_module("reprolib.neurons.leaky"), "Leaky", None)
    table = vars(leaky_node).get("multistep_backends") if leaky_node is not None else None
    if isinstance(table, dict):
        table["cupy"] = leaky.leaky_multistep_cuda
        table["auto"] = leaky.leaky_multistep_auto
        table["cpp"] = leaky.leaky_multistep_cpp
    li_cell = getattr(resonate_module, "LICell", None)
    table = vars(li_cell).get("multistep_backends") if li_cell is not None else None
    if isinstance(table, dict):
        table["cupy"] = li_multistep
        table["auto"] = li_multistep_auto
        table["cpp"] = li_multistep_cpp


register_backends()
