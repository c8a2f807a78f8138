"""Spiking neurons: pure step functions over explicit state, wrapped by thin single-/multi-step modules.

One flat list of re-exports per neuron module (append new ones below).
"""

from reprolib.neurons.base import (
    STEP_MODES,
    BaseNode,
    MembraneState,
    MemoryModule,
    check_sequence,
    check_step_mode,
    fire,
    reset_membrane,
    resolve_surrogate,
)
from reprolib.neurons.integrate_fire import (
    IFNode,
    IFParameters,
    IFState,
    LIFNode,
    LIFParameters,
    LIFState,
    MultiStepIFNode,
    MultiStepLIFNode,
    if_charge,
    if_multistep,
    if_step,
    lif_charge,
    lif_multistep,
    lif_step,
)
