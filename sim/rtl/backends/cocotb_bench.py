"""cocotb test module: runs a family's driver on the Verilator model of its top.

Started by :func:`peforge.sim.rtl.backends.verilator.run_jobs_verilator`, which names a job file in
``PEFORGE_BENCH``; the outputs and cycle counts go to ``outcome.json`` beside it, and the caller
compares them with the golden and timing models.
"""

import json
import os
from importlib import import_module
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from peforge.sim.families import Family


class CocotbPorts:
    """:class:`peforge.hw.common.driver.Ports` on a cocotb DUT (Amaranth paths ``a.b`` are ``a__b``)."""

    def __init__(self, dut):
        self._dut = dut
        self._handles = {}

    def _handle(self, name):
        if name not in self._handles:
            self._handles[name] = getattr(self._dut, name.replace(".", "__"))
        return self._handles[name]

    def set(self, name, value):
        self._handle(name).value = int(value)

    async def settle(self):
        await ReadOnly()

    def get(self, name):
        return int(self._handle(name).value)

    async def tick(self):
        await RisingEdge(self._dut.clk)


def _family(spec: dict) -> Family:
    """The run's family, found in the module that defines it (so that a family the parent
    process registered at run time, e.g. a test's, runs too)."""
    module = import_module(spec["family_module"])
    return next(value for value in vars(module).values()
                if isinstance(value, Family) and value.name == spec["family"])


@cocotb.test()
async def run_jobs(dut):
    spec_path = Path(os.environ["PEFORGE_BENCH"])
    spec = json.loads(spec_path.read_text())
    fam = _family(spec)
    config = fam.make_config(**spec["config"])
    jobs = [fam.job_from_arrays({name: np.array(value, dtype=object)
                                 for name, value in job.items()}) for job in spec["jobs"]]

    # Inputs start at 0 as in Verilator; an undriven input reads z on Icarus, and the first clock
    # edge after reset would latch it into the output registers.
    dut.i_stream__valid.value = 0
    dut.i_stream__payload.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    ports = CocotbPorts(dut)
    outcome = []
    for job in jobs:
        outputs, cycles = await fam.run_job(ports, config, job)
        outcome.append([{k: np.asarray(v).astype(object).tolist() for k, v in outputs.items()},
                        cycles])
    (spec_path.parent / "outcome.json").write_text(json.dumps(outcome))
