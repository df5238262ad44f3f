"""Shape inference of an ONNX model with its small constant subgraphs folded.

Exported graphs often compute a shape or a padding at run time (``Shape``, ``Gather``,
``Concat``, ``ConstantOfShape``, ...) that ONNX's shape inference cannot see through. Once the
graph inputs' dimensions are bound, such values are constants: :func:`infer_folded` infers
shapes, replaces each ``Shape`` of a fully known tensor and each small node whose inputs are all
constant by its value (evaluated by ONNX's reference evaluator, ``onnx.reference``), and infers
again, until nothing changes. Large constants (weights) and every ``DequantizeLinear`` (whose
input's type is the width of a quantized weight) are left alone: they never decide a shape.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

__all__ = ["infer_folded", "evaluate_node", "FOLD_LIMIT"]

#: The most input elements a node may read to be folded (shape arithmetic reads a few).
FOLD_LIMIT = 65536


def _infer(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                            data_prop=True)
    except Exception as error:  # onnx raises its C++ InferenceError or RuntimeError
        raise ValueError(f"onnx: {label}: shape inference failed: {error}".replace("\n", " ")
                         ) from None


def _known_shapes(graph) -> dict[str, list[int]]:
    shapes = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        dims = info.type.tensor_type.shape.dim
        if info.type.tensor_type.HasField("shape") and all(
                dim.HasField("dim_value") for dim in dims):
            shapes[info.name] = [dim.dim_value for dim in dims]
    return shapes


def evaluate_node(node, values: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of ``node`` (opset 21) on its inputs' ``values``, by ONNX's reference
    evaluator."""
    inputs = [name for name in node.input if name]
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(values[name].dtype),
                                       values[name].shape) for name in inputs],
        [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)
         for name in node.output if name])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {name: values[name] for name in inputs})


def _fold_once(model: onnx.ModelProto) -> bool:
    graph = model.graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer
              if np.prod(init.dims, dtype=np.int64) <= FOLD_LIMIT}
    shapes = _known_shapes(graph)
    kept, folded = [], {}
    for node in graph.node:
        inputs = [name for name in node.input if name]
        try:
            if node.op_type == "Shape" and node.input[0] in shapes:
                shape = np.array(shapes[node.input[0]], dtype=np.int64)
                start = next((a.i for a in node.attribute if a.name == "start"), 0)
                end = next((a.i for a in node.attribute if a.name == "end"), len(shape))
                outputs = [shape[start:end]]
            elif node.domain in ("", "ai.onnx") and node.op_type not in (
                    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                    "Multinomial", "Loop", "If", "Scan", "DequantizeLinear") and all(
                    name in values for name in inputs) and (inputs or node.op_type == "Constant"):
                outputs = evaluate_node(node, values)
            else:
                outputs = None
        except Exception:  # a node the reference evaluator cannot run stays in the graph
            outputs = None
        if outputs is None or any(np.size(value) > FOLD_LIMIT for value in outputs):
            kept.append(node)
            continue
        for name, value in zip(node.output, outputs):
            value = np.asarray(value)
            values[name] = folded[name] = value
    if not folded:
        return False
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(value, name)
                             for name, value in folded.items())
    produced = set(folded)
    infos = [info for info in graph.value_info if info.name not in produced]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return True


def infer_folded(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """``model`` (its graph inputs already sized) with shapes inferred and its small constant
    subgraphs folded into initializers (module docstring); ``label`` names it in errors."""
    model = _infer(model, label)
    for _ in range(16):
        if not _fold_once(model):
            break
        model = _infer(model, label)
    return model
