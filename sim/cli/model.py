"""``peforge sim``: cycles, traffic, energy, power and area of a workload on an accelerator built
from one PE family (the performance model, peforge.sim.perf)."""

import sys
from pathlib import Path

from peforge.sim.cli.common import fail, family_config, stage
from peforge.sim.families import family

__all__ = ["add_commands"]


def add_commands(commands) -> None:
    sim = commands.add_parser(
        "sim", help="predict cycles, energy, power and area of a workload on an accelerator",
        description="Simulate a workload (an LLM's transformer blocks, a SCALE-Sim topology "
        "CSV, an ONNX model or a HuggingFace config, with its non-GEMM work) on an accelerator "
        "built from one PE family: cycles, memory traffic, roofline, energy by component, "
        "average power, area and TOPS/W, TOPS/mm2 (45 nm). Family parameters are given as in "
        "'peforge gen FAMILY' (e.g. --rows 128 --cols 128).")
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
    for memory in ("input", "weight", "output"):
        sim.add_argument(f"--{memory}-kib", type=int, help=f"{memory} SRAM size (KiB; default: "
                         "sized to the array, see the README)")
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
                     help="cycles, utilisation, DRAM traffic, time and roofline only: no "
                     "energy, power or area, so no gate-level measurement or Liberty file is "
                     "needed")
    sim.add_argument("--csv", type=Path, help="also write the table to this CSV file (columns in "
                     "base units: cycles, bytes, ms, pJ, mW, mm2)")
    # The family's own options (--rows ...) are parsed once --family is known: see main().
    sim.set_defaults(handler=cmd_sim, family_options=True)


#: The printed table: (column of the model's table, base unit of its readable magnitude or None,
#: header). Units go in the header as ``name[unit]``; the CSV keeps the model's columns.
_SHOWN = (("layer", None, "layer"), ("m", None, "m"), ("k", None, "k"), ("n", None, "n"),
          ("count", None, "count"), ("cycles", None, "cycles"),
          ("compute_cycles", None, "compute_cycles"), ("stall_cycles", None, "stall_cycles"),
          ("utilisation", "%", "utilisation"),
          ("compute_bound_cycles", None, "compute_bound_cycles"),
          ("dram_bound_cycles", None, "dram_bound_cycles"),
          ("roofline_ratio", None, "roofline_ratio"), ("dram_read_bytes", "B", "dram_read"),
          ("dram_write_bytes", "B", "dram_write"), ("time_ms", "ms", "time"),
          ("energy_pj", "pJ", "energy"), ("power_mw", "mW", "power"),
          ("tops_per_w", None, "TOPS/W"), ("w_zero_fraction", "%", "w_zeros"),
          ("w_nm", None, "w_nm"), ("mapping", None, "mapping"),
          ("mappings_simulated", None, "mappings_simulated"),
          ("mappings_pruned", None, "mappings_pruned"))


def cmd_sim(args, family_args) -> int:
    from peforge.sim.eda.energy import EnergyError
    from peforge.sim.perf.accelerator import (Accelerator, Dram, Sram, VectorUnit,
                                              load_accelerator)
    from peforge.sim.perf.model import ENERGY_COLUMNS
    from peforge.sim.perf.vector import simulate_model, vector_summary
    from peforge.sim.perf.workloads import load_workload
    from peforge.sim.perf.workloads.onnx_graph import parse_dims

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
            timing=args.timing, stats=args.stats,
            vector=VectorUnit(args.vector_lanes) if args.vector_lanes is not None else None)
    # The readers name the option and file of what they refuse (one line, ValueError).
    workload = load_workload(workload=args.workload, topology=args.topology, onnx=args.onnx,
                             hf_config=args.hf_config, phase=args.phase, seq=args.seq,
                             dims=parse_dims(args.dim), compat=accel.timing != "rtl")
    for line in workload.warnings:
        print(f"warning: {line}", file=sys.stderr)
    try:
        with stage(f"sim {accel.family}: mapping and simulating {len(workload.gemms)} GEMMs "
                   f"({args.engine}{'' if args.cycles_only else ', with energy'})"):
            table = simulate_model(accel, workload, engine=args.engine,
                                   objective=args.objective, energy=not args.cycles_only)
    except EnergyError as error:
        return fail(f"{error} (or --cycles-only: cycles without energy)")
    if args.cycles_only:
        table = table.drop(columns=[name for name in ENERGY_COLUMNS if name in table])
    gemms = table[table["part"] != "vector"].iloc[:len(workload.gemms) + 1]
    print(_format_table(gemms))
    summary = [_roofline_summary(gemms.iloc[-1]), *_mode_notes(gemms),
               *vector_summary(accel, table)]
    if not args.cycles_only:
        summary += _cost_summary(accel, gemms.iloc[-1])
    print("\n".join(summary))
    if args.csv is not None:
        try:
            table.to_csv(args.csv, index=False)
        except OSError as error:
            return fail(f"csv: cannot write {args.csv}: {error.strerror or error}")
        print(f"wrote {args.csv}")
    return 0


def _format_table(table) -> str:
    """``table`` as printed: the :data:`_SHOWN` columns it has, each magnitude in the unit its
    largest value reads best in (named in the header), numbers as :func:`_number`."""
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
    """4 significant digits; whole digits from 10,000 up (a cycle bound of 8.77e8 prints as
    877000000, in the same digits as the cycle counts beside it)."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _roofline_summary(total) -> str:
    """The line under the ``sim`` table: how far the total is from its roofline, and which bound
    (cycles in the table's digits, :func:`_number`)."""
    compute, dram = float(total.compute_bound_cycles), float(total.dram_bound_cycles)
    return (f"roofline: {int(total.cycles)} cycles = {total.roofline_ratio:.3g} x the "
            f"{'DRAM' if dram > compute else 'compute'} bound (compute {_number(compute)}, DRAM "
            f"{_number(dram)} cycles); utilisation {total.utilisation:.1%}; "
            f"{int(total.mappings_simulated)} mappings simulated, {int(total.mappings_pruned)} "
            f"pruned")


def _mode_notes(gemms) -> list[str]:
    """One line per distinct ``note`` of the GEMM rows (a mode the array runs them in other
    than configured), naming up to three of its layers."""
    if "note" not in gemms:
        return []
    lines = []
    for note, rows in gemms.groupby("note", sort=False):
        layers = list(rows["layer"])
        named = ", ".join(layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
        lines.append(f"note: {len(layers)} GEMM{'s' * (len(layers) > 1)} ({named}) {note}")
    return lines


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
