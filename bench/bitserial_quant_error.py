"""Quantisation error of the BitMoD weight types on Gaussian and Student-t weights.

Quantises one random ``K x N`` matrix per distribution with :func:`peforge.models.numerics.bitmod_quant.quantize`
for each type (and a few per-group mixtures) and writes one row per (distribution, types) to
``reports/bitserial/quant_error.csv``, also printed as a table:

- ``mse``: ``mean((w - w_q)**2)``; ``nrmse``: ``sqrt(mse / mean(w**2))``;
- ``gemm_rel_error``: ``||A @ w - A @ w_q|| / ||A @ w||`` (Frobenius) for Gaussian activations
  ``A`` of 64 rows: the error the GEMM output sees;
- ``sqnr_db``: ``-20 * log10(nrmse)``;
- ``bits_per_weight``: code bits plus the 10-bit group overhead (8-bit scale, 2-bit selector)
  over ``group`` weights, for the type the group chose;
- ``terms_per_weight``: the most PE cycles a weight slot takes on an array allowing these
  types (``BitserialConfig.terms``, the widest type's); a slot whose columns all hold groups of
  narrower types takes fewer.

Run: ``.venv/bin/python bench/bitserial_quant_error.py [--k 4096 --n 256 --group 128 --seed 0]``.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from peforge.models.numerics.bitmod import terms_per_weight
from peforge.models.numerics.bitmod_quant import quantize

TYPE_SETS = ["int8", "int6", "int4", "int3", "fp4", "fp3", "fp4,int4", "fp3,int3",
             "fp4,int4,int8"]
#: Per-group overhead: 8-bit scale code and 2-bit special-value selector.
GROUP_OVERHEAD_BITS = 10


def weights(distribution: str, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    if distribution == "gaussian":
        return rng.standard_normal((k, n))
    return rng.standard_t(3, size=(k, n))


def error_row(w: np.ndarray, a: np.ndarray, wtypes: str, group: int) -> dict:
    names = wtypes.split(",")
    q = quantize(w, names, group)
    w_q = q.dequantize()
    mse = np.mean((w - w_q) ** 2)
    nrmse = np.sqrt(mse / np.mean(w ** 2))
    gemm_rel_error = np.linalg.norm(a @ (w - w_q)) / np.linalg.norm(a @ w)
    code_bits = np.array([t.code_bits for t in q.wtypes])[q.type_index]
    return {"wtypes": wtypes, "mse": mse, "nrmse": nrmse, "gemm_rel_error": gemm_rel_error,
            "sqnr_db": -20 * np.log10(nrmse),
            "bits_per_weight": code_bits.mean() + GROUP_OVERHEAD_BITS / group,
            "terms_per_weight": max(terms_per_weight(name) for name in names)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4096, help="rows of the weight matrix (K)")
    parser.add_argument("--n", type=int, default=256, help="columns (output channels)")
    parser.add_argument("--group", type=int, default=128, help="weights per group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports/bitserial/quant_error.csv"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    for distribution in ("gaussian", "student_t3"):
        w = weights(distribution, rng, args.k, args.n)
        a = rng.standard_normal((64, args.k))
        rows += [{"distribution": distribution, **error_row(w, a, wtypes, args.group)}
                 for wtypes in TYPE_SETS]
    table = pd.DataFrame(rows)
    table.insert(1, "group", args.group)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
