"""``peforge gen``, ``verify``, ``energy`` and ``synth accelerator``: the tile of an
accelerator YAML (the one ``peforge sim --config`` reads) with an AXI width."""

import json
from pathlib import Path

from peforge.sim.outputs import write_outputs

__all__ = ["add_options", "cmd_gen", "cmd_verify", "cmd_energy", "cmd_synth"]


def add_options(parser, command: str) -> None:
    """The options of ``peforge COMMAND accelerator`` (``gen``, ``verify``, ``energy`` or
    ``synth``)."""
    parser.add_argument("--config", required=True, help="accelerator YAML (as for peforge sim)")
    parser.add_argument("--axi-bits", type=int, default=64,
                        help="AXI4 data width, a power of two >= 32 (default 64)")
    if command == "gen":
        parser.add_argument("--out", default="rtl_out", help="output folder (default rtl_out/)")
    if command in ("verify", "energy"):
        parser.add_argument("--seed", type=int, default=0, help="operand seed (default 0)")
    if command == "energy":
        parser.add_argument("--gemm", required=True, metavar="MxKxN",
                            help="the GEMM, run under the mapping verify gives it")
        parser.add_argument("--measure", action="store_true",
                            help="run the GEMM on the RTL first when it has no measurement")
    if command in ("energy", "synth"):
        parser.add_argument("--json", type=Path, metavar="PATH",
                            help="also write the result as JSON")


def _config(args):
    """The :class:`~peforge.hw.accelerator.config.AccelConfig` of the arguments (imported here:
    building the command line parser stays light)."""
    from peforge.hw.accelerator.config import AccelConfig
    from peforge.sim.perf.accelerator import load_accelerator

    try:
        accel = load_accelerator(args.config)
    except OSError as error:
        raise ValueError(f"config: cannot read {args.config}: {error.strerror or error}") \
            from None
    return AccelConfig(accel, axi_data_bits=args.axi_bits)


def cmd_gen(args) -> int:
    from peforge.models.params import config_hash
    from peforge.sim.accel.flow import generate

    cfg = _config(args)
    verilog, manifest = generate(cfg)
    stem = f"{manifest['top']}_{config_hash(cfg.accel.family, cfg.accel.pe)}_axi{cfg.axi_data_bits}"
    out = Path(args.out)
    try:
        paths = write_outputs({out / f"{stem}.v": verilog,
                               out / f"{stem}.json": json.dumps(manifest, indent=2) + "\n"})
    except OSError as error:
        raise ValueError(f"out: cannot write to {args.out}: {error.strerror or error}") from None
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_verify(args) -> int:
    from peforge.sim.accel.verify import verify_accelerator

    checks = verify_accelerator(_config(args), seed=args.seed)
    print(f"{'gemm':>12} {'mapping':>16} {'exact':>5} {'rtl':>8} {'model':>8} {'diff':>6}")
    for check in checks:
        row = check.row
        print(f"{row['shape']:>12} {row['mapping']:>16} {'yes' if row['bit_exact'] else 'NO':>5} "
              f"{row['rtl_cycles']:>8} {row['model_cycles']:>8} {row['cycles_diff']:>6}")
    exact = sum(check.exact for check in checks)
    print(f"{exact} of {len(checks)} GEMMs bit-exact")
    return 0 if exact == len(checks) else 1


def _gemm(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"gemm: must be MxKxN with positive integers, got {text!r}")
    return tuple(int(part) for part in parts)


def cmd_energy(args) -> int:
    """The GEMM's energy on the tile, its SRAM, DRAM and cycle counts the RTL's when it ran
    there (``peforge verify accelerator`` or ``--measure``), else the model's."""
    from peforge.sim.accel.energy import tile_energy
    from peforge.sim.accel.flow import generate, place
    from peforge.sim.accel.measured import lookup
    from peforge.sim.accel.verify import choose_mapping, verify_accelerator
    from peforge.sim.cli.common import write_json
    from peforge.sim.perf.costs import SRAMS

    m, k, n = _gemm(args.gemm)
    cfg = _config(args)
    mapping = choose_mapping(cfg, m, k, n)
    descriptor = place(cfg, m, k, n, mapping.tm, mapping.tk, mapping.tn, mapping.order)
    verilog, _ = generate(cfg)
    counters = lookup(cfg, verilog, descriptor)
    if counters is None and args.measure:
        (check,) = verify_accelerator(cfg, [(m, k, n)], seed=args.seed, verilog=verilog)
        if not check.exact:
            raise ValueError(f"gemm: {args.gemm} was not bit-exact on the RTL")
        counters = lookup(cfg, verilog, descriptor)
    result = tile_energy(cfg, m, k, n, mapping, counters)
    source = ("the RTL's counters" if result["source"] == "rtl" else
              "the model (no RTL measurement: peforge verify accelerator, or --measure)")
    print(f"{m}x{k}x{n} under {mapping} on {cfg.rows}x{cfg.cols} {cfg.accel.family}, "
          f"AXI {cfg.axi_data_bits}: counts from {source}")
    print(f"  cycles          {result['cycles']}")
    print(f"  PE array        {result['energy_pe_pj']:12.1f} pJ  ({m * k * n} MACs)")
    for name in SRAMS:
        print(f"  {name + ' SRAM':<15} {result[f'energy_{name}_sram_pj']:12.1f} pJ  "
              f"(read {result[f'{name}_sram_read_bytes']:g} B, "
              f"written {result[f'{name}_sram_write_bytes']:g} B)")
    print(f"  DRAM            {result['energy_dram_pj']:12.1f} pJ  "
          f"(read {result['dram_read_bytes']} B, written {result['dram_write_bytes']} B)")
    print(f"  leakage         {result['energy_leakage_pj']:12.1f} pJ")
    print(f"  total           {result['energy_pj']:12.1f} pJ")
    if args.json is None:
        return 0
    return write_json(args.json, {"gemm": [m, k, n], "mapping": str(mapping), **result})


def cmd_synth(args) -> int:
    """The tile's area by part (:mod:`peforge.sim.accel.synth`)."""
    from peforge.sim.accel.synth import NODE, format_tile_area, tile_area
    from peforge.sim.cli.common import write_json

    cfg = _config(args)
    area = tile_area(cfg)
    print(format_tile_area(cfg, area))
    if args.json is None:
        return 0
    return write_json(args.json, {"node": NODE, "area_um2": area.um2,
                                  "total_um2": area.total_um2, "nand2_eq": area.nand2_eq,
                                  "memories": [{"name": name, "bytes": size, "area_um2": um2}
                                               for name, size, um2 in area.memories]})
