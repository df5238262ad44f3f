"""Workloads: what a network runs on the accelerator, as :class:`Gemm` objects (the PE array's
work) and :class:`VectorOp` objects (softmax, norms, activations, elementwise ops, reductions),
one module per source:

- :mod:`~peforge.sim.perf.workloads.gemm`: the work items, plain GEMMs and conv2d by im2col;
- :mod:`~peforge.sim.perf.workloads.scalesim`: SCALE-Sim topology CSV files;
- :mod:`~peforge.sim.perf.workloads.hf`: HuggingFace ``config.json`` of decoder-only
  transformers, and the shipped named models (:data:`MODELS`);
- :mod:`~peforge.sim.perf.workloads.onnx_graph`: ONNX files (``load_onnx``);
- :mod:`~peforge.sim.perf.workloads.torch_graph`: PyTorch modules (``from_torch``, when torch
  is installed).

``load_onnx`` and ``from_torch`` are imported on first use (``onnx`` and ``torch`` take a while
to import, and a sweep over named models needs neither).
"""

from pathlib import Path

from peforge.sim.perf.workloads.gemm import (VECTOR_KINDS, Gemm, VectorOp, Workload,
                                             conv2d_gemm)
from peforge.sim.perf.workloads.hf import (MODELS, TransformerModel, load_hf_config,
                                           model_gemms, transformer_gemms, transformer_workload)
from peforge.sim.perf.workloads.scalesim import TopologyWarning, load_scalesim_topology

__all__ = ["Gemm", "VectorOp", "VECTOR_KINDS", "Workload", "conv2d_gemm", "TransformerModel",
           "MODELS", "load_hf_config", "transformer_gemms", "transformer_workload",
           "load_scalesim_topology", "TopologyWarning", "load_onnx", "from_torch",
           "workload_gemms"]


def __getattr__(name):
    if name == "load_onnx":
        from peforge.sim.perf.workloads.onnx_graph import load_onnx
        return load_onnx
    if name == "from_torch":
        from peforge.sim.perf.workloads.torch_graph import from_torch
        return from_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def workload_gemms(name: str, *, phase: str = "prefill", seq: int = 2048,
                   dims: dict | None = None) -> list[Gemm]:
    """The GEMMs of a named workload: a model of :data:`MODELS` (its transformer blocks), a
    SCALE-Sim ``.csv`` file, an ONNX ``.onnx`` file (dynamic dimensions bound by ``dims``) or a
    HuggingFace ``.json`` config (the whole decoder, LM head included)."""
    if name in MODELS:
        return list(model_gemms(name, phase, seq))
    suffix = Path(name).suffix
    if suffix in (".csv", ".onnx", ".json") and Path(name).exists():
        if suffix == ".csv":
            return load_scalesim_topology(name)
        if suffix == ".onnx":
            return list(__getattr__("load_onnx")(name, dims=dims).gemms)
        return list(transformer_workload(load_hf_config(name), phase, seq).gemms)
    raise ValueError(f"workload: must be one of {', '.join(MODELS)} or a SCALE-Sim .csv, "
                     f".onnx or HuggingFace config .json file, got {name!r}")
