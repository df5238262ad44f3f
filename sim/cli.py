"""The ``peforge`` command line.

Family options are built from each family's declared parameters, so every family gets the same
commands. Bad input ends with one line, ``peforge: error: <field>: <what is allowed>``, and a
non-zero exit status.
"""

import argparse
import sys
from pathlib import Path

from peforge.sim.families import families, family
from peforge.sim.explore.sweep import EXECUTORS, SEARCHES

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

    sim = commands.add_parser(
        "sim", help="predict cycles, energy, power and area of a workload on an accelerator",
        description="Simulate a workload (an LLM's transformer blocks or a SCALE-Sim topology "
        "CSV) on an accelerator built from one PE family: cycles, memory traffic, energy by "
        "component, average power, area and TOPS/W, TOPS/mm2 (45 nm). Family parameters are "
        "given as in 'peforge gen FAMILY' (e.g. --rows 128 --cols 128).")
    source = sim.add_mutually_exclusive_group(required=True)
    source.add_argument("--family", help="PE family of the accelerator")
    source.add_argument("--config", type=Path, help="accelerator YAML file")
    work = sim.add_mutually_exclusive_group(required=True)
    work.add_argument("--workload", help="a model name (llama2-7b, llama3-8b, bitnet-b1.58-3b, "
                      "opt-6.7b)")
    work.add_argument("--topology", type=Path, help="SCALE-Sim topology CSV (GEMM or conv)")
    sim.add_argument("--phase", choices=("prefill", "decode"), default="prefill")
    sim.add_argument("--seq", type=int, default=2048, help="sequence (KV cache) length")
    sim.add_argument("--input-kib", type=int, default=256, help="input SRAM size (KiB)")
    sim.add_argument("--weight-kib", type=int, default=256, help="weight SRAM size (KiB)")
    sim.add_argument("--output-kib", type=int, default=64, help="output SRAM size (KiB)")
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
    sweep.add_argument("--scheduler", metavar="ADDR", help="dask scheduler address (default: "
                       "a LocalCluster of --workers processes)")
    sweep.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    sweep.add_argument("--retry-failed", action="store_true",
                       help="evaluate again the points stored as failed")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    results = commands.add_parser("results", help="read a results database")
    results_commands = results.add_subparsers(dest="results_command", required=True,
                                              parser_class=_Parser)
    export = results_commands.add_parser("export", help="write the results as a tidy table")
    export.add_argument("db", type=Path, metavar="DB")
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--csv", type=Path, metavar="PATH")
    formats.add_argument("--parquet", type=Path, metavar="PATH")

    report = commands.add_parser("report", help="write a sweep's report, or an accuracy report")
    report.add_argument("topic", metavar="SWEEP_OR_DB_OR_TOPIC",
                        help="a sweep file (its database: results/NAME.db or --db), a results "
                        "database, or lmul (L-Mul error vs exact multiply and fp8 rounding)")
    report.add_argument("--out", type=Path, help="folder (default reports/NAME or reports/TOPIC)")
    report.add_argument("--db", type=Path, help="with a sweep file: its results database")
    report.add_argument("--seed", type=int, default=0, help="lmul: seed of the random operands")

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
                        help="write an FST waveform (dump.fst) in the run folder")


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

    fam = family(args.family)
    config = _family_config(fam, args)
    return _report(fam, config, verify(fam, config, sizes=args.sizes, seed=args.seed,
                                       waves=args.waves))


def cmd_synth(args) -> int:
    from peforge.models.params import config_dict, config_hash

    from peforge.sim.eda import synth

    fam = family(args.family)
    config = _family_config(fam, args)
    node = args.node or synth.DEFAULT_NODE
    if node not in synth.NODES:
        return _fail(f"node: must be one of {', '.join(synth.NODES)}, got {node!r}")
    if args.no_liberty and args.liberty is not None:
        return _fail("liberty: --liberty and --no-liberty exclude each other")
    liberty = None if args.no_liberty else args.liberty or synth.default_liberty()
    if liberty is not None and not liberty.is_file():
        return _fail(f"liberty: no such file {liberty}")
    report = synth.synth_family(fam, config, liberty=liberty, compose_parts=args.compose)
    print(f"{fam.name} {config}")
    print(synth.format_report(report, node))
    if liberty is None and not args.no_liberty:
        print("  Liberty area    none (apt-get install qflow-tech-osu018, or --liberty FILE)")
    if args.json is None:
        return 0
    return _write_json(args.json, {"family": fam.name, "parameters": config_dict(config),
                                   "config_hash": config_hash(fam.name, config),
                                   **report.to_dict(node)})


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

    from peforge.sim.perf.accelerator import Accelerator, Dram, Sram, load_accelerator
    from peforge.sim.perf.model import simulate_workload
    from peforge.sim.perf.workloads import load_scalesim_topology, workload_gemms

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
            timing=args.timing, stats=args.stats)
    if args.topology is not None:
        if not args.topology.exists():
            return _fail(f"topology: no such file {args.topology}")
        gemms = load_scalesim_topology(args.topology)
    else:
        gemms = workload_gemms(args.workload, phase=args.phase, seq=args.seq)
    table = simulate_workload(accel, gemms, engine=args.engine)
    columns = ["layer", "m", "k", "n", "count", "cycles", "compute_cycles", "stall_cycles",
               "utilisation", "dram_read_bytes", "dram_write_bytes", "time_ms", "energy_pj",
               "power_mw", "tops_per_w", "mapping"]
    with pd.option_context("display.width", 250, "display.max_columns", None):
        print(table[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("\n".join(_cost_summary(accel, table.iloc[-1])))
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
    from peforge.sim.explore.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    db = _sweep_db(sweep, args.db)
    run = run_sweep(sweep, db, search=args.search, budget=args.budget,
                    level=args.level or "model", executor=args.executor,
                    scheduler=args.scheduler, workers=args.workers, quiet=args.quiet,
                    seed=args.seed, retry_failed=args.retry_failed)
    print(f"sweep {sweep.name}: {run.search} search at level {run.level}: "
          f"{run.points_asked} points asked, {run.points_evaluated} evaluated "
          f"({run.points_failed} with failed rows), {run.points_skipped} already stored, "
          f"{run.seconds:.1f} s")
    print(f"results: {db}")
    return 0


def cmd_results(args) -> int:
    from peforge.sim.explore.results import ResultStore

    if not args.db.is_file():
        return _fail(f"db: no such file {args.db}")
    out = args.csv or args.parquet
    with ResultStore(args.db) as store:
        try:
            store.export(out, "csv" if args.csv else "parquet")
        except OSError as error:
            return _fail(f"out: cannot write {out}: {error.strerror or error}")
    print(f"wrote {out}")
    return 0


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
    if args.topic == "numerics":
        return numerics_command.run_report(args.out or Path("reports") / "numerics")
    if args.topic != "lmul":
        return _sweep_report(args)
    from peforge.sim.studies.lmul import claims, write_report

    out = args.out or Path("reports") / args.topic
    try:
        table, area, paths = write_report(out, seed=args.seed)
    except OSError as error:
        return _fail(f"out: cannot write to {out}: {error.strerror or error}")
    for frame in (table, area):
        print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("\n".join(claims(table)))
    for path in paths:
        print(f"wrote {path}")
    return 0


def _sweep_report(args) -> int:
    from peforge.sim.explore.sweep import load_sweep
    from peforge.sim.explore.report import write_sweep_report

    target = Path(args.topic)
    if target.suffix in (".yaml", ".yml"):
        sweep = load_sweep(target)
        db, name = _sweep_db(sweep, args.db), sweep.name
    elif target.is_file():
        db, name = target, None
    else:
        return _fail(f"report: must be lmul, a sweep file (.yaml) or a results database, got "
                     f"{args.topic!r}")
    try:
        paths = write_sweep_report(db, args.out, sweep=name)
    except OSError as error:
        return _fail(f"out: cannot write the report: {error.strerror or error}")
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_demo(args) -> int:
    from peforge.sim.demo import run_demo

    return run_demo(args.out)


def main(argv=None) -> int:
    from peforge.sim.rtl.backends.verilator import BenchError, ToolchainError

    args, rest = _build_parser().parse_known_args(argv)
    from peforge.sim.eda.energy import EnergyError
    from peforge.sim.eda.synth import SynthError

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
    except (ValueError, ToolchainError, BenchError, SynthError, EnergyError) as error:
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
