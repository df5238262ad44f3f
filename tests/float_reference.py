"""Float reference values from ml_dtypes and numpy, shared by the float tests."""

import ml_dtypes
import numpy as np

#: The L-Mul offset exponent l(m) by mantissa bits (lmul.md): m for m <= 3, 3 for m = 4, 4 above.
LMUL_OFFSET = {1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 7: 4, 10: 4, 23: 4}

#: The numpy/ml_dtypes type of each format name.
NUMPY_TYPES = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
               "fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp32": np.float32}


def uint_type(fmt):
    return np.dtype(f"u{np.dtype(NUMPY_TYPES[fmt.name]).itemsize}")


def reference_decode(fmt, bits):
    """Values of bit patterns, read by ml_dtypes/numpy (numpy keeps NaN payloads)."""
    typed = np.asarray(bits).astype(uint_type(fmt)).view(NUMPY_TYPES[fmt.name])
    with np.errstate(invalid="ignore"):
        return typed.astype(np.float64)


def reference_cast(fmt, values):
    """Bit patterns of float64 values cast by ml_dtypes/numpy."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(NUMPY_TYPES[fmt.name]).view(
            uint_type(fmt)).astype(np.int64)


def pseudo_log2(v):
    """Mitchell's log2 of positive normal ``v = (1 + f) 2**E``: ``E + f``."""
    f, e = np.frexp(v)                       # v = f 2**e, 0.5 <= f < 1
    return (e - 1) + (2 * f - 1)


def lmul_reference(fmt, x_bits, y_bits):
    """L-Mul products as float64 values, from ml_dtypes' values and the lmul.md policy."""
    finfo = ml_dtypes.finfo(NUMPY_TYPES[fmt.name])
    bias = 1 - finfo.minexp
    x, y = reference_decode(fmt, x_bits), reference_decode(fmt, y_bits)
    ax, ay = np.abs(x), np.abs(y)
    normal = (ax >= float(finfo.smallest_normal)) & (ay >= float(finfo.smallest_normal))
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(normal, pseudo_log2(ax) + pseudo_log2(ay), 0) + 2.0 ** -LMUL_OFFSET[
            fmt.man_bits] + bias
        whole = np.floor(u)
        value = np.where(u >= 1, np.exp2(whole - bias) * (1 + u - whole), u * 2.0 ** (1 - bias))
    value = np.where(u < 0, 0.0, np.minimum(value, float(finfo.max)))
    value = np.where(normal, value, 0.0)
    value = np.where(np.isfinite(x) & np.isfinite(y), value, np.nan)
    return np.where(np.signbit(x) ^ np.signbit(y), -value, value)
