"""The accelerator tile's RTL against the performance model, GEMM by GEMM.

For each memory setting (ideal: one AXI beat per cycle, no added latency; 4 and 16 bytes per
cycle with a latency of 50 cycles) the 20 GEMMs of :func:`peforge.sim.accel.verify.verify_shapes`
run end to end on a 4 x 4 int8 systolic tile, output- and weight-stationary, under Verilator (cocotbext-axi AxiRam as DRAM,
shaped by :mod:`peforge.sim.accel.dram`) under the model's mapping; each row holds whether C
was bit-exact, the RTL's counters (start to done cycles, busy cycles, DRAM bytes) and the
model's prediction (:func:`peforge.sim.accel.predict.predict`), and the SRAM energy of the
RTL's scratchpad counters and of the model's SRAM bytes at the same unit costs
(:mod:`peforge.sim.accel.energy`). Then one compute-bound GEMM,
256 x 256 x 256 on an 8 x 8 tile with ample SRAM and an ideal DRAM, gives the array's
utilisation in each dataflow. Writes reports/accelerator/fidelity.csv and utilisation.csv.

    .venv/bin/python bench/accelerator_fidelity.py [--skip-utilisation] [--dataflow os|ws ...]
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


def tile(rows, cols, kib, bytes_per_cycle, latency, axi_bits, dataflow):
    sram = {"size_kib": kib}
    accel = load_accelerator({"family": "systolic",
                              "pe": {"rows": rows, "cols": cols, "dataflow": dataflow},
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
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataflow in args.dataflow:
        for name, rate, latency, axi_bits in SETTINGS:
            cfg = tile(4, 4, 4, rate, latency, axi_bits, dataflow)
            for check in verify_accelerator(cfg, seed=1):
                rows.append({"family": "systolic", "array": f"4x4 int8 {dataflow}",
                             "axi_bits": axi_bits, "memory": name, **check.row})
                report(rows[-1], name)
    write(OUT / "fidelity.csv", rows)
    if args.skip_utilisation:
        return
    rows = []
    for dataflow in args.dataflow:
        cfg = tile(8, 8, 256, math.inf, 0, 256, dataflow)
        start = time.time()
        (check,) = verify_accelerator(cfg, [(256, 256, 256)], seed=1)
        rows.append({"family": "systolic", "array": f"8x8 int8 {dataflow}", "axi_bits": 256,
                     "memory": "ideal", **check.row,
                     "busy_share": check.rtl["busy_cycles"] / check.rtl["cycles"],
                     "wall_s": round(time.time() - start, 1), "load_avg": os.getloadavg()[0]})
        print(rows[-1])
    write(OUT / "utilisation.csv", rows)


def report(r: dict, name: str) -> None:
    print(f"{r['array']:>12} {name:>22} {r['shape']:>10} {r['mapping']:>16} "
          f"exact={r['bit_exact']} rtl={r['rtl_cycles']} model={r['model_cycles']} "
          f"diff={r['cycles_diff']} rd={r['rtl_dram_read_bytes']}/{r['model_dram_read_bytes']}")


if __name__ == "__main__":
    main()
