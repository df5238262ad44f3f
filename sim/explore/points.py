"""Design points: the accelerator of a point, its stored configuration and keys, its evaluation.

Levels
    ``model`` (default): the performance model. ``synth``: plus the PE array synthesised with
    yosys (:func:`peforge.sim.eda.synth.synth_family`). ``verify``: plus the generated RTL built
    under Verilator and the family's bit-exact and cycle-exact checks
    (:func:`peforge.sim.rtl.flow.verify`); a point that fails them is stored as failed.
"""

import math
import time
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import cache, lru_cache
from hashlib import sha256
from importlib import import_module
from pathlib import Path

from peforge.sim.explore.results import PointKeys, utc_now
from peforge.sim.families import family
from peforge.sim.numerics.accuracy import ACCURACY_METRICS, accuracy_metrics
from peforge.sim.perf.accelerator import (AUTO_CLOCK, Accelerator, auto_clock_liberty,
                                          load_accelerator, with_clock)
from peforge.sim.perf.model import METRIC_COLUMNS, workload_totals

__all__ = ["LEVELS", "LEVEL_COLUMNS", "OPTIONAL_METRICS", "metric_units", "build_accelerator", "flat_config", "Task",
           "make_task", "evaluate_point", "evaluate_points", "model_version"]

LEVELS = ("model", "synth", "verify")

#: Metrics each level adds to the model's, with units.
LEVEL_COLUMNS = {
    "model": {},
    "synth": {"synth_nand2_eq": "NAND2 equivalents (transistors / 4) of the PE array",
              "synth_area_mm2": "mm2: PE array NAND2-eq x the osu018 NAND2 area",
              "synth_flip_flops": "register bits of the PE array"},
    "verify": {"verify_jobs": "GEMM jobs checked bit-exact and cycle-exact under Verilator"},
}


#: Metrics evaluated only for a sweep that names them (in a constraint or an objective), at any
#: level: what the point's PE arithmetic does to a real model
#: (:mod:`peforge.sim.numerics.accuracy`; families without whole-GEMM numerics fail them).
OPTIONAL_METRICS = ACCURACY_METRICS

#: Packages whose code and data decide a point's metrics: the performance model, synthesis and
#: energy, the numerics, the families and their generators, the whole-model numerics.
MODEL_PACKAGES = ("peforge.sim.perf", "peforge.sim.eda", "peforge.models", "peforge.sim.families",
                  "peforge.hw", "peforge.sim.numerics")


@cache
def model_version() -> str:
    """The version of the model a row comes from: sha256 (12 hex digits) of the ``.py``,
    ``.json`` and ``.lib`` (the shipped Liberty) files of :data:`MODEL_PACKAGES`, path and
    content. Any change there (an edit, a
    new peforge) gives a new version; a sweep evaluates again the stored rows of another one."""
    digest = sha256()
    for package in MODEL_PACKAGES:
        root = Path(import_module(package).__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".json", ".lib")):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def metric_units(level: str = "verify") -> dict[str, str]:
    """Metric columns a sweep at ``level`` can store (the model's plus each level's up to it,
    and the :data:`OPTIONAL_METRICS`)."""
    units = dict(METRIC_COLUMNS)
    for name in LEVELS[:LEVELS.index(level) + 1]:
        units.update(LEVEL_COLUMNS[name])
    return {**units, **OPTIONAL_METRICS}


def build_accelerator(values: dict) -> Accelerator:
    """The :class:`Accelerator` of a point ``{"family": name, key: value}``: family defaults and
    accelerator defaults for every key not given. Raises ValueError naming a rejected key.

    The same as :func:`~peforge.sim.perf.accelerator.load_accelerator` of the keys nested by their
    prefix, built from two parts that points share: the PE configuration (the family and the
    ``pe.`` keys) and the rest (the family and the other keys), each loaded once per distinct
    set of values and process. Each part is validated on its own, in load_accelerator's order
    (family, PE, memories, the other keys), and no check of the rest depends on the PE, so a
    point gets the same accelerator or the same error as from one load. ``clock_mhz: auto`` is
    resolved last, on the point's own PE configuration."""
    pe_part = {key: value for key, value in values.items() if key.partition(".")[0] == "pe"}
    auto = values.get("clock_mhz") == AUTO_CLOCK
    rest = {key: value for key, value in values.items()
            if key not in pe_part and not (auto and key == "clock_mhz")}
    if "family" in values:
        pe_part = {"family": values["family"], **pe_part}
    pe = _load_part(pe_part).pe
    return with_clock(replace(_load_part(rest), pe=pe), auto)


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
class Task:
    """One point to evaluate: picklable for process pools and dask."""

    values: dict
    accel: Accelerator | None
    error: str | None
    config: dict
    point: str
    workloads: tuple  # of peforge.sim.explore.spec.WorkloadSpec
    keys: tuple[str, ...]
    level: str
    optional: tuple[str, ...] = ()   # of OPTIONAL_METRICS


@lru_cache(maxsize=64)
def _keys(workloads: tuple, level: str, optional: tuple) -> PointKeys:
    """The key maker of a sweep's points (their workloads, level and optional metrics are the
    same); rows with optional metrics have keys of their own (level ``model+accuracy_cosine``)."""
    return PointKeys([workload.key_fields() for workload in workloads],
                     "+".join((level, *optional)))


def make_task(values: dict, workloads, level: str, optional=()) -> Task:
    """The task of point ``values`` on ``workloads`` at ``level``, with the
    :data:`OPTIONAL_METRICS` ``optional`` too: its accelerator (or the configuration's error),
    stored configuration and keys. A ``clock_mhz: auto`` point's configuration holds its Fmax
    as ``clock_mhz`` and ``clock_liberty_sha256``
    (:func:`~peforge.sim.perf.accelerator.auto_clock_liberty`), so its keys follow the PE
    configuration and the Liberty's content."""
    try:
        accel = build_accelerator(values)
        config, error = flat_config(accel), None
    except ValueError as exc:
        accel, config, error = None, dict(values), f"config: {exc}"
    if values.get("clock_mhz") == AUTO_CLOCK:
        # The Fmax depends on the Liberty too: another library gives other rows.
        config["clock_liberty_sha256"] = auto_clock_liberty()
    workloads, optional = tuple(workloads), tuple(sorted(optional))
    point, keys = _keys(workloads, level, optional)(config)
    return Task(values, accel, error, config, point, workloads, keys, level, optional)


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


def evaluate_point(task: Task) -> list[dict]:
    """Evaluate one point on every workload: the rows to store (see
    :meth:`peforge.sim.explore.results.ResultStore.write_point`). A failure (a configuration the
    family rejects, no tiling that fits, a synthesis or Verilator error, a failed check, a metric
    that is not a finite number) gives rows with status ``failed`` and the error's text; it is
    never raised."""
    started = utc_now()
    clock = time.perf_counter()
    outcomes = []
    level_metrics, level_error = {}, task.error
    if level_error is None:
        try:
            level_metrics = _level_metrics(task.accel, task.level)
            if task.optional:
                level_metrics.update(accuracy_metrics(task.accel.family, task.accel.pe,
                                                      model_version()))
        except Exception as error:  # noqa: BLE001 - any failure of a point is stored, not raised
            level_error = f"{type(error).__name__}: {error}"
    for workload in task.workloads:
        if level_error is not None:
            outcomes.append((level_error, None))
            continue
        try:
            total = workload_totals(task.accel, workload.gemms())
            metrics = {**{name: float(total[name]) for name in METRIC_COLUMNS}, **level_metrics}
        except Exception as error:  # noqa: BLE001
            outcomes.append((f"{type(error).__name__}: {error}", None))
            continue
        infinite = [name for name, value in metrics.items() if not math.isfinite(value)]
        outcomes.append((f"metrics: {infinite[0]} is {metrics[infinite[0]]}, not a finite number"
                         if infinite else None, None if infinite else metrics))
    finished = utc_now()
    seconds = time.perf_counter() - clock
    return [{"key": key, "point": task.point, "family": task.values["family"],
             "config": task.config, "workload": workload.workload, "phase": workload.phase,
             "seq": workload.seq, "level": task.level, "status": "ok" if error is None else "failed",
             "error": error, "metrics": metrics, "started_at": started, "finished_at": finished,
             "seconds": seconds, "model_version": model_version()}
            for key, workload, (error, metrics) in zip(task.keys, task.workloads, outcomes)]


def evaluate_points(tasks: list[Task]) -> list[list[dict]]:
    """:func:`evaluate_point` of each task, in order: one chunk of a sweep, run by a worker."""
    return [evaluate_point(task) for task in tasks]
