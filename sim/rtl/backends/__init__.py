"""Simulation back ends: one interface, :meth:`Backend.run_jobs`, on every simulator.

``get_backend(name)`` returns a back end by name (modelled on ``cocotb_tools.runner.get_runner``):
``amaranth`` (Amaranth's own simulator, no build: the fast tier) and ``verilator`` (the generated
Verilog built under Verilator and driven through cocotb). Both run a family's own driver
(:mod:`peforge.hw.common.driver`), so the same jobs check the same RTL on both.
"""

from importlib import import_module
from pathlib import Path

__all__ = ["Backend", "BACKENDS", "get_backend"]


class Backend:
    """A simulator that runs a family's jobs on the top of one configuration.

    Subclasses set :attr:`name` and implement :meth:`run_jobs`; those that build something
    before simulating report its folder with :meth:`build_dir`.
    """

    #: The name :func:`get_backend` knows it by.
    name = ""

    def run_jobs(self, family, config, jobs, *,
                 waves_dir: Path | None = None) -> list[tuple[dict, int]]:
        """Run ``jobs`` back to back on one instance of ``family``'s top for ``config``, from
        reset; ``(outputs, cycles)`` per job, as the family's driver returns them. With
        ``waves_dir`` the run leaves a waveform file there."""
        raise NotImplementedError

    def build_dir(self, family, config, *, waves: bool = False) -> Path | None:
        """The folder the simulated model was built in (``None``: nothing is built)."""
        return None


#: Back ends by name: the class, as ``module:Class`` (imported when first asked for).
BACKENDS = {
    "amaranth": "peforge.sim.rtl.backends.amaranth:AmaranthBackend",
    "verilator": "peforge.sim.rtl.backends.verilator:VerilatorBackend",
}


def get_backend(name: str) -> Backend:
    """A new back end of kind ``name`` (a key of :data:`BACKENDS`). Raises ValueError naming the
    choices."""
    try:
        module, _, cls = BACKENDS[name].partition(":")
    except (KeyError, TypeError):
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}, got {name!r}") from None
    return getattr(import_module(module), cls)()
