"""Systolic family: configuration validation, golden model and cycle model, without RTL."""

import dataclasses

import numpy as np
import pytest

from peforge.models.integer import int_range, random_ints
from peforge.models.params import config_hash
from peforge.models.systolic import SystolicConfig, gemm_cycles, golden_gemm


@pytest.mark.parametrize("values, message", [
    ({"acc_bits": 15}, "acc_bits: must be in 16..64 for 8-bit operands (a product needs 16), got 15"),
    ({"acc_bits": 65}, "acc_bits: must be an integer in 4..64 (or unset: derived), got 65"),
])
def test_config_rejects_bad_fields(values, message):
    with pytest.raises(ValueError) as error:
        SystolicConfig(**values)
    assert str(error.value) == message


def test_config_is_frozen_and_hash_follows_fields():
    config = SystolicConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rows = 4
    assert config_hash("systolic", config) == config_hash("systolic", SystolicConfig())
    assert config_hash("systolic", config) != config_hash("systolic", SystolicConfig(rows=4))


@pytest.mark.parametrize("bits, signed, k_max, acc_bits", [
    (8, True, 4096, 28), (8, False, 4096, 28), (4, True, 1, 8), (16, True, 1 << 24, 56),
])
def test_default_accumulator_width(bits, signed, k_max, acc_bits):
    assert SystolicConfig(bits=bits, signed=signed, k_max=k_max).acc_bits == acc_bits


@pytest.mark.parametrize("signed", [True, False])
def test_default_accumulator_holds_worst_case_k_max(signed):
    """k_max products of the largest magnitude fit; one more step past the range would wrap."""
    config = SystolicConfig(bits=8, signed=signed, k_max=4096)
    low, high = int_range(8, signed)
    extreme = low if signed else high
    a = np.full((1, 4096), extreme, dtype=np.int64)
    worst = extreme * extreme * 4096
    assert golden_gemm(config, a, a.T)[0, 0] == worst
    acc_low, acc_high = int_range(config.acc_bits, signed)
    assert acc_low <= worst <= acc_high


def test_golden_equals_plain_python(rng):
    config = SystolicConfig(bits=6, signed=True)
    a, b = random_ints(rng, (5, 7), 6, True), random_ints(rng, (7, 3), 6, True)
    expected = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(7)) for j in range(3)]
                for i in range(5)]
    assert golden_gemm(config, a, b).tolist() == expected


@pytest.mark.parametrize("signed", [True, False])
def test_golden_wraps_like_a_register(signed):
    """A 16-bit accumulator keeps the low 16 bits of the exact sum (two's complement if signed)."""
    config = SystolicConfig(bits=8, signed=signed, acc_bits=16)
    low, high = int_range(8, signed)
    a = np.array([[high, high, low, 1]] * 2, dtype=np.int64)
    b = np.array([[high], [high], [high], [3]], dtype=np.int64)
    exact = high * high * 2 + low * high + 3
    low_bits = exact & 0xFFFF
    expected = low_bits - (1 << 16) if signed and low_bits >= 1 << 15 else low_bits
    assert golden_gemm(config, a, b).tolist() == [[expected], [expected]]


def test_golden_rejects_out_of_range_operands():
    config = SystolicConfig(bits=4, signed=True)
    with pytest.raises(ValueError, match="a: operands must be in -8..7"):
        golden_gemm(config, np.array([[8]]), np.array([[1]]))


@pytest.mark.parametrize("dataflow, rows, cols, m, k, n, cycles", [
    # os: tiles = ceil(M/R)*ceil(N/C), each K + 2R + C - 2
    ("os", 1, 1, 1, 1, 1, 2),
    ("os", 4, 8, 4, 10, 8, 10 + 8 + 8 - 2),
    ("os", 4, 8, 5, 10, 9, 4 * (10 + 8 + 8 - 2)),
    # ws: tiles = ceil(K/R)*ceil(N/C), each 2R + M + C - 2, plus 1
    ("ws", 1, 1, 1, 1, 1, 3),  # load at t, compute at t+1, result at t+2
    ("ws", 4, 8, 6, 4, 8, 8 + 6 + 8 - 2 + 1),
    ("ws", 4, 8, 6, 5, 17, 6 * (8 + 6 + 8 - 2) + 1),
])
def test_cycle_model_closed_form(dataflow, rows, cols, m, k, n, cycles):
    config = SystolicConfig(rows=rows, cols=cols, dataflow=dataflow)
    assert gemm_cycles(config, m, k, n) == cycles
