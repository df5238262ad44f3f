"""The accelerator tile's RTL against the performance model, GEMM by GEMM.

For each memory setting (ideal: one AXI beat per cycle, no added latency; 4 and 16 bytes per
cycle with a latency of 50 cycles) the 20 GEMMs of :func:`peforge.sim.accel.verify.verify_shapes`
run end to end on a 4 x 4 systolic tile of each PE (int8, L-Mul bf16, exact e4m3), output- and
weight-stationary, under Verilator (cocotbext-axi AxiRam as DRAM,
shaped by :mod:`peforge.sim.accel.dram`) under the model's mapping; each row holds whether C
was bit-exact, the RTL's counters (start to done cycles, busy cycles, DRAM bytes) and the
model's prediction (:func:`peforge.sim.accel.predict.predict`), and the SRAM energy of the
RTL's scratchpad counters and of the model's SRAM bytes at the same unit costs
(:mod:`peforge.sim.accel.energy`). Then one compute-bound GEMM,
256 x 256 x 256 on an 8 x 8 tile with ample SRAM and an ideal DRAM, gives the array's
utilisation in each dataflow and PE. Writes reports/accelerator/fidelity.csv and
utilisation.csv.

    .venv/bin/python bench/accelerator_fidelity.py [--skip-utilisation] [--dataflow os|ws ...]
        [--pe int8|lmul-bf16|fp-e4m3 ...]
"""

import argparse
import csv
import math
import os
import time
from pathlib import Path

from peforge.hw.accelerator.config import AccelConfig
from peforge.sim.accel.verify import verify_accelerator
from peforge.sim.perf.accelerator import load_accelerator

OUT = Path(__file__).resolve().parents[1] / "reports" / "accelerator"

SETTINGS = (("ideal", math.inf, 0, 64), ("4B/cycle, latency 50", 4, 50, 64),
            ("16B/cycle, latency 50", 16, 50, 128))


#: The PEs of the tile, by name: their configuration fields.
PES = {"int8": {}, "lmul-bf16": {"pe": "lmul", "format": "bf16"},
       "fp-e4m3": {"pe": "fp", "format": "e4m3"}}


def tile(rows, cols, kib, bytes_per_cycle, latency, axi_bits, dataflow, pe):
    sram = {"size_kib": kib}
    accel = load_accelerator({"family": "systolic",
                              "pe": {"rows": rows, "cols": cols, "dataflow": dataflow,
                                     **PES[pe]},
                              "input_sram": sram, "weight_sram": sram, "output_sram": sram,
                              "dram": {"bytes_per_cycle": bytes_per_cycle,
                                       "latency_cycles": latency}})
    return AccelConfig(accel, axi_data_bits=axi_bits)


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-utilisation", action="store_true")
    parser.add_argument("--dataflow", nargs="+", choices=("os", "ws"), default=["os", "ws"])
    parser.add_argument("--pe", nargs="+", choices=tuple(PES), default=list(PES))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for pe in args.pe:
        for dataflow in args.dataflow:
            for name, rate, latency, axi_bits in SETTINGS:
                cfg = tile(4, 4, 4, rate, latency, axi_bits, dataflow, pe)
                for check in verify_accelerator(cfg, seed=1):
                    rows.append({"family": "systolic", "array": f"4x4 {pe} {dataflow}",
                                 "axi_bits": axi_bits, "memory": name, **check.row})
                    report(rows[-1], name)
    write(OUT / "fidelity.csv", rows)
    if args.skip_utilisation:
        return
    rows = []
    for pe in args.pe:
        for dataflow in args.dataflow:
            rows.append(utilisation(pe, dataflow))
            print(rows[-1])
    write(OUT / "utilisation.csv", rows)


def utilisation(pe: str, dataflow: str) -> dict:
    """256 x 256 x 256 on an 8 x 8 tile with 256 KiB scratchpads and an ideal DRAM."""
    cfg = tile(8, 8, 256, math.inf, 0, 256, dataflow, pe)
    start = time.time()
    (check,) = verify_accelerator(cfg, [(256, 256, 256)], seed=1)
    return {"family": "systolic", "array": f"8x8 {pe} {dataflow}", "axi_bits": 256,
            "memory": "ideal", **check.row,
            "busy_share": check.rtl["busy_cycles"] / check.rtl["cycles"],
            "wall_s": round(time.time() - start, 1), "load_avg": os.getloadavg()[0]}


def report(r: dict, name: str) -> None:
    print(f"{r['array']:>12} {name:>22} {r['shape']:>10} {r['mapping']:>16} "
          f"exact={r['bit_exact']} rtl={r['rtl_cycles']} model={r['model_cycles']} "
          f"diff={r['cycles_diff']} rd={r['rtl_dram_read_bytes']}/{r['model_dram_read_bytes']}")


if __name__ == "__main__":
    main()
