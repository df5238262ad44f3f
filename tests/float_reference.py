"""Float reference values from ml_dtypes and numpy, shared by the float tests."""

import ml_dtypes
import numpy as np

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
