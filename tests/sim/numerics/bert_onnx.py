"""An ONNX graph of a BERT encoder built with onnx.helper from the packaged all-MiniLM-L6-v2
weights, in the form of a HuggingFace export: ids, mask and type inputs, position ids from the
input's shape, LayerNormalization, heads by Reshape/Transpose, an additive mask bias, Softmax and
an Erf GELU; output the token states ``[1, tokens, 384]``. Layer 0's attention output is a
``Gemm`` with ``transB=1`` on the flattened tokens (the weight as torch stores it, N x K); every
other projection a ``MatMul`` with a K x N initializer."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HEADS, HEAD_DIM = 12, 32


class _Builder:
    def __init__(self, weights):
        self.weights, self.nodes, self.inits, self.count = weights, [], [], 0

    def const(self, value, dtype=np.float32):
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type, *inputs, **attrs):
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def weight(self, name, transpose=True):
        matrix = self.weights[name]
        return self.const(matrix.T if transpose else matrix)

    def linear(self, x, prefix):
        return self.op("Add", self.op("MatMul", x, self.weight(prefix + ".weight")),
                       self.const(self.weights[prefix + ".bias"]))

    def norm(self, x, prefix):
        return self.op("LayerNormalization", x, self.const(self.weights[prefix + ".weight"]),
                       self.const(self.weights[prefix + ".bias"]), axis=-1, epsilon=1e-12)


def _heads(b, x, perm):
    shaped = b.op("Reshape", x, b.const([1, -1, HEADS, HEAD_DIM], np.int64))
    return b.op("Transpose", shaped, perm=perm)


def _layer(b, x, p, gemm_out):
    q = _heads(b, b.linear(x, p + "attention.self.query"), [0, 2, 1, 3])
    k = _heads(b, b.linear(x, p + "attention.self.key"), [0, 2, 3, 1])
    v = _heads(b, b.linear(x, p + "attention.self.value"), [0, 2, 1, 3])
    scores = b.op("Add", b.op("Div", b.op("MatMul", q, k), b.const(np.sqrt(HEAD_DIM))), "bias")
    context = b.op("MatMul", b.op("Softmax", scores, axis=-1), v)
    context = b.op("Transpose", context, perm=[0, 2, 1, 3])
    name = p + "attention.output.dense"
    if gemm_out:
        flat = b.op("Reshape", context, b.const([-1, HEADS * HEAD_DIM], np.int64))
        out = b.op("Gemm", flat, b.weight(name + ".weight", transpose=False),
                   b.const(b.weights[name + ".bias"]), transB=1)
        out = b.op("Reshape", out, b.const([1, -1, HEADS * HEAD_DIM], np.int64))
    else:
        out = b.linear(b.op("Reshape", context, b.const([1, -1, HEADS * HEAD_DIM], np.int64)),
                       name)
    x = b.norm(b.op("Add", x, out), p + "attention.output.LayerNorm")
    up = b.linear(x, p + "intermediate.dense")
    gelu = b.op("Mul", b.op("Mul", up, b.const(0.5)),
                b.op("Add", b.const(1.0), b.op("Erf", b.op("Div", up, b.const(np.sqrt(2.0))))))
    return b.norm(b.op("Add", x, b.linear(gelu, p + "output.dense")), p + "output.LayerNorm")


def bert_onnx(weights: dict, layers: int = 6):
    """The ModelProto (opset 17) of the encoder with ``weights`` (MiniLM's safetensors names)."""
    b = _Builder(weights)
    w = lambda name: b.const(weights[f"embeddings.{name}.weight"])
    seq = b.op("Gather", b.op("Shape", "input_ids"), b.const(1, np.int64), axis=0)
    positions = b.op("Range", b.const(0, np.int64), seq, b.const(1, np.int64))
    x = b.op("Add", b.op("Add", b.op("Gather", w("word_embeddings"), "input_ids"),
                         b.op("Gather", w("position_embeddings"), positions)),
             b.op("Gather", w("token_type_embeddings"), "token_type_ids"))
    x = b.norm(x, "embeddings.LayerNorm")
    keep = b.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = b.op("Mul", b.op("Sub", b.const(1.0), keep), b.const(-10000.0))
    b.nodes.append(helper.make_node("Unsqueeze", [bias, b.const([1, 2], np.int64)], ["bias"]))
    for layer in range(layers):
        x = _layer(b, x, f"encoder.layer.{layer}.", gemm_out=layer == 0)
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    ids = [helper.make_tensor_value_info(name, TensorProto.INT64, [1, "seq"])
           for name in ("input_ids", "attention_mask", "token_type_ids")]
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, "seq", 384])
    graph = helper.make_graph(b.nodes, "minilm", ids, [out], b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
