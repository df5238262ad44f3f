"""The ``peforge`` command line.

Family options are built from each family's declared parameters, so every family gets the same
commands. Bad input ends with one line, ``peforge: error: <field>: <what is allowed>``, and a
non-zero exit status.
"""

import argparse
import sys
from pathlib import Path

from .families import families, family

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump)."""

    def error(self, message):
        raise SystemExit(_fail(message))


def _fail(message: str) -> int:
    print(f"peforge: error: {message}", file=sys.stderr)
    return 2


def _add_family_options(parser: argparse.ArgumentParser, fam) -> None:
    for name, (spec, default) in fam.parameters().items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{spec.help} ({spec.describe()}; default {default})"
        if spec.range is None and spec.choices is None:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)
        elif spec.range is not None:
            parser.add_argument(flag, dest=name, type=int, default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=name, default=default, help=help_text)


def _family_config(fam, args):
    return fam.make_config(**{name: getattr(args, name) for name in fam.parameters()})


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="peforge", description="Generate, verify and model processing "
                     "elements of low-bit and approximate AI accelerators.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="the families and their parameters")

    gen = commands.add_parser("gen", help="write a family's Verilog and JSON manifest")
    verify = commands.add_parser("verify", help="build under Verilator and check the RTL "
                                 "against the golden and cycle models")
    for command, extra in ((gen, _gen_options), (verify, _verify_options)):
        per_family = command.add_subparsers(dest="family", required=True, metavar="FAMILY",
                                            parser_class=_Parser)
        for fam in families().values():
            sub = per_family.add_parser(fam.name, help=fam.summary, description=fam.summary)
            _add_family_options(sub, fam)
            extra(sub)

    demo = commands.add_parser("demo", help="generate and verify one configuration per family")
    demo.add_argument("--out", type=Path, default=Path("rtl_out"), help="Verilog folder")
    return parser


def _gen_options(parser):
    parser.add_argument("--out", type=Path, default=Path("rtl_out"),
                        help="folder for the Verilog and manifest (default rtl_out)")


def _verify_options(parser):
    parser.add_argument("--sizes", choices=("quick", "full"), default="quick",
                        help="job set: quick (a few shapes) or full (more shapes)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the operands")
    parser.add_argument("--waves", action="store_true",
                        help="write an FST waveform (dump.fst) in the run folder")


def cmd_list(_args) -> int:
    for fam in families().values():
        print(f"{fam.name}: {fam.summary}")
        for name, (spec, default) in fam.parameters().items():
            print(f"  --{name.replace('_', '-'):<10} {spec.describe()}; default {default}. "
                  f"{spec.help}")
    return 0


def cmd_gen(args) -> int:
    from .flow import write_design

    fam = family(args.family)
    config = _family_config(fam, args)
    try:
        verilog_path, manifest_path = write_design(fam, config, args.out)
    except OSError as error:
        return _fail(f"out: cannot write to {args.out}: {error.strerror or error}")
    print(f"wrote {verilog_path}")
    print(f"wrote {manifest_path}")
    return 0


def cmd_verify(args) -> int:
    from .flow import verify

    fam = family(args.family)
    config = _family_config(fam, args)
    return _report(fam, config, verify(fam, config, sizes=args.sizes, seed=args.seed,
                                       waves=args.waves))


def _report(fam, config, report) -> int:
    print(f"{fam.name} {config}")
    print(f"build: {report.build_dir}")
    if report.waves:
        print(f"waves: {report.waves}")
    for number, job in enumerate(report.jobs, 1):
        values = "bit-exact" if job.outputs_match else "MISMATCH"
        cycles = "=" if job.cycles == job.model_cycles else "!="
        print(f"  job {number:2}: {job.shape:<24} {values:<9} cycles {job.cycles} {cycles} "
              f"model {job.model_cycles}  {'PASS' if job.passed else 'FAIL'}")
    passed = sum(job.passed for job in report.jobs)
    print(f"{'PASS' if report.passed else 'FAIL'}: {passed}/{len(report.jobs)} jobs bit-exact "
          f"with cycles equal to the model")
    return 0 if report.passed else 1


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out)


def main(argv=None) -> int:
    from .verilator import BenchError, ToolchainError

    args = _build_parser().parse_args(argv)
    handler = {"list": cmd_list, "gen": cmd_gen, "verify": cmd_verify, "demo": cmd_demo}
    try:
        return handler[args.command](args)
    except (ValueError, ToolchainError, BenchError) as error:
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
