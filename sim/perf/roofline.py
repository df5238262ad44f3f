"""The roofline of a GEMM on an accelerator: how fast it could run at best, and how close it is.

- ``performed_macs``: the multiply-accumulates the array performs. A family whose configuration
  has an ``N:M`` sparsity ``pattern`` (sparse-dsp) skips the pruned weights: it performs ``N/M``
  of the dense ``m*k*n`` (the pattern of the mode it runs the GEMM in,
  :func:`peforge.sim.perf.timing.run_pe`: all of them for a weight measured not to be ``N:M``
  sparse); every other family performs them all. Utilisation counts these against
  the array's peak of one MAC per PE per cycle (``performed_macs / (pes * cycles)``, never above
  1 for a family that keeps the pace of one MAC per PE per cycle at best);
- ``compute_bound_cycles``: ``performed_macs / pes``, every PE busy every cycle;
- ``dram_bound_cycles``: the compulsory traffic, A and W read once and the output written once,
  at ``dram.bytes_per_cycle`` (0 for an ideal DRAM);
- ``roofline_ratio``: cycles over the larger bound (1 is on the roofline).

A workload's total adds the GEMMs' bounds; its ratio is its cycles over the larger sum.
"""

from fractions import Fraction
from functools import lru_cache

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.timing import run_pe
from peforge.sim.perf.workloads import Gemm

__all__ = ["density", "gemm_bounds", "workload_bounds", "ratio", "charged_macs"]


def density(accel: Accelerator, gemm: Gemm | None = None) -> Fraction:
    """The fraction of the dense MACs the accelerator's array performs (module docstring): of
    ``gemm`` (in the mode it runs it in), or in its configured mode when ``gemm`` is None."""
    return _density(accel.pe if gemm is None else run_pe(accel, gemm))


@lru_cache(maxsize=1024)
def _density(pe) -> Fraction:
    pattern = getattr(pe, "pattern", None)
    return Fraction(pattern.n, pattern.m) if pattern is not None else Fraction(1)


def gemm_bounds(accel: Accelerator, gemm: Gemm) -> dict:
    """``performed_macs``, ``compute_bound_cycles`` and ``dram_bound_cycles`` of ``gemm`` (its
    ``count`` included; floats, exact up to 2**53)."""
    return dict(zip(BOUNDS, _bounds(_rates(accel, run_pe(accel, gemm)), gemm)))


def workload_bounds(accel: Accelerator, gemms) -> dict:
    """The bounds of :func:`gemm_bounds` of ``gemms`` together: summed in order from 0.0."""
    configured = _rates(accel, accel.pe)
    performed = compute = dram = 0.0
    for gemm in gemms:
        pe = run_pe(accel, gemm)
        one = _bounds(configured if pe is accel.pe else _rates(accel, pe), gemm)
        performed += one[0]
        compute += one[1]
        dram += one[2]
    return dict(zip(BOUNDS, (performed, compute, dram)))


#: The names of a GEMM's or a workload's bounds, in :func:`_bounds`'s order.
BOUNDS = ("performed_macs", "compute_bound_cycles", "dram_bound_cycles")


def _rates(accel: Accelerator, pe) -> tuple[int, int, int, float]:
    """What the bounds depend on, the array run in configuration ``pe``: the density as a
    fraction, PEs, DRAM bytes per cycle."""
    fraction = _density(pe)
    return fraction.numerator, fraction.denominator, accel.pes, accel.dram.bytes_per_cycle


def _bounds(rates: tuple[int, int, int, float], gemm: Gemm) -> tuple[float, float, float]:
    numerator, denominator, pes, bandwidth = rates
    performed = gemm.macs * numerator / denominator
    compulsory = gemm.count * (gemm.m * gemm.k * gemm.a_bits + gemm.k * gemm.n * gemm.w_bits
                               + gemm.m * gemm.n * gemm.out_bits) / 8
    return performed, performed / pes, compulsory / bandwidth


def ratio(cycles: int, bounds: dict) -> float:
    """Cycles over the larger of the compute and DRAM bounds."""
    return cycles / max(bounds["compute_bound_cycles"], bounds["dram_bound_cycles"])


def charged_macs(accel: Accelerator, gemm: Gemm):
    """The MACs the PE array's energy is charged for on ``gemm``: its dense MACs, times the
    density of the mode the array runs it in over that of its configured mode (the energy per
    MAC is measured in the configured mode; per MAC a slice performs it is taken to be the same
    in every mode: a sparse DSP chain running a dense weight performs twice the MACs of 2:4)."""
    pe = run_pe(accel, gemm)
    if pe is accel.pe:
        return gemm.macs
    fraction = density(accel, gemm) / density(accel)
    return gemm.macs if fraction == 1 else gemm.macs * float(fraction)
