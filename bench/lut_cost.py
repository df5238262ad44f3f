"""Cells, transistors and area of the LUT tile vs integer MAC arrays of the same throughput.

Builds :func:`peforge.sim.studies.lut.cost_table` (designs, what "same throughput" means and the
ratios are documented there) for the lut family's tile (default 2 x 64, k = 4) at W1, W2 and W4
with INT8 activations, beside the systolic family's INT8 x INT8 array and the same array with
W-bit weights, each with ``m*n*k / W`` PEs. Writes ``reports/lut/cost.csv`` (one row per design
and weight width, units in the column names), prints it and the paper's claim beside ours.

Synthesis is cached. Cold, on one core: about 85 s per 2 x 64 LUT tile (flat synthesis) and a
few seconds per part of a MAC array, some 5 minutes in all; about 25 s when cached (the
Verilog is still generated to find the cache entries).
Run: ``.venv/bin/python bench/lut_cost.py [--m 2 --n 64 --k 4 --wbits 1 2 4]``.
"""

import argparse
import time
from pathlib import Path

from peforge.sim.studies.lut import REFERENCE_GEMM, WBITS, claims, cost_table
from peforge.sim.studies.tables import write_table

SHOWN = ["design", "wbits", "geometry", "multiplier", "result_bits", "pes", "peak_macs_per_cycle",
         "effective_macs_per_cycle", "cells", "transistors", "flip_flops", "logic_depth",
         "area_um2", "transistors_vs_lut", "area_vs_lut", "area_per_mac_per_cycle_vs_lut",
         "paper_area_vs_lut_min", "paper_area_vs_lut_max"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=2, help="LUT tile rows")
    parser.add_argument("--n", type=int, default=64, help="LUT tile columns")
    parser.add_argument("--k", type=int, default=4, help="activations per table group")
    parser.add_argument("--wbits", type=int, nargs="+", default=list(WBITS))
    parser.add_argument("--k-max", type=int, default=4096)
    parser.add_argument("--gemm", type=int, nargs=3, default=list(REFERENCE_GEMM),
                        metavar=("M", "K", "N"), help="GEMM of the effective throughput")
    parser.add_argument("--out", type=Path, default=Path("reports/lut/cost.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = cost_table(args.m, args.n, args.k, wbits=tuple(args.wbits), k_max=args.k_max,
                       gemm=tuple(args.gemm))
    seconds = time.perf_counter() - start
    write_table(table, args.out, SHOWN)
    print()
    print("\n".join(claims(table)))
    print(f"wrote {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
