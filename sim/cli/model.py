"""``peforge sim``: cycles, traffic, energy, power and area of a workload on an accelerator built
from one PE family (the performance model, peforge.sim.perf)."""

from pathlib import Path

from peforge.sim.cli.common import fail, family_config
from peforge.sim.families import family

__all__ = ["add_commands"]


def add_commands(commands) -> None:
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
    sim.add_argument("--csv", type=Path, help="also write the table to this CSV file (columns in "
                     "base units: cycles, bytes, ms, pJ, mW, mm2)")
    sim.add_argument("--cycles-only", action="store_true",
                     help="cycles, utilisation, DRAM traffic and time only: no energy, power or "
                     "area, so no gate-level measurement or Liberty file is needed")
    # The family's own options (--rows ...) are parsed once --family is known: see main().
    sim.set_defaults(handler=cmd_sim, family_options=True)


#: The printed table: (column of the model's table, base unit of its readable magnitude or None,
#: header). Units go in the header as ``name[unit]``; the CSV keeps the model's columns.
_SHOWN = (("layer", None, "layer"), ("m", None, "m"), ("k", None, "k"), ("n", None, "n"),
          ("count", None, "count"), ("cycles", None, "cycles"),
          ("compute_cycles", None, "compute_cycles"), ("stall_cycles", None, "stall_cycles"),
          ("utilisation", "%", "utilisation"), ("dram_read_bytes", "B", "dram_read"),
          ("dram_write_bytes", "B", "dram_write"), ("time_ms", "ms", "time"),
          ("energy_pj", "pJ", "energy"), ("power_mw", "mW", "power"),
          ("tops_per_w", None, "TOPS/W"), ("mapping", None, "mapping"))

#: What ``--cycles-only`` computes (no energy, power, area or TOPS/W).
_CYCLE_COLUMNS = ("layer", "m", "k", "n", "count", "macs", "cycles", "compute_cycles",
                  "stall_cycles", "utilisation", "dram_read_bytes", "dram_write_bytes",
                  "time_ms", "mapping")


def cmd_sim(args, family_args) -> int:
    from peforge.sim.eda.energy import EnergyError
    from peforge.sim.perf.accelerator import Accelerator, Dram, Sram, load_accelerator
    from peforge.sim.perf.model import simulate_workload
    from peforge.sim.perf.workloads import load_scalesim_topology, workload_gemms

    if args.config is not None:
        try:
            accel = load_accelerator(args.config)
        except OSError as error:
            return fail(f"config: cannot read {args.config}: {error.strerror or error}")
    else:
        fam = family(args.family)
        accel = Accelerator(
            args.family, family_config(fam, family_args), clock_mhz=args.clock_mhz,
            input_sram=Sram(args.input_kib), weight_sram=Sram(args.weight_kib),
            output_sram=Sram(args.output_kib),
            dram=Dram(name=args.dram, bytes_per_cycle=args.dram_bw,
                      latency_cycles=args.dram_latency),
            timing=args.timing, stats=args.stats)
    if args.topology is not None:
        if not args.topology.is_file():
            what = "a folder, not a file" if args.topology.is_dir() else "no such file"
            return fail(f"topology: {args.topology}: {what}")
        try:
            gemms = load_scalesim_topology(args.topology)
        except (OSError, UnicodeDecodeError) as error:
            return fail(f"topology: cannot read {args.topology}: "
                        f"{getattr(error, 'strerror', None) or error}")
    else:
        gemms = workload_gemms(args.workload, phase=args.phase, seq=args.seq)
    if args.cycles_only:
        table = _cycle_table(accel, gemms, args.engine)
    else:
        try:
            table = simulate_workload(accel, gemms, engine=args.engine)
        except EnergyError as error:
            return fail(f"{error} (or --cycles-only: cycles without energy)")
    print(_format_table(table))
    total = table.iloc[-1]
    print("\n".join(_cycle_summary(accel, total) if args.cycles_only
                    else _cost_summary(accel, total)))
    if args.csv is not None:
        try:
            table.to_csv(args.csv, index=False)
        except OSError as error:
            return fail(f"csv: cannot write {args.csv}: {error.strerror or error}")
        print(f"wrote {args.csv}")
    return 0


def _cycle_table(accel, gemms, engine: str):
    """The cycle columns of :func:`peforge.sim.perf.model.simulate_workload`'s table (one row per
    GEMM and a ``total`` row) from the cycle model alone: no energy look-up."""
    import pandas as pd

    from peforge.sim.perf.model import simulate_gemm

    rows = []
    for gemm in gemms:
        result = simulate_gemm(accel, gemm, engine=engine)
        rows.append({"layer": gemm.name, "m": gemm.m, "k": gemm.k, "n": gemm.n,
                     "count": gemm.count, "macs": gemm.macs, "cycles": result.cycles,
                     "compute_cycles": result.compute_cycles,
                     "dram_read_bytes": result.dram_read_bytes,
                     "dram_write_bytes": result.dram_write_bytes, "mapping": str(result.mapping)})
    sums = ("macs", "cycles", "compute_cycles", "dram_read_bytes", "dram_write_bytes")
    rows.append({"layer": "total", **{name: sum(row[name] for row in rows) for name in sums},
                 "mapping": ""})
    table = pd.DataFrame(rows)
    table["stall_cycles"] = table.cycles - table.compute_cycles
    table["utilisation"] = table.macs / (accel.pes * table.cycles)
    table["time_ms"] = table.cycles / (accel.clock_mhz * 1e3)
    table[["m", "k", "n", "count"]] = table[["m", "k", "n", "count"]].astype("Int64")
    return table[list(_CYCLE_COLUMNS)]


def _format_table(table) -> str:
    """``table`` as printed: the :data:`_SHOWN` columns it has, each magnitude in the unit its
    largest value reads best in (named in the header), 4 significant digits."""
    import pandas as pd

    from peforge.sim.cli.units import unit_for

    shown = {}
    for column, base, header in _SHOWN:
        if column not in table:
            continue
        values = table[column]
        if base == "%":
            values, header = values * 100, f"{header}[%]"
        elif base is not None:
            unit, factor = unit_for(float(values.abs().max()), base)
            values, header = values / factor, f"{header}[{unit}]"
        shown[header] = values.astype(object).where(values.notna(), "")
    with pd.option_context("display.width", 250, "display.max_columns", None):
        return pd.DataFrame(shown).to_string(
            index=False, formatters={header: _number for header in shown})


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cycle_summary(accel, total) -> list[str]:
    from peforge.sim.cli.units import readable

    return [f"cycles only (no energy, power or area): {total.cycles} cycles, "
            f"{readable(total.time_ms, 'ms')} at {accel.clock_mhz:g} MHz, utilisation "
            f"{total.utilisation:.1%} of {accel.pes} PEs"]


def _cost_summary(accel, total) -> list[str]:
    """Lines under the ``sim`` table: the total's energy by component, power, area, efficiency."""
    from peforge.sim.cli.units import readable
    from peforge.sim.perf.model import SRAMS, accelerator_costs

    costs = accelerator_costs(accel)
    parts = [("PE array", "energy_pe_pj"), *((f"{name} SRAM", f"energy_{name}_sram_pj")
                                             for name in SRAMS),
             (f"DRAM ({accel.dram.name})", "energy_dram_pj"), ("leakage", "energy_leakage_pj")]
    shares = ", ".join(f"{label} {readable(total[column], 'pJ')} "
                       f"({total[column] / total.energy_pj:.1%})" for label, column in parts)
    sram_mm2 = sum(cost.area_mm2 for cost in costs.srams.values())
    return [f"energy (45 nm, {accel.stats} operands): {readable(total.energy_pj, 'pJ')} = "
            f"{shares}",
            f"power {readable(total.power_mw, 'mW')} average at {accel.clock_mhz:g} MHz; area "
            f"{readable(total.area_mm2, 'mm2')} (PE array "
            f"{readable(costs.array_area_mm2, 'mm2')}, SRAMs {readable(sram_mm2, 'mm2')}); "
            f"{total.tops_per_w:.4g} TOPS/W, {total.tops_per_mm2:.4g} TOPS/mm2"]
