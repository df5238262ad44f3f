"""Throughput and cells of each N:M mode of the sparse DSP chain vs the dense chain, and the
area of its sparse MUXes.

Builds :func:`peforge.sim.studies.sparse_dsp.cost_table` (circuits, how the MUX cost is isolated
and the ratios are documented there) for a chain of 16 slices (INT8 x INT8, 48-bit
accumulators, one register stage each on A/B, M and P): the no-MUX dense chain and the
circuits with 2-, 4-, 8- and 16-input MUXes, each in every N:M mode it runs. Writes
``reports/sparse_dsp/cost.csv`` (one row per design and mode, units in the column names),
prints it and FlightLLM's claim beside ours.

Synthesis is cached. Cold, on one core: 13-30 s per chain circuit (nine of them: the five
circuits and four with their MUXes removed) and under a second per MUX, some 3 minutes in all;
a few seconds when cached.
Run: ``.venv/bin/python bench/sparse_dsp_cost.py [--chain 16 --muxes 2 4 8 16]``.
"""

import argparse
import time
from pathlib import Path

from peforge.sim.studies.sparse_dsp import REFERENCE_GEMM, claims, cost_table
from peforge.sim.studies.tables import write_table

SHOWN = ["circuit", "nm", "segments", "useful_macs_per_cycle", "dense_equiv_macs_per_cycle",
         "cells", "transistors", "flip_flops", "logic_depth", "area_um2", "mux_transistors",
         "mux_transistors_standalone", "mux_area_um2_standalone", "reduction_transistors",
         "mux_share_transistors", "transistors_vs_dense", "area_vs_dense",
         "efficiency_vs_dense_transistors", "efficiency_vs_dense_area", "paper_efficiency_gain"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=16, help="DSP slices in the chain")
    parser.add_argument("--muxes", type=int, nargs="+", default=None,
                        help="MUX widths G (= M) compared; default every M dividing the chain")
    parser.add_argument("--bits", type=int, default=8, help="weight width")
    parser.add_argument("--acc-bits", type=int, default=48, help="accumulator width")
    parser.add_argument("--gemm", type=int, nargs=3, default=list(REFERENCE_GEMM),
                        metavar=("R", "K", "C"), help="GEMM of the throughput")
    parser.add_argument("--out", type=Path, default=Path("reports/sparse_dsp/cost.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = cost_table(args.chain, muxes=args.muxes, bits=args.bits, acc_bits=args.acc_bits,
                       gemm=tuple(args.gemm))
    seconds = time.perf_counter() - start
    write_table(table, args.out, SHOWN)
    print()
    print("\n".join(claims(table)))
    print(f"wrote {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
