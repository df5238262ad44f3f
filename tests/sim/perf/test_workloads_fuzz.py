"""Property-based tests of the workload readers: any topology text, any bytes as an ONNX file
and any HuggingFace config mapping give layers of positive sizes or one ValueError naming the
file (and line), never another exception."""

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peforge.sim.perf.workloads import load_hf_config, load_onnx, load_scalesim_topology

CELL = st.one_of(st.integers(-5, 2 ** 40).map(str), st.floats(allow_nan=True).map(str),
                 st.text(alphabet="abcDP #-+.e,\"", max_size=6), st.just(""))
ROW = st.lists(CELL, min_size=0, max_size=10).map(", ".join)
FILES = st.lists(ROW, max_size=6).map("\n".join)
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.filterwarnings("ignore::peforge.sim.perf.workloads.TopologyWarning")
@FAST
@given(text=FILES, compat=st.booleans())
def test_any_topology_text_gives_layers_or_one_located_error(text, compat):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_text(text)
        try:
            gemms = load_scalesim_topology(path, compat=compat)
        except ValueError as error:
            assert re.match(rf"^({re.escape(str(path))}:\d+(:\d+)?: |topology: no layers in )",
                            str(error)), error
            assert "\n" not in str(error)
        else:
            assert gemms and all(min(g.m, g.k, g.n, g.count) >= 1 for g in gemms)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_as_an_onnx_file_give_one_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.onnx"
        path.write_bytes(data)
        try:
            workload = load_onnx(path)
        except ValueError as error:
            assert str(error).startswith("onnx: ") and "\n" not in str(error)
        else:
            assert all(g.m >= 1 for g in workload.gemms)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 5000), st.floats(allow_nan=True),
                   st.text(max_size=4), st.lists(st.integers(), max_size=2))
KEYS = st.sampled_from(["model_type", "hidden_size", "n_embd", "num_attention_heads",
                        "num_key_value_heads", "num_hidden_layers", "intermediate_size",
                        "vocab_size", "head_dim", "ffn_dim", "n_inner", "quantization_config"])


@settings(max_examples=200, deadline=None)
@given(config=st.dictionaries(KEYS, VALUES, max_size=12),
       model_type=st.sampled_from(["llama", "gpt2", "opt", "phi", "t5"]))
def test_any_config_mapping_gives_a_model_or_one_error(config, model_type):
    config = {"model_type": model_type, **config}
    json.dumps(config)
    try:
        model = load_hf_config(config, name="c")
    except ValueError as error:
        assert "\n" not in str(error)
    else:
        assert min(model.hidden, model.heads, model.kv_heads, model.ffn, model.layers) >= 1
