"""The sweep file: its YAML read with line numbers into a validated :class:`Sweep`.

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
or ``{from, to, times}`` (geometric); ``clock_mhz: auto`` clocks each point at its PE array's
static-timing Fmax (:func:`~peforge.sim.perf.accelerator.auto_clock_mhz`). Axis keys are the accelerator's (``clock_mhz``, ``timing``,
``input_sram.size_kib``, ``dram.bytes_per_cycle``, ... : :class:`~peforge.sim.perf.accelerator
.Accelerator`) and ``pe.<parameter>`` of a family. Keys under a family override the shared ones.
Every value is checked against its field when the file is read: unknown keys, wrong types, values
out of range and empty axes raise :class:`SweepError` naming the file and line. A combination
that a configuration rejects (two parameters that do not fit together) is not an error of the
file: the point is stored as failed with the configuration's message.

Metrics (constraints and objectives) are those of :func:`peforge.sim.explore.points.metric_units`.
"""

import math
import re
from dataclasses import dataclass, field, fields
from itertools import product
from pathlib import Path
from collections.abc import Iterator

import yaml

from peforge.models.params import check_param
from peforge.sim.explore.bounded_yaml import MAX_NODES, SweepError, YamlNodes
from peforge.sim.explore.points import OPTIONAL_METRICS, build_accelerator, metric_units
from peforge.sim.explore.workload_spec import MAX_WORKLOADS, WorkloadSpec, read_workloads
from peforge.sim.families import UnknownFamily, family
from peforge.sim.perf.accelerator import AUTO_CLOCK, Accelerator, Dram, Sram

__all__ = ["SweepError", "Axis", "Constraint", "WorkloadSpec", "Sweep", "load_sweep", "safe_name",
           "MAX_AXIS_VALUES", "MAX_WORKLOADS"]

#: Most values one axis may hold (a range is sized before it is expanded).
MAX_AXIS_VALUES = MAX_NODES

_COMPARISONS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
                ">": lambda a, b: a > b, "==": lambda a, b: a == b}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")
_MEMORIES = {"input_sram": Sram, "weight_sram": Sram, "output_sram": Sram, "dram": Dram}


_NAME_LENGTH = 100


def safe_name(text: str) -> str:
    """``text`` as a safe file name: runs of other characters than letters, digits, ``_ . -``
    become ``_``, leading dots and dashes go (no ``..``, no hidden file, no option), at most
    100 characters; ``sweep`` if nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).lstrip(".-")[:_NAME_LENGTH] or "sweep"


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
        """Every point of the grid: ``{"family": name, key: value, ...}``, the keys in the
        order of the sweep's axes. Within a family the PE array's axes (``pe.``) vary slowest:
        consecutive points, which a sweep hands to one worker in one chunk, share a PE array and
        so the mapper's work on it (:mod:`peforge.sim.perf.mapper`)."""
        for name, axes in self.axes.items():
            nested = sorted(axes, key=lambda axis: not axis.key.startswith("pe."))
            for values in product(*(axis.values for axis in nested)):
                chosen = dict(zip((axis.key for axis in nested), values))
                yield {"family": name, **{axis.key: chosen[axis.key] for axis in axes}}

    @property
    def optional_metrics(self) -> tuple[str, ...]:
        """The :data:`~peforge.sim.explore.points.OPTIONAL_METRICS` its constraints and
        objectives name (evaluated for this sweep's points only)."""
        named = {c.metric for c in self.constraints} | set(self.objectives)
        return tuple(sorted(named & set(OPTIONAL_METRICS)))

    @property
    def size(self) -> int:
        return sum(math.prod(len(axis.values) for axis in axes) for axes in self.axes.values())

    def describe(self) -> dict:
        """JSON-ready summary stored in the database (what a report needs)."""
        return {"name": self.name, "workloads": [w.key_fields() for w in self.workloads],
                "axes": {name: {axis.key: list(axis.values) for axis in axes}
                         for name, axes in self.axes.items()},
                "constraints": [str(c) for c in self.constraints],
                "objectives": dict(self.objectives), "points": self.size}


# --- Reading the YAML file, with line numbers -------------------------------------------------

class _Reader(YamlNodes):
    """The sweep file's nodes (:class:`~peforge.sim.explore.bounded_yaml.YamlNodes`) and the
    shapes a sweep reads from them: mappings, axes and ranges."""

    def mapping(self, node, key: str) -> dict:
        """``{name: (key node, value node)}`` of a mapping node."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key or "sweep", f"must be a mapping, got "
                             f"{self.value(node, key)!r}")
        items = {}
        for key_node, value_node in node.value:
            name = self.value(key_node, key)
            if not isinstance(name, str):
                raise self.error(key_node, key, f"keys must be strings, got {name!r}")
            if name in items:
                raise self.error(key_node, f"{key}.{name}" if key else name, "given twice")
            items[name] = (key_node, value_node)
        return items

    def values(self, node, key: str) -> tuple:
        """An axis: a list, a scalar, or a ``{from, to, step|times}`` range; never empty."""
        if isinstance(node, yaml.SequenceNode):
            values = tuple(self.value(item, key) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            values = self.range(node, key)
        else:
            values = (self.value(node, key),)
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
            value = self.value(value_node, f"{key}.{name}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    name != "to" and not math.isfinite(value)) or math.isnan(value):
                raise self.error(value_node, f"{key}.{name}",
                                 f"must be a{' finite' if name != 'to' else ''} number, "
                                 f"got {value!r}")
            number[name] = value
        low, high = number["from"], number["to"]
        if "step" in number:
            step = number["step"]
            if step <= 0:
                raise self.error(items["step"][1], f"{key}.step", "must be > 0")
            exact = all(isinstance(number[name], int) for name in ("from", "to", "step"))
            count = ((high - low) // step + 1 if exact else
                     math.floor((high - low) / step + 1e-9) + 1 if math.isfinite(high) else
                     math.inf)
        else:
            times = number["times"]
            if times <= 1 or low <= 0:
                raise self.error(items["times"][1], f"{key}.times",
                                 "must be > 1, with from > 0")
            ratio = high / low
            count = (math.floor(math.log(ratio) / math.log(times) + 1e-9) + 1
                     if math.isfinite(ratio) and ratio >= 1 else 0 if ratio < 1 else math.inf)
        if count > MAX_AXIS_VALUES:
            many = "infinitely many" if count == math.inf else str(count)
            raise self.error(node, key, f"the range holds {many} values, more than "
                             f"{MAX_AXIS_VALUES}")
        if "step" in number:
            values = [low + index * step for index in range(max(count, 0))]
        else:
            values, value = [], low
            while value <= high * (1 + 1e-9) and len(values) <= count:
                values.append(value)
                value *= times
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
    if key == "clock_mhz" and value == AUTO_CLOCK:
        return  # timed per point, on the point's own PE configuration
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
    name = reader.value(top["name"][1], "name") if "name" in top else safe_name(path.stem)
    if not isinstance(name, str) or safe_name(name) != name:
        raise reader.error(top["name"][1], "name", f"must be letters, digits, _ . - (not starting with "
                           f". or -), at most {_NAME_LENGTH} of them, got {name!r}")

    family_node = top["families"][1]
    if isinstance(family_node, yaml.SequenceNode):
        family_blocks = {}
        for item in family_node.value:
            fam_name = reader.value(item, "families")
            if not isinstance(fam_name, str):
                raise reader.error(item, "families", f"must be family names, got {fam_name!r}")
            family_blocks[fam_name] = (item, None)
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
            text = reader.value(item, "constraints")
            match = _CONSTRAINT.match(text) if isinstance(text, str) else None
            if match is None:
                raise reader.error(item, "constraints", f"must read METRIC OP NUMBER with OP one "
                                   f"of {', '.join(_COMPARISONS)}, got {text!r}")
            metric, op, bound = match.groups()
            if metric not in metrics:
                raise reader.error(item, "constraints", f"unknown metric {metric!r} (metrics: "
                                   f"{', '.join(metrics)})")
            try:
                number = float(bound)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise reader.error(item, "constraints", f"bound must be a finite number, got "
                                   f"{bound!r}")
            constraints.append(Constraint(metric, op, number))
    objectives = {"cycles": "min"}
    if "objectives" in top:
        node = top["objectives"][1]
        objectives = {}
        for metric, (key_node, value_node) in reader.mapping(node, "objectives").items():
            direction = reader.value(value_node, f"objectives.{metric}")
            if metric not in metrics:
                raise reader.error(key_node, f"objectives.{metric}",
                                   f"unknown metric (metrics: {', '.join(metrics)})")
            if direction not in ("min", "max"):
                raise reader.error(value_node, f"objectives.{metric}",
                                   f"must be min or max, got {direction!r}")
            objectives[metric] = direction
        if not objectives:
            raise reader.error(node, "objectives", "empty: name at least one metric")
    return Sweep(name, read_workloads(reader, top["workloads"][1]), axes, tuple(constraints),
                 objectives)
