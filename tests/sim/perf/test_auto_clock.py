"""``clock_mhz: auto``: the accelerator runs at its PE array's static-timing Fmax, per PE
configuration, in a loaded accelerator and in every sweep point."""

import math

import pytest

from peforge.sim.eda import synth, timing
from peforge.sim.explore.points import build_accelerator
from peforge.sim.explore.spec import load_sweep
from peforge.sim.families import family
from peforge.sim.perf import accelerator
from peforge.sim.perf.accelerator import load_accelerator

needs_sta = pytest.mark.skipif(
    synth.default_liberty() is None or timing.shutil.which("sta") is None,
    reason="needs Debian's opensta and qflow-tech-osu018 (apt-get install opensta "
           "qflow-tech-osu018)")


def _fmax(rows: int, cols: int) -> float:
    fam = family("systolic")
    return timing.time_family(fam, fam.make_config(rows=rows, cols=cols),
                              synth.default_liberty()).fmax_mhz


@needs_sta
def test_auto_clock_is_the_arrays_static_fmax():
    accel = load_accelerator({"family": "systolic", "pe": {"rows": 1, "cols": 1},
                              "clock_mhz": "auto"})
    fmax = _fmax(1, 1)
    assert accel.clock_mhz == math.floor(fmax * 10) / 10 and fmax - 0.1 < accel.clock_mhz
    # The int8 PE on OSU018 runs near 200 MHz (shared/reference/toolchain.md: ~180 MHz).
    assert 150 < accel.clock_mhz < 300


@needs_sta
def test_sweep_points_each_get_their_own_clock():
    """The 2 x 2 array's path crosses a neighbour's multiplier: a slower clock than 1 x 1."""
    one, two = (build_accelerator({"family": "systolic", "pe.rows": size, "pe.cols": size,
                                   "clock_mhz": "auto"}) for size in (1, 2))
    assert one.clock_mhz == math.floor(_fmax(1, 1) * 10) / 10
    assert two.clock_mhz == math.floor(_fmax(2, 2) * 10) / 10
    assert two.clock_mhz < one.clock_mhz
    fixed = build_accelerator({"family": "systolic", "pe.rows": 2, "pe.cols": 2,
                               "clock_mhz": 500})
    assert fixed.clock_mhz == 500


def test_auto_clock_without_a_liberty_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(synth, "default_liberty", lambda: None)
    accelerator.auto_clock_mhz.cache_clear()
    with pytest.raises(ValueError, match=r"^clock_mhz: auto needs a Liberty library for static "
                                         r"timing \(apt-get install qflow-tech-osu018\)$"):
        load_accelerator({"family": "systolic", "pe": {"rows": 1, "cols": 1},
                          "clock_mhz": "auto"})
    accelerator.auto_clock_mhz.cache_clear()


def test_other_clock_words_are_refused():
    with pytest.raises(ValueError, match=r"^clock_mhz: must be a number > 0, got 'fast'$"):
        load_accelerator({"family": "systolic", "clock_mhz": "fast"})


@needs_sta
def test_a_sweep_file_may_ask_for_the_auto_clock(tmp_path):
    """Reading the file times nothing (the family default, an 8 x 8 array, would take minutes
    flat); each point is timed on its own array when it is built."""
    (tmp_path / "s.yaml").write_text(
        "workloads: {workload: llama2-7b, phase: decode, seq: 16}\n"
        "axes: {clock_mhz: [auto, 400]}\n"
        "families: {systolic: {pe.rows: [1, 2], pe.cols: 1}}\n")
    sweep = load_sweep(tmp_path / "s.yaml")
    clocks = {(point["pe.rows"], point["clock_mhz"]): build_accelerator(point).clock_mhz
              for point in sweep.points()}
    fam = family("systolic")
    two = timing.time_family(fam, fam.make_config(rows=2, cols=1), synth.default_liberty())
    assert clocks == {(1, "auto"): math.floor(_fmax(1, 1) * 10) / 10, (1, 400): 400,
                      (2, "auto"): math.floor(two.fmax_mhz * 10) / 10, (2, 400): 400}
