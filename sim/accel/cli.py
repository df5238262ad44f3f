"""``peforge gen accelerator`` and ``peforge verify accelerator``: the tile of an accelerator
YAML (the one ``peforge sim --config`` reads) with an AXI width."""

import json
from pathlib import Path

from peforge.sim.outputs import write_outputs

__all__ = ["add_options", "cmd_gen", "cmd_verify"]


def add_options(parser, *, gen: bool) -> None:
    parser.add_argument("--config", required=True, help="accelerator YAML (as for peforge sim)")
    parser.add_argument("--axi-bits", type=int, default=64,
                        help="AXI4 data width, a power of two >= 32 (default 64)")
    if gen:
        parser.add_argument("--out", default="rtl_out", help="output folder (default rtl_out/)")
    else:
        parser.add_argument("--seed", type=int, default=0, help="operand seed (default 0)")


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
