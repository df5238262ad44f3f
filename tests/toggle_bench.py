"""cocotb test module of tests/test_energy.py: drives ``d`` of the hand-written register ``reg4``
with the values in ``PEFORGE_TOGGLE_SEQ`` (JSON list), one per rising clock edge."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def drive(dut):
    values = json.loads(os.environ["PEFORGE_TOGGLE_SEQ"])
    dut.d.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for value in values:
        await FallingEdge(dut.clk)
        dut.d.value = value
    await FallingEdge(dut.clk)
