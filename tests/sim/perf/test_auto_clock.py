"""``clock_mhz: auto``: the accelerator runs at its PE array's static-timing Fmax, per PE
configuration, in a loaded accelerator and in every sweep point."""

import hashlib
import math

import pytest

from peforge.sim.eda import synth, timing
from peforge.sim.explore.points import build_accelerator, make_task
from peforge.sim.explore.spec import load_sweep
from peforge.sim.explore.workload_spec import WorkloadSpec
from peforge.sim.families import family
from peforge.sim.perf.accelerator import load_accelerator

needs_sta = pytest.mark.skipif(
    timing.shutil.which("sta") is None,
    reason="needs Debian's opensta (apt-get install opensta)")


def _fmax(rows: int, cols: int) -> float:
    fam = family("systolic")
    return timing.time_family(fam, fam.make_config(rows=rows, cols=cols),
                              synth.default_liberty()).fmax_in_place_mhz


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


def test_auto_clock_with_an_unreadable_liberty_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(synth.LIBERTY_ENV, str(tmp_path / "missing.lib"))
    with pytest.raises(ValueError, match=r"^clock_mhz: auto: liberty: cannot read "
                                         r".*missing\.lib: No such file or directory$"):
        load_accelerator({"family": "systolic", "pe": {"rows": 1, "cols": 1},
                          "clock_mhz": "auto"})


@needs_sta
def test_auto_clocked_rows_are_keyed_by_the_liberty_content(monkeypatch, tmp_path):
    """The same library under another path gives the same rows; another content (here a
    comment added, which changes no delay) gives other rows."""
    point = {"family": "systolic", "pe.rows": 1, "pe.cols": 1, "clock_mhz": "auto"}
    workloads = (WorkloadSpec("llama2-7b", "decode", 16),)
    shipped = make_task(point, workloads, "model")
    text = synth.OSU018_LIBERTY.read_bytes()
    copy, edited = tmp_path / "copy.lib", tmp_path / "edited.lib"
    copy.write_bytes(text)
    edited.write_bytes(text + b"/* another revision */\n")
    monkeypatch.setenv(synth.LIBERTY_ENV, str(copy))
    same = make_task(point, workloads, "model")
    monkeypatch.setenv(synth.LIBERTY_ENV, str(edited))
    other = make_task(point, workloads, "model")
    assert shipped.config["clock_liberty_sha256"] == hashlib.sha256(text).hexdigest()[:16]
    assert other.config["clock_liberty_sha256"] == \
        hashlib.sha256(edited.read_bytes()).hexdigest()[:16]
    assert (same.point, same.keys) == (shipped.point, shipped.keys)
    assert other.point != shipped.point and set(other.keys).isdisjoint(shipped.keys)
    # Only the keys moved: the clock is the same Fmax.
    assert other.config["clock_mhz"] == shipped.config["clock_mhz"] == \
        math.floor(_fmax(1, 1) * 10) / 10
    # The PE configuration is in the key too; a fixed clock's rows carry no Liberty.
    assert make_task({**point, "pe.cols": 2}, workloads, "model").keys != shipped.keys
    assert "clock_liberty_sha256" not in make_task({**point, "clock_mhz": 400}, workloads,
                                                   "model").config


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
                      (2, "auto"): math.floor(two.fmax_in_place_mhz * 10) / 10, (2, 400): 400}
