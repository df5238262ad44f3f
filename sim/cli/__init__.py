"""The ``peforge`` command line.

Each group of commands lives in its own module and registers its parsers and handlers
(``add_commands``): :mod:`.hardware` (list, gen, verify, synth, energy, demo), :mod:`.model`
(sim), :mod:`.explore` (sweep, results, report) and :mod:`.cache` (cache info, clean); ``numerics``
is peforge.sim.numerics.command's. Family
options are built from each family's declared parameters, so every family gets the same commands.
Bad input ends with one line, ``peforge: error: <field>: <what is allowed>``, and a non-zero exit
status.
"""

import argparse
import os
import sys
import warnings

from peforge.sim.cli.common import fail

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    # The command groups are imported here, inside main's handlers, so that Ctrl-C while they
    # load (seconds on a busy machine) is one line too.
    from peforge.sim import __version__
    from peforge.sim.cli import cache, explore, hardware, model
    from peforge.sim.cli.common import Parser
    from peforge.sim.numerics import command as numerics_command

    parser = Parser(prog="peforge", description="Generate, verify and model processing "
                    "elements of low-bit and approximate AI accelerators.")
    parser.add_argument("--version", action="version", version=f"peforge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in (hardware, model, explore, cache):
        group.add_commands(commands)
    numerics_command.add_parser(commands)
    commands.choices["numerics"].set_defaults(handler=numerics_command.run)
    return parser


def main(argv=None) -> int:
    """Run one ``peforge`` command; its exit status. Bare ``peforge`` prints the help on stderr
    (status 2); every refused input, unreadable file or failed tool is one line
    ``peforge: error: ...`` (status 2, or 1 for a failure not caused by the input); Ctrl-C is
    ``peforge: interrupted`` (status 130). ``PEFORGE_DEBUG=1`` shows the traceback of an
    unexpected error instead."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        # What was cut short (an elaboration's unused parts, say) warns as it is collected.
        warnings.simplefilter("ignore")
        print("\npeforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``peforge sim ... | head``): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        return fail(f"{where}{error.strerror or error}")
    except Exception as error:  # noqa: BLE001 - the last defence of "one line, no traceback"
        if os.environ.get("PEFORGE_DEBUG"):
            raise
        fail(f"unexpected {type(error).__name__}: {error} (PEFORGE_DEBUG=1 shows the traceback)")
        return 1


def _run(argv) -> int:
    from peforge.sim.cache import CacheError
    from peforge.sim.cli.common import Parser, add_family_options
    from peforge.sim.families import family
    from peforge.sim.eda.energy import EnergyError
    from peforge.sim.eda.fpga import FpgaError
    from peforge.sim.eda.synth import SynthError
    from peforge.sim.eda.timing import TimingError
    from peforge.sim.rtl.backends.verilator import BenchError, ToolchainError

    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
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
    except (ValueError, ToolchainError, BenchError, SynthError, EnergyError, CacheError,
            TimingError, FpgaError) as error:
        return fail(str(error))
