"""The wheel carries what an installed peforge reads at run time: the shipped energy table, the
OSU018 Liberty and the sweep files (``peforge demo`` runs ``peforge.sweeps``' demo.yaml, not a
file beside the checkout)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_holds_package_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path,
                   capture_output=True)
    (wheel,) = tmp_path.glob("peforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_sweeps = {f"peforge/sweeps/{path.name}" for path in (ROOT / "sweeps").glob("*.yaml")}
    assert {"peforge/sim/eda/data/op_energy.json", "peforge/sweeps/demo.yaml"} <= names
    assert {f"peforge/sim/eda/data/osu018/{name}"
            for name in ("osu018_stdcells.lib", "COPYING", "README")} <= names
    assert shipped_sweeps <= names
    shipped_models = {f"peforge/sim/perf/workloads/models/{path.name}"
                      for path in (ROOT / "sim/perf/workloads/models").glob("*.json")}
    assert len(shipped_models) == 5 and shipped_models <= names
    assert "peforge/sim/rtl/backends/cocotb_bench.py" in names
