"""The hardware commands: ``list``, ``gen``, ``verify``, ``synth``, ``energy`` (one sub-command
per family, options from the family's parameters) and ``demo``."""

import argparse
from pathlib import Path

from peforge.sim.cli.common import (Parser, add_family_options, fail, family_config, stage,
                                    write_json)
from peforge.sim.families import families, family

__all__ = ["add_commands"]


def add_commands(commands) -> None:
    commands.add_parser("list", help="the families and their parameters").set_defaults(
        handler=cmd_list)
    gen = commands.add_parser("gen", help="write a family's Verilog and JSON manifest")
    verify = commands.add_parser("verify", help="build under Verilator and check the RTL "
                                 "against the golden and cycle models")
    synth = commands.add_parser("synth", help="synthesise with yosys and report area (cells, "
                                "transistors, NAND2-eq, flip-flops, logic depth, um2)")
    energy = commands.add_parser("energy", help="energy per MAC from gate-level switching "
                                 "activity (pJ/MAC at 45 nm, ops, cycles, leakage, area)")
    for command, extra, handler in ((gen, _gen_options, cmd_gen),
                                    (verify, _verify_options, cmd_verify),
                                    (synth, _synth_options, cmd_synth),
                                    (energy, _energy_options, cmd_energy)):
        per_family = command.add_subparsers(dest="family", required=True, metavar="FAMILY",
                                            parser_class=Parser)
        for fam in families().values():
            sub = per_family.add_parser(fam.name, help=fam.summary, description=fam.summary)
            add_family_options(sub, fam)
            extra(sub)
            sub.set_defaults(handler=handler)
        tile_handlers = {gen: ("gen", _accelerator_gen), verify: ("verify", _accelerator_verify),
                         energy: ("energy", _accelerator_energy),
                         synth: ("synth", _accelerator_synth)}
        if command in tile_handlers:
            from peforge.sim.accel import cli as accel_cli

            name, tile_handler = tile_handlers[command]
            accelerator = per_family.add_parser(
                "accelerator", help="the whole accelerator tile of an accelerator YAML: PE "
                "array, scratchpads, DMA, controller, AXI4")
            accel_cli.add_options(accelerator, name)
            accelerator.set_defaults(handler=tile_handler)

    demo = commands.add_parser("demo", help="generate and verify one configuration per family, "
                               "then run and report the demo sweep")
    demo.add_argument("--out", type=Path, default=Path("rtl_out"), help="Verilog folder")
    demo.set_defaults(handler=cmd_demo)


def _gen_options(parser):
    parser.add_argument("--out", type=Path, default=Path("rtl_out"),
                        help="folder for the Verilog and manifest (default rtl_out)")


def _synth_options(parser):
    parser.add_argument("--liberty", type=Path, metavar="FILE",
                        help="also map onto this Liberty library and report its cell area "
                        "(default: $PEFORGE_LIBERTY, else the OSU 0.18 um library shipped "
                        "with peforge)")
    parser.add_argument("--no-liberty", action="store_true",
                        help="node-independent counts only, no Liberty mapping")
    parser.add_argument("--node", default=None,
                        help="node of the NAND2-eq area estimate (osu018, sg13g2, sky130, "
                        "nangate45; default osu018)")
    parser.add_argument("--compose", action=argparse.BooleanOptionalAction, default=None,
                        help="compose the area from parts synthesised once each (default: for "
                        "families that can, above 8 x 8 PEs)")
    parser.add_argument("--timing", action="store_true",
                        help="also time the Liberty-mapped netlist with OpenSTA: critical path "
                        "(ns, start and end points) and the Fmax it implies")
    parser.add_argument("--target", metavar="FPGA",
                        help="map onto an FPGA instead (ecp5, ice40, xc7): LUTs, flip-flops, DSP "
                        "blocks, block RAMs; ecp5 and ice40 also place and route for the Fmax")
    parser.add_argument("--no-place", action="store_true",
                        help="with --target: resources only, no place and route")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")


def _energy_options(parser):
    from peforge.models.operand_stats import STATS

    parser.add_argument("--stats", default="gaussian",
                        help=f"operand statistics ({', '.join(STATS)}; default gaussian)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the operands")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the result as JSON")


def _verify_options(parser):
    parser.add_argument("--sizes", choices=("quick", "full"), default="quick",
                        help="job set: quick (a few shapes) or full (more shapes)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the operands")
    parser.add_argument("--waves", action="store_true",
                        help="write an FST waveform (dump.fst) in the run folder (runs the "
                        "beat-by-beat cocotb bench)")
    parser.add_argument("--shape", action="append", metavar="MxKxN",
                        help="verify random GEMMs of this shape instead of the job set "
                        "(repeatable)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="random jobs per --shape (default 1)")
    parser.add_argument("--bench", choices=("bulk", "cocotb"), default="bulk",
                        help="bulk: beats played from memory by a C++ harness at Verilator "
                        "speed (default); cocotb: beat by beat from Python (waves)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="Verilator --threads of the bulk harness (default 1)")


def cmd_list(_args) -> int:
    for fam in families().values():
        print(f"{fam.name}: {fam.summary}")
        for name, (spec, default) in fam.parameters().items():
            flag = name.replace("_", "-")
            if spec.range is None and spec.choices is None:
                flag = f"[no-]{flag}"
            print(f"  --{flag:<10} {spec.describe()}; default {default}. {spec.help}")
    return 0


def cmd_gen(args) -> int:
    from peforge.sim.rtl.flow import write_design

    fam = family(args.family)
    config = family_config(fam, args)
    try:
        with stage(f"gen {fam.name}: elaborating and writing Verilog"):
            verilog_path, manifest_path = write_design(fam, config, args.out)
    except OSError as error:
        return fail(f"out: cannot write to {args.out}: {error.strerror or error}")
    print(f"wrote {verilog_path}")
    print(f"wrote {manifest_path}")
    return 0


def cmd_verify(args) -> int:
    from peforge.sim.rtl.flow import verify

    fam = family(args.family)
    config = family_config(fam, args)
    shapes = []
    for text in args.shape or ():
        parts = text.lower().split("x")
        if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
            return fail(f"shape: must be MxKxN with positive integers, got {text!r}")
        shapes.append(tuple(int(part) for part in parts))
    if args.jobs < 1:
        return fail(f"jobs: must be >= 1, got {args.jobs}")
    if args.threads < 1:
        return fail(f"threads: must be >= 1, got {args.threads}")
    bench = "cocotb" if args.waves else args.bench
    jobs = (f"{len(shapes) * args.jobs} random jobs of {len(shapes)} shapes" if shapes
            else f"the {args.sizes} jobs")
    with stage(f"verify {fam.name}: generating, building under Verilator (a new "
               f"configuration: 15-60 s) and running {jobs} ({bench} bench)"):
        report = verify(fam, config, backend="verilator" if bench == "cocotb" else "bulk",
                        sizes=args.sizes, seed=args.seed, waves=args.waves, shapes=shapes,
                        jobs_per_shape=args.jobs, threads=args.threads)
    status = _report(fam, config, report)
    print(f"simulated {report.sim_cycles} cycles in {report.sim_seconds:.3f} s "
          f"({report.cycles_per_second:,.0f} cycles/s, {bench})")
    return status


def _accelerator_gen(args) -> int:
    from peforge.sim.accel.cli import cmd_gen

    with stage("gen accelerator: elaborating the tile and writing Verilog"):
        return cmd_gen(args)


def _accelerator_verify(args) -> int:
    from peforge.sim.accel.cli import cmd_verify

    with stage("verify accelerator: building the tile under Verilator and running its GEMMs"):
        return cmd_verify(args)


def _accelerator_energy(args) -> int:
    from peforge.sim.accel.cli import cmd_energy

    with stage("energy accelerator: elaborating the tile, looking up its measurement"):
        return cmd_energy(args)


def _accelerator_synth(args) -> int:
    from peforge.sim.accel.cli import cmd_synth

    with stage("synth accelerator: synthesising the array, the tile's logic and its register "
               "file and feeder with yosys"):
        return cmd_synth(args)


def _synth_fpga(fam, config, args) -> int:
    from peforge.sim.eda import fpga

    fpga.target(args.target)
    if args.timing:
        return fail("timing: --timing times the Liberty netlist; with --target the Fmax comes "
                    "from place and route")
    place = " and placing and routing" if not args.no_place else ""
    with stage(f"synth {fam.name}: mapping onto {args.target}{place}"):
        report = fpga.map_family(fam, config, args.target, place=not args.no_place)
    print(f"{fam.name} {config}")
    print(fpga.format_fpga(report))
    return _write_design_json(args.json, fam, config, report.to_dict())


def _write_design_json(path, fam, config, fields: dict) -> int:
    """``--json``: the design's family, parameters and config hash with ``fields``; 0 without a
    path."""
    from peforge.models.params import config_dict, config_hash

    if path is None:
        return 0
    return write_json(path, {"family": fam.name, "parameters": config_dict(config),
                             "config_hash": config_hash(fam.name, config), **fields})


def cmd_synth(args) -> int:
    from peforge.sim.eda import synth, timing

    fam = family(args.family)
    config = family_config(fam, args)
    if args.target is not None:
        return _synth_fpga(fam, config, args)
    node = args.node or synth.DEFAULT_NODE
    if node not in synth.NODES:
        return fail(f"node: must be one of {', '.join(synth.NODES)}, got {node!r}")
    if args.no_liberty and args.liberty is not None:
        return fail("liberty: --liberty and --no-liberty exclude each other")
    liberty = None if args.no_liberty else synth.default_liberty(args.liberty)
    if liberty is not None and not liberty.is_file():
        return fail(f"liberty: no such file {liberty}")
    if args.timing and liberty is None:
        return fail("timing: --timing needs a Liberty library (drop --no-liberty)")
    times = None
    if args.timing:
        with stage(f"synth {fam.name}: timing the Liberty netlist with OpenSTA"):
            times = timing.time_family(fam, config, liberty)
    with stage(f"synth {fam.name}: synthesising with yosys"):
        report = synth.synth_family(fam, config, liberty=liberty, compose_parts=args.compose)
    print(f"{fam.name} {config}")
    print(synth.format_report(report, node))
    if times is not None:
        print(timing.format_timing(times))
    return _write_design_json(args.json, fam, config, {
        **report.to_dict(node), **({"timing": times.to_dict()} if times else {})})


def cmd_energy(args) -> int:
    from peforge.models.params import config_dict

    from peforge.sim.eda.energy import format_energy, op_energy

    fam = family(args.family)
    config = family_config(fam, args)
    with stage(f"energy {fam.name}: looking up or measuring the energy per MAC"):
        result = op_energy(fam.name, config, stats=args.stats, seed=args.seed)
    print(f"{fam.name} {config}")
    print(format_energy(result))
    if args.json is None:
        return 0
    return write_json(args.json, {"parameters": config_dict(config), **result.to_dict()})


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
    from peforge.sim.demo import run_demo

    if args.out.exists() and not args.out.is_dir():
        return fail(f"out: {args.out} is a file, not a folder")
    return run_demo(args.out)
