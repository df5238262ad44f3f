"""Every family's Verilog is lint-clean at the edges of its parameter ranges.

Each ranged integer parameter is moved, one at a time from the default configuration, to the
bottom of its range, one above, and its maximum (slow: about 50 lint runs); ``verilator --lint-only -Wall`` with the
documented waivers must pass. A 1 x 1 systolic array once emitted ``wire [-1:0] count``."""

import pytest

from peforge.hw.common.verilog import to_verilog
from peforge.sim.families import families, family
from peforge.sim.rtl.backends.verilator import lint


def _edges(which):
    for name in sorted(families()):
        for field, (spec, default) in family(name).parameters().items():
            if spec.range is None or spec.choices is not None or not isinstance(default, int) \
                    or isinstance(default, bool):
                continue
            low, high = spec.range
            values = {"low": [low, low + 1], "high": [high]}[which]
            for value in values:
                yield pytest.param(name, field, value, id=f"{name}-{field}={value}")


def _lint_or_skip_invalid(name, field, value):
    fam = family(name)
    try:
        config = fam.make_config(**{field: value})
    except ValueError as error:
        pytest.skip(f"not a valid configuration on its own: {error}")
    clean, messages = lint(to_verilog(fam.generator(config), fam.top_name), fam.top_name)
    assert clean, messages


@pytest.mark.slow
@pytest.mark.parametrize("name, field, value", list(_edges("low")))
def test_low_edges_lint_clean(name, field, value):
    _lint_or_skip_invalid(name, field, value)


def test_one_by_one_systolic_array_lint_clean():
    fam = family("systolic")
    for dataflow in ("os", "ws"):
        for rows, cols in ((1, 1), (1, 2), (2, 1)):
            config = fam.make_config(rows=rows, cols=cols, dataflow=dataflow)
            verilog = to_verilog(fam.generator(config), fam.top_name)
            assert "[-1:0]" not in verilog
            clean, messages = lint(verilog, fam.top_name)
            assert clean, (rows, cols, dataflow, messages)


@pytest.mark.slow
@pytest.mark.parametrize("name, field, value", list(_edges("high")))
def test_high_edges_lint_clean(name, field, value):
    _lint_or_skip_invalid(name, field, value)
