"""The vector unit: cycles of vector work counted by hand, the workload table with GEMM and
non-GEMM rows (GEMM rows unchanged), and `peforge sim --onnx / --hf-config` end to end."""

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from peforge.sim.cli import main
from peforge.sim.families import family
from peforge.sim.perf.accelerator import (Accelerator, Dram, VectorUnit, load_accelerator)
from peforge.sim.perf.model import simulate_workload
from peforge.sim.perf.vector import UNTIMED_NOTE, simulate_model, vector_cycles
from peforge.sim.perf.workloads import Gemm, VectorOp, Workload, load_onnx

SYSTOLIC = family("systolic")


def accel(**kwargs):
    return Accelerator("systolic", SYSTOLIC.make_config(rows=16, cols=16), **kwargs)


def test_vector_cycles_are_the_larger_of_lanes_and_dram():
    unit = accel(vector=VectorUnit(lanes=4, softmax=0.25), dram=Dram(bytes_per_cycle=10))
    # 100 elements at 4 lanes x 0.25 per cycle: 100 cycles; 500 bytes at 10 per cycle: 50
    softmax = VectorOp("s", "softmax", 100, 400, 100, count=3)
    assert vector_cycles(unit, softmax) == (300, 300)
    # 100 elements at 4 per cycle: 25 cycles, but DRAM needs 50
    add = VectorOp("a", "elementwise", 100, 400, 100, count=3)
    assert vector_cycles(unit, add) == (150, 75)
    ideal = accel(vector=VectorUnit(lanes=3), dram=Dram(bytes_per_cycle=math.inf))
    assert vector_cycles(ideal, add) == (3 * 34, 3 * 34)  # ceil(100 / 3)
    with pytest.raises(ValueError, match="^vector: the accelerator has no vector unit$"):
        vector_cycles(accel(), add)


def test_vector_unit_configuration_is_validated_and_loads_from_yaml():
    with pytest.raises(ValueError, match="^vector.lanes: must be a positive integer, got 0$"):
        accel(vector=VectorUnit(lanes=0))
    with pytest.raises(ValueError, match="^vector.norm: must be a number > 0, got -1$"):
        accel(vector=VectorUnit(norm=-1))
    loaded = load_accelerator({"family": "systolic", "vector": {"lanes": 128, "softmax": 0.5}})
    assert loaded.vector == VectorUnit(lanes=128, softmax=0.5)
    assert load_accelerator({"family": "systolic"}).vector is None
    with pytest.raises(ValueError, match=r"^vector.width: unknown key \(known: activation, "):
        load_accelerator({"family": "systolic", "vector": {"width": 3}})


WORKLOAD = Workload("w", (Gemm("fc1", 64, 128, 32), Gemm("fc2", 64, 32, 128)),
                    (VectorOp("act", "activation", 64 * 32, 64 * 32 * 4, 64 * 32),
                     VectorOp("norm", "norm", 64 * 128, 64 * 128 * 4, 64 * 128, count=2)))


def test_table_keeps_the_gemm_rows_and_adds_the_vector_work():
    timed = accel(vector=VectorUnit(lanes=16), dram=Dram(bytes_per_cycle=math.inf))
    table = simulate_model(timed, WORKLOAD)
    gemm_only = simulate_workload(timed, list(WORKLOAD.gemms))
    assert list(table["layer"]) == ["fc1", "fc2", "gemm total", "act", "norm", "vector total",
                                    "total"]
    assert list(table["cycles"][:3]) == list(gemm_only["cycles"])
    # act: 2048 elements / (16 lanes x 0.25) = 512; norm: 2 x 8192 / 4 = 4096
    assert list(table["cycles"][3:6]) == [512, 4096, 4608]
    assert table["cycles"].iloc[-1] == gemm_only["cycles"].iloc[-1] + 4608
    assert table["dram_read_bytes"].iloc[-1] == (gemm_only["dram_read_bytes"].iloc[-1]
                                                 + 64 * 32 * 4 + 2 * 64 * 128 * 4)
    untimed = simulate_model(accel(), WORKLOAD)
    assert untimed["cycles"].iloc[3:6].isna().all()
    assert untimed["note"].iloc[5] == UNTIMED_NOTE
    assert untimed["cycles"].iloc[-1] == untimed["cycles"].iloc[2]
    plain = simulate_model(accel(), Workload("g", WORKLOAD.gemms))
    assert list(plain["layer"]) == ["fc1", "fc2", "total"]
    with pytest.raises(ValueError, match="^workload: v has no GEMM for the PE array$"):
        simulate_model(accel(), Workload("v", (), WORKLOAD.vector_ops))


@pytest.fixture
def small_onnx(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["o"], name="fc2"),
             helper.make_node("Softmax", ["o"], ["y"], name="softmax")]
    inits = [numpy_helper.from_array(np.ones(shape, np.float32), name)
             for name, shape in (("w1", [64, 128]), ("w2", [128, 32]))]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["n", 64])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    return path


def test_cli_sim_onnx_prints_gemm_rows_and_the_non_gemm_summary(small_onnx, capsys, tmp_path):
    args = ["sim", "--family", "systolic", "--rows", "16", "--cols", "16", "--onnx",
            str(small_onnx), "--dim", "n=32"]
    assert main([*args, "--vector-lanes", "8", "--csv", str(tmp_path / "t.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["fc1", "fc2", "gemm"]
    table = simulate_model(accel(vector=VectorUnit(lanes=8)),
                           load_onnx(small_onnx, dims={"n": 32}))
    gemm, other = table["cycles"].iloc[2], table["cycles"].iloc[-2]
    assert lines[4].startswith("roofline: ")
    assert lines[5] == "non-GEMM work (vector unit of 8 lanes):"
    assert any(line.startswith(f"cycles: GEMM {gemm} + non-GEMM {other} = {gemm + other} (")
               for line in lines)
    assert any(line.split()[:2] == ["softmax", "1"] for line in lines)
    assert (tmp_path / "t.csv").read_text().count("\n") == len(table) + 1
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"non-GEMM work ({UNTIMED_NOTE}):" in out and f"cycles: GEMM {gemm}; non-GEMM not " \
        "timed" in out


@pytest.mark.parametrize("extra, message", [
    ([], "peforge: error: onnx: {path}: dimension 'n' of input 'x' is unbound: give --dim n=N"),
    (["--dim", "n=4", "--dim", "seq=3"], "peforge: error: dim: 'seq' is not a dynamic "
                                         "dimension of {path}'s inputs (they have: n)"),
    (["--dim", "n=-4"], "peforge: error: dim: must be NAME=N with N a positive integer, got "
                        "'n=-4'"),
    (["--dim", "n=4", "--vector-lanes", "0"], "peforge: error: vector.lanes: must be a positive "
                                              "integer, got 0"),
])
def test_cli_sim_onnx_errors_are_one_line(small_onnx, capsys, extra, message):
    assert main(["sim", "--family", "systolic", "--onnx", str(small_onnx), *extra]) != 0
    captured = capsys.readouterr()
    assert captured.err.strip() == message.format(path=small_onnx) and captured.out == ""


def test_cli_sim_hf_config_by_shipped_name(capsys):
    assert main(["sim", "--family", "systolic", "--rows", "16", "--cols", "16", "--hf-config",
                 "gpt2", "--phase", "decode", "--seq", "16", "--vector-lanes", "32"]) == 0
    out = capsys.readouterr().out
    assert " lm_head " in out and "non-GEMM work (vector unit of 32 lanes):" in out
