"""peforge's ``--timing scalesim-<df>`` against SCALE-Sim 3.0.0 runs: compute cycles per layer,
equal whatever the memories, and the two stall estimates side by side.

SCALE-Sim runs in its own venv (never a dependency of peforge; it needs numpy < 2.4)::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 'numpy<2.4'

Topologies (layers of at most ``--max-macs``, default 2**24): the GEMM files of SCALE-Sim's own
repository (github.com/scalesim-project/
scale-sim-v2, read from a git directory given by ``--repo``, e.g. the one the search tool's fetch
leaves under /work/.mirror), its conv files lowered by SCALE-Sim's own rule (``topology_utils``:
``ceil((H - Fh + s) / s)`` output rows, ``K = Fh * Fw * C``, ``N`` filters), and a few rows of our
own with ragged sizes. Arrays: square and not, powers of two and not (``--arrays``). Each SCALE-Sim
run (:mod:`scalesim_runner`) uses 64/64/64 KiB SRAMs and an interface bandwidth of 10 words per
cycle; its compute cycles are ``Total Cycles - Stall Cycles`` of COMPUTE_REPORT.csv.

peforge side: :func:`peforge.sim.perf.model.simulate_gemm` with ``timing="scalesim-<df>"`` under
three memories, SCALE-Sim's 64 KiB SRAMs at 10 B/cycle, peforge's defaults (sized to the array,
25.6 B/cycle DDR4) and tiny 16 KiB SRAMs; ``compute_equal`` is True when all three equal
SCALE-Sim's compute cycles. The stall columns are each tool's own estimate (SCALE-Sim's from its
demand traces, peforge's from its tile pipeline): they are reported, not expected to match.

Writes ``reports/bench/scalesim_compat.csv`` and prints a summary.
Run: ``.venv/bin/python bench/scalesim_compat.py --python /tmp/scalesim-venv/bin/python
--repo /work/.mirror/scalesim-project+scale-sim-v2/repo``.
"""

import argparse
import math
import subprocess
from pathlib import Path

import pandas as pd

from peforge.models.systolic import SystolicConfig
from peforge.sim.perf.accelerator import Accelerator, Dram, Sram
from peforge.sim.perf.model import simulate_gemm
from peforge.sim.perf.workloads import Gemm
from scalesim_runner import run_layers

#: The repository's topology files run by default (GEMM rows ``name, M, N, K``, conv rows).
GEMM_FILES = ("topologies/GEMM_mnk/test_mnk_input.csv",
              "topologies/GEMM_mnk/transformer_partial.csv")
CONV_FILES = ("topologies/conv_nets/test.csv",)

#: Our own rows, ``(name, M, N, K)`` as SCALE-Sim reads them: ragged in every dimension.
OWN_ROWS = (("own_ragged", 77, 50, 129), ("own_thin", 1, 300, 33), ("own_tall", 333, 7, 65))

def repo_file(repo: Path, path: str) -> list[list[str]]:
    """The data rows of a topology file of the repository (header dropped, cells stripped)."""
    text = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{path}"],
                          capture_output=True, text=True, check=True).stdout
    return [[cell.strip() for cell in line.split(",") if cell.strip()]
            for line in text.splitlines()[1:] if line.strip()]


def conv_row(cells: list[str]) -> tuple[str, int, int, int]:
    """A conv row lowered to ``(name, M, N, K)`` by SCALE-Sim 3.0's rule."""
    name, height, width, fh, fw, channels, filters, stride = cells[0], *map(int, cells[1:8])
    out_h = math.ceil((height - fh + stride) / stride)
    out_w = math.ceil((width - fw + stride) / stride)
    return name, out_h * out_w, filters, fh * fw * channels


def layers(repo: Path, max_macs: int) -> list[tuple[str, str, int, int, int]]:
    """``(source, name, M, N, K)`` of every layer compared: those of at most ``max_macs`` MACs
    (SCALE-Sim's run time and memory grow with the layer's demand matrices)."""
    found = [(path, cells[0], *map(int, cells[1:4])) for path in GEMM_FILES
             for cells in repo_file(repo, path)]
    found += [(path, *conv_row(cells)) for path in CONV_FILES for cells in repo_file(repo, path)]
    found += [("own", *row) for row in OWN_ROWS]
    return [layer for layer in found if math.prod(layer[2:]) <= max_macs]


MEMORIES = {
    "scalesim_64k": dict(input_sram=Sram(64), weight_sram=Sram(64), output_sram=Sram(64),
                         dram=Dram(bytes_per_cycle=10.0)),
    "defaults": {},
    "tiny_16k": dict(input_sram=Sram(16), weight_sram=Sram(16), output_sram=Sram(16)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="a python with scalesim 3.0.0")
    parser.add_argument("--repo", type=Path, required=True,
                        help="git directory of scalesim-project/scale-sim-v2")
    parser.add_argument("--arrays", default="32x32,24x40,12x20,7x13")
    parser.add_argument("--max-macs", type=int, default=1 << 24)
    parser.add_argument("--out", type=Path, default=Path("reports/bench/scalesim_compat.csv"))
    args = parser.parse_args()
    compared = layers(args.repo, args.max_macs)
    rows = []
    for array in args.arrays.split(","):
        height, width = map(int, array.split("x"))
        for dataflow in ("os", "ws", "is"):
            report = run_layers(args.python, height, width, dataflow,
                                [layer[1:] for layer in compared])[0]
            for (source, name, m, n, k), (_, line) in zip(compared, report.iterrows()):
                reference = int(line["Total Cycles"] - line["Stall Cycles"])
                row = {"source": source, "layer": name, "M": m, "N": n, "K": k,
                       "array": array, "dataflow": dataflow,
                       "scalesim_compute_cycles": reference,
                       "scalesim_stall_cycles": int(line["Stall Cycles"])}
                for memory, fields in MEMORIES.items():
                    accel = Accelerator("systolic", SystolicConfig(rows=height, cols=width),
                                        timing=f"scalesim-{dataflow}", **fields)
                    result = simulate_gemm(accel, Gemm(name, m, k, n))
                    row[f"peforge_compute_{memory}"] = result.compute_cycles
                    row[f"peforge_stall_{memory}"] = result.cycles - result.compute_cycles
                row["compute_equal"] = all(row[f"peforge_compute_{memory}"] == reference
                                           for memory in MEMORIES)
                rows.append(row)
            print(f"{array} {dataflow}: {len(compared)} layers run", flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"{int(table.compute_equal.sum())} of {len(table)} layer runs: peforge's compute cycles "
          f"equal SCALE-Sim's under all three memories; wrote {args.out}")


if __name__ == "__main__":
    main()
