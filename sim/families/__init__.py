"""The PE families: the :class:`Family` base class, the job records and the family registry.

A family is a subclass of :class:`Family` in ``peforge.sim.families.<name>``, registered as an
entry point of the group ``peforge.families`` (see pyproject.toml) naming the subclass; the CLI,
the verification flow and the contract tests iterate :func:`families`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from peforge.models.operand_stats import VERIFY, OperandStats
from peforge.models.params import param_specs

__all__ = ["Family", "AreaPart", "Job", "GemmJob", "families", "family", "UnknownFamily",
           "evaluate_latency"]


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


@dataclass(frozen=True, eq=False)
class Job:
    """One job of a family: its operand arrays, one field each (subclasses declare them).

    A job is what the golden model, the driver and the cycle model take; :meth:`arrays` and
    :meth:`Family.job_from_arrays` carry it through a file (the Verilator bench) and back.
    """

    def arrays(self) -> dict[str, np.ndarray]:
        """The operand arrays by field name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def shape(self) -> tuple[int, int, int]:
        """The ``(m, k, n)`` GEMM of the job."""
        raise NotImplementedError(f"{type(self).__name__} declares no GEMM shape")


@dataclass(frozen=True, eq=False)
class GemmJob(Job):
    """``C = A @ B``: ``a`` (M x K) and ``b`` (K x N) operand arrays (integers or bit patterns)."""

    a: np.ndarray
    b: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.b.shape[1]


def evaluate_latency(text: str, m, k, n) -> int:
    """The value of a :meth:`Family.latency` expression for an ``m x k x n`` GEMM (exact while
    the quotients inside ``ceil`` are below 2**53)."""
    return eval(text, {"__builtins__": {}, "ceil": math.ceil}, {"M": m, "K": k, "N": n})


class Family:
    """The parts of one PE family, found by the same names for every family.

    A family subclasses this and sets the class attributes :attr:`name`, :attr:`summary`,
    :attr:`config`, :attr:`job_type` (default :class:`GemmJob`) and :attr:`port_docs`, and
    implements the hooks that raise NotImplementedError here (:meth:`generator`, :meth:`golden`,
    :meth:`gemm_cycles`, :meth:`latency`, :meth:`random_job`, :meth:`make_jobs`, :meth:`run_job`,
    :meth:`pes`); the others have defaults that a family overrides where it differs:

    * a family whose pace depends on its data overrides :meth:`job_cycles` (bit-serial: the
      groups' weight types), one whose pace depends on the weight width accepts ``w_bits``
      in :meth:`gemm_cycles`, and one whose mode depends on the weights' measured sparsity
      overrides :meth:`run_config` (sparse-dsp);
    * a family whose area can be composed from parts synthesised once overrides
      :meth:`area_parts`;
    * :meth:`pipeline_overlap`, :meth:`energy_config` and :meth:`energy_shape` for streaming and
      activity runs.

    Attributes
    ----------
    name : str
        Command-line name (``peforge gen NAME``).
    summary : str
        One line for ``peforge list``.
    config : type
        Frozen, self-validating configuration dataclass (fields declared with
        :func:`peforge.models.params.param`).
    job_type : type
        The :class:`Job` subclass of the family's jobs.
    port_docs : dict
        Meaning of each top-level port but ``clk`` and ``rst`` (the contract tests check that
        these are exactly the top's ports).
    """

    name: str
    summary: str
    config: type
    job_type: type = GemmJob
    port_docs: dict

    # -- hooks every family implements ----------------------------------------------------------

    def generator(self, config):
        """The top whose Verilog is generated (an Amaranth ``wiring.Component``)."""
        raise NotImplementedError

    def golden(self, config, job) -> dict:
        """Bit-exact expected outputs of ``job``, by output name."""
        raise NotImplementedError

    def gemm_cycles(self, config, m: int, k: int, n: int, w_bits: int | None = None) -> int:
        """The cycle model: cycles of an ``m x k x n`` GEMM (``m``, ``k``, ``n`` may be integer
        arrays that broadcast) with weights ``w_bits`` wide (None: any the configuration
        allows; only a family whose pace depends on the weight width looks at it); what the
        performance model charges per tile. Where the cycles also depend on the job's data
        (:meth:`job_cycles`), the family documents which case this counts."""
        raise NotImplementedError

    def latency(self, config) -> str:
        """:meth:`gemm_cycles` of ``config`` as an expression in ``M``, ``K``, ``N`` and
        ``ceil`` (:func:`evaluate_latency`), for the manifest; built from the configuration by
        the same terms as the cycle model (the contract tests evaluate it against
        :meth:`gemm_cycles`)."""
        raise NotImplementedError

    def random_job(self, config, rng: np.random.Generator, m: int, k: int, n: int,
                   stats: OperandStats = VERIFY):
        """A random job of one GEMM shape, its operands drawn by ``stats`` (the default:
        verification patterns)."""
        raise NotImplementedError

    def make_jobs(self, config, rng: np.random.Generator, sizes: str = "quick") -> list:
        """Random and corner-case jobs for verification; ``sizes`` is "quick" or "full"."""
        raise NotImplementedError

    async def run_job(self, ports, config, job) -> tuple[dict, int]:
        """The driver, for any simulator: ``(outputs, cycles)`` of ``job`` on the top."""
        raise NotImplementedError

    def pes(self, config) -> int:
        """Multiply-accumulate units, for utilisation (MACs / (PEs x cycles))."""
        raise NotImplementedError

    # -- hooks with defaults --------------------------------------------------------------------

    def job_shape(self, job) -> tuple[int, int, int]:
        """The ``(m, k, n)`` GEMM of ``job``."""
        return job.shape

    def job_cycles(self, config, job) -> int:
        """The cycles the RTL takes for ``job`` (what measured cycles are compared with); by
        default :meth:`gemm_cycles` of its shape."""
        return self.gemm_cycles(config, *self.job_shape(job))

    def job_from_arrays(self, arrays: dict):
        """The job whose :meth:`Job.arrays` are ``arrays``."""
        return self.job_type(**arrays)

    def run_config(self, config, w_sparsity):
        """The configuration the array runs a GEMM in whose weight has the measured sparsity
        ``w_sparsity`` (a :class:`~peforge.sim.perf.workloads.weight_sparsity.WeightSparsity`;
        None: unknown): what the performance model times and charges that GEMM by. Default:
        ``config`` itself, whatever the weights."""
        return config

    def pipeline_overlap(self, config) -> int:
        """Cycles by which a GEMM streamed right after another overlaps it (the next one's
        first beat may be accepted that many cycles before the previous one's last output). A
        stream of GEMMs takes the sum of their cycles minus this per boundary. Default 0."""
        return 0

    def area_parts(self, config) -> list[AreaPart] | None:
        """Parts whose areas, times their counts, add up to the top's: lets ``peforge synth``
        compose a large top from parts synthesised once each
        (:func:`peforge.sim.eda.synth.synth_family`). Default None: flat synthesis only."""
        return None

    def energy_config(self, config):
        """The reduced configuration whose activity run measures the energy per MAC of
        ``config`` (:func:`peforge.sim.eda.energy.op_energy`): the same PE datapath with few PEs
        (e.g. a 2 x 2 array, 4 lanes). Default: the configuration itself."""
        return config

    def energy_shape(self, config) -> tuple[int, int, int]:
        """The GEMM of the activity run on the reduced configuration; its ``m * k * n`` MACs
        are the run's ``ops``. Default ``(1, 256, 1)``."""
        return 1, 256, 1

    # -- derived --------------------------------------------------------------------------------

    @property
    def composable(self) -> bool:
        """Whether the family overrides :meth:`area_parts` (its area can be composed)."""
        return type(self).area_parts is not Family.area_parts

    @property
    def data_paced(self) -> bool:
        """Whether the family overrides :meth:`job_cycles` (its cycles depend on a job's data,
        so :meth:`gemm_cycles` is a bound rather than the count)."""
        return type(self).job_cycles is not Family.job_cycles

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

    def __repr__(self) -> str:
        return f"<family {self.name}>"


class UnknownFamily(ValueError):
    pass


@cache
def families() -> dict[str, Family]:
    """All registered families, by name (each entry point names a :class:`Family` instance)."""
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
