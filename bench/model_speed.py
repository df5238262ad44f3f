"""Wall time of peforge's performance model, side by side with SCALE-Sim 3.0.0 when available.

Cases (one CSV row each):

- five GEMMs on a 32 x 32 array with ``timing="scalesim-<df>"`` and an ideal memory (no stalls):
  64x64x64 os, 128x256x512 os/ws/is, 512x512x512 os;
- the same shapes with ``timing="rtl"`` and the default memories (the RTL has os and ws only, so
  the 128x256x512 ``is`` case has no rtl row);
- LLaMA-2-7B prefill (L = 2048, ``workload_gemms("llama2-7b", phase="prefill", seq=2048)``) on a
  128 x 128 systolic array with the default memories, ``timing="rtl"``.

peforge's time is the median (and minimum) of ``--repeats`` calls after one warm-up call, with
every cache of the model emptied before each call (``perf.clear_caches``), in this process.

If the environment variable ``SCALESIM_PYTHON`` names a python with ``scalesim`` installed, each
``scalesim-<df>`` case also runs SCALE-Sim once, in a temporary folder, in a subprocess, in its
cheapest mode (``save_disk_space=True``: no trace files; ``verbose=False``; interface bandwidth
``CALC``). ``scalesim_run_ms`` is the time of its ``run_scale()`` call measured inside the
subprocess, ``scalesim_process_ms`` the whole subprocess (interpreter start and imports too).
``speedup_x`` is ``scalesim_run_ms / peforge_wall_ms``; ``cycles_equal`` compares SCALE-Sim's
compute cycles (``Total Cycles`` of its COMPUTE_REPORT.csv) with peforge's.

SCALE-Sim 3.0.0 goes in a venv of its own (never into peforge's dependencies); it needs
numpy < 2.4 (2.4 crashes in its scratchpad model)::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 'numpy<2.4'
    SCALESIM_PYTHON=/tmp/scalesim-venv/bin/python .venv/bin/python bench/model_speed.py

Without ``SCALESIM_PYTHON`` the run takes well under a minute; with it, about a minute more
(SCALE-Sim's 512^3 GEMM alone takes ~30 s).

SCALE-Sim's GEMM topology rows are ``name, M, N, K,`` (trailing comma, a header line first), and
its source (``topology_utils.load_arrays_gemm``) makes A ``M x K`` and B ``K x N``: the reduction
is the last number. A peforge ``Gemm(m, k, n)`` is therefore the row ``name, m, n, k,``.

Writes ``reports/bench/model_speed.csv`` (``--out``) and prints it as a table.
Run: ``.venv/bin/python bench/model_speed.py [--repeats 5] [--out PATH]``.
"""

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import pandas as pd

from peforge.models.systolic import SystolicConfig
from peforge.sim.perf.accelerator import Accelerator, Dram, Sram
from peforge.sim.perf.model import clear_caches, simulate_gemm, simulate_workload
from peforge.sim.perf.workloads import Gemm, workload_gemms
from scalesim_runner import run_layers

#: ``(m, k, n, dataflow)`` of the 32 x 32 cases.
GEMM_CASES = [(64, 64, 64, "os"), (128, 256, 512, "os"), (128, 256, 512, "ws"),
              (128, 256, 512, "is"), (512, 512, 512, "os")]
ARRAY = 32
LLAMA_ARRAY = 128
LLAMA_SEQ = 2048

BIG = Sram(size_kib=1 << 20)
IDEAL = Dram(bytes_per_cycle=math.inf, latency_cycles=0)

def ideal_accelerator(rows: int, cols: int, timing: str) -> Accelerator:
    return Accelerator("systolic", SystolicConfig(rows=rows, cols=cols), input_sram=BIG,
                       weight_sram=BIG, output_sram=BIG, dram=IDEAL, timing=timing)


def time_peforge(run, repeats: int) -> tuple[list[float], object]:
    """Wall times (s) of ``repeats`` cold calls of ``run`` after one warm-up, and its result."""
    clear_caches()
    result = run()
    times = []
    for _ in range(repeats):
        clear_caches()
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return times, result


def run_scalesim(python: str, rows: int, cols: int, dataflow: str, m: int, k: int,
                 n: int) -> dict:
    """Run SCALE-Sim on one GEMM (:func:`scalesim_runner.run_layers`): times, cycles, version."""
    table, run_s, process_s, version = run_layers(python, rows, cols, dataflow,
                                                  [("gemm", m, n, k)])
    return {"scalesim_version": version, "scalesim_run_ms": run_s * 1e3,
            "scalesim_process_ms": process_s * 1e3,
            "scalesim_compute_cycles": int(table["Total Cycles"].iloc[0]),
            "scalesim_stall_cycles": int(table["Stall Cycles"].iloc[0])}


def gemm_rows(repeats: int, scalesim_python: str | None) -> list[dict]:
    rows = []
    for m, k, n, dataflow in GEMM_CASES:
        gemm = Gemm("gemm", m, k, n)
        variants = [("scalesim-" + dataflow, "ideal", ideal_accelerator(ARRAY, ARRAY,
                                                                         "scalesim-" + dataflow))]
        if dataflow in ("os", "ws"):
            variants.append(("rtl", "default", Accelerator(
                "systolic", SystolicConfig(rows=ARRAY, cols=ARRAY, dataflow=dataflow))))
        for timing, memory, accel in variants:
            times, result = time_peforge(lambda: simulate_gemm(accel, gemm), repeats)
            row = {"case": f"gemm {m}x{k}x{n} {dataflow} {timing}", "workload": f"gemm {m}x{k}x{n}",
                   "m": m, "k": k, "n": n, "macs": gemm.macs, "array_rows": ARRAY,
                   "array_cols": ARRAY, "dataflow": dataflow, "timing": timing, "memory": memory,
                   "repeats": repeats, "peforge_wall_ms": statistics.median(times) * 1e3,
                   "peforge_wall_min_ms": min(times) * 1e3,
                   "peforge_compute_cycles": result.compute_cycles,
                   "peforge_cycles": result.cycles}
            if scalesim_python and timing != "rtl":
                print(f"SCALE-Sim: {row['case']} ...", flush=True)
                row.update(run_scalesim(scalesim_python, ARRAY, ARRAY, dataflow, m, k, n))
                row["speedup_x"] = row["scalesim_run_ms"] / row["peforge_wall_ms"]
                row["cycles_equal"] = row["scalesim_compute_cycles"] == result.compute_cycles
            rows.append(row)
    return rows


def llama_row(repeats: int) -> dict:
    accel = Accelerator("systolic", SystolicConfig(rows=LLAMA_ARRAY, cols=LLAMA_ARRAY))
    gemms = workload_gemms("llama2-7b", phase="prefill", seq=LLAMA_SEQ)
    shapes = len({(g.m, g.k, g.n, g.a_bits, g.w_bits, g.out_bits) for g in gemms})
    times, table = time_peforge(lambda: simulate_workload(accel, gemms), repeats)
    total = table.iloc[-1]
    return {"case": f"llama2-7b prefill L={LLAMA_SEQ} rtl",
            "workload": f"llama2-7b prefill L={LLAMA_SEQ} ({len(gemms)} GEMMs, {shapes} shapes)",
            "macs": int(total["macs"]), "array_rows": LLAMA_ARRAY, "array_cols": LLAMA_ARRAY,
            "dataflow": accel.pe.dataflow, "timing": "rtl", "memory": "default",
            "repeats": repeats, "peforge_wall_ms": statistics.median(times) * 1e3,
            "peforge_wall_min_ms": min(times) * 1e3,
            "peforge_compute_cycles": int(total["compute_cycles"]),
            "peforge_cycles": int(total["cycles"])}


def format_table(table: pd.DataFrame) -> str:
    """The main columns as text, blanks where a case has no SCALE-Sim run."""
    shown = table[[c for c in ("case", "peforge_wall_ms", "peforge_compute_cycles",
                               "peforge_cycles", "scalesim_run_ms", "scalesim_process_ms",
                               "scalesim_compute_cycles", "speedup_x", "cycles_equal")
                   if c in table]].copy()
    for column in shown.columns[1:]:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(
                lambda v: "" if pd.isna(v) else f"{v:,.0f}" if v >= 1000 else f"{v:.3g}")
        else:
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else str(v))
    return shown.to_string(index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls of peforge per case (after one warm-up; LLaMA: 3 "
                             "at most)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/model_speed.csv"))
    args = parser.parse_args(argv)
    scalesim_python = os.environ.get("SCALESIM_PYTHON") or None
    if scalesim_python is None:
        print("SCALESIM_PYTHON not set: timing peforge only (see the docstring for SCALE-Sim)")
    rows = gemm_rows(args.repeats, scalesim_python)
    rows.append(llama_row(min(args.repeats, 3)))
    table = pd.DataFrame(rows)
    for column in ("m", "k", "n", "scalesim_compute_cycles", "scalesim_stall_cycles"):
        if column in table:
            table[column] = table[column].astype("Int64")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    print(format_table(table))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
