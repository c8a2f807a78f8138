"""The ``reprolib`` command line.

Each sub-command lives next to the code it drives; a module named here provides
``configure(parser)`` (adds its arguments) and ``main(args) -> int``. Modules are imported only when
their sub-command runs, so ``reprolib --help`` is fast and works without optional packages.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# sub-command -> (module, one-line help)
COMMANDS = {
    "data": ("reprolib.data.cli", "list datasets: found / missing / subset, with checksums verified"),
    "run": ("reprolib.training.cli", "run one experiment config (train, evaluate, write a run record)"),
    "sweep": ("reprolib.sweep_cli", "run an experiment's config grid on Dask, skipping configs with a record"),
    "rerun": ("reprolib.training.rerun", "train a run record's config again and compare it epoch by epoch"),
    "bench": ("reprolib.kernels.bench", "benchmark multi-step neurons: PyTorch loop vs fused kernels"),
    "probe-shift": ("reprolib.training.shift_probe",
                    "evaluate trained runs on inputs moved by a few pixels (their kept weights; nothing is trained)"),
    "probe-resonators": ("reprolib.training.resonator_probe",
                         "initial and learned frequency / damping of trained RF / BRF networks (BRF paper Fig. 5)"),
    "probe-parameters": ("reprolib.training.parameter_probe",
                         "every parameter of trained runs before and after training (their kept weights)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprolib", description="Reproducible SNN research: data, runs, sweeps.")
    parser.add_argument("--version", action="version", version=f"reprolib {__import__('reprolib').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are added lazily (below) for the chosen command only.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in COMMANDS:
        module = import_module(COMMANDS[argv[0]][0])
        sub = argparse.ArgumentParser(prog=f"reprolib {argv[0]}", description=COMMANDS[argv[0]][1])
        module.configure(sub)
        args = sub.parse_args(argv[1:])
        return int(module.main(args) or 0)
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
