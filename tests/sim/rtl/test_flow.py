"""The verify-and-compare step (peforge.sim.rtl.flow.check_job) and the back-end registry."""

import numpy as np
import pytest

from peforge.sim.families import family
from peforge.sim.rtl.backends import BACKENDS, Backend, get_backend
from peforge.sim.rtl.flow import check_job, verify

SYSTOLIC = family("systolic")
CONFIG = SYSTOLIC.make_config(rows=2, cols=2)


def test_registry_names_its_backends_and_refuses_others():
    assert sorted(BACKENDS) == ["amaranth", "verilator"]
    for name in BACKENDS:
        backend = get_backend(name)
        assert isinstance(backend, Backend) and backend.name == name
    with pytest.raises(ValueError, match=r"^backend: must be one of amaranth, verilator, "
                                         r"got 'ghdl'$"):
        get_backend("ghdl")


def test_check_job_names_the_first_difference_and_the_cycles():
    job = SYSTOLIC.random_job(CONFIG, np.random.default_rng(0), 2, 3, 2)
    (name, right), = SYSTOLIC.golden(CONFIG, job).items()
    model = SYSTOLIC.job_cycles(CONFIG, job)
    good = check_job(SYSTOLIC, CONFIG, job, {name: right}, model)
    assert good.passed and good.describe() == ""
    wrong = right.copy()
    wrong[1, 0] += 1
    wrong[1, 1] -= 1
    bad = check_job(SYSTOLIC, CONFIG, job, {name: wrong}, model + 1)
    assert not bad.passed and not bad.outputs_match
    assert bad.describe() == (f"{name}: 2 values differ, first at (1, 0): RTL {wrong[1, 0]}, "
                              f"golden {right[1, 0]}; RTL {model + 1} cycles, model {model}")
    missing = check_job(SYSTOLIC, CONFIG, job, {}, model)
    assert missing.describe() == f"outputs [], golden ['{name}']"


def test_verify_on_the_amaranth_backend_passes_and_refuses_waves():
    report = verify(SYSTOLIC, CONFIG, backend="amaranth")
    assert report.passed and report.build_dir is None and len(report.jobs) > 1
    with pytest.raises(ValueError, match=r"^waves: the amaranth backend writes no waves$"):
        verify(SYSTOLIC, CONFIG, backend="amaranth", waves=True)
