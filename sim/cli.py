"""The ``peforge`` command line.

Family options are built from each family's declared parameters, so every family gets the same
commands. Bad input ends with one line, ``peforge: error: <field>: <what is allowed>``, and a
non-zero exit status.
"""

import argparse
import signal
import sqlite3
import sys
import time
from pathlib import Path

from peforge.sim.families import families, family
from peforge.sim.explore.runner import CONNECT_TIMEOUT_S, EXECUTORS
from peforge.sim.explore.search import MAX_POINTS, SEARCHES
from peforge.sim.studies import STUDIES

from peforge.sim.numerics import command as numerics_command

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
    synth = commands.add_parser("synth", help="synthesise with yosys and report area (cells, "
                                "transistors, NAND2-eq, flip-flops, logic depth, um2)")
    energy = commands.add_parser("energy", help="energy per MAC from gate-level switching "
                                 "activity (pJ/MAC at 45 nm, ops, cycles, leakage, area)")
    for command, extra in ((gen, _gen_options), (verify, _verify_options),
                           (synth, _synth_options), (energy, _energy_options)):
        per_family = command.add_subparsers(dest="family", required=True, metavar="FAMILY",
                                            parser_class=_Parser)
        for fam in families().values():
            sub = per_family.add_parser(fam.name, help=fam.summary, description=fam.summary)
            _add_family_options(sub, fam)
            extra(sub)
        if command in (gen, verify):
            from peforge.sim.accel import cli as accel_cli

            accel_cli.add_options(per_family.add_parser(
                "accelerator", help="the whole accelerator tile of an accelerator YAML: PE "
                "array, scratchpads, DMA, controller, AXI4"), gen=command is gen)

    sim = commands.add_parser(
        "sim", help="predict cycles, energy, power and area of a workload on an accelerator",
        description="Simulate a workload (an LLM's transformer blocks, a SCALE-Sim topology "
        "CSV, an ONNX model or a HuggingFace config, with its non-GEMM work) on an accelerator built from one PE family: cycles, memory traffic, energy by "
        "component, average power, area and TOPS/W, TOPS/mm2 (45 nm). Family parameters are "
        "given as in 'peforge gen FAMILY' (e.g. --rows 128 --cols 128).")
    source = sim.add_mutually_exclusive_group(required=True)
    source.add_argument("--family", help="PE family of the accelerator")
    source.add_argument("--config", type=Path, help="accelerator YAML file")
    work = sim.add_mutually_exclusive_group(required=True)
    work.add_argument("--workload", help="a shipped model's name (llama2-7b, llama3-8b, "
                      "bitnet-b1.58-3b, opt-6.7b, gpt2): its transformer blocks' GEMMs")
    work.add_argument("--topology", type=Path, help="SCALE-Sim topology CSV (GEMM or conv)")
    work.add_argument("--onnx", type=Path, help="ONNX model: its GEMMs and vector work")
    work.add_argument("--hf-config", metavar="CONFIG", help="HuggingFace config.json of a "
                      "decoder-only transformer, or a shipped model's name: the whole decoder "
                      "(blocks, LM head, vector work) for --phase and --seq")
    sim.add_argument("--dim", action="append", metavar="NAME=N",
                     help="bind a dynamic dimension of the --onnx model (repeatable)")
    sim.add_argument("--vector-lanes", type=int, metavar="N",
                     help="add a vector unit of N lanes that times the non-GEMM work")
    sim.add_argument("--phase", choices=("prefill", "decode"), default="prefill")
    sim.add_argument("--seq", type=int, default=2048, help="sequence (KV cache) length")
    sim.add_argument("--input-kib", type=int, help="input SRAM size (KiB; default: sized to the "
                     "array, see the README)")
    sim.add_argument("--weight-kib", type=int, help="weight SRAM size (KiB; default: sized to the "
                     "array, see the README)")
    sim.add_argument("--output-kib", type=int, help="output SRAM size (KiB; default: sized to the "
                     "array, see the README)")
    sim.add_argument("--dram-bw", type=float, default=25.6, help="DRAM bytes per cycle")
    sim.add_argument("--dram-latency", type=int, default=100, help="DRAM latency (cycles)")
    sim.add_argument("--dram", default="ddr4-3200",
                     help="DRAM name TYPE[-RATE], TYPE one of ddr4, lpddr4, hbm2, hbm3 (sets "
                     "its energy per bit)")
    sim.add_argument("--stats", default="gaussian",
                     help="operand statistics of the PE array's energy per MAC")
    sim.add_argument("--clock-mhz", type=float, default=1000.0)
    sim.add_argument("--timing", default="rtl",
                     help="rtl (the family's cycle model) or scalesim-os/ws/is")
    sim.add_argument("--engine", default="recurrence", choices=["recurrence", "simpy"],
                     help="simulator of the tile pipeline: the fast recurrence (default) or the "
                     "per-tile simpy reference; both give the same numbers")
    sim.add_argument("--objective", default="cycles", choices=["cycles", "energy", "edp"],
                     help="what the mapper minimises per GEMM: cycles (default), energy or "
                     "energy x cycles; every legal mapping the bound cannot rule out is simulated")
    sim.add_argument("--cycles-only", action="store_true",
                     help="cycles, traffic and roofline only: no energy per MAC is looked up "
                     "(needs no gate-level energy flow)")
    sim.add_argument("--csv", type=Path, help="also write the table to this CSV file")

    sweep = commands.add_parser(
        "sweep", help="run a design-space sweep into a results database",
        description="Evaluate the points of a sweep file (axes, workloads, constraints, "
        "objectives) and store one row per point and workload in an SQLite database; points "
        "already stored are skipped, so an interrupted sweep carries on where it stopped.")
    sweep.add_argument("sweep", type=Path, metavar="SWEEP.yaml")
    sweep.add_argument("--db", type=Path, help="results database (default results/NAME.db)")
    sweep.add_argument("--search", choices=SEARCHES, default="grid",
                       help="grid: every point; optuna: NSGA-II over the space (needs --budget)")
    sweep.add_argument("--budget", type=int, help="points an optuna search evaluates")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the optuna sampler")
    level = sweep.add_mutually_exclusive_group()
    level.add_argument("--synth", dest="level", action="store_const", const="synth",
                       help="also synthesise each point's PE array (yosys) for its area")
    level.add_argument("--verify", dest="level", action="store_const", const="verify",
                       help="also synthesise, build under Verilator and run the bit-exact checks")
    sweep.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local process pool, or dask.distributed")
    sweep.add_argument("--scheduler", metavar="ADDR", help="dask scheduler address, trusted "
                       "both ways: it runs the sweep's code (default: a private TLS LocalCluster "
                       "of --workers processes)")
    sweep.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    sweep.add_argument("--retry-failed", action="store_true",
                       help="evaluate again the points stored as failed")
    sweep.add_argument("--max-points", type=int, default=MAX_POINTS, metavar="N",
                       help=f"refuse a run of more than N points (default {MAX_POINTS:,})")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the point count and the estimated time, run nothing")
    sweep.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S,
                       metavar="S", help="seconds --scheduler is given to answer (default "
                       f"{CONNECT_TIMEOUT_S:g})")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    results = commands.add_parser("results", help="read a results database")
    results_commands = results.add_subparsers(dest="results_command", required=True,
                                              parser_class=_Parser)
    export = results_commands.add_parser("export", help="write the results as a tidy table")
    export.add_argument("db", type=Path, metavar="DB")
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--csv", type=Path, metavar="PATH")
    formats.add_argument("--parquet", type=Path, metavar="PATH")

    report = commands.add_parser(
        "report", help="write a sweep's report, or a family study's tables",
        description="Write the report of a sweep (a sweep file or a results database) into "
        "reports/NAME, or run a family study into reports/: " + "; ".join(
            f"{entry.name} ({entry.summary})" for entry in STUDIES.values()) + ".")
    report.add_argument("topic", metavar="SWEEP_OR_DB_OR_STUDY",
                        help="a sweep file (its database: results/NAME.db or --db), a results "
                        "database, or a study: " + ", ".join(STUDIES))
    report.add_argument("--out", type=Path, help="folder (default reports/NAME, or the study's "
                        "folder under reports/)")
    report.add_argument("--db", type=Path, help="with a sweep file: its results database")
    report.add_argument("--seed", type=int, help="lmul: seed of the random operands (default 0)")
    report.add_argument("--stats", help="cost: operand statistics of the energy ratios "
                        "(default gaussian)")

    numerics_command.add_parser(commands)

    demo = commands.add_parser("demo", help="generate and verify one configuration per family, "
                               "then run and report the demo sweep")
    demo.add_argument("--out", type=Path, default=Path("rtl_out"), help="Verilog folder")
    return parser


def _gen_options(parser):
    parser.add_argument("--out", type=Path, default=Path("rtl_out"),
                        help="folder for the Verilog and manifest (default rtl_out)")


def _synth_options(parser):
    parser.add_argument("--liberty", type=Path, metavar="FILE",
                        help="also map onto this Liberty library and report its cell area "
                        "(default: Debian's OSU 0.18 um library when installed)")
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

    if args.family == "accelerator":
        from peforge.sim.accel.cli import cmd_gen as cmd_gen_accelerator
        return cmd_gen_accelerator(args)
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
    from peforge.sim.rtl.flow import verify

    if args.family == "accelerator":
        from peforge.sim.accel.cli import cmd_verify as cmd_verify_accelerator
        return cmd_verify_accelerator(args)
    fam = family(args.family)
    config = _family_config(fam, args)
    shapes = []
    for text in args.shape or ():
        parts = text.lower().split("x")
        if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
            return _fail(f"shape: must be MxKxN with positive integers, got {text!r}")
        shapes.append(tuple(int(part) for part in parts))
    if args.jobs < 1:
        return _fail(f"jobs: must be >= 1, got {args.jobs}")
    if args.threads < 1:
        return _fail(f"threads: must be >= 1, got {args.threads}")
    backend = "verilator" if args.waves or args.bench == "cocotb" else "bulk"
    report = verify(fam, config, backend=backend, sizes=args.sizes, seed=args.seed,
                    waves=args.waves, shapes=shapes, jobs_per_shape=args.jobs,
                    threads=args.threads)
    status = _report(fam, config, report)
    print(f"simulated {report.sim_cycles} cycles in {report.sim_seconds:.3f} s "
          f"({report.cycles_per_second:,.0f} cycles/s, {args.bench if not args.waves else 'cocotb'})")
    return status


def _synth_fpga(fam, config, args) -> int:
    from peforge.models.params import config_dict, config_hash

    from peforge.sim.eda import fpga

    fpga.target(args.target)
    if args.timing:
        return _fail("timing: --timing times the Liberty netlist; with --target the Fmax comes "
                     "from place and route")
    report = fpga.map_family(fam, config, args.target, place=not args.no_place)
    print(f"{fam.name} {config}")
    print(fpga.format_fpga(report))
    if args.json is None:
        return 0
    return _write_json(args.json, {"family": fam.name, "parameters": config_dict(config),
                                   "config_hash": config_hash(fam.name, config),
                                   **report.to_dict()})


def cmd_synth(args) -> int:
    from peforge.models.params import config_dict, config_hash

    from peforge.sim.eda import synth, timing

    fam = family(args.family)
    config = _family_config(fam, args)
    if args.target is not None:
        return _synth_fpga(fam, config, args)
    node = args.node or synth.DEFAULT_NODE
    if node not in synth.NODES:
        return _fail(f"node: must be one of {', '.join(synth.NODES)}, got {node!r}")
    if args.no_liberty and args.liberty is not None:
        return _fail("liberty: --liberty and --no-liberty exclude each other")
    liberty = None if args.no_liberty else args.liberty or synth.default_liberty()
    if liberty is not None and not liberty.is_file():
        return _fail(f"liberty: no such file {liberty}")
    if args.timing and liberty is None:
        return _fail("timing: --timing needs a Liberty library "
                     + ("(drop --no-liberty)" if args.no_liberty else
                        "(apt-get install qflow-tech-osu018, or --liberty FILE)"))
    times = timing.time_family(fam, config, liberty) if args.timing else None
    report = synth.synth_family(fam, config, liberty=liberty, compose_parts=args.compose)
    print(f"{fam.name} {config}")
    print(synth.format_report(report, node))
    if times is not None:
        print(timing.format_timing(times))
    if liberty is None and not args.no_liberty:
        print("  Liberty area    none (apt-get install qflow-tech-osu018, or --liberty FILE)")
    if args.json is None:
        return 0
    return _write_json(args.json, {"family": fam.name, "parameters": config_dict(config),
                                   "config_hash": config_hash(fam.name, config),
                                   **report.to_dict(node),
                                   **({"timing": times.to_dict()} if times else {})})


def _write_json(path: Path, data: dict) -> int:
    """Write ``data`` to ``path`` as indented JSON; exit status (one-line error when unwritable)."""
    import json

    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as error:
        return _fail(f"json: cannot write {path}: {error.strerror or error}")
    print(f"wrote {path}")
    return 0


def cmd_energy(args) -> int:
    from peforge.models.params import config_dict

    from peforge.sim.eda.energy import format_energy, op_energy

    fam = family(args.family)
    config = _family_config(fam, args)
    result = op_energy(fam.name, config, stats=args.stats, seed=args.seed)
    print(f"{fam.name} {config}")
    print(format_energy(result))
    if args.json is None:
        return 0
    return _write_json(args.json, {"parameters": config_dict(config), **result.to_dict()})


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


def cmd_sim(args, family_args) -> int:
    import pandas as pd

    from peforge.sim.perf.accelerator import (Accelerator, Dram, Sram, VectorUnit,
                                              load_accelerator)
    from peforge.sim.perf.vector import simulate_model, vector_summary
    from peforge.sim.perf.workloads import load_workload
    from peforge.sim.perf.workloads.onnx_graph import parse_dims

    if args.config is not None:
        try:
            accel = load_accelerator(args.config)
        except OSError as error:
            return _fail(f"config: cannot read {args.config}: {error.strerror or error}")
    else:
        fam = family(args.family)
        accel = Accelerator(
            args.family, _family_config(fam, family_args), clock_mhz=args.clock_mhz,
            input_sram=Sram(args.input_kib), weight_sram=Sram(args.weight_kib),
            output_sram=Sram(args.output_kib),
            dram=Dram(name=args.dram, bytes_per_cycle=args.dram_bw,
                      latency_cycles=args.dram_latency),
            timing=args.timing, stats=args.stats,
            vector=VectorUnit(args.vector_lanes) if args.vector_lanes is not None else None)
    if args.topology is not None and not args.topology.exists():
        return _fail(f"topology: no such file {args.topology}")
    workload = load_workload(workload=args.workload, topology=args.topology, onnx=args.onnx,
                             hf_config=args.hf_config, phase=args.phase, seq=args.seq,
                             dims=parse_dims(args.dim), compat=accel.timing != "rtl")
    for line in workload.warnings:
        print(f"warning: {line}", file=sys.stderr)
    table = simulate_model(accel, workload, engine=args.engine, objective=args.objective,
                           energy=not args.cycles_only)
    columns = ["layer", "m", "k", "n", "count", "cycles", "compute_cycles", "stall_cycles",
               "utilisation", "compute_bound_cycles", "dram_bound_cycles", "roofline_ratio",
               "dram_read_bytes", "dram_write_bytes", "time_ms",
               *(() if args.cycles_only else ("energy_pj", "power_mw", "tops_per_w")),
               "mapping", "mappings_simulated", "mappings_pruned"]
    gemms = table[table["part"] != "vector"].iloc[:len(workload.gemms) + 1]
    with pd.option_context("display.width", 250, "display.max_columns", None):
        print(gemms[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(_roofline_summary(gemms.iloc[-1]))
    summary = vector_summary(accel, table)
    if not args.cycles_only:
        summary += _cost_summary(accel, gemms.iloc[-1])
    if summary:
        print("\n".join(summary))
    if args.csv is not None:
        try:
            table.to_csv(args.csv, index=False)
        except OSError as error:
            return _fail(f"csv: cannot write {args.csv}: {error.strerror or error}")
        print(f"wrote {args.csv}")
    return 0


def _sweep_db(sweep, db: Path | None) -> Path:
    return db if db is not None else Path("results") / f"{sweep.name}.db"


def cmd_sweep(args) -> int:
    from peforge.sim.explore.runner import stop_on_sigterm
    from peforge.sim.explore.search import estimate_seconds, plan_sweep, run_sweep
    from peforge.sim.explore.spec import load_sweep

    sweep = load_sweep(args.sweep)
    db = _sweep_db(sweep, args.db)
    options = dict(search=args.search, budget=args.budget, level=args.level or "model",
                   executor=args.executor, scheduler=args.scheduler, workers=args.workers,
                   max_points=args.max_points)
    if not args.connect_timeout > 0:
        return _fail(f"connect-timeout: must be a number of seconds > 0, got "
                     f"{args.connect_timeout:g}")
    if args.dry_run:
        plan = plan_sweep(sweep, **options)
        seconds, timed = estimate_seconds(sweep, plan)
        extra = "" if plan.level == "model" else f", plus the {plan.level} step of each point"
        print(f"sweep {sweep.name}: {plan.search} search at level {plan.level}: {plan.points} "
              f"points x {plan.workloads} workloads = {plan.points * plan.workloads} rows")
        print(f"estimated time: {seconds:.1f} s on {plan.workers} workers (the model timed on "
              f"{timed} points here{extra}); nothing was run, {db} is unchanged")
        return 0
    try:
        with stop_on_sigterm():
            run = run_sweep(sweep, db, quiet=args.quiet, seed=args.seed,
                            retry_failed=args.retry_failed,
                            connect_timeout=args.connect_timeout, **options)
    except sqlite3.Error as error:
        return _fail(f"db: {db}: cannot be written (sqlite: {error})")
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        print(f"peforge: error: interrupted ({signal.Signals(signum).name}): the rows stored in "
              f"{db} are kept; the same command carries on", file=sys.stderr)
        return 128 + signum
    print(f"sweep {sweep.name}: {run.search} search at level {run.level}: "
          f"{run.points_asked} points asked, {run.points_evaluated} evaluated "
          f"({run.points_failed} with failed rows), {run.points_skipped} already stored, "
          f"{run.seconds:.1f} s")
    print(f"results: {db}")
    return 0


def cmd_results(args) -> int:
    from peforge.sim.explore.results import ResultStore

    out = args.csv or args.parquet
    with ResultStore(args.db, readonly=True) as store:
        try:
            store.export(out, "csv" if args.csv else "parquet")
        except OSError as error:
            return _fail(f"out: cannot write {out}: {error.strerror or error}")
        except sqlite3.Error as error:
            return _fail(f"db: {args.db}: cannot be read (sqlite: {error})")
    print(f"wrote {out}")
    return 0


def _roofline_summary(total) -> str:
    """The line under the ``sim`` table: how far the total is from its roofline, and which bound."""
    bound = ("DRAM" if total.dram_bound_cycles > total.compute_bound_cycles else "compute")
    return (f"roofline: {total.cycles:.6g} cycles = {total.roofline_ratio:.3g} x the {bound} "
            f"bound (compute {total.compute_bound_cycles:.6g}, DRAM "
            f"{total.dram_bound_cycles:.6g} cycles); utilisation {total.utilisation:.1%}; "
            f"{int(total.mappings_simulated)} mappings simulated, {int(total.mappings_pruned)} "
            f"pruned")


def _cost_summary(accel, total) -> list[str]:
    """Lines under the ``sim`` table: the total's energy by component, power, area, efficiency."""
    from peforge.sim.perf.model import SRAMS, accelerator_costs

    costs = accelerator_costs(accel)
    parts = [("PE array", "energy_pe_pj"), *((f"{name} SRAM", f"energy_{name}_sram_pj")
                                             for name in SRAMS),
             (f"DRAM ({accel.dram.name})", "energy_dram_pj"), ("leakage", "energy_leakage_pj")]
    shares = ", ".join(f"{label} {total[column]:.4g} ({total[column] / total.energy_pj:.1%})"
                       for label, column in parts)
    sram_mm2 = sum(cost.area_mm2 for cost in costs.srams.values())
    return [f"energy (pJ, 45 nm, {accel.stats} operands): {total.energy_pj:.4g} = {shares}",
            f"power {total.power_mw:.4g} mW average at {accel.clock_mhz:g} MHz; area "
            f"{total.area_mm2:.4g} mm2 (PE array {costs.array_area_mm2:.4g}, SRAMs "
            f"{sram_mm2:.4g}); {total.tops_per_w:.4g} TOPS/W, {total.tops_per_mm2:.4g} TOPS/mm2"]


def cmd_report(args) -> int:
    if args.topic not in STUDIES:
        return _sweep_report(args)
    entry = STUDIES[args.topic]
    options = {name: getattr(args, name) for name in ("seed", "stats")
               if getattr(args, name) is not None}
    out = args.out or Path("reports") / entry.folder
    start = time.perf_counter()
    try:
        paths = entry.run(out, **options)
    except OSError as error:
        return _fail(f"out: cannot write to {out}: {error.strerror or error}")
    seconds = time.perf_counter() - start
    for path in paths:
        print(f"wrote {path}")
    print(f"report {entry.name}: {seconds:.1f} s")
    return 0


def _sweep_report(args) -> int:
    from peforge.sim.explore.spec import load_sweep
    from peforge.sim.explore.report import write_sweep_report

    target = Path(args.topic)
    if target.suffix in (".yaml", ".yml"):
        sweep = load_sweep(target)
        db, name = _sweep_db(sweep, args.db), sweep.name
    elif target.is_file():
        db, name = target, None
    else:
        return _fail(f"report: must be a study ({', '.join(STUDIES)}), a sweep file (.yaml) or "
                     f"a results database, got {args.topic!r}")
    try:
        paths = write_sweep_report(db, args.out, sweep=name)
    except OSError as error:
        return _fail(f"out: cannot write the report: {error.strerror or error}")
    except sqlite3.Error as error:
        return _fail(f"db: {db}: cannot be read (sqlite: {error})")
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_demo(args) -> int:
    from peforge.sim.demo import run_demo

    return run_demo(args.out)


def main(argv=None) -> int:
    from peforge.sim.rtl.backends.verilator import BenchError, ToolchainError

    args, rest = _build_parser().parse_known_args(argv)
    from peforge.sim.cache import CacheError
    from peforge.sim.eda.energy import EnergyError
    from peforge.sim.eda.synth import SynthError
    from peforge.sim.eda.fpga import FpgaError
    from peforge.sim.eda.timing import TimingError

    handler = {"list": cmd_list, "gen": cmd_gen, "verify": cmd_verify, "report": cmd_report,
               "demo": cmd_demo, "synth": cmd_synth, "energy": cmd_energy, "sweep": cmd_sweep,
               "results": cmd_results, "numerics": numerics_command.run}
    try:
        if args.command == "sim":
            family_args = argparse.Namespace()
            if args.family is not None:
                family_parser = _Parser(prog=f"peforge sim --family {args.family}")
                _add_family_options(family_parser, family(args.family))
                family_args = family_parser.parse_args(rest)
            elif rest:
                return _fail(f"unrecognized arguments: {' '.join(rest)}")
            return cmd_sim(args, family_args)
        if rest:
            return _fail(f"unrecognized arguments: {' '.join(rest)}")
        return handler[args.command](args)
    except (ValueError, ToolchainError, BenchError, SynthError, EnergyError, CacheError,
            TimingError, FpgaError) as error:
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
