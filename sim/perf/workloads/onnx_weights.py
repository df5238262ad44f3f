"""The values of an ONNX GEMM's weight, as the ``count x K x N`` matrices the GEMM reads, for
:func:`~peforge.sim.perf.workloads.weight_sparsity.measure_sparsity`.

A weight is a tensor computed from initializers and constants only: its value is that of the
initializer, or of the nodes between (``DequantizeLinear``, ``Transpose``, ``Reshape``, ``Cast``,
...), evaluated by ONNX's reference evaluator. The integer operators' weights are their codes
less their zero point (``MatMulInteger``, ``ConvInteger``: input 3; ``QLinearMatMul``,
``QLinearConv``: input 5), so a weight is zero where its code is the zero point, as after a
``DequantizeLinear``.

Each operator's ``W`` as matrices (``K`` in the order the groups along K are counted):

- ``MatMul`` family ``W[..., K, N]``: one ``K x N`` matrix per batch element (a vector ``W[K]``
  is ``K x 1``); ``Gemm``: ``W[K, N]``, or ``W[N, K]`` transposed with ``transB``;
- ``Conv`` family ``W[M, C/g, *kernel]``: per group of ``M/g`` output channels, ``K`` the kernel
  positions times the ``C/g`` input channels, channels innermost (channels-last im2col: a group
  of ``M`` along K is ``M`` consecutive input channels at one kernel position, the layout of
  N:M-sparse convolutions), ``N`` the group's output channels;
- ``ConvTranspose`` ``W[C, M/g, *kernel]``: per group, ``K`` its ``C/g`` input channels, ``N``
  its output channels times the kernel;
- ``Einsum``: ``W``'s batch, contracted and free indices, each in ``W``'s order.
"""

import numpy as np
from onnx import numpy_helper

from peforge.sim.perf.workloads.onnx_fold import evaluate_node

__all__ = ["ConstantValues", "weight_matrices", "ZERO_POINT_INPUT"]

#: The input holding the weight's zero point, of the integer GEMM operators.
ZERO_POINT_INPUT = {"MatMulInteger": 3, "ConvInteger": 3, "QLinearMatMul": 5, "QLinearConv": 5}


class ConstantValues:
    """The values of a graph's constant tensors (``constant``: names computed from initializers
    and constants only; ``producer``: the node of each tensor), evaluated on demand."""

    def __init__(self, graph, producer: dict, constant: set):
        self._initializers = {init.name: init for init in graph.initializer}
        self._producer, self._constant = producer, constant

    def value(self, name: str) -> np.ndarray:
        """The value of constant tensor ``name``; ValueError saying which node could not be
        evaluated and why."""
        values: dict[str, np.ndarray] = {}
        stack = [name]
        while stack:
            tensor = stack[-1]
            if tensor in values:
                stack.pop()
                continue
            if tensor in self._initializers:
                values[tensor] = numpy_helper.to_array(self._initializers[tensor])
                stack.pop()
                continue
            node = self._producer.get(tensor)
            if node is None or tensor not in self._constant:
                raise ValueError(f"{tensor!r} is not computed from initializers only")
            missing = [i for i in node.input if i and i not in values]
            if missing:
                stack.extend(missing)
                continue
            try:
                outputs = evaluate_node(node, values)
            except Exception as error:  # the reference evaluator raises many kinds
                raise ValueError(f"node {node.name or node.op_type!r} ({node.op_type}) cannot "
                                 f"be evaluated: {error}".replace("\n", " ")) from None
            values.update(zip(node.output, (np.asarray(out) for out in outputs)))
            stack.pop()
        return values[name]


def weight_matrices(op: str, w: np.ndarray, *, zero_point: np.ndarray | None = None,
                    trans_b: bool = False, group: int = 1,
                    terms: tuple[str, str, str] | None = None) -> np.ndarray:
    """``W`` of a GEMM operator ``op`` as ``count x K x N`` matrices (module docstring):
    ``zero_point`` of an integer operator, ``trans_b`` of ``Gemm``, ``group`` of a convolution,
    ``terms`` ``(a, w, output)`` indices of an ``Einsum`` that is a matrix product."""
    w = np.asarray(w)
    if zero_point is not None:
        zero_point = np.asarray(zero_point).astype(np.int64)
        if op in ("ConvInteger", "QLinearConv") and zero_point.ndim == 1:
            zero_point = zero_point.reshape(-1, *(1,) * (w.ndim - 1))
        w = w.astype(np.int64) - zero_point
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        if w.ndim == 1:
            return w.reshape(1, -1, 1)
        return w.reshape(-1, *w.shape[-2:])
    if op == "Gemm":
        return (w.T if trans_b else w)[np.newaxis]
    if op == "ConvTranspose":
        channels = w.shape[0] // group
        return w.reshape(group, channels, -1)
    if op == "Einsum":
        in_a, in_w, out = terms
        batch = [i for i in in_w if i in in_a and i in out]
        contracted = [i for i in in_w if i in in_a and i not in out]
        free = [i for i in in_w if i not in in_a]
        order = [in_w.index(i) for i in (*batch, *contracted, *free)]
        sizes = [int(np.prod([w.shape[in_w.index(i)] for i in part], dtype=np.int64))
                 for part in (batch, contracted, free)]
        return w.transpose(order).reshape(sizes)
    # Conv, ConvInteger, QLinearConv: [M, C/g, *kernel] -> per group [kernel * C/g, M/g]
    outputs = w.shape[0] // group
    channels_last = np.moveaxis(w, 1, -1).reshape(group, outputs, -1)
    return channels_last.transpose(0, 2, 1)
