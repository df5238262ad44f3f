"""The accelerator tile around systolic arrays of float PEs (``pe: lmul`` or ``fp``): GEMMs end
to end under Verilator with cocotbext-axi's AxiRam as DRAM, C (fp32 patterns) read back
bit-exact against the tile's golden model (each K block summed in the array, the blocks' sums
added in the output scratchpad), which is checked against a reference of its own; the model's
cycles, stalls, DRAM bytes and SRAM accesses equal to the RTL's (ideal and stalled DRAM)."""

import numpy as np
import pytest

from peforge.sim.accel.flow import build_tile, generate, place, run_gemms
from peforge.sim.accel.golden import k_blocks, tile_golden
from peforge.sim.rtl.backends.verilator import lint

from tests.contract.references import _float_gemm
from tests.hw.test_accelerator import (ALIGNED, IDEAL, ODD_WRITES, RAGGED, _model_agrees,
                                       accel_config, random_runs)

#: L-Mul bf16 (2-byte elements) output-stationary; exact e4m3 weight-stationary; L-Mul bf16
#: with the PE's product and adder registers.
FLOATS = [{"pe": "lmul", "format": "bf16"}, {"pe": "fp", "format": "e4m3", "dataflow": "ws"},
          {"pe": "lmul", "format": "bf16", "mul_stages": 1, "add_stages": 1}]
IDS = ["lmul-bf16-os", "fp-e4m3-ws", "lmul-bf16-os-staged"]


def _reference(cfg, a, w, tk):
    """Each K block (:func:`k_blocks`) by the contract suite's float reference (ml_dtypes
    products, float64 sums rounded to fp32 each step), zero-padded as the feeder pads it; the
    blocks' sums added in float64 and rounded once each. Not for ``add_stages`` (the PE's own
    order within a block)."""
    total = None
    for start, stop, padded in k_blocks(cfg, a.shape[1], tk):
        pad = padded - (stop - start)
        part = _float_gemm(cfg.accel.pe, np.pad(a[:, start:stop], ((0, 0), (0, pad))),
                           np.pad(w[start:stop], ((0, pad), (0, 0))))
        values = np.asarray(part, dtype=np.int64).astype(np.uint32).view(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            total = values if total is None else \
                (total.astype(np.float64) + values).astype(np.float32)
    patterns = total.view(np.uint32).astype(np.int64)
    return np.where(np.isnan(total), 0x7FC00000, patterns)


def test_k_blocks_follow_the_feeder():
    """``os``: the K tiles; ``ws``: rows-step blocks of each K tile, the last one ragged."""
    os_cfg, ws_cfg = accel_config(**FLOATS[0]), accel_config(**FLOATS[1])
    assert k_blocks(os_cfg, 20, 8) == [(0, 8, 8), (8, 16, 8), (16, 20, 4)]
    assert k_blocks(ws_cfg, 20, 8) == [(0, 4, 4), (4, 8, 4), (8, 12, 4), (12, 16, 4),
                                       (16, 20, 4)]
    assert k_blocks(ws_cfg, 10, 16) == [(0, 4, 4), (4, 8, 4), (8, 10, 4)]
    assert k_blocks(ws_cfg, 9, 3) == [(0, 3, 4), (3, 6, 4), (6, 9, 4)]


@pytest.mark.parametrize("params", FLOATS[:2], ids=IDS[:2])
def test_tile_golden_equals_the_block_reference(params):
    cfg = accel_config(**params)
    for seed, (_d, a, w) in enumerate(random_runs(cfg, 21)):
        tk = _d.tk
        assert tile_golden(cfg, a, w, tk).tolist() == _reference(cfg, a, w, tk).tolist(), seed


def test_split_k_order_differs_from_one_pass():
    """The scratchpad's additions round: K of 64 in 4 tiles is not K in one tile."""
    cfg = accel_config(pe="fp", format="bf16")
    (_d, a, w), = [run for run in random_runs(cfg, 22) if run[0].k == 64]
    assert (tile_golden(cfg, a, w, 16) != tile_golden(cfg, a, w, 64)).any()


@pytest.fixture(scope="module", params=FLOATS, ids=IDS)
def float_runs(request):
    cfg = accel_config(**request.param)
    runs = random_runs(cfg, 23)
    return cfg, runs, run_gemms(cfg, build_tile(cfg), runs)


@pytest.mark.verilator
def test_float_gemms_bit_exact(float_runs):
    cfg, runs, results = float_runs
    assert len(runs) >= 20
    for (d, a, w), r in zip(runs, results):
        label = f"{d.m}x{d.k}x{d.n} tile {d.tm}x{d.tk}x{d.tn}/{d.order}"
        assert not r.illegal, label
        assert (r.c == tile_golden(cfg, a, w, d.tk)).all(), label
        assert r.counters["dram_write_bytes"] == 4 * d.m * d.n, label


@pytest.mark.verilator
@pytest.mark.parametrize("params", FLOATS, ids=IDS)
def test_float_lint_clean(params):
    verilog, manifest = generate(accel_config(**params))
    clean, messages = lint(verilog, manifest["top"])
    assert clean, messages
    assert manifest["dram_layout"]["c"].startswith("M x N row-major, 4-byte elements: fp32")


@pytest.mark.verilator
@pytest.mark.parametrize("params", FLOATS, ids=IDS)
def test_float_model_predicts_every_cycle(params):
    _model_agrees(IDEAL, ALIGNED[:3] + RAGGED[:4], **params)
    _model_agrees({"bytes_per_cycle": 4, "latency_cycles": 50}, RAGGED[:4] + ODD_WRITES[:2],
                  **params)


def test_config_names_what_the_rtl_cannot_build():
    with pytest.raises(ValueError, match=r"^pe.bits: the accelerator RTL takes integer PEs of 8 "
                                         r"or 16 bits, got 4$"):
        accel_config(bits=4)
    with pytest.raises(ValueError, match=r"^axi_data_bits: ws needs at least rows \* bits = 64 "
                                         r"\(one A row block per lane word\), got 32$"):
        accel_config(axi_data_bits=32, pe="fp", format="fp16", dataflow="ws")
    cfg = accel_config(pe="fp", format="fp16")
    assert (cfg.op_bits, cfg.op_bytes, cfg.acc_bits, cfg.float_pe) == (16, 2, 32, True)
