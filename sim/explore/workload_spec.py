"""The workloads of a sweep file: ``workloads: {workload, phase, seq}`` read into
:class:`WorkloadSpec` combinations, each checked by loading it (an ONNX model's ``dims`` bound,
a topology CSV's content hashed into its result keys)."""

import math
import re
from dataclasses import dataclass
from hashlib import sha256
from itertools import product
from pathlib import Path

import yaml

from peforge.sim.perf.workloads import workload_gemms

__all__ = ["WorkloadSpec", "read_workloads", "MAX_WORKLOADS"]

#: Most workloads (combinations of workload, phase and seq) a sweep may run on each point.
MAX_WORKLOADS = 1000


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload of a sweep: a model name (or CSV path), a phase and a sequence length; for an
    ONNX model, ``dims``: its dynamic dimensions bound, ``((name, size), ...)`` sorted."""

    workload: str
    phase: str
    seq: int
    digest: str | None = None  # a topology CSV's: sha256 of its bytes, 16 hex digits
    dims: tuple[tuple[str, int], ...] = ()

    def key_fields(self) -> dict:
        """What a result key holds of the workload: ``workload``, ``phase``, ``seq``, for a
        topology CSV or ONNX file ``topology_sha256`` (its content: an edited file gives new
        keys) and, when given, the bound ``dims``."""
        fields_ = {"workload": self.workload, "phase": self.phase, "seq": self.seq}
        if self.digest is not None:
            fields_["topology_sha256"] = self.digest
        if self.dims:
            fields_["dims"] = dict(self.dims)
        return fields_

    def gemms(self) -> list:
        """The workload's GEMMs (:func:`peforge.sim.perf.workloads.workload_gemms`)."""
        return workload_gemms(self.workload, phase=self.phase, seq=self.seq,
                              dims=dict(self.dims) or None)

    @property
    def label(self) -> str:
        return f"{Path(self.workload).stem} {self.phase} {self.seq}"


def read_workloads(reader, node) -> tuple[WorkloadSpec, ...]:
    """The ``workloads:`` mapping ``node`` of a sweep file, read by ``reader`` (the sweep's
    :class:`~peforge.sim.explore.bounded_yaml.YamlNodes` reader, whose ``values`` expands ranges),
    as every combination of workload, phase and seq; each workload is loaded once to check it."""
    items = reader.mapping(node, "workloads")
    unknown = sorted(set(items) - {"workload", "phase", "seq"})
    if unknown:
        raise reader.error(items[unknown[0]][0], f"workloads.{unknown[0]}",
                           "unknown key (known: workload, phase, seq)")
    if "workload" not in items:
        raise reader.error(node, "workloads.workload", "missing (a model name or a CSV file)")
    dims = ()
    if isinstance(items["workload"][1], yaml.MappingNode):  # {onnx: PATH, dims: {...}}
        source = reader.mapping(items["workload"][1], "workloads.workload")
        if "onnx" not in source or not set(source) <= {"onnx", "dims"}:
            raise reader.error(items["workload"][1], "workloads.workload",
                               "a mapping is {onnx: PATH} or {onnx: PATH, dims: {NAME: SIZE}} "
                               "(an ONNX model)")
        if "dims" in source:
            dims = _read_dims(reader, source["dims"][1])
        items = {**items, "workload": source["onnx"]}
    lists = {name: reader.values(items[name][1], f"workloads.{name}") if name in items
             else default for name, default in (("workload", None), ("phase", ("prefill",)),
                                                ("seq", (2048,)))}
    combinations = math.prod(len(values) for values in lists.values())
    if combinations > MAX_WORKLOADS:
        raise reader.error(node, "workloads", f"{combinations} combinations of workload, phase "
                           f"and seq, more than {MAX_WORKLOADS}")
    specs, digests = [], {}
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
        spec = WorkloadSpec(workload, phase, seq, dims=dims)
        try:
            spec.gemms()
            if workload.endswith((".csv", ".onnx")) and workload not in digests:
                digests[workload] = sha256(Path(workload).read_bytes()).hexdigest()[:16]
        except OSError as error:
            raise reader.error(items["workload"][1], "workloads.workload",
                               f"cannot read {workload}: {error.strerror or error}") from None
        except ValueError as error:
            name = str(error).split(":")[0]
            # An unbound dimension of an ONNX model is bound in the file, not on a command line.
            message = re.sub(r"give --dim (\S+)=N$", r"bind it with dims: {\1: N}",
                             str(error).split(": ", 1)[-1])
            raise reader.error(items.get(name, items["workload"])[1], f"workloads.{name}",
                               message) from None
        specs.append(WorkloadSpec(workload, phase, seq, digests.get(workload), dims))
    return tuple(specs)


def _read_dims(reader, node) -> tuple[tuple[str, int], ...]:
    """An ONNX workload's ``dims: {NAME: SIZE}``: names of its dynamic dimensions, each bound to
    a positive integer."""
    dims = {}
    for name, (_key, value_node) in reader.mapping(node, "workloads.workload.dims").items():
        value = reader.value(value_node, f"workloads.workload.dims.{name}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise reader.error(value_node, f"workloads.workload.dims.{name}",
                               f"must be a positive integer, got {value!r}")
        dims[name] = value
    return tuple(sorted(dims.items()))
