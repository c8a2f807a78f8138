"""Helpers every book notebook uses, one concept per module; import them from here (``from reprolib import notebook
as nb``).

A notebook of the book states its parameters (papermill ``parameters`` cell), calls :func:`check_parameters` first
(so a bad value fails before anything long starts), asks the library for run records, and shows them:

* :mod:`~reprolib.notebook.parameters`: :func:`check_parameters` and the ``check_*`` helpers for a page's knobs;
* :mod:`~reprolib.notebook.run_provenance`: :func:`provenance` / :func:`provenance_line`, the scale, seeds, code
  version, device and date of the records behind a figure or table;
* :mod:`~reprolib.notebook.tables`: :func:`paper_vs_ours`, a table with the source's number, ours and the
  difference, where a missing number reads "not available" (the source gives none) or "not run yet at this
  scale" (no record); :func:`paper_vs_summary` makes it from one metric of a run summary;
* :mod:`~reprolib.notebook.notes`: :func:`sweep_command` / :func:`missing_runs_note`, the exact ``reprolib sweep``
  command that completes a page, and :func:`dataset_note` for a data set that is missing or only a subset;
* :mod:`~reprolib.notebook.runs`: :func:`gather_runs`, the records of one page as :class:`Runs`;
* :mod:`~reprolib.notebook.findings`: what the records say where a number misses the paper's;
* :mod:`~reprolib.notebook.probes`: the committed probe files of trained runs (their kept weights), joined with a
  page's runs;
* :mod:`~reprolib.notebook.nmnist_shift`: the N-MNIST subset's train-vs-test position offset;
* :mod:`~reprolib.notebook.spikingjelly`: the SpikingJelly tutorials' published numbers beside ours;
* :mod:`~reprolib.notebook.src`: the SRC paper's Table 2 beside ours;
* :mod:`~reprolib.notebook.brf`: the BRF pages, one experiment per task (:data:`BRF_TASKS`);
* :mod:`~reprolib.notebook.status`: the whole book's reproduction status, spot check and whole re-runs;
* :mod:`~reprolib.notebook.benchmarks`: the kernel-benchmark records of ``reprolib bench``.
"""

from __future__ import annotations

from reprolib.notebook.parameters import (SCALES, Parameters, resolve_device, check_choice, check_subset,
                                          check_positive, check_nonnegative, check_number, check_integer, check_list,
                                          read_json, check_parameters, preset_seeds)
from reprolib.notebook.run_provenance import (record_info, provenance, provenance_line, code_version,
                                              format_code_version,
                                              simulation_provenance, device_text, record_rows, earlier_sessions,
                                              session_cpus)
from reprolib.notebook.tables import (NOT_AVAILABLE, NOT_RUN, NO_VALUE, paper_vs_ours, paper_vs_summary, ours_table,
                                      mean_std, to_percent, is_missing, value_range, format_number, for_display)
from reprolib.notebook.notes import (sweep_command, missing_runs_note, dataset_note, dataset_status, show_markdown,
                                     settings_dropdown, show_tables)
from reprolib.notebook.runs import Runs, root_preset, axis_labels, axis_choices, gather_runs
from reprolib.notebook.findings import (convergence_epochs, frozen_since, still_improving, unstable_drops,
                                        accuracy_findings, table_findings, paired_gap, compare_variants)
from reprolib.notebook.probes import committed_probe, probe_line
from reprolib.notebook.nmnist_shift import split_gap, show_nmnist_offsets, shift_probe, shift_probe_summary
from reprolib.notebook.brf import (BRF_TASKS, brf_neurons, brf_runs, sop_ratio, task_status_table, show_task_notes,
                                   tasks_provenance, BRF_TABLE1_COLUMNS, BRF_TABLE1_KEYS, brf_table1_summary,
                                   brf_table1_parts, sop_findings, brf_accuracy_table, ALIF_BIAS_VARIANTS,
                                   alif_bias_comparison,
                                   brf_per_run_table, brf_table1_other_models, CONVERGENCE_FRACTIONS, convergence_table,
                                   brf_table2_other_models, resonator_probe, resonator_runs_table,
                                   resonator_paper_marks, show_resonator_probe, resonator_summary, NON_OSCILLATING)
from reprolib.notebook.src import (SRC_TABLE2_COLUMNS, src_minus_lif, activity_order, activity_order_findings,
                                   initial_activity,
                                   initial_activity_findings, layers_label, network_label, src_table2_number,
                                   src_table2_summary, AT_BOUND, BOUND_TOLERANCE, POSITIVE_BIAS, SILENT, FIRING,
                                   RECORDED, learned_parameters, learned_parameter_findings, leak_clamp_note,
                                   FIXED_LIF_NETWORKS, CHANGE_FROM_LEARNED, fixed_lif_activity, fixed_lif_findings,
                                   LIF_RESETS, SUBTRACT_MINUS_ZERO, lif_reset_table, lif_reset_findings,
                                   lif_reset_activity_findings)
from reprolib.notebook.spikingjelly import SJ_RECURRENT_METRICS, sj_clock_table, sj_recurrent_table
from reprolib.notebook.status import reproduction_status, spot_check_record, show_spot_check, show_published_reruns
from reprolib.notebook.benchmarks import (BENCH_COLUMNS, ITERATION_COLUMNS, NETWORK_COLUMNS, bench_code_version,
                                          bench_heading, bench_records, no_bench_note, no_gpu_bench_note,
                                          show_bench_record)

# what ``from reprolib.notebook import *`` gives: the helpers above, in the order of the modules
__all__ = ["SCALES", "Parameters", "resolve_device", "check_choice", "check_subset", "check_positive",
           "check_nonnegative", "check_number", "check_integer", "check_list", "read_json", "check_parameters",
           "preset_seeds", "record_info", "provenance", "provenance_line", "code_version", "format_code_version",
           "simulation_provenance", "device_text", "record_rows", "earlier_sessions", "session_cpus", "NOT_AVAILABLE",
           "NOT_RUN", "NO_VALUE", "paper_vs_ours", "paper_vs_summary", "ours_table", "mean_std", "to_percent",
           "is_missing", "value_range", "format_number", "for_display", "sweep_command", "missing_runs_note",
           "dataset_note", "dataset_status", "show_markdown", "settings_dropdown", "show_tables", "Runs", "root_preset",
           "axis_labels", "axis_choices", "gather_runs", "convergence_epochs", "frozen_since", "still_improving",
           "unstable_drops", "accuracy_findings", "table_findings", "paired_gap", "compare_variants",
           "committed_probe", "probe_line",
           "split_gap", "show_nmnist_offsets",
           "shift_probe", "shift_probe_summary", "BRF_TASKS", "brf_neurons", "brf_runs", "sop_ratio",
           "task_status_table", "show_task_notes", "tasks_provenance", "BRF_TABLE1_COLUMNS", "BRF_TABLE1_KEYS",
           "brf_table1_summary", "brf_table1_parts", "sop_findings", "brf_accuracy_table", "ALIF_BIAS_VARIANTS",
           "alif_bias_comparison",
           "brf_per_run_table", "brf_table1_other_models", "CONVERGENCE_FRACTIONS", "convergence_table",
           "brf_table2_other_models", "resonator_probe", "resonator_runs_table", "resonator_paper_marks",
           "show_resonator_probe", "resonator_summary", "NON_OSCILLATING",
           "SRC_TABLE2_COLUMNS", "src_minus_lif", "activity_order", "activity_order_findings", "initial_activity",
           "initial_activity_findings", "layers_label", "network_label", "src_table2_number",
           "src_table2_summary", "AT_BOUND", "BOUND_TOLERANCE", "POSITIVE_BIAS", "SILENT", "FIRING", "RECORDED",
           "learned_parameters", "learned_parameter_findings", "leak_clamp_note", "FIXED_LIF_NETWORKS",
           "CHANGE_FROM_LEARNED",
           "fixed_lif_activity", "fixed_lif_findings", "LIF_RESETS", "SUBTRACT_MINUS_ZERO", "lif_reset_table",
           "lif_reset_findings", "lif_reset_activity_findings",
           "SJ_RECURRENT_METRICS", "sj_clock_table", "sj_recurrent_table", "reproduction_status", "spot_check_record",
           "show_spot_check", "show_published_reruns", "BENCH_COLUMNS", "ITERATION_COLUMNS", "NETWORK_COLUMNS",
           "bench_code_version", "bench_heading", "bench_records", "no_bench_note", "no_gpu_bench_note",
           "show_bench_record"]
