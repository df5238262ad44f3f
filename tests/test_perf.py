"""Performance model: workloads, mapping, memory stalls, SCALE-Sim compatibility, CLI."""

import math
import subprocess
import sys

import numpy as np
import pytest

from peforge.models.systolic import SystolicConfig, gemm_cycles
from peforge.sim.accelerator import Accelerator, Dram, Sram, load_accelerator
from peforge.sim.families import families, family
from peforge.sim.perf import (METRIC_COLUMNS, Mapping, MappingError, scalesim_compute_cycles,
                              simulate_gemm, simulate_workload)
from peforge.sim.workloads import (MODELS, Gemm, conv2d_gemm, load_scalesim_topology,
                                   transformer_gemms, workload_gemms)

from .conftest import run_jobs

BIG = Sram(size_kib=1 << 20, width_bytes=1 << 20)
IDEAL = Dram(bytes_per_cycle=math.inf, latency_cycles=0)


def ideal(config, family_name="systolic", **kwargs):
    """An accelerator whose memories never stall and hold any GEMM in one tile."""
    return Accelerator(family_name, config, input_sram=BIG, weight_sram=BIG, output_sram=BIG,
                       dram=IDEAL, **kwargs)


# Shapes for model == RTL: single and multiple tiles, ragged in every dimension (22).
MODEL_RTL_SHAPES = [(1, 1, 1), (4, 4, 8), (4, 1, 8), (1, 9, 1), (5, 3, 9), (8, 8, 16),
                    (3, 17, 5), (7, 2, 15), (12, 6, 24), (4, 33, 8), (9, 9, 9), (2, 5, 17),
                    (16, 3, 3), (13, 1, 31), (4, 12, 1), (1, 4, 40), (11, 11, 11), (6, 20, 10),
                    (20, 4, 6), (15, 7, 33), (17, 130, 3), (3, 40, 70)]

FAMILIES = sorted(families())


@pytest.mark.parametrize("name", FAMILIES)
def test_ideal_memory_equals_family_timing_model(name):
    fam = family(name)
    config = fam.config()
    for m, k, n in MODEL_RTL_SHAPES:
        result = simulate_gemm(ideal(config, name), Gemm("g", m, k, n))
        assert result.cycles == result.compute_cycles == fam.cycles(config, m, k, n)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_ideal_memory_systolic_dataflows(dataflow):
    config = SystolicConfig(rows=4, cols=8, dataflow=dataflow)
    for m, k, n in MODEL_RTL_SHAPES:
        result = simulate_gemm(ideal(config), Gemm("g", m, k, n))
        assert result.cycles == gemm_cycles(config, m, k, n)


@pytest.mark.parametrize("name", FAMILIES)
def test_split_gemms_stream_with_the_declared_overlap(name):
    """Two GEMMs back to back in one stream are one GEMM of both: the cycles add up, less the
    family's declared overlap. Checked on a dimension every family streams (rows of A split at
    a multiple of 16, which every default array tile divides)."""
    fam = family(name)
    config = fam.config()
    overlap = fam.pipeline_overlap(config)
    for k, n in ((5, 7), (33, 70)):
        parts = fam.cycles(config, 48, k, n) + fam.cycles(config, 16, k, n)
        assert fam.cycles(config, 64, k, n) == parts - overlap


def test_ideal_memory_bitserial_pace_follows_weight_width():
    """A bit-serial array allowing fp4, int4 and int8 runs a GEMM of 4-bit or narrower weights
    (BitNet's are 2 bits) at 2 terms per slot, wider ones at int8's 4; an int8-only array runs
    every width at 4. 8 x 8 array, 4 lanes, groups of 128 (32 slots): 20 x 300 x 10 is 3 x 2
    tiles of 3 groups, plus 8 + 8 + 1 per tile."""
    mixed = family("bitserial").make_config()
    int8_only = family("bitserial").make_config(wtypes="int8")
    for config, w_bits, terms in ((mixed, 2, 2), (mixed, 4, 2), (mixed, 6, 4), (mixed, 8, 4),
                                  (int8_only, 2, 4)):
        result = simulate_gemm(ideal(config, "bitserial"), Gemm("g", 20, 300, 10, w_bits=w_bits))
        assert result.compute_cycles == 6 * (3 * 32 * terms + 17)


@pytest.mark.verilator
@pytest.mark.parametrize("name", FAMILIES)
def test_model_equals_rtl_cycles(name):
    """The cycles measured on the Verilator model of the RTL (default configuration of each
    family, 22 shapes, random jobs) equal the family's job-level cycle model; the performance
    model's compute cycles equal them where the cycles depend on the shape alone, and bound them
    from above for the bit-serial family (its random groups mix narrow and wide types, the
    shape-level count assumes all of the widest)."""
    fam = family(name)
    config = fam.config()
    rng = np.random.default_rng(11)
    jobs = [fam.random_job(config, rng, *shape) for shape in MODEL_RTL_SHAPES]
    measured = [cycles for _, cycles in run_jobs("verilator", fam, config, jobs)]
    assert measured == [fam.job_cycles(config, job) for job in jobs]
    modelled = [simulate_gemm(ideal(config, name), Gemm("g", m, k, n)).compute_cycles
                for m, k, n in MODEL_RTL_SHAPES]
    if fam.job_timing is None:
        assert modelled == measured
    else:
        assert all(model >= rtl for model, rtl in zip(modelled, measured))
        assert modelled != measured


@pytest.mark.verilator
@pytest.mark.parametrize("wtype, w_bits", [("int8", 8), ("fp4", 4), ("int4", 2)])
def test_model_equals_rtl_cycles_bitserial_weight_width(wtype, w_bits):
    """On the default bit-serial build (fp4,int4,int8), jobs whose groups all hold ``wtype``
    take the performance model's compute cycles of a GEMM with weights ``w_bits`` wide."""
    fam = family("bitserial")
    config = fam.config()
    index = config.wtypes.split(",").index(wtype)
    rng = np.random.default_rng(12)
    jobs = [fam.random_job(config, rng, m, k, n, np.full((-(-k // config.group), n), index))
            for m, k, n in MODEL_RTL_SHAPES]
    measured = [cycles for _, cycles in run_jobs("verilator", fam, config, jobs)]
    modelled = [simulate_gemm(ideal(config, "bitserial"), Gemm("g", m, k, n, w_bits=w_bits)
                              ).compute_cycles for m, k, n in MODEL_RTL_SHAPES]
    assert modelled == measured


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow, signed", [("os", False), ("ws", True)])
def test_model_equals_rtl_cycles_systolic_dataflows(dataflow, signed):
    systolic = family("systolic")
    config = systolic.make_config(rows=4, cols=8, dataflow=dataflow, signed=signed)
    rng = np.random.default_rng(11)
    jobs = [systolic.random_job(config, rng, *shape) for shape in MODEL_RTL_SHAPES]
    measured = [cycles for _, cycles in run_jobs("verilator", systolic, config, jobs)]
    modelled = [simulate_gemm(ideal(config), Gemm("g", m, k, n)).compute_cycles
                for m, k, n in MODEL_RTL_SHAPES]
    assert modelled == measured


@pytest.mark.parametrize("timing, cycles", [
    # SCALE-Sim 3.0, 32 x 32 array (figures of the performance-model issue)
    ("scalesim-os", {(64, 64, 64): 503, (128, 256, 512): 20_351, (512, 512, 512): 146_943}),
    ("scalesim-ws", {(128, 256, 512): 28_415}),
    ("scalesim-is", {(128, 256, 512): 19_391}),
])
def test_scalesim_compatibility(timing, cycles):
    accel = ideal(SystolicConfig(rows=32, cols=32), timing=timing)
    for (m, k, n), expected in cycles.items():
        assert simulate_gemm(accel, Gemm("g", m, k, n)).compute_cycles == expected


def test_scalesim_fold_formula_rejects_unknown_dataflow():
    with pytest.raises(ValueError, match="dataflow: must be one of os, ws, is, got 'rs'"):
        scalesim_compute_cycles("rs", 4, 4, 1, 1, 1)


@pytest.mark.parametrize("bandwidth", [0.25, 0.5])
def test_memory_bound_approaches_roofline_from_above(bandwidth):
    """With a slow DRAM the GEMM takes at least bytes / bandwidth, and not much more; the
    difference to compute is accounted as stall."""
    config = SystolicConfig(rows=8, cols=8)
    accel = Accelerator("systolic", config, input_sram=Sram(64), weight_sram=Sram(64),
                        output_sram=Sram(64), dram=Dram(bytes_per_cycle=bandwidth,
                                                        latency_cycles=0))
    result = simulate_gemm(accel, Gemm("g", 256, 256, 256, out_bits=32))
    roofline = (result.dram_read_bytes + result.dram_write_bytes) / bandwidth
    assert roofline > 2 * result.compute_cycles  # memory-bound indeed
    assert roofline <= result.cycles <= 1.1 * roofline
    assert result.cycles > result.compute_cycles
    table = simulate_workload(accel, [Gemm("g", 256, 256, 256, out_bits=32)])
    assert table.loc[0, "stall_cycles"] == result.cycles - result.compute_cycles
    # every byte of A, W and C crosses the DRAM at least once
    assert result.dram_read_bytes >= 2 * 256 * 256 and result.dram_write_bytes == 256 * 256 * 4


def test_narrow_sram_ports_stall_the_array():
    """One 64 x 64 x 64 int8 tile through 8-byte SRAM ports: the weight block (4 KiB) takes 512
    cycles, longer than the 64 x 64 array's 64 + 2*64 + 64 - 2 = 254, and the difference is
    stall."""
    config = SystolicConfig(rows=64, cols=64)
    gemm = Gemm("g", 64, 64, 64, out_bits=8)
    wide = simulate_gemm(ideal(config), gemm)
    narrow_sram = Sram(size_kib=1 << 10, width_bytes=8, banks=1)
    narrow = simulate_gemm(Accelerator("systolic", config, input_sram=narrow_sram,
                                       weight_sram=narrow_sram, output_sram=narrow_sram,
                                       dram=IDEAL), gemm)
    assert wide.compute_cycles == narrow.compute_cycles == gemm_cycles(config, 64, 64, 64)
    assert narrow.mapping == Mapping(64, 64, 64, "mn")
    assert narrow.compute_cycles == 254 and narrow.cycles == 64 * 64 // 8


def test_latency_adds_stall_but_ideal_bandwidth_does_not():
    config = SystolicConfig(rows=8, cols=8)
    gemm = Gemm("g", 64, 64, 64)
    fast = simulate_gemm(ideal(config), gemm)
    slow = simulate_gemm(Accelerator("systolic", config, input_sram=BIG, weight_sram=BIG,
                                     output_sram=BIG,
                                     dram=Dram(bytes_per_cycle=math.inf, latency_cycles=500)),
                         gemm)
    # one tile: one load (500) before compute, one write-back (500) after it
    assert slow.cycles == fast.cycles + 1000 and slow.compute_cycles == fast.compute_cycles


def test_llama2_7b_gemm_shapes_and_macs():
    gemms = {g.name: g for g in transformer_gemms(MODELS["llama2-7b"], "prefill", 2048)}
    assert (gemms["q_proj"].m, gemms["q_proj"].k, gemms["q_proj"].n) == (2048, 4096, 4096)
    assert (gemms["ffn_down"].k, gemms["ffn_down"].n) == (11008, 4096)
    assert gemms["attn_score"].count == 32 * 32 and gemms["attn_score"].k == 128
    per_layer = 4 * 2048 * 4096 * 4096 + 2 * 2048 * 2048 * 4096 + 3 * 2048 * 4096 * 11008
    assert sum(g.macs for g in gemms.values()) == 32 * per_layer


def test_decode_and_gqa_shapes():
    gemms = {g.name: g for g in transformer_gemms(MODELS["llama3-8b"], "decode", 1000)}
    assert gemms["k_proj"].m == 1 and gemms["k_proj"].n == 8 * 128  # 8 KV heads of 128
    assert (gemms["attn_score"].m, gemms["attn_score"].k, gemms["attn_score"].n) == (1, 128, 1000)
    opt = {g.name for g in transformer_gemms(MODELS["opt-6.7b"], "prefill", 16)}
    assert {"ffn_fc1", "ffn_fc2"} <= opt and "ffn_gate" not in opt
    bitnet = transformer_gemms(MODELS["bitnet-b1.58-3b"], "prefill", 16)
    assert bitnet[0].w_bits == 2 and bitnet[0].count == 26


def test_conv2d_lowering():
    # ResNet's first layer: 224 x 224 x 3, 7 x 7, 64 filters, stride 2, padding 3 -> 112 x 112
    gemm = conv2d_gemm("conv1", height=224, width=224, channels=3, filters=64, kernel_h=7,
                       kernel_w=7, stride=2, padding=3)
    assert (gemm.m, gemm.k, gemm.n) == (112 * 112, 7 * 7 * 3, 64)


def test_scalesim_topology_import(tmp_path):
    gemm_csv = tmp_path / "gemm.csv"
    gemm_csv.write_text("Layer, M, N, K,\nfc1, 128, 256, 512,\n")
    conv_csv = tmp_path / "conv.csv"
    conv_csv.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                        "Channels, Num Filter, Strides,\nconv1, 30, 30, 3, 3, 16, 32, 1,\n")
    (fc1,) = load_scalesim_topology(gemm_csv)
    # SCALE-Sim's row M, N, K is A (M x K) @ B (K x N): run 128,256,512 reports 18,367 OS cycles
    # on 32 x 32 = 4 * 8 folds of 32 + 32 + 512 - 2, minus 1.
    assert (fc1.name, fc1.m, fc1.k, fc1.n) == ("fc1", 128, 512, 256)
    accel = ideal(SystolicConfig(rows=32, cols=32), timing="scalesim-os")
    assert simulate_gemm(accel, fc1).compute_cycles == 18_367
    (conv1,) = load_scalesim_topology(conv_csv)
    assert (conv1.m, conv1.k, conv1.n) == (28 * 28, 3 * 3 * 16, 32)
    bad = tmp_path / "bad.csv"
    bad.write_text("x, 1, 2\n")
    with pytest.raises(ValueError, match=r"bad.csv:1: a SCALE-Sim row has 3 \(GEMM\) or 7"):
        load_scalesim_topology(bad)


def test_bad_inputs_name_the_field(tmp_path):
    config = SystolicConfig()
    with pytest.raises(ValueError, match="^dram.bytes_per_cycle: must be a number > 0, got 0$"):
        Accelerator("systolic", config, dram=Dram(bytes_per_cycle=0))
    with pytest.raises(ValueError, match="^workload: must be one of llama2-7b"):
        workload_gemms("gpt-2")
    tiny = Accelerator("systolic", config, input_sram=Sram(1), weight_sram=Sram(1),
                       output_sram=Sram(1))
    with pytest.raises(MappingError, match="^buffers: no tile of a 64x64x64 GEMM fits"):
        simulate_gemm(tiny, Gemm("g", 64, 64, 64))
    with pytest.raises(ValueError, match="^dram.bandwidth: unknown key"):
        load_accelerator({"family": "systolic", "dram": {"bandwidth": 3}})
    with pytest.raises(ValueError, match="^timing: must be one of rtl, scalesim-os, "):
        Accelerator("systolic", config, timing="scalesim-rs")


def test_yaml_config_and_cli_table(tmp_path):
    yaml_file = tmp_path / "accel.yaml"
    yaml_file.write_text("family: systolic\npe: {rows: 16, cols: 16, dataflow: ws}\n"
                         "dram: {bytes_per_cycle: 64, latency_cycles: 50}\n"
                         "output_sram: {size_kib: 128}\n")
    accel = load_accelerator(yaml_file)
    assert accel.pe == SystolicConfig(rows=16, cols=16, dataflow="ws")
    assert accel.dram.latency_cycles == 50 and accel.output_sram.size_bytes == 128 * 1024
    topology = tmp_path / "layers.csv"
    topology.write_text("Layer, M, N, K,\nfc1, 64, 128, 32,\nfc2, 64, 32, 128,\n")
    out_csv = tmp_path / "out.csv"
    result = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "sim", "--config",
                             str(yaml_file), "--topology", str(topology), "--csv", str(out_csv)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["layer", "m", "k"]
    assert [line.split()[0] for line in lines[1:4]] == ["fc1", "fc2", "total"]
    table = simulate_workload(accel, load_scalesim_topology(topology))
    assert int(lines[3].split()[5]) == table.loc[2, "cycles"] == table.loc[:1, "cycles"].sum()


@pytest.mark.parametrize("args, message", [
    (["--workload", "gpt9"], "peforge: error: workload: must be one of llama2-7b"),
    (["--workload", "llama2-7b", "--dram-bw", "0"],
     "peforge: error: dram.bytes_per_cycle: must be a number > 0, got 0.0"),
    (["--workload", "llama2-7b", "--input-kib", "1", "--weight-kib", "1", "--output-kib", "1"],
     "peforge: error: buffers: no tile of a 2048x4096x4096 GEMM fits"),
    (["--workload", "llama2-7b", "--rows", "0"],
     "peforge: error: rows: must be an integer in 1..256, got 0"),
])
def test_cli_sim_errors_are_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "sim", "--family",
                             "systolic", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)


def test_metric_columns_are_the_tables_numeric_columns():
    accel = Accelerator("systolic", family("systolic").make_config(rows=8, cols=8))
    table = simulate_workload(accel, [Gemm("g", 64, 64, 64)])
    numeric = {name for name in table.columns if name not in ("layer", "mapping", "m", "k", "n",
                                                               "count")}
    assert numeric == set(METRIC_COLUMNS)
