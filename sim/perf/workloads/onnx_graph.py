"""Workloads from ONNX files: the GEMMs a network runs and the vector work between them.

Shapes come from ONNX's own shape inference (``onnx.shape_inference.infer_shapes`` with data
propagation), after the graph inputs' dynamic dimensions are bound by ``dims``
(``{"batch": 1, "seq": 2048}``); a dimension left unbound, or one that inference cannot resolve
for a node peforge maps, is an error: nothing is simulated on a guessed shape.

GEMMs (:data:`GEMM_OPS`), ``C[m x n] = A[m x k] @ W[k x n]`` repeated ``count`` times:

- ``MatMul``, ``MatMulInteger``, ``QLinearMatMul``, ``Gemm``: ``A[..., M, K] @ B[..., K, N]``;
  when ``B`` has no batch dimensions its leading ``A`` dimensions fold into ``m`` (one weight
  matrix for all tokens), else ``count`` is the broadcast batch;
- ``Conv``, ``ConvInteger``, ``QLinearConv`` (1-, 2- or 3-d, grouped and depthwise), by im2col
  per group: ``m = N * output pixels``, ``k = C / group * kernel``, ``n = M / group``,
  ``count = group``;
- ``ConvTranspose``: each input pixel times the kernel, ``m = N * input pixels``,
  ``k = C / group``, ``n = M / group * kernel``, ``count = group`` (the usual MAC count);
- ``Einsum`` of two operands that is a matrix product (every index in both operands is batch
  or contracted, every other one is in the output): ``m``, ``k``, ``n``, ``count`` the products
  of its free, contracted and batch indices.

Operand widths are those of the tensor types (float32: 32, float16: 16, int8: 8, int4: 4, ...);
an operand produced by ``DequantizeLinear`` (through layout ops such as ``Transpose``) has the
width of its quantized input, so a QDQ graph's int8 GEMMs are 8 bits wide. ``W`` is a weight
(``Gemm.w_is_weight``) when it is computed from initializers and constants only; its values
(:mod:`~peforge.sim.perf.workloads.onnx_weights`) give its measured zeros and N:M structure
along K (``Gemm.w_sparsity``, :mod:`~peforge.sim.perf.workloads.weight_sparsity`); a weight whose
values cannot be evaluated is named in the warnings, its sparsity unknown.

Vector work (:data:`VECTOR_OPS`): every other arithmetic node becomes a
:class:`~peforge.sim.perf.workloads.VectorOp` with its elements and bytes moved. Layout ops
(:data:`LAYOUT_OPS`: reshapes, transposes, slices, gathers) and nodes that only compute on
constants or shapes are not counted. Any other operator is listed by name and count in the
workload's warnings, and its work is missing from the totals.
"""

import math
import re
from collections import Counter
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from peforge.sim.perf.workloads.gemm import (Gemm, VectorOp, Workload, conv_shape,
                                             matmul_shape, positive_int)
from peforge.sim.perf.workloads.onnx_fold import infer_folded
from peforge.sim.perf.workloads.onnx_weights import (ZERO_POINT_INPUT, ConstantValues,
                                                     weight_matrices)
from peforge.sim.perf.workloads.weight_sparsity import WeightSparsity, measure_sparsity

__all__ = ["load_onnx", "read_onnx", "GEMM_OPS", "VECTOR_OPS", "LAYOUT_OPS", "ELEMENT_BITS"]

GEMM_OPS = ("MatMul", "MatMulInteger", "QLinearMatMul", "Gemm", "Conv", "ConvInteger",
            "QLinearConv", "ConvTranspose", "Einsum")

#: Operator -> vector work class (:data:`~peforge.sim.perf.workloads.VECTOR_KINDS`).
VECTOR_OPS = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Abs",
                     "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less", "LessOrEqual",
                     "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Clip", "Relu",
                     "LeakyRelu", "PRelu", "Cast", "CastLike", "QuantizeLinear",
                     "DequantizeLinear", "DynamicQuantizeLinear", "BatchNormalization", "Mod",
                     "Floor", "Ceil", "Round", "Sign", "IsNaN", "IsInf", "BitShift"),
                    "elementwise"),
    **dict.fromkeys(("Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Sigmoid", "HardSigmoid",
                     "HardSwish", "Tanh", "Exp", "Log", "Erf", "Softplus", "Softsign", "Elu",
                     "Selu", "Celu", "Mish", "Sin", "Cos", "ThresholdedRelu"), "activation"),
    **dict.fromkeys(("Softmax", "LogSoftmax", "Hardmax"), "softmax"),
    **dict.fromkeys(("LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
                     "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
                     "InstanceNormalization", "GroupNormalization", "LpNormalization",
                     "MeanVarianceNormalization"), "norm"),
    **dict.fromkeys(("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                     "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                     "ReduceLogSumExp", "ArgMax", "ArgMin", "GlobalAveragePool",
                     "GlobalMaxPool", "GlobalLpPool", "AveragePool", "MaxPool", "LpPool",
                     "CumSum", "TopK"), "reduction"),
}

#: Operators that move or reinterpret data without arithmetic: not counted.
LAYOUT_OPS = frozenset((
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "Size",
    "Gather", "GatherElements", "GatherND", "Slice", "Concat", "Split", "Pad", "Constant",
    "ConstantOfShape", "Range", "Expand", "Tile", "Dropout", "DepthToSpace", "SpaceToDepth",
    "Resize", "Upsample", "ScatterND", "ScatterElements", "Trilu", "OneHot", "EyeLike"))

#: Bits of each ONNX element type an operand may have.
ELEMENT_BITS = {
    TensorProto.FLOAT: 32, TensorProto.FLOAT16: 16, TensorProto.BFLOAT16: 16,
    TensorProto.DOUBLE: 64, TensorProto.INT8: 8, TensorProto.UINT8: 8, TensorProto.INT16: 16,
    TensorProto.UINT16: 16, TensorProto.INT32: 32, TensorProto.UINT32: 32,
    TensorProto.INT64: 64, TensorProto.UINT64: 64, TensorProto.BOOL: 8,
    **{getattr(TensorProto, name): 8 for name in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
                                                  "FLOAT8E5M2", "FLOAT8E5M2FNUZ")
       if hasattr(TensorProto, name)},
    **{getattr(TensorProto, name): 4 for name in ("INT4", "UINT4", "FLOAT4E2M1")
       if hasattr(TensorProto, name)},
}

#: Operand positions (A, W) of each GEMM operator's inputs.
_OPERANDS = {"QLinearMatMul": (0, 3), "QLinearConv": (0, 3)}
#: Layout ops a DequantizeLinear's width is traced through.
_PASS_THROUGH = frozenset(("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten",
                           "Identity"))


class _Graph:
    """An inferred graph's tensors: shapes (ints only), element types, producers and which
    tensors are constant (computed from initializers, ``Constant`` nodes and shapes only)."""

    def __init__(self, graph, label: str):
        self.label = label
        self.shapes, self.types = {}, {}
        for info in (*graph.input, *graph.value_info, *graph.output):
            tensor = info.type.tensor_type
            if info.type.HasField("tensor_type"):
                self.types[info.name] = tensor.elem_type
                if tensor.HasField("shape"):
                    self.shapes[info.name] = tuple(
                        dim.dim_value if dim.HasField("dim_value") else dim.dim_param or None
                        for dim in tensor.shape.dim)
        for init in graph.initializer:
            self.shapes[init.name], self.types[init.name] = tuple(init.dims), init.data_type
        self.constant = {init.name for init in graph.initializer}
        self.producer = {}
        for node in graph.node:
            for output in node.output:
                self.producer[output] = node
            inputs = [name for name in node.input if name]
            if node.op_type in ("Constant", "Shape", "Size") or (
                    inputs and all(name in self.constant for name in inputs)):
                self.constant.update(node.output)
        self.values = ConstantValues(graph, self.producer, self.constant)
        #: One line per weight whose sparsity could not be measured.
        self.unmeasured: list[str] = []

    def shape(self, node, name: str) -> tuple[int, ...]:
        shape = self.shapes.get(name)
        if shape is None:
            raise ValueError(f"onnx: {self.label}: node {node.name!r} ({node.op_type}): the "
                             f"shape of {name!r} is unknown after shape inference")
        unknown = [dim for dim in shape if not isinstance(dim, int) or dim < 1]
        if unknown:
            raise ValueError(f"onnx: {self.label}: node {node.name!r} ({node.op_type}): "
                             f"shape inference left dimension {unknown[0]!r} of {name!r} "
                             f"unresolved (shape {list(shape)}): an operator before it cannot "
                             f"be sized, and nothing is simulated on a guessed shape")
        return shape

    def bits(self, name: str) -> int:
        """The element width of an operand, traced back through layout ops to a
        ``DequantizeLinear``'s quantized input."""
        node = self.producer.get(name)
        while node is not None and node.op_type in _PASS_THROUGH:
            name, node = node.input[0], self.producer.get(node.input[0])
        if node is not None and node.op_type == "DequantizeLinear":
            name = node.input[0]
        elem = self.types.get(name)
        if elem not in ELEMENT_BITS:
            raise ValueError(f"onnx: {self.label}: tensor {name!r} has element type "
                             f"{TensorProto.DataType.Name(elem) if elem else 'unknown'}, "
                             f"not one peforge knows the width of")
        return ELEMENT_BITS[elem]


def _attr(node, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _einsum(equation: str, a: tuple, b: tuple) -> tuple[int, int, int, int] | None:
    """``(m, k, n, count)`` of a two-operand einsum that is a matrix product, else None."""
    equation = equation.replace(" ", "")
    if "->" not in equation or "." in equation:
        return None
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    if len(terms) != 2 or len(terms[0]) != len(a) or len(terms[1]) != len(b):
        return None
    sizes = {**dict(zip(terms[1], b)), **dict(zip(terms[0], a))}
    in_a, in_b, out = set(terms[0]), set(terms[1]), set(output)
    if not (in_a | in_b) >= out or any(terms[0].count(i) > 1 for i in in_a) \
            or any(terms[1].count(i) > 1 for i in in_b):
        return None
    if (in_a ^ in_b) - out:
        return None  # an index summed within one operand: not a matrix product
    product = lambda indices: math.prod(sizes[i] for i in indices)  # noqa: E731
    return (product(in_a - in_b), product((in_a & in_b) - out), product(in_b - in_a),
            product(in_a & in_b & out))


def _gemm(graph: _Graph, node, name: str) -> Gemm | None:
    """The GEMM of one node of :data:`GEMM_OPS`, or None for an Einsum that is not a matrix
    product."""
    op = node.op_type
    ia, iw = _OPERANDS.get(op, (0, 1))
    a_name, w_name = node.input[ia], node.input[iw]
    a, w = graph.shape(node, a_name), graph.shape(node, w_name)
    out = graph.shape(node, node.output[0])
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        m, k, n, count = matmul_shape(a, w)
    elif op == "Gemm":
        (m, k), n = (a[::-1] if _attr(node, "transA", 0) else a), \
            (w[0] if _attr(node, "transB", 0) else w[1])
        count = 1
    elif op == "Einsum":
        shape = _einsum(_attr(node, "equation", b"").decode(), a, w)
        if shape is None:
            return None
        m, k, n, count = shape
    else:
        m, k, n, count = conv_shape(a, w, out, _attr(node, "group", 1), op == "ConvTranspose")
    is_weight = w_name in graph.constant
    return Gemm(name, m, k, n, count, graph.bits(a_name), graph.bits(w_name),
                ELEMENT_BITS.get(graph.types.get(node.output[0]), 32), w_is_weight=is_weight,
                w_sparsity=_sparsity(graph, node, name, (k, n)) if is_weight else None)


def _sparsity(graph: _Graph, node, name: str, kn: tuple[int, int]) -> WeightSparsity | None:
    """The measured sparsity of the weight of GEMM node ``node`` (``kn``: the GEMM's ``K, N``),
    or None with a line in ``graph.unmeasured`` saying why it could not be measured."""
    op, inputs = node.op_type, list(node.input)
    zero_input = ZERO_POINT_INPUT.get(op)
    try:
        w = graph.values.value(inputs[_OPERANDS.get(op, (0, 1))[1]])
        zero_point = (graph.values.value(inputs[zero_input])
                      if zero_input is not None and len(inputs) > zero_input
                      and inputs[zero_input] else None)
        terms = None
        if op == "Einsum":
            ins, out = _attr(node, "equation", b"").decode().replace(" ", "").split("->")
            terms = (*ins.split(","), out)
        matrices = weight_matrices(op, w, zero_point=zero_point,
                                   trans_b=bool(_attr(node, "transB", 0)),
                                   group=_attr(node, "group", 1), terms=terms)
    except (ValueError, IndexError) as error:  # numpy's reshape and broadcast errors
        graph.unmeasured.append(f"{name}: {error}")
        return None
    if matrices.shape[1:] != kn:
        graph.unmeasured.append(f"{name}: its weight reads as {matrices.shape[1]} x "
                                f"{matrices.shape[2]}, not the GEMM's {kn[0]} x {kn[1]}")
        return None
    return measure_sparsity(matrices)


def _vector_op(graph: _Graph, node, name: str, kind: str) -> VectorOp:
    tensors = [(tensor, graph.shape(node, tensor)) for tensor in (*node.input, node.output[0])
               if tensor]
    sizes = {tensor: math.prod(shape) for tensor, shape in tensors}

    def nbytes(names):
        return sum((sizes[t] * ELEMENT_BITS.get(graph.types.get(t), 32) + 7) // 8
                   for t in names if t)
    return VectorOp(name, kind, max(sizes.values()), nbytes(node.input),
                    nbytes(node.output[:1]), 1, node.op_type)


def _bind(model, dims: dict, label: str) -> None:
    """Set the graph inputs' dynamic dimensions to ``dims`` in place; every one must be bound
    and every binding used."""
    initializers = {init.name for init in model.graph.initializer}
    used = set()
    for info in model.graph.input:
        if info.name in initializers:
            continue
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            key = dim.dim_param
            if not key:
                raise ValueError(f"onnx: {label}: input {info.name!r} has a dimension with "
                                 f"neither a size nor a name: the model cannot be sized")
            if key not in dims:
                raise ValueError(f"onnx: {label}: dimension {key!r} of input {info.name!r} is "
                                 f"unbound: give --dim {key}=N")
            used.add(key)
            dim.Clear()
            dim.dim_value = dims[key]
    unused = sorted(set(dims) - used)
    if unused:
        raise ValueError(f"dim: {unused[0]!r} is not a dynamic dimension of {label}'s inputs "
                         f"(they have: {', '.join(sorted(used)) or 'none'})")


def read_onnx(source) -> tuple[onnx.ModelProto, str]:
    """``(model, label)`` of an .onnx file (or a ModelProto); ValueError naming the file and why
    it cannot be read."""
    if isinstance(source, onnx.ModelProto):
        return source, source.graph.name or "model"
    path = Path(source)
    if path.is_dir():
        raise ValueError(f"onnx: {path} is a folder, not an .onnx file")
    try:
        model = onnx.load(path, format="protobuf")
    except OSError as error:
        raise ValueError(f"onnx: cannot read {path}: {error.strerror or error}") from None
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ValueError(f"onnx: {path} is not an ONNX model ({error})".replace("\n", " ")
                         ) from None
    if not model.ir_version or not model.graph.node:
        raise ValueError(f"onnx: {path} is not an ONNX model (no IR version or no graph)")
    return model, str(path)


def _listed(counts: Counter) -> str:
    return ", ".join(f"{op} x{count}" for op, count in sorted(counts.items()))


def _map_node(graph: _Graph, node, node_name: str, gemms: list, vector_ops: list,
              unmapped: Counter) -> None:
    """Add ``node``'s GEMM or vector op to the lists, or count it as unmapped; layout ops,
    constant computations and casts to the same type add nothing."""
    if node.op_type in LAYOUT_OPS or all(output in graph.constant for output in node.output) \
            or (node.op_type == "Cast" and graph.types.get(node.input[0]) == _attr(node, "to", 0)):
        return
    if node.op_type in GEMM_OPS and node.domain in ("", "ai.onnx"):
        gemm = _gemm(graph, node, node_name)
        if gemm is not None:
            gemms.append(gemm)
            return
    if node.op_type in VECTOR_OPS:
        vector_ops.append(_vector_op(graph, node, node_name, VECTOR_OPS[node.op_type]))
        return
    unmapped[node.op_type if node.op_type != "Einsum" else
             f"Einsum {_attr(node, 'equation', b'').decode()!r}"] += 1


def load_onnx(source, *, dims: dict | None = None, name: str | None = None) -> Workload:
    """The :class:`~peforge.sim.perf.workloads.Workload` of an ONNX model (a path or a
    ``ModelProto``), its dynamic input dimensions bound by ``dims`` (module docstring)."""
    dims = dict(dims or {})
    for key, value in dims.items():
        if not positive_int(value):
            raise ValueError(f"dim: {key} must be a positive integer, got {value!r}")
    model, label = read_onnx(source)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _bind(model, dims, label)
    model = infer_folded(model, label)
    graph = _Graph(model.graph, label)
    gemms, vector_ops, unmapped = [], [], Counter()
    for index, node in enumerate(model.graph.node):
        try:
            _map_node(graph, node, node.name or f"{node.op_type}_{index}", gemms, vector_ops,
                      unmapped)
        except ValueError as error:
            if not unmapped:
                raise
            raise ValueError(f"{error}; operators not mapped before it: "
                             f"{_listed(unmapped)}") from None
    warnings = []
    if unmapped:
        warnings.append(f"onnx: {label}: operators not mapped, their work is missing from the "
                        f"totals: {_listed(unmapped)}")
    if graph.unmeasured:
        warnings.append(f"onnx: {label}: weight sparsity not measured, the array assumes its "
                        f"own pattern: {'; '.join(graph.unmeasured)}")
    return Workload(name or Path(label).stem, tuple(gemms), tuple(vector_ops), tuple(warnings))


_DIM = re.compile(r"([A-Za-z_][\w.:/-]*)=(\d+)")


def parse_dims(items) -> dict[str, int]:
    """``["batch=1", "seq=2048"]`` (``--dim`` options) as ``{"batch": 1, "seq": 2048}``."""
    dims = {}
    for item in items or ():
        match = _DIM.fullmatch(item.strip())
        if not match or int(match[2]) < 1:
            raise ValueError(f"dim: must be NAME=N with N a positive integer, got {item!r}")
        dims[match[1]] = int(match[2])
    return dims
