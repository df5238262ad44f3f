"""Design-space sweeps: a YAML specification, grid and NSGA-II search, and their execution.

A sweep file::

    name: demo                          # optional: the file's stem
    workloads:                          # every combination is run on every point
      workload: llama2-7b               # a model of peforge.sim.perf.workloads.MODELS or a SCALE-Sim
      phase: [decode, prefill]          # CSV (relative to the sweep file)
      seq: 256
    axes:                               # accelerator keys, for every family
      clock_mhz: [800, 1000]
      weight_sram.size_kib: {from: 64, to: 256, times: 2}
      pe.bits: [4, 8]                   # a family parameter: for the families that have it
    families:                           # a point is one family and its own axes
      systolic:
        pe.rows: {from: 16, to: 64, step: 16}
        pe.dataflow: [os, ws]
      lut: {}                           # the family's defaults
    constraints: [utilisation >= 0.05]  # METRIC <=|<|>=|>|== NUMBER, on every workload's row
    objectives: {cycles: min, dram_read_bytes: min}

An axis is a list, a scalar (one value) or a range: ``{from, to, step}`` (inclusive arithmetic)
or ``{from, to, times}`` (geometric). Axis keys are the accelerator's (``clock_mhz``, ``timing``,
``input_sram.size_kib``, ``dram.bytes_per_cycle``, ... : :class:`~peforge.sim.perf.accelerator
.Accelerator`) and ``pe.<parameter>`` of a family. Keys under a family override the shared ones.
Every value is checked against its field when the file is read: unknown keys, wrong types, values
out of range and empty axes raise :class:`SweepError` naming the file and line. A combination
that a configuration rejects (two parameters that do not fit together) is not an error of the
file: the point is stored as failed with the configuration's message.

Metrics (constraints and objectives) are the columns of :data:`peforge.sim.perf.model.METRIC_COLUMNS`
(:func:`~peforge.sim.perf.model.workload_totals`, the ``total`` row of
:func:`~peforge.sim.perf.model.simulate_workload`) plus those of the evaluation
level (:data:`LEVEL_COLUMNS`).

Searches
    ``grid``: every point. ``optuna``: optuna's NSGA-II sampler (multi-objective, with the
    constraints as its ``constraints_func``), asking for generations of ``population`` points
    until ``budget`` points have been used (evaluated, or found in the database); each constraint
    is a trial constraint (``Trial.set_constraint``, the worst workload's violation), so feasible
    points dominate infeasible ones. Its search space is fixed: the family is a
    categorical choice and every axis of every family an integer index into the axis's values,
    so crossover and mutation act on the whole vector; a trial whose family lacks an axis ignores
    that index, and a point seen before is answered from the results instead of re-evaluated.
    Each objective of a point is the mean of its value over the workloads.

Levels
    ``model`` (default): the performance model. ``synth``: plus the PE array synthesised with
    yosys (:func:`peforge.sim.eda.synth.synth_family`). ``verify``: plus the generated RTL built
    under Verilator and the family's bit-exact and cycle-exact checks
    (:func:`peforge.sim.rtl.flow.verify`); a point that fails them is stored as failed.

Execution
    Points run in a local process pool (:class:`concurrent.futures.ProcessPoolExecutor`) or on a
    dask.distributed cluster (its ``concurrent.futures`` executor) in chunks, a list of points
    per future, ``2 x workers`` chunks in flight. The first chunk holds one point; each next one
    as many as the chunk before it ran in about 0.2 s of a worker's time (at most twice its
    size), so slow points (``synth``, ``verify``) and small sweeps still go one by one and fast
    model-only points hundreds at a time. Only the parent process writes the database, one
    transaction per finished chunk; a point whose rows are all stored is skipped, so a killed
    sweep started again carries on. A kill loses at most the chunks in flight: ``2 x workers``
    chunks, each sized for about 0.2 s of work by the chunk before it (longer only where its
    points are slower than those before them; a slow point runs alone, whatever it takes). If a
    worker process of the local pool dies, the pool starts again and the chunks in flight are
    submitted again; a chunk lost twice is stored as failed. (dask restarts its own workers.)
"""

import logging
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from functools import cache, lru_cache
from itertools import islice, product
from pathlib import Path

import yaml

from peforge.models.params import check_param

from peforge.sim.perf.accelerator import Accelerator, Dram, Sram, load_accelerator
from peforge.sim.families import UnknownFamily, family
from peforge.sim.perf.model import METRIC_COLUMNS, workload_totals
from peforge.sim.explore.results import PointKeys, ResultStore, utc_now
from peforge.sim.perf.workloads import workload_gemms

__all__ = ["SweepError", "Axis", "Constraint", "WorkloadSpec", "Sweep", "load_sweep",
           "build_accelerator", "flat_config", "evaluate_point", "evaluate_points", "run_sweep",
           "SweepRun", "LEVELS", "LEVEL_COLUMNS", "SEARCHES", "EXECUTORS", "metric_units"]

LEVELS = ("model", "synth", "verify")
SEARCHES = ("grid", "optuna")
EXECUTORS = ("local", "dask")

#: Metrics each level adds to the model's, with units.
LEVEL_COLUMNS = {
    "model": {},
    "synth": {"synth_nand2_eq": "NAND2 equivalents (transistors / 4) of the PE array",
              "synth_area_mm2": "mm2: PE array NAND2-eq x the osu018 NAND2 area",
              "synth_flip_flops": "register bits of the PE array"},
    "verify": {"verify_jobs": "GEMM jobs checked bit-exact and cycle-exact under Verilator"},
}

_COMPARISONS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
                ">": lambda a, b: a > b, "==": lambda a, b: a == b}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")
_MEMORIES = {"input_sram": Sram, "weight_sram": Sram, "output_sram": Sram, "dram": Dram}


class SweepError(ValueError):
    """A sweep file is wrong; the message starts with ``FILE:LINE: key:``."""


def metric_units(level: str = "verify") -> dict[str, str]:
    """Metric columns a sweep at ``level`` stores (the model's plus each level's up to it)."""
    units = dict(METRIC_COLUMNS)
    for name in LEVELS[:LEVELS.index(level) + 1]:
        units.update(LEVEL_COLUMNS[name])
    return units


@dataclass(frozen=True)
class Axis:
    """One swept key (``clock_mhz``, ``pe.rows``, ...) and its values."""

    key: str
    values: tuple


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, e.g. ``area_mm2 <= 5``."""

    metric: str
    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return _COMPARISONS[self.op](value, self.bound)

    def violation(self, value: float) -> float:
        """How far ``value`` is from meeting the constraint (<= 0: met), for NSGA-II."""
        if self.op in ("<=", "<"):
            return value - self.bound
        if self.op in (">=", ">"):
            return self.bound - value
        return abs(value - self.bound)

    def __str__(self):
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload of a sweep: a model name (or CSV path), a phase and a sequence length."""

    workload: str
    phase: str
    seq: int

    @property
    def label(self) -> str:
        return f"{Path(self.workload).stem} {self.phase} {self.seq}"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the axes of each family, the workloads, constraints and objectives.

    ``objectives`` maps each metric to ``min`` or ``max``.
    """

    name: str
    workloads: tuple[WorkloadSpec, ...]
    axes: dict  # family name -> tuple of Axis (shared axes merged in)
    constraints: tuple[Constraint, ...] = ()
    objectives: dict = field(default_factory=lambda: {"cycles": "min"})

    def points(self) -> Iterator[dict]:
        """Every point of the grid: ``{"family": name, key: value, ...}``."""
        for name, axes in self.axes.items():
            for values in product(*(axis.values for axis in axes)):
                yield {"family": name, **{axis.key: value for axis, value in zip(axes, values)}}

    @property
    def size(self) -> int:
        return sum(math.prod(len(axis.values) for axis in axes) for axes in self.axes.values())

    def describe(self) -> dict:
        """JSON-ready summary stored in the database (what a report needs)."""
        return {"name": self.name, "workloads": [asdict(w) for w in self.workloads],
                "axes": {name: {axis.key: list(axis.values) for axis in axes}
                         for name, axes in self.axes.items()},
                "constraints": [str(c) for c in self.constraints],
                "objectives": dict(self.objectives), "points": self.size}


# --- Reading the YAML file, with line numbers -------------------------------------------------

class _Reader:
    """Walks a composed YAML node tree; errors name the file and the node's line."""

    def __init__(self, path: Path):
        self.path = path
        text = path.read_text()
        self.loader = yaml.SafeLoader(text)
        try:
            self.root = self.loader.get_single_node()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            raise SweepError(f"{path}:{line}: not valid YAML: {getattr(error, 'problem', error)}") \
                from None

    def error(self, node, key: str, message: str) -> SweepError:
        line = node.start_mark.line + 1 if node is not None else 1
        return SweepError(f"{self.path}:{line}: {key}: {message}")

    def value(self, node):
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node, key: str) -> dict:
        """``{name: (key node, value node)}`` of a mapping node."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"must be a mapping, got {self.value(node)!r}")
        items = {}
        for key_node, value_node in node.value:
            name = self.value(key_node)
            if not isinstance(name, str):
                raise self.error(key_node, key, f"keys must be strings, got {name!r}")
            if name in items:
                raise self.error(key_node, f"{key}.{name}" if key else name, "given twice")
            items[name] = (key_node, value_node)
        return items

    def values(self, node, key: str) -> tuple:
        """An axis: a list, a scalar, or a ``{from, to, step|times}`` range; never empty."""
        if isinstance(node, yaml.SequenceNode):
            values = tuple(self.value(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            values = self.range(node, key)
        else:
            values = (self.value(node),)
        if not values or values == (None,):
            raise self.error(node, key, "empty axis: give at least one value")
        if len(set(map(repr, values))) != len(values):
            raise self.error(node, key, f"values repeat: {list(values)}")
        return values

    def range(self, node, key: str) -> tuple:
        items = self.mapping(node, key)
        allowed = {"from", "to", "step", "times"}
        unknown = sorted(set(items) - allowed)
        if unknown or not {"from", "to"} <= set(items) or ("step" in items) == ("times" in items):
            raise self.error(node, key, "a range is {from: A, to: B, step: S} or "
                             "{from: A, to: B, times: F}")
        number = {}
        for name, (_, value_node) in items.items():
            value = self.value(value_node)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(value_node, f"{key}.{name}", f"must be a number, got {value!r}")
            number[name] = value
        low, high = number["from"], number["to"]
        if "step" in number:
            if number["step"] <= 0:
                raise self.error(items["step"][1], f"{key}.step", "must be > 0")
            count = math.floor((high - low) / number["step"] + 1e-9) + 1
            values = [low + index * number["step"] for index in range(max(count, 0))]
        else:
            if number["times"] <= 1 or low <= 0:
                raise self.error(items["times"][1], f"{key}.times",
                                 "must be > 1, with from > 0")
            values, value = [], low
            while value <= high * (1 + 1e-9):
                values.append(value)
                value *= number["times"]
        integer = all(isinstance(number[name], int) for name in number)
        return tuple(round(value) if integer else value for value in values)


def _accelerator_keys() -> list[str]:
    """Swept accelerator keys: ``clock_mhz``, ``timing``, ..., ``<memory>.<field>``."""
    keys = []
    for item in fields(Accelerator):
        if item.name in _MEMORIES:
            keys += [f"{item.name}.{sub.name}" for sub in fields(_MEMORIES[item.name])]
        elif item.name not in ("family", "pe"):
            keys.append(item.name)
    return keys


def _check_value(family_name: str, key: str, value) -> None:
    """Raise ValueError when ``value`` is not allowed for ``key`` on its own."""
    if key.startswith("pe."):
        spec, _default = family(family_name).parameters()[key[3:]]
        check_param(key, spec, value)
        return
    build_accelerator({"family": family_name, key: value})


def _read_axes(reader: _Reader, node, where: str, family_names: list[str]) -> list[Axis]:
    """Axes of one block (shared: ``family_names`` are the sweep's families; a family's block:
    that family alone)."""
    axes = []
    accelerator_keys = _accelerator_keys()
    for key, (key_node, value_node) in reader.mapping(node, where).items():
        if key.startswith("pe."):
            having = [name for name in family_names if key[3:] in family(name).parameters()]
            if not having:
                known = sorted({f"pe.{p}" for name in family_names
                                for p in family(name).parameters()})
                raise reader.error(key_node, key, f"no family of this sweep has this parameter "
                                   f"(known: {', '.join(known)})")
        elif key not in accelerator_keys:
            raise reader.error(key_node, key, "unknown key (accelerator keys: "
                               f"{', '.join(accelerator_keys)}; family parameters: pe.<name>)")
        else:
            having = family_names
        values = reader.values(value_node, key)
        item_nodes = (value_node.value if isinstance(value_node, yaml.SequenceNode)
                      else [value_node] * len(values))
        for value, item_node in zip(values, item_nodes):
            errors = []
            for name in having:
                try:
                    _check_value(name, key, value)
                    break
                except ValueError as error:
                    errors.append(error)
            else:
                raise reader.error(item_node, key, str(errors[0]).removeprefix(f"{key}: ")
                                   .removeprefix(f"{key.split('.')[-1]}: "))
        axes.append(Axis(key, values))
    return axes


def _read_workloads(reader: _Reader, node) -> tuple[WorkloadSpec, ...]:
    items = reader.mapping(node, "workloads")
    unknown = sorted(set(items) - {"workload", "phase", "seq"})
    if unknown:
        raise reader.error(items[unknown[0]][0], f"workloads.{unknown[0]}",
                           "unknown key (known: workload, phase, seq)")
    if "workload" not in items:
        raise reader.error(node, "workloads.workload", "missing (a model name or a CSV file)")
    if isinstance(items["workload"][1], yaml.MappingNode):  # {onnx: PATH}: an ONNX model
        source = reader.mapping(items["workload"][1], "workloads.workload")
        if set(source) != {"onnx"}:
            raise reader.error(items["workload"][1], "workloads.workload",
                               "a mapping is {onnx: PATH} (an ONNX model)")
        items = {**items, "workload": source["onnx"]}
    lists = {name: reader.values(items[name][1], f"workloads.{name}") if name in items
             else default for name, default in (("workload", None), ("phase", ("prefill",)),
                                                ("seq", (2048,)))}
    specs = []
    for workload, phase, seq in product(*lists.values()):
        if not isinstance(workload, str):
            raise reader.error(items["workload"][1], "workloads.workload",
                               f"must be a model name or a CSV path, got {workload!r}")
        if workload.endswith((".csv", ".onnx")):
            workload = str((reader.path.parent / workload).resolve())
        if phase not in ("prefill", "decode"):
            raise reader.error(items["phase"][1], "workloads.phase",
                               f"must be one of prefill, decode, got {phase!r}")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise reader.error(items["seq"][1], "workloads.seq",
                               f"must be a positive integer, got {seq!r}")
        try:
            workload_gemms(workload, phase=phase, seq=seq)
        except ValueError as error:
            name = str(error).split(":")[0]
            raise reader.error(items.get(name, items["workload"])[1], f"workloads.{name}",
                               str(error).split(": ", 1)[-1]) from None
        specs.append(WorkloadSpec(workload, phase, seq))
    return tuple(specs)


def load_sweep(path) -> Sweep:
    """Read and validate a sweep file (see the module docstring)."""
    path = Path(path)
    try:
        reader = _Reader(path)
    except OSError as error:
        raise SweepError(f"sweep: cannot read {path}: {error.strerror or error}") from None
    top = reader.mapping(reader.root, "")
    allowed = ("name", "workloads", "axes", "families", "constraints", "objectives")
    for key, (key_node, _) in top.items():
        if key not in allowed:
            raise reader.error(key_node, key, f"unknown key (known: {', '.join(allowed)})")
    for key in ("workloads", "families"):
        if key not in top:
            raise reader.error(reader.root, key, "missing")
    name = reader.value(top["name"][1]) if "name" in top else path.stem
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise reader.error(top["name"][1], "name", f"must be letters, digits, _ . -, got {name!r}")

    family_node = top["families"][1]
    if isinstance(family_node, yaml.SequenceNode):
        family_blocks = {reader.value(item): (item, None) for item in family_node.value}
    else:
        family_blocks = reader.mapping(family_node, "families")
    if not family_blocks:
        raise reader.error(family_node, "families", "empty: name at least one family")
    for fam_name, (key_node, _) in family_blocks.items():
        try:
            family(fam_name)
        except UnknownFamily as error:
            raise reader.error(key_node, "families", str(error).removeprefix("family: ")) \
                from None
    names = list(family_blocks)
    shared = _read_axes(reader, top["axes"][1], "axes", names) if "axes" in top else []
    axes = {}
    for fam_name, (_, block) in family_blocks.items():
        empty = block is None or block.tag == "tag:yaml.org,2002:null"
        own = [] if empty else _read_axes(reader, block, f"families.{fam_name}", [fam_name])
        keys = {axis.key for axis in own}
        merged = [axis for axis in shared if axis.key not in keys and (
            not axis.key.startswith("pe.") or axis.key[3:] in family(fam_name).parameters())]
        axes[fam_name] = tuple(merged + own)

    metrics = metric_units()
    constraints = []
    if "constraints" in top:
        node = top["constraints"][1]
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for item in items:
            text = reader.value(item)
            match = _CONSTRAINT.match(text) if isinstance(text, str) else None
            if match is None:
                raise reader.error(item, "constraints", f"must read METRIC OP NUMBER with OP one "
                                   f"of {', '.join(_COMPARISONS)}, got {text!r}")
            metric, op, bound = match.groups()
            if metric not in metrics:
                raise reader.error(item, "constraints", f"unknown metric {metric!r} (metrics: "
                                   f"{', '.join(metrics)})")
            try:
                constraints.append(Constraint(metric, op, float(bound)))
            except ValueError:
                raise reader.error(item, "constraints", f"bound must be a number, got {bound!r}") \
                    from None
    objectives = {"cycles": "min"}
    if "objectives" in top:
        node = top["objectives"][1]
        objectives = {}
        for metric, (key_node, value_node) in reader.mapping(node, "objectives").items():
            direction = reader.value(value_node)
            if metric not in metrics:
                raise reader.error(key_node, f"objectives.{metric}",
                                   f"unknown metric (metrics: {', '.join(metrics)})")
            if direction not in ("min", "max"):
                raise reader.error(value_node, f"objectives.{metric}",
                                   f"must be min or max, got {direction!r}")
            objectives[metric] = direction
        if not objectives:
            raise reader.error(node, "objectives", "empty: name at least one metric")
    return Sweep(name, _read_workloads(reader, top["workloads"][1]), axes, tuple(constraints),
                 objectives)


# --- Points ------------------------------------------------------------------------------------

def build_accelerator(values: dict) -> Accelerator:
    """The :class:`Accelerator` of a point ``{"family": name, key: value}``: family defaults and
    accelerator defaults for every key not given. Raises ValueError naming a rejected key.

    The same as :func:`~peforge.sim.perf.accelerator.load_accelerator` of the keys nested by their
    prefix, built from two parts that points share: the PE configuration (the family and the
    ``pe.`` keys) and the rest (the family and the other keys), each loaded once per distinct
    set of values and process. Each part is validated on its own, in load_accelerator's order
    (family, PE, memories, the other keys), and no check of the rest depends on the PE, so a
    point gets the same accelerator or the same error as from one load."""
    pe_part = {key: value for key, value in values.items() if key.partition(".")[0] == "pe"}
    rest = {key: value for key, value in values.items() if key not in pe_part}
    if "family" in values:
        pe_part = {"family": values["family"], **pe_part}
    pe = _load_part(pe_part).pe
    return replace(_load_part(rest), pe=pe)


def _load_part(values: dict) -> Accelerator:
    """``load_accelerator`` of ``values`` (flat keys), cached by the keys, types and values."""
    key = tuple((name, type(value), value) for name, value in values.items())
    try:
        hash(key)
    except TypeError:  # a list or mapping value, which the checks reject: nothing to cache
        return _load_nested(key)
    return _load_cached(key)


def _load_nested(key: tuple) -> Accelerator:
    """``load_accelerator`` of the ``(name, type, value)`` items of :func:`_load_part`, their
    names nested by prefix (``pe.rows`` under ``pe``)."""
    nested: dict = {}
    for name, _type, value in key:
        head, _, sub = name.partition(".")
        if sub:
            nested.setdefault(head, {})[sub] = value
        else:
            nested[name] = value
    return load_accelerator(nested)


#: A sweep's parts repeat with its outer axes; 4096 holds the PE grids of all shipped sweeps.
_load_cached = lru_cache(maxsize=4096)(_load_nested)


def flat_config(accel: Accelerator) -> dict:
    """The accelerator's keys flattened (``family``, ``pe.rows``, ``dram.bytes_per_cycle``, ...)
    plus ``pes``, its multiply-accumulate units: the stored configuration of a point. Keys are in
    field order (the order of the stored JSON)."""
    flat = {"family": accel.family}
    for name, _key in _flat_fields(Accelerator):
        value = getattr(accel, name)
        if is_dataclass(value):
            for sub, key in _flat_fields(type(value), f"{name}."):
                flat[key] = getattr(value, sub)
        elif name != "family":
            flat[name] = value
    flat["pes"] = accel.pes
    return flat


@cache
def _flat_fields(cls, prefix: str = "") -> tuple[tuple[str, str], ...]:
    """``(name, prefix + name)`` of each field of a dataclass, in order: the flat keys made once,
    so the configurations of all points share their key strings (pickled once per chunk)."""
    return tuple((item.name, prefix + item.name) for item in fields(cls))


@dataclass(frozen=True)
class _Task:
    """One point to evaluate: picklable for process pools and dask."""

    values: dict
    accel: Accelerator | None
    error: str | None
    config: dict
    point: str
    workloads: tuple[WorkloadSpec, ...]
    keys: tuple[str, ...]
    level: str


@lru_cache(maxsize=64)
def _keys(workloads: tuple[WorkloadSpec, ...], level: str) -> PointKeys:
    """The key maker of a sweep's points (their workloads and level are the same)."""
    return PointKeys([asdict(workload) for workload in workloads], level)


def _task(values: dict, workloads, level: str) -> _Task:
    try:
        accel = build_accelerator(values)
        config, error = flat_config(accel), None
    except ValueError as exc:
        accel, config, error = None, dict(values), f"config: {exc}"
    workloads = tuple(workloads)
    point, keys = _keys(workloads, level)(config)
    return _Task(values, accel, error, config, point, workloads, keys, level)


def _level_metrics(accel: Accelerator, level: str) -> dict:
    """The ``synth`` and ``verify`` columns of a point (raises on a failure)."""
    metrics = {}
    fam = family(accel.family)
    if level in ("synth", "verify"):
        from peforge.sim.eda import synth

        report = synth.synth_family(fam, accel.pe, liberty=None)
        metrics.update(synth_nand2_eq=report.nand2_eq, synth_flip_flops=report.flip_flops,
                       synth_area_mm2=report.area_um2("osu018") / 1e6)
    if level == "verify":
        from peforge.sim.rtl.flow import verify

        result = verify(fam, accel.pe)
        if not result.passed:
            bad = sum(not job.passed for job in result.jobs)
            raise RuntimeError(f"verify: {bad} of {len(result.jobs)} jobs not bit-exact and "
                               f"cycle-exact (build {result.build_dir})")
        metrics["verify_jobs"] = len(result.jobs)
    return metrics


def evaluate_point(task: _Task) -> list[dict]:
    """Evaluate one point on every workload: the rows to store (see
    :meth:`peforge.sim.explore.results.ResultStore.write_point`). A failure (a configuration the family
    rejects, no tiling that fits, a synthesis or Verilator error, a failed check) gives rows
    with status ``failed`` and the error's text; it is never raised."""
    started = utc_now()
    clock = time.perf_counter()
    outcomes = []
    level_metrics, level_error = {}, task.error
    if level_error is None:
        try:
            level_metrics = _level_metrics(task.accel, task.level)
        except Exception as error:  # noqa: BLE001 - any failure of a point is stored, not raised
            level_error = f"{type(error).__name__}: {error}"
    for workload in task.workloads:
        if level_error is not None:
            outcomes.append((level_error, None))
            continue
        try:
            total = workload_totals(task.accel, workload_gemms(
                workload.workload, phase=workload.phase, seq=workload.seq))
            outcomes.append((None, {**{name: float(total[name]) for name in METRIC_COLUMNS},
                                    **level_metrics}))
        except Exception as error:  # noqa: BLE001
            outcomes.append((f"{type(error).__name__}: {error}", None))
    finished = utc_now()
    seconds = time.perf_counter() - clock
    return [{"key": key, "point": task.point, "family": task.values["family"],
             "config": task.config, "workload": workload.workload, "phase": workload.phase,
             "seq": workload.seq, "level": task.level, "status": "ok" if error is None else "failed",
             "error": error, "metrics": metrics, "started_at": started, "finished_at": finished,
             "seconds": seconds}
            for key, workload, (error, metrics) in zip(task.keys, task.workloads, outcomes)]


# --- Running -----------------------------------------------------------------------------------

@dataclass
class SweepRun:
    """What one :func:`run_sweep` did."""

    sweep: str
    search: str
    level: str
    run: int
    points_asked: int = 0
    points_evaluated: int = 0
    points_skipped: int = 0
    points_failed: int = 0
    seconds: float = 0.0


_log = logging.getLogger(__name__)


class _LocalPool:
    """A process pool that can start again: when a worker process dies, the pool is broken and
    every future still running fails (:class:`~concurrent.futures.process.BrokenProcessPool`);
    :meth:`restart` replaces it with a new one."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers)

    def submit(self, function, *args):
        return self._pool.submit(function, *args)

    def restart(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = ProcessPoolExecutor(max_workers=self.workers)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _executor(kind: str, scheduler: str | None, workers: int):
    if kind == "local":
        pool = _LocalPool(workers)
        try:
            yield pool
        finally:
            pool.shutdown()
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client.get_executor(pure=False)
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client.get_executor(pure=False)


#: Worker seconds a chunk of points aims at: long enough that a future's own cost (pickling,
#: the round trip, one database transaction) is small beside it, short enough that a kill loses
#: little and the progress bar moves.
CHUNK_SECONDS = 0.2
#: Chunks in flight per worker: one running, one waiting, so a worker never waits for the parent.
CHUNKS_PER_WORKER = 2
#: Points read, checked against the database and noted in ``run_points`` at a time.
_BLOCK = 512


def evaluate_points(tasks: list[_Task]) -> list[list[dict]]:
    """:func:`evaluate_point` of each task, in order: one chunk of a sweep, run by a worker."""
    return [evaluate_point(task) for task in tasks]


class _Runner:
    """Evaluates points on an executor in chunks and stores each chunk as it finishes.

    A chunk starts at one point and then holds about :data:`CHUNK_SECONDS` of work by the last
    chunk's seconds per point (at most twice the last size: the first points of a worker are
    slow, and a mis-estimate should not stall the pipeline); near the end of a batch chunks
    shrink so that every worker gets a share. Points that take long (synthesis, Verilator) thus
    run one per chunk, and fast model-only points hundreds per chunk."""

    def __init__(self, store: ResultStore, run: SweepRun, pool, workers: int, progress,
                 retry_failed: bool):
        self.store, self.run, self.pool, self.progress = store, run, pool, progress
        self.workers = workers
        self.chunk = 1
        self.done = store.finished_keys(include_failed=not retry_failed)

    def evaluate(self, tasks: Iterable[_Task], count: int) -> None:
        """Evaluate the ``count`` tasks of ``tasks`` (read as needed) whose rows are not all
        stored yet; the others count as skipped.

        If a worker process of the local pool dies, the pool starts again and the chunks it
        lost are submitted again; a chunk lost twice is stored as failed (a point that kills
        its worker, e.g. by running out of memory), so the sweep goes on."""
        in_flight = CHUNKS_PER_WORKER * self.workers
        handed, skipped = 0, self.run.points_skipped
        todo = self._unfinished(tasks)
        pending: dict = {}  # future -> (chunk, how many times it was lost before)
        while True:
            while len(pending) < in_flight:
                left = count - handed - (self.run.points_skipped - skipped)
                chunk = list(islice(todo, max(1, min(self.chunk, -(-left // in_flight)))))
                if not chunk:
                    break
                pending[self.pool.submit(evaluate_points, chunk)] = (chunk, 0)
                handed += len(chunk)
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            lost = []
            for future in finished:
                chunk, losses = pending.pop(future)
                try:
                    points = future.result()
                except BrokenProcessPool:
                    lost.append((chunk, losses))
                    continue
                self._store(points)
            if lost:
                self._start_again(pending, lost)

    def _start_again(self, pending: dict, lost: list) -> None:
        """Restart the broken pool and submit its lost chunks again, those still running
        included (they fail too); store the chunks lost twice as failed."""
        for future in list(pending):
            chunk, losses = pending.pop(future)
            if future.done() and future.exception() is None:
                self._store(future.result())
            else:
                lost.append((chunk, losses))
        self.pool.restart()
        _log.warning("sweep: a worker process died; the pool started again and %d points run "
                     "again", sum(len(chunk) for chunk, losses in lost if not losses))
        for chunk, losses in lost:
            if losses:
                self._store([evaluate_point(replace(
                    task, error="worker: the process evaluating this point died, twice"))
                    for task in chunk])
            else:
                pending[self.pool.submit(evaluate_points, chunk)] = (chunk, 1)

    def _unfinished(self, tasks: Iterable[_Task]) -> Iterator[_Task]:
        """The tasks whose rows are not all stored, read and noted in blocks of :data:`_BLOCK`
        (the others are counted as skipped)."""
        tasks = iter(tasks)
        while block := list(islice(tasks, _BLOCK)):
            self.store.note_points(self.run.run, [task.point for task in block])
            self.run.points_asked += len(block)
            todo = [task for task in block if not all(key in self.done for key in task.keys)]
            self.run.points_skipped += len(block) - len(todo)
            self.progress.update(len(block) - len(todo))
            yield from todo

    def _store(self, points: list[list[dict]]) -> None:
        """Store a finished chunk (one transaction) and size the next one by its seconds."""
        self.store.write_points(points, self.run.run)
        for rows in points:
            self.done.update(row["key"] for row in rows)
            self.run.points_failed += any(row["status"] == "failed" for row in rows)
        self.run.points_evaluated += len(points)
        self.progress.update(len(points))
        seconds = sum(rows[0]["seconds"] for rows in points) / len(points)
        self.chunk = max(1, min(2 * len(points), int(CHUNK_SECONDS / max(seconds, 1e-6))))


def run_sweep(sweep: Sweep, db, *, search: str = "grid", budget: int | None = None,
              level: str = "model", executor: str = "local", scheduler: str | None = None,
              workers: int | None = None, quiet: bool = False, seed: int = 0,
              population: int = 20, retry_failed: bool = False) -> SweepRun:
    """Run ``sweep`` into the results database ``db`` (see the module docstring).

    ``budget``: with ``optuna``, the number of new points to evaluate (required); with ``grid``,
    none. ``workers``: processes of the local pool or of a dask LocalCluster (default: the CPU
    count); with ``scheduler`` the cluster's own workers run the points. ``quiet`` hides the
    progress bar (it is also hidden when stderr is not a terminal).
    """
    from tqdm import tqdm

    for name, value, allowed in (("search", search, SEARCHES), ("level", level, LEVELS),
                                 ("executor", executor, EXECUTORS)):
        if value not in allowed:
            raise ValueError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
    units = metric_units(level)
    for metric in [c.metric for c in sweep.constraints] + list(sweep.objectives):
        if metric not in units:
            needs = next(name for name in LEVELS if metric in LEVEL_COLUMNS[name])
            raise ValueError(f"level: {metric} is measured at level {needs} (--{needs}), "
                             f"this sweep runs at {level}")
    if search == "optuna" and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise ValueError(f"budget: --search optuna needs a positive number of points, "
                         f"got {budget!r}")
    if search == "grid" and budget is not None:
        raise ValueError("budget: applies to --search optuna (a grid runs every point)")
    if scheduler is not None and executor != "dask":
        raise ValueError("scheduler: applies to --executor dask")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers: must be a positive integer, got {workers}")
    started = time.perf_counter()
    with ResultStore(db) as store:
        store.save_sweep(sweep.name, sweep.describe())
        run = SweepRun(sweep.name, search, level, store.start_run(sweep.name, search, level))
        total = sweep.size if search == "grid" else min(budget, sweep.size)
        with tqdm(total=total, unit="point", disable=True if quiet else None,
                  desc=sweep.name, dynamic_ncols=True) as progress, \
                _executor(executor, scheduler, workers) as pool:
            runner = _Runner(store, run, pool, workers, progress, retry_failed)
            if search == "grid":
                runner.evaluate((_task(values, sweep.workloads, level)
                                 for values in sweep.points()), sweep.size)
            else:
                _optuna_search(sweep, runner, store, level, budget, seed, population)
        run.seconds = time.perf_counter() - started
        store.finish_run(run.run, run.points_asked, run.points_evaluated)
    return run


def _objective_values(sweep: Sweep, rows) -> tuple[list[float] | None, list[float]]:
    """A point's objectives (each the mean of the metric over its workloads' rows) and its
    constraint violations (the worst workload's; <= 0 is met), or ``(None, [])`` when a row
    failed."""
    if any(row["status"] != "ok" for row in rows):
        return None, []
    values = [sum(row["metrics"][metric] for row in rows) / len(rows)
              for metric in sweep.objectives]
    violations = [max(c.violation(row["metrics"][c.metric]) for row in rows)
                  for c in sweep.constraints]
    return values, violations


def _optuna_search(sweep: Sweep, runner: _Runner, store: ResultStore, level: str, budget: int,
                   seed: int, population: int) -> None:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=[("minimize" if d == "min" else "maximize")
                                            for d in sweep.objectives.values()], sampler=sampler)
    family_names = list(sweep.axes)
    seen: dict[str, list[dict]] = {}
    # A generous cap on trials: once the space is (almost) exhausted, asks repeat old points.
    for _generation in range(max(1, 50 * budget // population)):
        if runner.run.points_evaluated + runner.run.points_skipped >= min(budget, sweep.size):
            break
        trials, tasks = [], []
        for _ in range(population):
            trial = study.ask()
            name = trial.suggest_categorical("family", family_names)
            values = {"family": name}
            for fam_name in family_names:
                for axis in (axis for axis in sweep.axes[fam_name] if len(axis.values) > 1):
                    index = trial.suggest_int(f"{fam_name}:{axis.key}", 0, len(axis.values) - 1)
                    if fam_name == name:
                        values[axis.key] = axis.values[index]
            values.update({axis.key: axis.values[0] for axis in sweep.axes[name]
                           if len(axis.values) == 1})
            task = _task(values, sweep.workloads, level)
            trials.append((trial, task))
            if task.point not in seen and task.point not in {t.point for t in tasks}:
                tasks.append(task)
        room = min(budget, sweep.size) - runner.run.points_evaluated - runner.run.points_skipped
        runner.evaluate(tasks[:room], len(tasks[:room]))
        found = store.rows_of({key for task in tasks[:room] for key in task.keys})
        for task in tasks[:room]:
            seen[task.point] = [found[key] for key in task.keys]
        for trial, task in trials:
            if task.point not in seen:
                study.tell(trial, state=TrialState.PRUNED)
                continue
            values, violations = _objective_values(sweep, seen[task.point])
            if values is None:
                study.tell(trial, state=TrialState.FAIL)
                continue
            for constraint, violation in zip(sweep.constraints, violations):
                trial.set_constraint(str(constraint), violation)
            study.tell(trial, values)
