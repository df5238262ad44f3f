"""Property tests (hypothesis) of the command line's numeric parsing: any out-of-range or
non-numeric option value is one line naming the option and exit status 2, with nothing written;
readable magnitudes read back as the value they show."""

import argparse
import io
import math
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peforge.sim.cli import main
from peforge.sim.cli.cache import _days
from peforge.sim.cli.units import SCALES, readable, unit_for

BOUNDED = settings(max_examples=60, deadline=None)


def run_main(args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(args)
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


@BOUNDED
@given(rows=st.one_of(st.integers(max_value=0), st.integers(min_value=257)))
def test_out_of_range_rows_is_one_line(rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    status, stdout, stderr = run_main(["gen", "systolic", "--rows", str(rows), "--out", str(out)])
    assert status == 2 and stdout == ""
    assert stderr == f"peforge: error: rows: must be an integer in 1..256, got {rows}\n"
    assert not list(out.iterdir())


def _not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@BOUNDED
@given(text=st.text(min_size=1, max_size=12).filter(_not_an_int).filter(
    lambda text: not text.startswith("-") and "\n" not in text and "\r" not in text))
def test_non_integer_rows_is_one_line(text, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    status, stdout, stderr = run_main(["gen", "systolic", "--rows", text, "--out", str(out)])
    assert status == 2 and stdout == ""
    assert stderr.startswith("peforge: error: argument --rows: invalid int value: ")
    assert stderr.count("\n") == 1
    assert not list(out.iterdir())


@BOUNDED
@given(option=st.sampled_from(["--seq", "--input-kib", "--dram-latency"]),
       text=st.one_of(st.floats(allow_nan=True).map(repr).filter(lambda t: "." in t or "n" in t),
                      st.text(alphabet="abc.,xyz", min_size=1, max_size=6)))
def test_non_integer_sim_options_are_one_line(option, text):
    status, stdout, stderr = run_main(["sim", "--family", "systolic", "--workload",
                                       "llama2-7b", "--cycles-only", f"{option}={text}"])
    assert status == 2 and stdout == ""
    assert stderr.startswith(f"peforge: error: argument {option}: invalid int value: ")
    assert stderr.count("\n") == 1


@BOUNDED
@given(days=st.one_of(st.floats(), st.text(max_size=8)))
def test_older_than_takes_finite_days_at_least_zero(days):
    text = days if isinstance(days, str) else repr(days)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value >= 0:
        assert _days(text) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="must be a number of days >= 0"):
            _days(text)


@BOUNDED
@given(base=st.sampled_from(sorted(SCALES)),
       value=st.floats(min_value=1e-12, max_value=1e18, allow_nan=False))
def test_readable_reads_back_as_the_value(base, value):
    number, unit = readable(value, base).split()
    factors = dict(SCALES[base])
    # Four significant digits: the printed number times its unit is the value within 0.05%.
    assert float(number) * factors[unit] == pytest.approx(value, rel=5e-4)
    chosen, factor = unit_for(value, base)
    larger = [step for step in SCALES[base] if step[1] > factor]
    smallest = SCALES[base][0][1]
    if value >= smallest:
        # The largest unit that keeps the number >= 1 (areas: mm2 from 0.001 mm2).
        assert value / factor >= (1e-3 if chosen == "mm2" else 1)
        if larger and not (base == "mm2"):
            assert value / larger[0][1] < 1
