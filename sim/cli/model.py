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
    sim.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    # The family's own options (--rows ...) are parsed once --family is known: see main().
    sim.set_defaults(handler=cmd_sim, family_options=True)


def cmd_sim(args, family_args) -> int:
    import pandas as pd

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
        if not args.topology.exists():
            return fail(f"topology: no such file {args.topology}")
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
            return fail(f"csv: cannot write {args.csv}: {error.strerror or error}")
        print(f"wrote {args.csv}")
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
