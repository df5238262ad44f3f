"""The PE families: one record per family tying its parts together.

A family is registered as an entry point of the group ``peforge.families`` (see pyproject.toml), so
a new family is a new module and one line there; the CLI, the verification flow and the tests
iterate :func:`families`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from functools import cache
from importlib.metadata import entry_points

from peforge.models.params import param_specs

__all__ = ["Family", "AreaPart", "families", "family", "UnknownFamily"]


@dataclass(frozen=True)
class AreaPart:
    """One part of a top's area for composition: ``count`` copies of what ``build`` returns.

    Attributes
    ----------
    name : str
        Part name (a Verilog identifier), e.g. ``pe``.
    count : int
        Copies of the part in the top.
    build : callable
        ``() -> wiring.Component``: the part. Where it holds copies of another part, those are
        :class:`peforge.hw.common.parts.BlackBox` stand-ins and counted by that part.
    black_boxes : tuple of (str, wiring.Signature)
        ``(name, signature)`` of each kind of black box the part instantiates.
    """

    name: str
    count: int
    build: Callable[[], Any]
    black_boxes: tuple = ()


@dataclass(frozen=True)
class Family:
    """The parts of one PE family, found by the same names for every family.

    Attributes
    ----------
    name : str
        Command-line name (``peforge gen NAME``).
    summary : str
        One line for ``peforge list``.
    config : type
        Frozen, self-validating configuration dataclass (fields declared with
        :func:`peforge.models.params.param`).
    generator : callable
        ``config -> wiring.Component``: the top whose Verilog is generated.
    golden : callable
        ``(config, job) -> dict of arrays``: bit-exact expected outputs of a job.
    cycles : callable
        ``(config, m, k, n) -> int``: the timing model's cycles for an ``m x k x n`` GEMM. Where
        the cycles also depend on the job's data (``job_timing``), the family documents which
        case this counts (bit-serial: every group of the widest allowed type, the slowest).
    job_shape : callable
        ``job -> (m, k, n)``: the GEMM shape of a job.
    run_job : callable
        ``async (ports, config, job) -> (outputs, cycles)``: the driver, for any simulator.
    make_jobs : callable
        ``(config, rng, sizes) -> list of jobs``: random and corner-case jobs for verification;
        ``sizes`` is "quick" or "full".
    random_job : callable
        ``(config, rng, m, k, n, stats=VERIFY) -> job``: a random job of one GEMM shape, its
        operands drawn by a :class:`peforge.models.operand_stats.OperandStats` (the default:
        verification patterns).
    latency : str
        The cycle model as a formula, for the manifest.
    port_docs : dict
        Meaning of each top-level port.
    pes : callable
        ``config -> int``: multiply-accumulate units, for utilisation (MACs / (PEs x cycles)).
    pipeline_overlap : callable
        ``config -> int``: cycles by which a GEMM streamed right after another overlaps it (the
        next one's first beat may be accepted that many cycles before the previous one's last
        output). A stream of GEMMs takes the sum of their cycles minus this per boundary.
    width_cycles : callable, optional
        ``(config, m, k, n, w_bits) -> int``: cycles of a GEMM whose weights are ``w_bits`` wide,
        for a family whose pace depends on the weight width (bit-serial). None: ``cycles``,
        whatever the width. See :meth:`gemm_cycles`.
    job_timing : callable, optional
        ``(config, job) -> int``: the cycles of one job exactly, for a family whose cycles
        depend on more than the job's shape (the bit-serial groups' types). None: ``cycles`` of
        the job's shape. See :meth:`job_cycles`.
    area_parts : callable, optional
        ``config -> list of AreaPart`` whose areas, times their counts, add up to the top's:
        lets ``peforge synth`` compose a large top from parts synthesised once each
        (:func:`peforge.sim.eda.synth.synth_family`). None: flat synthesis only.
    energy_config : callable
        ``config -> config``: the reduced configuration whose activity run measures the energy
        per MAC of ``config`` (:func:`peforge.sim.eda.energy.op_energy`): the same PE datapath with
        few PEs (e.g. a 2 x 2 array, 4 lanes). Default: the configuration itself.
    energy_shape : callable
        ``config -> (m, k, n)``: the GEMM of the activity run on the reduced configuration; its
        ``m * k * n`` MACs are the run's ``ops``.
    """

    name: str
    summary: str
    config: type
    generator: Callable
    golden: Callable[..., dict]
    cycles: Callable[..., int]
    job_shape: Callable[[dict], tuple[int, int, int]]
    run_job: Callable[..., Awaitable[tuple[dict, int]]]
    make_jobs: Callable[..., list[dict]]
    random_job: Callable[..., dict]
    latency: str
    port_docs: dict
    pes: Callable[..., int] | None = None
    pipeline_overlap: Callable[..., int] = lambda config: 0
    width_cycles: Callable[..., int] | None = None
    job_timing: Callable[..., int] | None = None
    area_parts: Callable[..., list[AreaPart]] | None = None
    energy_config: Callable[..., Any] = lambda config: config
    energy_shape: Callable[..., tuple[int, int, int]] = lambda config: (1, 256, 1)

    def gemm_cycles(self, config, m: int, k: int, n: int, w_bits: int | None = None) -> int:
        """The timing model's cycles of an ``m x k x n`` GEMM with weights ``w_bits`` wide (None:
        any weights the configuration allows); what the performance model charges per tile."""
        if w_bits is None or self.width_cycles is None:
            return self.cycles(config, m, k, n)
        return self.width_cycles(config, m, k, n, w_bits)

    def job_cycles(self, config, job: dict) -> int:
        """The cycles the RTL takes for ``job``: what measured cycles are compared with."""
        if self.job_timing is None:
            return self.cycles(config, *self.job_shape(job))
        return self.job_timing(config, job)

    @property
    def top_name(self) -> str:
        """Verilog module name of the family's top."""
        return self.name.replace("-", "_")

    def parameters(self):
        """``{field: (ParamSpec, default)}`` of the configuration."""
        return param_specs(self.config)

    def make_config(self, **values):
        """A validated configuration; unknown names raise ValueError naming them."""
        unknown = sorted(set(values) - set(self.parameters()))
        if unknown:
            raise ValueError(f"{unknown[0]}: not a parameter of {self.name} "
                             f"(parameters: {', '.join(self.parameters())})")
        return self.config(**values)


class UnknownFamily(ValueError):
    pass


@cache
def families() -> dict[str, Family]:
    """All registered families, by name."""
    found = {}
    for point in entry_points(group="peforge.families"):
        record = point.load()
        found[record.name] = record
    return dict(sorted(found.items()))


def family(name: str) -> Family:
    """The family called ``name``; :class:`UnknownFamily` (a ValueError) names the known ones."""
    try:
        return families()[name]
    except KeyError:
        raise UnknownFamily(f"family: must be one of {', '.join(families())}, got {name!r}") from None
