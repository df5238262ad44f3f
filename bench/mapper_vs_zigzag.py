"""peforge's mapper side by side with ZigZag's (LOMA) on the same accelerator and layers.

Accelerator: a 16 x 16 output-stationary int8 systolic array (32-bit sums), 256 KiB input,
weight and output SRAMs with ports of 256 B per cycle (peforge's default 64 B x 4 banks), and a
DRAM of 25.5 B per cycle (204 bits: ZigZag's port bandwidths are whole bits) with a latency of
1 cycle (ZigZag's memories take one); :mod:`zigzag_runner` gives ZigZag the same array and
memories. Layers: the convolutions of ResNet-18 at 224 x 224 and batch 1 as the GEMMs peforge
runs them (im2col: M = output pixels, K = C * Fh * Fw, N = output channels; one row per distinct
shape), and the distinct GEMM shapes of one LLaMA-2-7B block, decode and prefill at 256 tokens.

Per layer: peforge's chosen mapping (``tm x tk x tn / order``, loops outermost first), its
cycles, the mappings simulated and pruned, and its search time (median of ``--repeats`` calls
of :func:`peforge.sim.perf.model.simulate_gemm`, every model cache emptied before each);
ZigZag's latency (its own cost model), its time for the layer (search and evaluation, timed in
its process), and its chosen temporal mapping read as a peforge mapping: the loops under the
lowest DRAM boundary of the three operands are the tile (with the spatial unrolling, M over
the rows and N over the columns), the loops above it the tile loop order (``exact`` is False
when a dimension is split across several places of that order, which peforge's one-level
tiling cannot say; the dimension's outermost place is taken). That mapping is simulated by
peforge's own cycle model (``peforge_cycles_of_zigzag``, whether or not its tile is among
peforge's candidate sizes) and ``ratio`` is peforge's cycles over it: the target is at most 1
(never slower than ZigZag's mapping under peforge's model). ``note`` explains every row above 1.
``speedup_x`` is ZigZag's seconds per layer over peforge's.

Writes ``reports/bench/mapper.csv`` (``--out``). Needs ``ZIGZAG_PYTHON`` (a venv's python with
``zigzag-dse``, :mod:`zigzag_runner`); run:
``make peers`` then ``ZIGZAG_PYTHON=.peers/zigzag/bin/python .venv/bin/python bench/mapper_vs_zigzag.py``.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

from peforge.models.systolic import SystolicConfig
from peforge.sim.perf import model as perf
from peforge.sim.perf.accelerator import Accelerator, Dram, Sram
from peforge.sim.perf.pipeline import simulate_recurrence
from peforge.sim.perf.tiling import Mapping
from peforge.sim.perf.workloads import Gemm, workload_gemms
from peforge.sim.studies.tables import write_table
from zigzag_runner import run_layers

ROWS = COLS = 16
SRAM_KIB = 256
DRAM_BITS_PER_CYCLE = 204

#: ResNet-18's convolutions: (name, input side, in channels, out channels, filter, stride,
#: padding), one per distinct GEMM shape.
RESNET18_CONVS = [("conv1", 224, 3, 64, 7, 2, 3), ("layer1.conv", 56, 64, 64, 3, 1, 1),
                  ("layer2.0.conv1", 56, 64, 128, 3, 2, 1), ("layer2.conv", 28, 128, 128, 3, 1, 1),
                  ("layer2.0.downsample", 56, 64, 128, 1, 2, 0),
                  ("layer3.0.conv1", 28, 128, 256, 3, 2, 1), ("layer3.conv", 14, 256, 256, 3, 1, 1),
                  ("layer4.0.conv1", 14, 256, 512, 3, 2, 1), ("layer4.conv", 7, 512, 512, 3, 1, 1)]

#: ZigZag's layer dimensions as GEMM dimensions.
DIMS = {"D": "m", "C": "k", "K": "n"}


def accelerator() -> Accelerator:
    sram = Sram(size_kib=SRAM_KIB)
    return Accelerator("systolic", SystolicConfig(rows=ROWS, cols=COLS, bits=8, dataflow="os"),
                       input_sram=sram, weight_sram=sram, output_sram=sram,
                       dram=Dram(bytes_per_cycle=DRAM_BITS_PER_CYCLE / 8, latency_cycles=1))


def layers() -> list[Gemm]:
    found = []
    for name, side, c_in, c_out, size, stride, pad in RESNET18_CONVS:
        out = (side + 2 * pad - size) // stride + 1
        found.append(Gemm(f"resnet18.{name}", out * out, c_in * size * size, c_out))
    seen = set()
    for phase in ("decode", "prefill"):
        for gemm in workload_gemms("llama2-7b", phase=phase, seq=256):
            if gemm.shape not in seen and gemm.w_bits == 8 and gemm.a_bits == 8:
                seen.add(gemm.shape)
                found.append(Gemm(f"llama2-7b.{phase}.{gemm.name}", gemm.m, gemm.k, gemm.n))
    return found


def zigzag_accel(accel: Accelerator) -> dict:
    return {"rows": ROWS, "cols": COLS, "a_bits": 8, "w_bits": 8, "out_bits": 32,
            **{f"{name}_bytes": getattr(accel, f"{name}_sram").size_bytes
               for name in ("input", "weight", "output")},
            **{f"{name}_port": getattr(accel, f"{name}_sram").bytes_per_cycle
               for name in ("input", "weight", "output")},
            "dram_bytes_per_cycle": DRAM_BITS_PER_CYCLE / 8}


def read_zigzag_mapping(loops: dict, gemm: Gemm) -> tuple[Mapping, bool]:
    """ZigZag's temporal mapping (per operand, its loops at each memory level, innermost first;
    the last level DRAM) as a peforge mapping, and whether that reading is exact."""
    sequence = [loop for level in loops["I"] for loop in level]
    boundary = min(sum(len(level) for level in levels[:-1]) for levels in loops.values())
    tile = {"m": ROWS, "k": 1, "n": COLS}
    for dim, size in sequence[:boundary]:
        tile[DIMS[dim]] *= size
    runs = []
    for dim, _size in reversed(sequence[boundary:]):
        if not runs or runs[-1] != DIMS[dim]:
            runs.append(DIMS[dim])
    order = list(dict.fromkeys(runs))
    exact = len(order) == len(runs)
    order += [dim for dim in "mkn" if dim not in order]
    sizes = {dim: min(tile[dim], getattr(gemm, dim)) for dim in "mkn"}
    return Mapping(sizes["m"], sizes["k"], sizes["n"], "".join(order)), exact


def fits(accel: Accelerator, gemm: Gemm, mapping: Mapping) -> bool:
    """peforge's legality rule: double-buffered blocks within the three SRAMs."""
    return (2 * mapping.tm * mapping.tk * gemm.a_bits / 8 <= accel.input_sram.size_bytes
            and 2 * mapping.tk * mapping.tn * gemm.w_bits / 8 <= accel.weight_sram.size_bytes
            and 2 * mapping.tm * mapping.tn * gemm.out_bits / 8 <= accel.output_sram.size_bytes)


def peforge_run(accel: Accelerator, gemm: Gemm, repeats: int):
    times = []
    for _ in range(repeats):
        perf.clear_caches()
        started = time.perf_counter()
        result = perf.simulate_gemm(accel, gemm)
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def note(row: dict) -> str:
    if row["ratio"] <= 1:
        return ""
    reasons = []
    if not row["zigzag_tile_is_candidate"]:
        reasons.append("ZigZag's tile is not among peforge's candidate sizes (the dimension "
                       "itself or powers of two from 16)")
    if not row["zigzag_fits_peforge"]:
        reasons.append("ZigZag's tile does not fit peforge's double-buffered SRAMs")
    if not row["zigzag_reading_exact"]:
        reasons.append("ZigZag splits a dimension over two places of its loop order, which a "
                       "one-level tiling reads only approximately")
    return "; ".join(reasons) or "unexplained: peforge's mapper missed a legal mapping"


def candidate(size: int, dim: int) -> bool:
    return size == dim or (size >= 16 and size < dim and size & (size - 1) == 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    python = os.environ.get("ZIGZAG_PYTHON")
    if not python:
        sys.exit("ZIGZAG_PYTHON: set it to a python with zigzag-dse installed "
                 "(bench/zigzag_runner.py says how)")
    accel = accelerator()
    gemms = layers()
    zigzag, process_s = run_layers(python, zigzag_accel(accel),
                                   [(g.name, g.m, g.k, g.n) for g in gemms])
    rows = []
    for gemm, theirs in zip(gemms, zigzag, strict=True):
        result, seconds = peforge_run(accel, gemm, args.repeats)
        mapping, exact = read_zigzag_mapping(theirs["loops"], gemm)
        tile_cycles, overlap = perf._tile_timing(accel, gemm)
        cycles_of_theirs, _compute = simulate_recurrence(accel, gemm, mapping, tile_cycles,
                                                         overlap)
        row = {"layer": gemm.name, "m": gemm.m, "k": gemm.k, "n": gemm.n,
               "peforge_mapping": str(result.mapping), "peforge_cycles": result.cycles,
               "peforge_simulated": result.simulated, "peforge_pruned": result.pruned,
               "peforge_ms": seconds * 1e3,
               "zigzag_loops": " | ".join(
                   f"{operand}: " + " / ".join(" ".join(f"{d}{s}" for d, s in level)
                                              for level in levels)
                   for operand, levels in theirs["loops"].items()),
               "zigzag_mapping": str(mapping), "zigzag_reading_exact": exact,
               "zigzag_tile_is_candidate": all(candidate(getattr(mapping, f"t{d}"),
                                                         getattr(gemm, d)) for d in "mkn"),
               "zigzag_fits_peforge": fits(accel, gemm, mapping),
               "zigzag_latency": theirs["latency"], "zigzag_s": theirs["seconds"],
               "peforge_cycles_of_zigzag": cycles_of_theirs,
               "ratio": result.cycles / cycles_of_theirs,
               "speedup_x": theirs["seconds"] / seconds,
               "zigzag_version": theirs["version"]}
        row["note"] = note(row)
        rows.append(row)
    table = pd.DataFrame(rows)
    write_table(table, args.out / "mapper.csv")
    print(f"\nZigZag process {process_s:.1f} s; peforge never slower than ZigZag's mapping: "
          f"{bool((table['ratio'] <= 1).all())}; speed-up per layer: "
          f"min {table['speedup_x'].min():.0f}x, median {table['speedup_x'].median():.0f}x; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
