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
    simulate_integrate_fire,
)
from reprolib.neurons.src import (
    SpikingRecurrentCell,
    SRCParameters,
    SRCState,
    simulate_src_neuron,
    src_initial_state,
    src_multistep,
    src_step,
)
from reprolib.neurons.leaky import Leaky, LeakyParameters, LeakyState, leaky_multistep, leaky_step
from reprolib.neurons.resonate import (
    ALIFCell,
    ALIFParameters,
    ALIFState,
    BRFCell,
    LICell,
    LIParameters,
    LIState,
    RFCell,
    RFParameters,
    RFState,
    alif_multistep,
    alif_step,
    brf_multistep,
    brf_step,
    divergence_boundary,
    frequency_and_damping,
    li_multistep,
    li_step,
    rf_multistep,
    rf_step,
    simulate_resonator,
)
from reprolib.neurons.bpsa import BPSANode, BPSAParameters, BPSAState, bpsa_multistep, bpsa_step
