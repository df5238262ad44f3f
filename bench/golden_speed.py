"""Speed of the golden GEMMs whole-model numerics runs (``peforge numerics``), per family.

For each arithmetic, one GEMM of 128 x 384 x 1536 (the issue's target shape, an FFN projection of
MiniLM on 128 tokens) on operands already in the PE's encoding (integer codes, float bit
patterns; random, finite), through the function numerics calls for it:

- systolic int, LUT and sparse-dsp: :func:`~peforge.models.numerics.fast_gemm.wrapped_int_gemm`
  (the LUT tile's and the sparse chain's results are wrapped matmuls, as tests/models/
  test_fast_gemm.py checks against their goldens);
- systolic float PEs (exact and L-Mul, e4m3, e5m2, fp16, bf16):
  :func:`~peforge.models.numerics.fast_gemm.float_mac_gemm`;
- bitserial: the golden itself (:func:`peforge.models.bitserial.golden_gemm`, vectorised per
  group).

Each is also timed on the family's plain golden model (``FloatMac.gemm``, the systolic, LUT and
sparse-dsp ``golden_gemm``) on a reduced shape, ``16 x 384 x 96`` (1/128 of the MACs), and the two
results are compared there bit for bit (``equal``). Times are the median of ``--repeats`` calls
after one warm-up (tables built once per format are not timed). The load average at the start is
printed and written beside the figures: on a shared machine the figures scale with it.

Writes ``reports/bench/golden_speed.csv`` (``--out``) and prints it as a table.
Run: ``.venv/bin/python bench/golden_speed.py [--repeats 3] [--out PATH]``.
"""

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from peforge.models.bitserial import BitserialConfig, golden_gemm as bitserial_golden
from peforge.models.lut import LutConfig, golden_gemm as lut_golden
from peforge.models.numerics.bitmod_quant import quantize
from peforge.models.numerics.fast_gemm import float_mac_gemm, wrapped_int_gemm
from peforge.models.numerics.floatmac import FloatMac, random_operands
from peforge.models.numerics.nm_sparse import compress, decompress
from peforge.models.sparse_dsp import SparseDspConfig, golden_gemm as sparse_golden
from peforge.models.systolic import SystolicConfig, golden_gemm as systolic_golden

SHAPE = (128, 384, 1536)
REDUCED = (16, 384, 96)


def _systolic_int(bits):
    config = SystolicConfig(bits=bits, acc_bits=4 * bits)
    low, high = -(1 << bits - 1), (1 << bits - 1) - 1

    def operands(rng, m, k, n):
        return rng.integers(low, high + 1, (m, k)), rng.integers(low, high + 1, (k, n))
    return (f"systolic int{bits}", operands,
            lambda a, b: wrapped_int_gemm(a, b, config.acc_bits, True),
            lambda a, b: systolic_golden(config, a, b))


def _float(fmt, exact):
    mac = FloatMac(fmt, exact)

    def operands(rng, m, k, n):
        return (random_operands(mac.fmt, rng, (m, k), special_fraction=0),
                random_operands(mac.fmt, rng, (k, n), special_fraction=0))
    return (f"systolic {'fp' if exact else 'lmul'} {fmt}", operands,
            lambda a, b: float_mac_gemm(mac, a, b), mac.gemm)


def _bitserial(wtypes):
    config = BitserialConfig(wtypes=wtypes, group=128)

    def operands(rng, m, k, n):
        q = quantize(rng.standard_normal((k, n)), wtypes.split(","), config.group)
        return rng.integers(-128, 128, (m, k)), (q.codes, q.type_index, q.selector, q.scale_code)
    golden = lambda a, w: bitserial_golden(config, a, *w)["c_scaled"]
    return f"bitserial {wtypes}", operands, golden, golden


def _lut(kind, wbits):
    config = LutConfig(wkind=kind, wbits=wbits)
    low, high = config.weight_format.code_range

    def operands(rng, m, k, n):
        return rng.integers(-128, 128, (m, k)), rng.integers(low, high + 1, (k, n))
    return (f"lut {kind} w{wbits}", operands,
            lambda a, w: wrapped_int_gemm(a, w, config.acc_bits - 1, True),
            lambda a, w: lut_golden(config, a, w))


def _sparse(nm):
    config = SparseDspConfig(nm=nm)

    def operands(rng, m, k, n):
        values, indices = compress(rng.integers(-128, 128, (k, n)), config.pattern)
        return rng.integers(-128, 128, (m, k)), (values, indices)
    return (f"sparse-dsp {nm}", operands,
            lambda a, w: wrapped_int_gemm(a, decompress(*w, config.pattern), config.acc_bits),
            lambda a, w: sparse_golden(config, a, *w))


CASES = ([_systolic_int(8), _systolic_int(4)]
         + [_float(fmt, exact) for fmt in ("e4m3", "e5m2", "fp16", "bf16")
            for exact in (True, False)]
         + [_bitserial("fp4"), _bitserial("int8"), _lut("signed", 4), _lut("ternary", 2),
            _sparse("2:4")])


def timed(run, repeats: int) -> tuple[float, object]:
    """Median wall time (s) of ``repeats`` calls after one warm-up, and the result."""
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(repeats: int) -> pd.DataFrame:
    rows = []
    load = os.getloadavg()[0]
    for name, operands, fast, golden in CASES:
        rng = np.random.default_rng(0)
        a, w = operands(rng, *SHAPE)
        fast_s, _ = timed(lambda: fast(a, w), repeats)
        a, w = operands(rng, *REDUCED)
        reduced_s, fast_result = timed(lambda: fast(a, w), repeats)
        golden_s, golden_result = timed(lambda: golden(a, w), max(1, repeats // 2))
        macs, reduced_macs = np.prod(SHAPE), np.prod(REDUCED)
        rows.append({"arithmetic": name, "shape": "x".join(map(str, SHAPE)),
                     "fast_s": round(fast_s, 4), "fast_macs_per_s": float(f"{macs / fast_s:.3g}"),
                     "golden_shape": "x".join(map(str, REDUCED)),
                     "golden_s": round(golden_s, 4),
                     "golden_macs_per_s": float(f"{reduced_macs / golden_s:.3g}"),
                     "speedup_x": round(golden_s / reduced_s, 1),
                     "equal": bool(np.array_equal(fast_result, golden_result)),
                     "load_avg_1min": round(load, 2)})
        print(f"{name:<22} {fast_s:7.3f} s  {macs / fast_s:9.3g} MAC/s  "
              f"(golden {reduced_macs / golden_s:9.3g} MAC/s, equal "
              f"{rows[-1]['equal']})", flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports/bench/golden_speed.csv"))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    table = measure(args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
