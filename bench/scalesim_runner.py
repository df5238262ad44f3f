"""Run SCALE-Sim 3.0.0 on GEMM layers in a subprocess of its own venv: shared by the bench
scripts that compare against it (``model_speed.py``, ``scalesim_compat.py``).

SCALE-Sim is never a dependency of peforge: ``python`` is a venv's interpreter with
``scalesim==3.0.0`` and ``numpy<2.4`` (2.4 crashes in its scratchpad model). Each run uses
64/64/64 KiB SRAMs and an interface bandwidth of 10 words per cycle (its example configuration),
in its cheapest mode (``save_disk_space=True``, no traces; ``verbose=False``).

SCALE-Sim's GEMM rows are ``name, M, N, K,`` (trailing comma, a header line first) and its source
(``topology_utils.load_arrays_gemm``) makes A ``M x K`` and B ``K x N``: a peforge
``Gemm(m, k, n)`` is the row ``name, m, n, k,``.
"""

import json
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

__all__ = ["SCALESIM_CONFIG", "run_layers"]

SCALESIM_CONFIG = """\
[general]
run_name = bench

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 64
FilterSramSzkB: 64
OfmapSramSzkB: 64
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: {dataflow}
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# Runs inside SCALESIM_PYTHON: argv = config, topology, layout, output folder.
SCALESIM_DRIVER = """\
import json, sys, time
from importlib.metadata import version
from scalesim.scale_sim import scalesim
config, topology, layout, out = sys.argv[1:]
sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology,
               layout=layout, input_type_gemm=True)
start = time.perf_counter()
sim.run_scale(top_path=out)
print(json.dumps({"run_s": time.perf_counter() - start, "version": version("scalesim")}))
"""


def run_layers(python: str, rows: int, cols: int, dataflow: str, layers) -> tuple:
    """Run SCALE-Sim once over ``layers`` (``(name, M, N, K)``, its reading) on a ``rows x
    cols`` array in a temporary folder: ``(report, run_s, process_s, version)``, the report its
    COMPUTE_REPORT.csv (one row per layer), ``run_s`` its ``run_scale()`` call timed inside the
    subprocess, ``process_s`` the whole subprocess."""
    with tempfile.TemporaryDirectory(prefix="scalesim-bench-") as folder:
        folder = Path(folder)
        (folder / "scale.cfg").write_text(SCALESIM_CONFIG.format(rows=rows, cols=cols,
                                                                 dataflow=dataflow))
        (folder / "gemm.csv").write_text("Layer, M, N, K,\n" + "".join(
            f"{name}, {m}, {n}, {k},\n" for name, m, n, k in layers))
        # Required even when the custom layouts are off: a header line is enough.
        (folder / "layout.csv").write_text("Layer name, IFMAP Height Intraline Factor,\n")
        start = time.perf_counter()
        proc = subprocess.run([python, "-c", SCALESIM_DRIVER, str(folder / "scale.cfg"),
                               str(folder / "gemm.csv"), str(folder / "layout.csv"),
                               str(folder / "out")], capture_output=True, text=True, cwd=folder)
        process_s = time.perf_counter() - start
        report = folder / "out" / "bench" / "COMPUTE_REPORT.csv"
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(f"SCALE-Sim failed (exit {proc.returncode}, no {report.name}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        measured = json.loads(proc.stdout.strip().splitlines()[-1])
        return (pd.read_csv(report, skipinitialspace=True), measured["run_s"], process_s,
                measured["version"])
