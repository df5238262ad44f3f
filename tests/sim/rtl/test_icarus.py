"""The same jobs on a second simulator: Icarus Verilog through cocotb gives the outputs and cycle
counts of the golden and cycle models for one configuration of every family."""

import shutil

import numpy as np
import pytest

from peforge.sim.families import families, family
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.icarus import run_jobs_icarus
from tests.conftest import assert_jobs_exact
from tests.sim.rtl.test_bulk import SMALL

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None,
                                reason="Icarus Verilog not installed (apt-get install iverilog)")


@pytest.mark.parametrize("name", sorted(families()))
def test_icarus_matches_the_models(name):
    fam = family(name)
    config = fam.make_config(**SMALL[name])
    jobs = fam.make_jobs(config, np.random.default_rng(3), "quick")
    verilog, _ = generate(fam, config)
    assert_jobs_exact(fam, config, jobs, run_jobs_icarus(fam, config, jobs, verilog))
