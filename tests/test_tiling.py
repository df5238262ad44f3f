"""The cycle models on numpy arrays against their scalar calls (what the vectorised ranking of
tilings relies on)."""

import math

import numpy as np
import pytest

from peforge.models.bitserial import BitserialConfig
from peforge.models.integer import ceil_div, check_dims
from peforge.models.lmul_family import DotConfig, MultiplierConfig
from peforge.models.lut import LutConfig
from peforge.models.sparse_dsp import SparseDspConfig
from peforge.models.systolic import SystolicConfig
from peforge.sim.families import family
from peforge.sim.perf import scalesim_compute_cycles


# -- cycle models on arrays -------------------------------------------------------------------

#: ``(family, configuration, w_bits)``: each family, pace-changing options and weight widths.
CYCLE_MODELS = [
    ("systolic", SystolicConfig(rows=5, cols=7), None),
    ("systolic", SystolicConfig(rows=16, cols=3, dataflow="ws"), None),
    ("bitserial", BitserialConfig(rows=4, cols=8, lanes=2, group=16), None),
    ("bitserial", BitserialConfig(rows=4, cols=8, lanes=2, group=16), 4),
    ("bitserial", BitserialConfig(rows=3, cols=5, wtypes="int6,int8", group=32), 6),
    ("lut", LutConfig(m=3, n=10, k=3, wbits=4), None),
    ("sparse-dsp", SparseDspConfig(chain=8, nm="1:4"), None),
    ("sparse-dsp", SparseDspConfig(chain=5, nm="4:4", preg=0), None),
    ("lmul", MultiplierConfig(lanes=7), None),
    ("lmul-dot", DotConfig(lanes=3), None),
]


def _shape_arrays(rng):
    """Broadcasting ``m`` (P, 1, 1), ``k`` (1, 1, R), ``n`` (1, Q, 1) with ragged sizes."""
    m, k, n = (rng.integers(1, 300, size) for size in (6, 9, 7))
    return m[:, None, None], k[None, None, :], n[None, :, None]


@pytest.mark.parametrize("name, config, w_bits", CYCLE_MODELS)
def test_family_cycles_on_arrays_equal_the_scalar_calls(name, config, w_bits):
    fam = family(name)
    m, k, n = _shape_arrays(np.random.default_rng(7))
    cycles = fam.gemm_cycles(config, m, k, n, w_bits)
    assert cycles.shape == (6, 7, 9) and cycles.dtype == np.int64
    for (i, j, l), value in np.ndenumerate(cycles):
        scalar = fam.gemm_cycles(config, int(m[i, 0, 0]), int(k[0, 0, l]), int(n[0, j, 0]),
                                 w_bits)
        assert type(scalar) is int and value == scalar


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_scalesim_cycles_on_arrays_equal_the_scalar_calls(dataflow):
    m, k, n = _shape_arrays(np.random.default_rng(11))
    cycles = scalesim_compute_cycles(dataflow, 12, 20, m, k, n)
    for (i, j, l), value in np.ndenumerate(cycles):
        scalar = scalesim_compute_cycles(dataflow, 12, 20, int(m[i, 0, 0]), int(k[0, 0, l]),
                                         int(n[0, j, 0]))
        assert type(scalar) is int and value == scalar


@pytest.mark.parametrize("name, config, w_bits", CYCLE_MODELS)
def test_family_cycles_reject_an_array_with_a_zero_dimension(name, config, w_bits):
    k = np.array([[[3, 0, 5]]])
    with pytest.raises(ValueError, match=r"^k: (GEMM )?dimensions must be >= 1, got 0$"):
        family(name).gemm_cycles(config, np.array([[[2]]]), k, np.array([[[4]]]), w_bits)


def test_ceil_div_is_exact_beyond_float_precision():
    a, b = 10**20 + 1, 10**10
    assert math.ceil(a / b) == 10**10  # the float quotient loses the remainder
    assert ceil_div(a, b) == 10**10 + 1 and type(ceil_div(a, b)) is int
    assert ceil_div(np.array([0, 1, 7, 8, 9]), 8).tolist() == [0, 1, 1, 1, 2]


def test_check_dims_names_the_first_bad_dimension_and_its_smallest_value():
    check_dims("GEMM dimensions", m=1, k=np.array([1, 2]), n=np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="^n: GEMM dimensions must be >= 1, got -3$"):
        check_dims("GEMM dimensions", m=4, n=np.array([[2, -3, 0]]), k=0)
