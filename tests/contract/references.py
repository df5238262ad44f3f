"""Plain references of each family's arithmetic, for the contract suite: ``(config, job) ->``
the golden model's outputs, computed with Python integers or numpy/ml_dtypes floats, one entry
per family name. A new family adds its reference here (the contract suite names a family that
has none)."""

import numpy as np

from tests.float_reference import lmul_reference, reference_cast, reference_decode

__all__ = ["REFERENCES"]


def _wrap(values, bits: int):
    """Two's complement of ``bits`` bits, by Python modulo."""
    half = 1 << (bits - 1)
    return np.vectorize(lambda v: (int(v) + half) % (1 << bits) - half, otypes=[object])(values)


def _matmul(a, b):
    """``A @ B`` in Python integers."""
    return np.asarray(a).astype(object) @ np.asarray(b).astype(object)


def _products(config, a, b):
    """Products of operand patterns as float64 values of the operand format: L-Mul, or the
    exact product rounded to nearest even by ml_dtypes."""
    fmt = config.mac.fmt
    if not config.mac.exact:
        return lmul_reference(fmt, a, b)
    with np.errstate(invalid="ignore", over="ignore"):
        exact = reference_decode(fmt, a) * reference_decode(fmt, b)
    return reference_decode(fmt, reference_cast(fmt, exact))


def _fp32_patterns(values) -> np.ndarray:
    """fp32 bit patterns of float32 values, NaN as the canonical quiet NaN."""
    values = np.asarray(values, dtype=np.float32)
    patterns = values.view(np.uint32).astype(np.int64)
    return np.where(np.isnan(values), 0x7FC00000, patterns)


def _float_gemm(config, a, b):
    """``A @ B`` of operand patterns: each product in the operand format, folded into an fp32
    sum from +0 in k order (float64 addition of two fp32-exact values, rounded once to fp32:
    the correctly rounded fp32 sum)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    m, k = a.shape
    acc = np.zeros((m, b.shape[1]), dtype=np.float32)
    for step in range(k):
        product = _products(config, a[:, step][:, None], b[step][None, :])
        with np.errstate(invalid="ignore", over="ignore"):
            acc = (acc.astype(np.float64) + product).astype(np.float32)
    return _fp32_patterns(acc)


def systolic(config, job):
    if config.pe != "int":
        return {"c": _float_gemm(config, job.a, job.b)}
    exact = _matmul(job.a, job.b)
    if not config.signed:
        return {"c": exact % (1 << config.acc_bits)}
    return {"c": _wrap(exact, config.acc_bits)}


def lmul(config, job):
    """Products as patterns; a NaN product is the format's quiet NaN with the sign of the
    product (the XOR of the operands' signs)."""
    fmt = config.mac.fmt
    values = _products(config, job.a, job.b)
    sign = (np.signbit(reference_decode(fmt, job.a)) ^ np.signbit(reference_decode(fmt, job.b)))
    nan = reference_cast(fmt, np.array([np.nan]))[0] | (sign.astype(np.int64) << (fmt.bits - 1))
    return {"p": np.where(np.isnan(values), nan, reference_cast(fmt, values))}


def lmul_dot(config, job):
    return {"c": _float_gemm(config, job.a, job.b)}


def lut(config, job):
    # codes are the weight values (unsigned, two's complement or -1/0/+1); results keep
    # acc_bits - 1 bits
    return {"c": _wrap(_matmul(job.a, job.w), config.acc_bits - 1)}


def bitserial(config, job):
    """Weights from the datatype tables (``values[selector][code]``), group sums in Python
    integers, scaled by the groups' 8-bit codes."""
    types = config.weight_types
    k, n = job.codes.shape
    values = np.zeros((k, n), dtype=object)
    for kk in range(k):
        for col in range(n):
            g = kk // config.group
            wtype = types[int(job.type_index[g, col])]
            row = wtype.values[int(job.selector[g, col])]
            values[kk, col] = row[wtype.codes.index(int(job.codes[kk, col]))]
    a = np.asarray(job.a).astype(object)
    raw = a @ values
    scaled = np.zeros_like(raw)
    for g in range(job.scale_code.shape[0]):
        part = slice(g * config.group, (g + 1) * config.group)
        scaled += (a[:, part] @ values[part]) * np.asarray(job.scale_code[g]).astype(object)
    return {"c_raw": _wrap(raw, config.raw_bits), "c_scaled": _wrap(scaled, config.scaled_bits)}


def sparse_dsp(config, job):
    """The dense weights rebuilt from the kept values and their positions in each block of M,
    then ``A @ W`` (wrapping configurations only)."""
    assert config.overflow == "wrap", "the reference covers wrapping accumulators"
    pattern = config.pattern
    kept, cols = job.values.shape
    blocks = kept // pattern.n
    dense = np.zeros((blocks * pattern.m, cols), dtype=object)
    for row in range(kept):
        block = row // pattern.n
        for col in range(cols):
            dense[block * pattern.m + int(job.indices[row, col]), col] = int(job.values[row, col])
    k = job.a.shape[1]
    return {"c": _wrap(_matmul(job.a, dense[:k]), config.acc_bits)}


def example_mac(config, job):
    return {"c": _wrap(_matmul(job.a, job.b), config.acc_bits)}


REFERENCES = {"systolic": systolic, "lmul": lmul, "lmul-dot": lmul_dot, "lut": lut,
              "bitserial": bitserial, "sparse-dsp": sparse_dsp, "example-mac": example_mac}
