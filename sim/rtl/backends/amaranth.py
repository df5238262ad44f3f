"""Run a family's driver on Amaranth's own simulator (the fast tier: no Verilator build)."""

from amaranth import Value
from amaranth.sim import Simulator

from peforge.sim.rtl.backends import Backend

__all__ = ["AmaranthPorts", "AmaranthBackend"]


class AmaranthPorts:
    """:class:`peforge.hw.common.driver.Ports` on an Amaranth testbench context."""

    def __init__(self, ctx, dut):
        self._ctx, self._dut = ctx, dut
        self._signals = {}

    def _signal(self, name: str):
        if name not in self._signals:
            value = self._dut
            for part in name.split("."):
                value = getattr(value, part)
            self._signals[name] = Value.cast(value)
        return self._signals[name]

    def set(self, name: str, value: int) -> None:
        self._ctx.set(self._signal(name), int(value))

    async def settle(self) -> None:
        """Testbench reads are always settled in Amaranth."""

    def get(self, name: str) -> int:
        return self._ctx.get(self._signal(name))

    async def tick(self) -> None:
        await self._ctx.tick()


class AmaranthBackend(Backend):
    """Amaranth's simulator on the generator's component: no build, no Verilog."""

    name = "amaranth"

    def run_jobs(self, family, config, jobs, *, waves_dir=None) -> list[tuple[dict, int]]:
        if waves_dir is not None:
            raise ValueError("waves: the amaranth backend writes no waves")
        dut = family.generator(config)
        sim = Simulator(dut)
        sim.add_clock(1e-8)
        results = []

        async def testbench(ctx):
            ports = AmaranthPorts(ctx, dut)
            for job in jobs:
                results.append(await family.run_job(ports, config, job))

        sim.add_testbench(testbench)
        sim.run()
        return results
