"""The PE array's cycles per tile under an accelerator's timing mode: the family's cycle model
(``rtl``) or SCALE-Sim 3.0's fold count (``scalesim-os/ws/is``); and the mode it runs a GEMM
in (:func:`run_pe`), with the report columns that say so (:func:`weight_columns`)."""

from dataclasses import fields
from functools import lru_cache

import numpy as np

from peforge.models.integer import ceil_div

from peforge.sim.families import family
from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.workloads import Gemm

__all__ = ["scalesim_compute_cycles", "TileCycles", "tile_timing", "run_pe",
           "weight_columns"]


def scalesim_compute_cycles(dataflow: str, rows: int, cols: int, m: int, k: int, n: int) -> int:
    """SCALE-Sim 3.0's compute cycles of an ``m x k x n`` GEMM on a ``rows x cols`` array.

    SCALE-Sim folds the GEMM onto the array and counts ``folds * fold_cycles - 1``: output-
    stationary folds over M and N with ``rows + cols + k - 2`` cycles each; weight-stationary
    over K and N with ``2*rows + cols + m - 2``; input-stationary over K and M with
    ``2*rows + cols + n - 2``. ``m``, ``k``, ``n`` may be integer arrays that broadcast: the
    cycles of each shape.
    """
    if dataflow == "os":
        folds, fold = ceil_div(m, rows) * ceil_div(n, cols), rows + cols + k - 2
    elif dataflow == "ws":
        folds, fold = ceil_div(k, rows) * ceil_div(n, cols), 2 * rows + cols + m - 2
    elif dataflow == "is":
        folds, fold = ceil_div(k, rows) * ceil_div(m, cols), 2 * rows + cols + n - 2
    else:
        raise ValueError(f"dataflow: must be one of os, ws, is, got {dataflow!r}")
    return folds * fold - 1


def run_pe(accel: Accelerator, gemm: Gemm):
    """The configuration ``accel``'s PE array runs ``gemm`` in: its family's
    :meth:`~peforge.sim.families.Family.run_config` for the GEMM's measured weight sparsity
    (``accel.pe`` unless the family changes mode: a sparse DSP chain runs a weight that is not
    sparse to its pattern in dense mode). Unknown sparsity keeps ``accel.pe`` itself (every
    family's ``run_config`` does, the contract tests check), without a look-up."""
    if gemm.w_sparsity is None:
        return accel.pe
    return _run_pe(accel.family, accel.pe, gemm.w_sparsity)


@lru_cache(maxsize=4096)
def _run_pe(family_name: str, pe, w_sparsity):
    return family(family_name).run_config(pe, w_sparsity)


def weight_columns(accel: Accelerator, gemm: Gemm, pe) -> dict:
    """The row's weight columns, where the GEMM's weight sparsity was measured (an ONNX
    model's: tables of other workloads have none): ``w_zero_fraction`` and ``w_nm`` (its
    sparsest N:M pattern, "dense" when none holds); and, when the array runs it in another mode
    than configured (:func:`run_pe`), a ``note`` saying which and why."""
    sparsity, columns = gemm.w_sparsity, {}
    if sparsity is not None:
        columns = {"w_zero_fraction": sparsity.zero_fraction,
                   "w_nm": str(sparsity.pattern or "dense")}
    if pe != accel.pe:
        changed = [f.name for f in fields(pe) if getattr(pe, f.name) != getattr(accel.pe, f.name)]
        ran = ", ".join(f"{name}={getattr(pe, name)}" for name in changed)
        configured = ", ".join(f"{name}={getattr(accel.pe, name)}" for name in changed)
        columns["note"] = (f"run as {ran}: the measured weight sparsity does not allow "
                           f"the configured {configured}")
    return columns


def tile_timing(accel: Accelerator, gemm: Gemm) -> tuple["TileCycles", int]:
    """``(cycles(m, k, n), overlap)`` of the array for ``gemm``'s tiles under the accelerator's
    timing mode (:class:`TileCycles`). ``rtl``: the family's cycle model, in the configuration
    it runs the GEMM in (:func:`run_pe`), for weights ``gemm.w_bits`` wide
    (:meth:`~peforge.sim.families.Family.gemm_cycles`; only a family whose pace depends on the
    weight width uses it: a bit-serial array runs a GEMM of 4-bit or narrower weights at 2
    terms per slot when it allows a type that wide)."""
    return _tile_cycles(accel.family, run_pe(accel, gemm), accel.timing, gemm.w_bits)


class TileCycles:
    """The array's cycles of one tile, ``(m, k, n) -> int``, or of integer arrays that broadcast;
    the ints are remembered per tile size (a sweep asks for the same few sizes of one PE array
    thousands of times). One object per PE array, timing and weight width
    (:func:`_tile_cycles`), so tilings of the same array can share work keyed by it."""

    def __init__(self, cycles):
        self._cycles = cycles
        self._known = {}

    def __call__(self, m, k, n):
        if isinstance(m, np.ndarray):
            return self._cycles(m, k, n)
        key = (m, k, n)
        cycles = self._known.get(key)
        if cycles is None:
            cycles = self._known[key] = self._cycles(m, k, n)
        return cycles


@lru_cache(maxsize=1024)
def _tile_cycles(family_name: str, pe, timing: str, w_bits: int) -> tuple[TileCycles, int]:
    if timing == "rtl":
        fam = family(family_name)
        return (TileCycles(lambda m, k, n: fam.gemm_cycles(pe, m, k, n, w_bits)),
                fam.pipeline_overlap(pe))
    # SCALE-Sim's "- 1" is once per run, so it is the (negative) overlap of the stream.
    dataflow = timing.removeprefix("scalesim-")
    return TileCycles(lambda m, k, n: scalesim_compute_cycles(dataflow, pe.rows, pe.cols,
                                                              m, k, n)), -1
