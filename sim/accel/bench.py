"""The cocotb test that runs GEMMs end to end on the accelerator tile under Verilator.

``PEFORGE_ACCEL_BENCH`` names a JSON spec: the AXI width, the DRAM's ``bytes_per_cycle``
(``null``: ideal) and ``latency_cycles``, and a list of runs, each a descriptor
(:class:`peforge.hw.accelerator.layout.Descriptor` fields) with the A and W matrices. For each run
the bench writes A and W into the ``AxiRam`` at the descriptor's addresses (row strides as given,
padding zero), writes the descriptor through ``AxiLiteMaster``, sets start, waits for the
interrupt, and reads back C (M x N signed 32-bit), the status and every counter. Results go to
``outcome.json`` next to the spec.
"""

import json
import logging
import math
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from peforge.hw.accelerator.regs import COUNTERS, CTRL, DESCRIPTOR, STATUS

from peforge.sim.accel.dram import DramShaper

#: Simulated cycles a run may take before the bench gives up (a hang).
TIMEOUT_CYCLES = 5_000_000


def _pack_rows(matrix, stride: int, elem_bytes: int) -> bytes:
    """Rows of ``elem_bytes`` little-endian elements (two's complement, or float patterns),
    each padded to ``stride`` bytes."""
    out = bytearray()
    mask = (1 << (8 * elem_bytes)) - 1
    for row in matrix:
        data = b"".join((int(v) & mask).to_bytes(elem_bytes, "little") for v in row)
        out += data + bytes(stride - len(data))
    return bytes(out)


async def _run(dut, axil, ram, run, elem_bytes):
    d = run["descriptor"]
    if run.get("a") is not None:
        ram.write(d["a_base"], _pack_rows(run["a"], d["a_stride"], elem_bytes))
        ram.write(d["w_base"], _pack_rows(run["w"], d["w_stride"], elem_bytes))
    for name, offset, _ in DESCRIPTOR:
        await axil.write_dword(offset, d[name])
    await axil.write_dword(CTRL, 1)
    waited = 0
    while not dut.irq.value:
        await RisingEdge(dut.clk)
        waited += 1
        if waited > TIMEOUT_CYCLES:
            return {"timeout": True}
    status = await axil.read_dword(STATUS)
    counters = {name: await axil.read_dword(offset) for name, offset, _ in COUNTERS}
    c = None
    if not status & 4:
        raw = ram.read(d["c_base"], d["m"] * d["c_stride"])
        c = [[int.from_bytes(raw[r * d["c_stride"] + 4 * j:r * d["c_stride"] + 4 * j + 4],
                             "little", signed=True) for j in range(d["n"])]
             for r in range(d["m"])]
    await axil.write_dword(CTRL, 2)
    return {"status": status, "counters": counters, "c": c, "timeout": False}


@cocotb.test()
async def run_gemms(dut):
    spec_path = Path(os.environ["PEFORGE_ACCEL_BENCH"])
    spec = json.loads(spec_path.read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=spec["ram_bytes"])
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
    # The AXI models log one INFO line per burst under cocotb.<top>.<bus>.
    logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)
    rate = spec["bytes_per_cycle"]
    DramShaper(dut, ram, "m_axi_", spec["beat_bytes"], math.inf if rate is None else rate,
               spec["latency_cycles"])
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    results = []
    for run in spec["runs"]:
        results.append(await _run(dut, axil, ram, run, spec["elem_bytes"]))
        if results[-1]["timeout"]:
            break
    (spec_path.parent / "outcome.json").write_text(json.dumps(results))
