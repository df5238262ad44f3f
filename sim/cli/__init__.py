"""The ``peforge`` command line.

Each group of commands lives in its own module and registers its parsers and handlers
(``add_commands``): :mod:`.hardware` (list, gen, verify, synth, energy, demo), :mod:`.model` (sim)
and :mod:`.explore` (sweep, results, report). Family options are built from each family's
declared parameters, so every family gets the same commands. Bad input ends with one line,
``peforge: error: <field>: <what is allowed>``, and a non-zero exit status.
"""

import argparse
import sys

from peforge.sim.cli import explore, hardware, model
from peforge.sim.cli.common import Parser, add_family_options, fail
from peforge.sim.families import family

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="peforge", description="Generate, verify and model processing "
                    "elements of low-bit and approximate AI accelerators.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (hardware, model, explore):
        group.add_commands(commands)
    return parser


def main(argv=None) -> int:
    from peforge.sim.rtl.backends.verilator import BenchError, ToolchainError

    args, rest = _build_parser().parse_known_args(argv)
    from peforge.sim.eda.energy import EnergyError
    from peforge.sim.eda.synth import SynthError

    try:
        if getattr(args, "family_options", False):
            family_args = argparse.Namespace()
            if args.family is not None:
                family_parser = Parser(prog=f"peforge sim --family {args.family}")
                add_family_options(family_parser, family(args.family))
                family_args = family_parser.parse_args(rest)
            elif rest:
                return fail(f"unrecognized arguments: {' '.join(rest)}")
            return args.handler(args, family_args)
        if rest:
            return fail(f"unrecognized arguments: {' '.join(rest)}")
        return args.handler(args)
    except (ValueError, ToolchainError, BenchError, SynthError, EnergyError) as error:
        return fail(str(error))
