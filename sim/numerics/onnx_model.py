"""A text encoder from an ONNX file, run in numpy with every matrix product through a pluggable GEMM.

The graph runs on onnx's own reference evaluator (``onnx.reference.ReferenceEvaluator``, numpy),
with its ``MatMul`` and ``Gemm`` operators replaced by ones that call ``gemm(kind, x, w)`` (the
contract of :mod:`peforge.sim.numerics.encoder`) on 2-D float32 operands:

- ``weight``: the second operand is computed from initializers and constants only (a weight
  matrix, e.g. a BERT projection or FFN layer); leading dimensions of the first fold into rows;
- ``activation``: both operands are activations (in a transformer: attention's ``Q K^T`` and
  ``P V``); each matrix of the broadcast batch (e.g. each head) is one GEMM.

``Gemm``'s ``alpha``, ``beta`` and ``C`` are applied in float32 after the product. Every other
operator runs as the reference evaluator computes it.

The model must be a BERT-style text encoder: graph inputs among ``input_ids``,
``attention_mask`` and ``token_type_ids`` (integer, shape ``[batch, tokens]``), fed with one
sentence's token ids, a mask of ones and type 0; its first output is ``[1, tokens, hidden]``
(token states, mean-pooled over the tokens, as sentence-transformers pools) or ``[1, hidden]``
(a sentence vector); either is then L2-normalised. Its tokenizer is the ``tokenizer.json``
(HuggingFace ``tokenizers``) beside the .onnx file or in the folder above it (the layouts of
HuggingFace and sentence-transformers exports).
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from peforge.sim.numerics.encoder import ModelError, float_gemm
from peforge.sim.perf.workloads.onnx_graph import read_onnx

__all__ = ["OnnxEncoder", "load_onnx_encoder", "ONNX_GEMM_SETS"]

#: Inputs of a BERT-style encoder and what each is fed for one sentence of ``n`` tokens.
_FEEDS = {"input_ids": lambda ids: ids, "attention_mask": np.ones_like,
          "token_type_ids": np.zeros_like}

#: ``--gemms`` sets of an ONNX model.
ONNX_GEMM_SETS = {"all": ("weight", "activation"), "weights": ("weight",),
                  "attention": ("activation",)}


def _constant_names(graph) -> set[str]:
    """Tensors computed from initializers and Constant nodes only (graph order is topological)."""
    inputs = {i.name for i in graph.input}
    constant = {t.name for t in graph.initializer} - inputs
    for node in graph.node:
        if all(name in constant for name in node.input if name):
            constant.update(node.output)
    return constant


class OnnxEncoder:
    """An ONNX text encoder (module doc); the same interface as
    :class:`~peforge.sim.numerics.encoder.MiniLM`."""

    gemm_sets = ONNX_GEMM_SETS
    weight_kinds = ("weight",)

    def __init__(self, model: onnx.ModelProto, tokenizer, label: str):
        self.name, self.tokenizer, self._gemm = Path(label).name, tokenizer, float_gemm
        graph = model.graph
        constant = _constant_names(graph)
        initializers = {t.name: t for t in graph.initializer}
        self._inputs = [i for i in graph.input if i.name not in initializers]
        for info in self._inputs:
            if info.name not in _FEEDS:
                raise ModelError(f"model: {label}: input {info.name!r} is not one of "
                                 f"{', '.join(_FEEDS)} (a BERT-style text encoder)")
        self._weights = []
        for node in graph.node:
            weight = initializers.get(node.input[1]) if node.op_type in ("MatMul", "Gemm") else None
            if weight is not None and len(weight.dims) == 2:
                transposed = any(a.name == "transB" and a.i for a in node.attribute)
                matrix = numpy_helper.to_array(weight).astype(np.float32)
                self._weights.append(matrix.T if transposed else matrix)
        encoder = self

        class MatMul(OpRun):
            op_domain = ""

            def _run(self, a, b):
                kind = "weight" if self.onnx_node.input[1] in constant else "activation"
                return (encoder._matmul(kind, a, b),)

        class Gemm(OpRun):
            op_domain = ""

            def _run(self, a, b, c=None, alpha=None, beta=None, transA=None, transB=None):
                kind = "weight" if self.onnx_node.input[1] in constant else "activation"
                y = encoder._gemm(kind, a.T if transA else a, b.T if transB else b)
                y = np.float32(1.0 if alpha is None else alpha) * y
                if c is not None:
                    y = y + np.float32(1.0 if beta is None else beta) * c
                return (y.astype(np.float32),)

        try:
            self._session = ReferenceEvaluator(model, new_ops=[MatMul, Gemm])
        except Exception as error:      # onnx's reference evaluator: unknown op, bad graph
            raise ModelError(f"model: {label}: cannot run the graph: {error}".split("\n")[0]
                             ) from None

    def weight_matrices(self) -> list[np.ndarray]:
        """The (K, N) weight matrices of its initializer-weight GEMMs (float32)."""
        return self._weights

    def tokens(self, sentence: str) -> np.ndarray:
        return np.array(self.tokenizer.encode(sentence).ids, dtype=np.int64)

    def embed(self, sentence: str, gemm=float_gemm) -> np.ndarray:
        """Unit-length sentence vector (float32) with every matrix product through ``gemm``."""
        ids = self.tokens(sentence)[None, :]
        feeds = {}
        for info in self._inputs:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
            feeds[info.name] = _FEEDS[info.name](ids).astype(dtype)
        self._gemm = gemm
        try:
            out = np.asarray(self._session.run(None, feeds)[0], np.float32)
        finally:
            self._gemm = float_gemm
        if out.ndim == 3 and out.shape[0] == 1:
            out = out[0].mean(axis=0)
        elif out.ndim == 2 and out.shape[0] == 1:
            out = out[0]
        else:
            raise ModelError(f"model: {self.name}: first output has shape {out.shape}; "
                             f"expected [1, tokens, hidden] or [1, hidden]")
        return (out / np.linalg.norm(out)).astype(np.float32)

    def _matmul(self, kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` with numpy's broadcasting, each 2-D product through the GEMM."""
        if a.ndim < 2 or b.ndim < 2:
            return np.matmul(a, b)                  # vector products: not a GEMM, float32
        if b.ndim == 2:
            rows = a.reshape(-1, a.shape[-1])
            return self._gemm(kind, rows, b).reshape(a.shape[:-1] + b.shape[1:])
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:])
        out = np.empty(batch + (a.shape[-2], b.shape[-1]), np.float32)
        for index in np.ndindex(*batch):
            out[index] = self._gemm(kind, np.ascontiguousarray(a[index]),
                                    np.ascontiguousarray(b[index]))
        return out


def load_onnx_encoder(path: str | Path) -> OnnxEncoder:
    """The encoder of the .onnx file ``path`` and its tokenizer (module doc); ModelError naming
    the file and what is wrong."""
    from tokenizers import Tokenizer

    try:
        model, label = read_onnx(path)
    except ValueError as error:
        raise ModelError(f"model: {str(error).removeprefix('onnx: ')}") from None
    folder = Path(path).resolve().parent
    candidates = [folder / "tokenizer.json", folder.parent / "tokenizer.json"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise ModelError(f"model: {label}: no tokenizer.json beside it or in {folder.parent}")
    try:
        tokenizer = Tokenizer.from_file(str(found))
    except Exception as error:      # tokenizers' own errors
        raise ModelError(f"model: {found}: not a tokenizers file: {error}") from None
    tokenizer.no_padding()
    return OnnxEncoder(model, tokenizer, label)
