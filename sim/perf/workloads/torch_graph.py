"""Workloads from PyTorch modules, through ``torch.export`` (PyTorch is optional: not a
dependency of peforge).

``from_torch(module, example_inputs)`` exports the module on the example inputs, decomposes it
to core ATen operators and reads every node's shapes from the export's own metadata
(``node.meta["val"]``, fake tensors). GEMMs: ``mm``, ``addmm``, ``bmm``, ``baddbmm``,
``matmul``, ``linear`` (``A[..., K] @ W^T``) and ``convolution`` (plain, grouped, depthwise,
transposed; 1-3 d), with the shapes of :func:`~peforge.sim.perf.workloads.gemm.matmul_shape`
and :func:`~peforge.sim.perf.workloads.gemm.conv_shape`. Widths are the tensors' dtypes'
(float32: 32, bfloat16: 16, int8: 8). ``W`` is a weight when it is a parameter, buffer or
constant of the module (through views and transposes); its values (the views replayed on the
parameter) give its measured zeros and N:M structure along K (``Gemm.w_sparsity``, read as the
ONNX importer reads ``MatMul``, ``Gemm`` with ``transB`` for ``linear``, ``Conv`` and
``ConvTranspose``: :mod:`~peforge.sim.perf.workloads.onnx_weights`). The other arithmetic nodes become
vector work (:data:`VECTOR_ATEN`); views, copies and indexing are not counted; any other
operator is listed by name and count in the workload's warnings.
"""

import math
from collections import Counter

from peforge.sim.perf.workloads.gemm import (Gemm, VectorOp, Workload, conv_shape,
                                             matmul_shape)
from peforge.sim.perf.workloads.onnx_weights import weight_matrices
from peforge.sim.perf.workloads.weight_sparsity import WeightSparsity, measure_sparsity

__all__ = ["from_torch", "VECTOR_ATEN", "LAYOUT_ATEN"]

#: ATen operator (without namespace and overload) -> vector work class.
VECTOR_ATEN = {
    **dict.fromkeys(("add", "sub", "mul", "div", "neg", "abs", "pow", "sqrt", "rsqrt",
                     "reciprocal", "maximum", "minimum", "where", "clamp", "clamp_min",
                     "clamp_max", "relu", "hardtanh", "leaky_relu", "eq", "ne", "lt", "le", "gt",
                     "ge", "logical_not", "logical_and", "logical_or", "_to_copy", "floor",
                     "ceil", "round", "sign", "remainder", "fmod", "bitwise_and"),
                    "elementwise"),
    **dict.fromkeys(("gelu", "silu", "sigmoid", "tanh", "exp", "log", "erf", "elu",
                     "hardswish", "hardsigmoid", "softplus", "mish", "sin", "cos", "log1p",
                     "expm1"), "activation"),
    **dict.fromkeys(("_softmax", "_log_softmax", "softmax", "log_softmax"), "softmax"),
    **dict.fromkeys(("native_layer_norm", "native_group_norm", "native_batch_norm",
                     "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
                     "rms_norm", "_fused_rms_norm", "layer_norm", "group_norm"), "norm"),
    **dict.fromkeys(("sum", "mean", "amax", "amin", "max", "min", "prod", "var", "var_mean",
                     "argmax", "argmin", "cumsum", "max_pool2d_with_indices",
                     "max_pool1d_with_indices", "max_pool3d_with_indices", "avg_pool1d",
                     "avg_pool2d", "avg_pool3d", "_adaptive_avg_pool2d", "adaptive_avg_pool2d",
                     "_adaptive_avg_pool3d", "topk"), "reduction"),
}

#: ATen operators that move, view or index data without arithmetic: not counted.
LAYOUT_ATEN = frozenset((
    "view", "_unsafe_view", "reshape", "permute", "t", "transpose", "expand", "clone",
    "contiguous", "unsqueeze", "squeeze", "slice", "select", "cat", "split", "split_with_sizes",
    "alias", "detach", "lift_fresh_copy", "full", "full_like", "zeros", "zeros_like", "ones",
    "ones_like", "empty", "arange", "scalar_tensor", "embedding", "index", "index_select",
    "gather", "constant_pad_nd", "pad", "copy", "sym_size", "sym_numel", "sym_storage_offset",
    "_assert_tensor_metadata", "_assert_async", "repeat", "flip", "roll", "tril", "triu",
    "masked_fill", "unbind", "stack", "narrow", "as_strided", "upsample_nearest2d", "dropout"))

_VIEWS = frozenset(("view", "_unsafe_view", "reshape", "permute", "t", "transpose", "expand",
                    "clone", "contiguous", "unsqueeze", "squeeze", "alias", "detach",
                    "_to_copy", "lift_fresh_copy"))


def _op_name(target) -> str:
    """``aten.addmm.default`` -> ``addmm``; ``operator.getitem`` -> ``getitem``."""
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0] if "." in name else name


def _tensor(value):
    """The (first) fake tensor of a node's ``val``, or None."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    return value if hasattr(value, "shape") and hasattr(value, "dtype") else None


class _Program:
    """Shapes, widths and constant-ness of an exported program's nodes."""

    def __init__(self, program):
        signature = program.graph_signature
        #: placeholder name -> the parameter, buffer or constant it stands for
        self.constants = {**signature.inputs_to_parameters, **signature.inputs_to_buffers,
                          **getattr(signature, "inputs_to_lifted_tensor_constants", {})}
        self._values = {**program.state_dict, **getattr(program, "constants", {})}

    @staticmethod
    def shape(arg) -> tuple[int, ...]:
        tensor = _tensor(getattr(arg, "meta", {}).get("val"))
        if tensor is None:
            raise ValueError(f"torch: node {getattr(arg, 'name', arg)!r} has no tensor shape in "
                             f"the export's metadata")
        try:
            return tuple(int(dim) for dim in tensor.shape)
        except TypeError:
            raise ValueError(f"torch: node {arg.name!r} has a symbolic shape "
                             f"{list(tensor.shape)}: export with static example inputs"
                             ) from None

    @staticmethod
    def bits(arg) -> int:
        return _tensor(arg.meta["val"]).dtype.itemsize * 8

    def is_constant(self, arg) -> bool:
        """Whether ``arg`` is a parameter, buffer or constant, through views of it."""
        while getattr(arg, "op", None) == "call_function" and _op_name(arg.target) in _VIEWS:
            arg = arg.args[0]
        return getattr(arg, "op", None) == "placeholder" and arg.name in self.constants

    def value(self, arg):
        """The tensor of constant ``arg`` (:meth:`is_constant`): its parameter with the views
        between replayed."""
        views = []
        while arg.op == "call_function":
            views.append(arg)
            arg = arg.args[0]
        value = self._values[self.constants[arg.name]]
        for view in reversed(views):
            value = view.target(value, *view.args[1:], **view.kwargs)
        return value

    def tensor_args(self, node) -> list:
        args = [*node.args, *node.kwargs.values()]
        args = [item for arg in args for item in (arg if isinstance(arg, (list, tuple))
                                                  else [arg])]
        return [arg for arg in args if _tensor(getattr(arg, "meta", {}).get("val")) is not None]


def _gemm(program: _Program, node, op: str) -> Gemm:
    args = node.args
    a, w = args[1:3] if op in ("addmm", "baddbmm") else args[:2]  # (bias, A, W) or (A, W)
    sa, sw, out = program.shape(a), program.shape(w), program.shape(node)
    if op == "linear":
        m, k, n, count = matmul_shape(sa, sw[::-1])
        onnx_op, groups = "Gemm", 1
    elif op in ("convolution", "conv2d", "conv1d", "conv3d"):
        transposed = bool(args[6]) if op == "convolution" else False
        groups = args[8] if op == "convolution" else (args[6] if len(args) > 6 else 1)
        m, k, n, count = conv_shape(sa, sw, out, groups, transposed)
        onnx_op = "ConvTranspose" if transposed else "Conv"
    else:
        m, k, n, count = matmul_shape(sa, sw)
        onnx_op, groups = "MatMul", 1
    is_weight = program.is_constant(w)
    return Gemm(node.name, m, k, n, count, program.bits(a), program.bits(w), program.bits(node),
                w_is_weight=is_weight,
                w_sparsity=_sparsity(program, w, onnx_op, groups, (k, n)) if is_weight
                else None)


def _sparsity(program: _Program, w, onnx_op: str, groups: int, kn: tuple[int, int]
              ) -> WeightSparsity | None:
    """The measured sparsity of weight ``w`` read as ONNX's ``onnx_op`` reads it (``groups``
    of a convolution; ``kn``: the GEMM's ``K, N``), or None when it does not read as
    ``K x N``."""
    import torch

    with torch.no_grad():
        value = program.value(w).detach().to("cpu", torch.float32).numpy()
    matrices = weight_matrices(onnx_op, value, trans_b=onnx_op == "Gemm", group=groups)
    return measure_sparsity(matrices) if matrices.shape[1:] == kn else None


def _vector_op(program: _Program, node, kind: str, op: str) -> VectorOp:
    inputs = program.tensor_args(node)
    sizes = [math.prod(program.shape(arg)) for arg in inputs]
    out = math.prod(program.shape(node))
    read = sum((size * program.bits(arg) + 7) // 8 for size, arg in zip(sizes, inputs))
    return VectorOp(node.name, kind, max([out, *sizes]), read,
                    (out * program.bits(node) + 7) // 8, 1, op)


_GEMM_ATEN = frozenset(("mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "convolution",
                        "conv1d", "conv2d", "conv3d"))


def from_torch(module, example_inputs, *, name: str | None = None) -> Workload:
    """The :class:`~peforge.sim.perf.workloads.Workload` of a ``torch.nn.Module`` run on
    ``example_inputs`` (a tuple of tensors; their shapes fix every dimension). Raises
    ``ValueError`` when torch is not installed or the module does not export."""
    try:
        import torch
    except ImportError:
        raise ValueError("torch: from_torch needs PyTorch, which peforge does not install "
                         "(pip install torch)") from None
    try:
        with torch.no_grad():
            program = torch.export.export(module.eval(), tuple(example_inputs))
        program = program.run_decompositions()
    except Exception as error:  # torch raises many kinds for a module it cannot trace
        raise ValueError(f"torch: {type(module).__name__} does not export with torch.export: "
                         f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                         ) from None
    info = _Program(program)
    gemms, vector_ops, unmapped = [], [], Counter()
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        op = _op_name(node.target)
        if op in LAYOUT_ATEN or op == "getitem" or all(
                info.is_constant(arg) for arg in info.tensor_args(node)):
            continue
        if op in _GEMM_ATEN:
            gemms.append(_gemm(info, node, op))
        elif op in VECTOR_ATEN:
            vector_ops.append(_vector_op(info, node, VECTOR_ATEN[op], op))
        else:
            unmapped[op] += 1
    warnings = []
    if unmapped:
        listed = ", ".join(f"{op} x{count}" for op, count in sorted(unmapped.items()))
        warnings.append(f"torch: {type(module).__name__}: operators not mapped, their work is "
                        f"missing from the totals: {listed}")
    return Workload(name or type(module).__name__, tuple(gemms), tuple(vector_ops),
                    tuple(warnings))
