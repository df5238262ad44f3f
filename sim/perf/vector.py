"""The vector unit: timing of the work that is not a GEMM, and a workload's table with GEMM and
non-GEMM work side by side.

A :class:`~peforge.sim.perf.workloads.VectorOp` of ``elements`` elements of class ``kind`` runs
on an accelerator's :class:`~peforge.sim.perf.accelerator.VectorUnit` in
``ceil(elements / (lanes * rate[kind]))`` compute cycles. Its operands stream from DRAM and its
result back to it (nothing is fused into a GEMM or kept on chip), overlapped with the compute:
its cycles are ``max(compute, ceil((read_bytes + write_bytes) / dram.bytes_per_cycle))``, times
its ``count``. The vector unit runs after the GEMMs it sits between (no overlap with the PE
array), so a workload's cycles are its GEMM cycles plus its vector cycles.

An accelerator without a vector unit lists its vector ops with their elements and traffic and
no cycles: they are not timed, and the table says so.
"""

import math

import pandas as pd

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.model import simulate_workload
from peforge.sim.perf.workloads import VectorOp, Workload

__all__ = ["vector_cycles", "vector_rows", "simulate_model", "vector_summary", "UNTIMED_NOTE"]

#: What the table says of vector work on an accelerator without a vector unit.
UNTIMED_NOTE = ("not timed: the accelerator has no vector unit (add 'vector: {lanes: N}' to its "
                "YAML or --vector-lanes N)")


def vector_cycles(accel: Accelerator, op: VectorOp) -> tuple[int, int]:
    """``(cycles, compute_cycles)`` of ``op`` (all ``count`` runs) on ``accel``'s vector unit
    (module docstring); raises ``ValueError`` when it has none."""
    unit = accel.vector
    if unit is None:
        raise ValueError("vector: the accelerator has no vector unit")
    compute = math.ceil(op.elements / (unit.lanes * getattr(unit, op.kind)))
    traffic = op.read_bytes + op.write_bytes
    dram = 0 if math.isinf(accel.dram.bytes_per_cycle) else \
        math.ceil(traffic / accel.dram.bytes_per_cycle)
    return max(compute, dram) * op.count, compute * op.count


def vector_rows(accel: Accelerator, ops) -> list[dict]:
    """One row per vector op: its elements, DRAM traffic and (with a vector unit) cycles and
    time at the accelerator clock; ``note`` says when it is not timed."""
    rows = []
    for op in ops:
        row = {"part": "vector", "layer": op.name, "op": op.op_type or op.kind,
               "kind": op.kind, "elements": op.elements * op.count, "count": op.count,
               "dram_read_bytes": op.read_bytes * op.count,
               "dram_write_bytes": op.write_bytes * op.count}
        if accel.vector is None:
            row["note"] = "not timed"
        else:
            row["cycles"], row["compute_cycles"] = vector_cycles(accel, op)
            row["stall_cycles"] = row["cycles"] - row["compute_cycles"]
            row["time_ms"] = row["cycles"] / (accel.clock_mhz * 1e3)
        rows.append(row)
    return rows


_SUMMED = ("cycles", "compute_cycles", "stall_cycles", "dram_read_bytes", "dram_write_bytes",
           "time_ms")


def simulate_model(accel: Accelerator, workload: Workload, *, engine: str = "recurrence",
                   objective: str = "cycles", energy: bool = True) -> pd.DataFrame:
    """A workload's table: the rows of :func:`peforge.sim.perf.model.simulate_workload`
    (``part`` ``gemm``, and its total row). With vector ops, that total row becomes
    ``gemm total`` and follow: one row per vector op (``part`` ``vector``,
    :func:`vector_rows`), a ``vector total`` row and the ``total`` row, GEMM plus vector
    cycles, traffic and time, with the MACs' utilisation over those cycles. Energy and power
    are the GEMMs' (``gemm total``): the vector unit has no energy model. Without a vector unit
    the vector rows carry no cycles and the ``total`` row's cycles are the GEMMs'."""
    if not workload.gemms:
        raise ValueError(f"workload: {workload.name} has no GEMM for the PE array")
    table = simulate_workload(accel, list(workload.gemms), engine=engine, objective=objective,
                              energy=energy)
    table.insert(0, "part", ["gemm"] * (len(table) - 1) + ["total"])
    if not workload.vector_ops:
        return table
    table.iloc[-1, table.columns.get_loc("layer")] = "gemm total"
    vector = pd.DataFrame(vector_rows(accel, workload.vector_ops))
    gemm_total = table.iloc[-1]
    vector_total = {"part": "total", "layer": "vector total",
                    **{name: int(vector[name].sum())
                       for name in ("elements", "dram_read_bytes", "dram_write_bytes")}}
    if accel.vector is None:
        vector_total["note"] = UNTIMED_NOTE
    else:
        for name in ("cycles", "compute_cycles", "stall_cycles", "time_ms"):
            vector_total[name] = vector[name].sum()
    total = {"part": "total", "layer": "total", "macs": int(gemm_total["macs"]),
             "performed_macs": gemm_total["performed_macs"],
             **{name: gemm_total[name] + vector_total.get(name, 0) for name in _SUMMED}}
    total["utilisation"] = total["performed_macs"] / (accel.pes * total["cycles"])
    if accel.vector is None:
        total["note"] = "cycles of the GEMMs only: the vector work is not timed"
    table = pd.concat([table, vector, pd.DataFrame([vector_total, total])], ignore_index=True)
    for name in ("m", "k", "n", "count", "elements", "cycles", "compute_cycles", "stall_cycles",
                 "dram_read_bytes", "dram_write_bytes", "macs"):
        table[name] = table[name].astype("Int64")
    return table


def vector_summary(accel: Accelerator, table: pd.DataFrame) -> list[str]:
    """Lines under a ``sim`` table with vector work: its ops, elements, traffic and cycles by
    class, and the GEMM, non-GEMM and total cycles (or that the vector work is not timed)."""
    vector = table[table["part"] == "vector"]
    if vector.empty:
        return []
    unit = accel.vector
    lines = ["non-GEMM work (" + (f"vector unit of {unit.lanes} lanes" if unit else
                                  UNTIMED_NOTE) + "):"]
    by_kind = vector.groupby("kind", sort=False).agg(
        ops=("count", "sum"), elements=("elements", "sum"),
        dram_read_bytes=("dram_read_bytes", "sum"), dram_write_bytes=("dram_write_bytes", "sum"),
        **({"cycles": ("cycles", "sum")} if unit else {}))
    lines += by_kind.reset_index().to_string(index=False).splitlines()
    gemm = table.loc[table["layer"] == "gemm total", "cycles"].iloc[0]
    if unit is None:
        lines.append(f"cycles: GEMM {gemm}; non-GEMM not timed")
    else:
        other = table.loc[table["layer"] == "vector total", "cycles"].iloc[0]
        lines.append(f"cycles: GEMM {gemm} + non-GEMM {other} = {gemm + other} "
                     f"(non-GEMM {other / (gemm + other):.1%})")
    return lines
