"""Workload sources other than ONNX: the shipped named models (same GEMMs as before they became
config files), HuggingFace configs, SCALE-Sim topologies read as SCALE-Sim reads them, and the
one-source loader."""

import json
import os
import subprocess
import warnings
from dataclasses import astuple
from pathlib import Path

import pytest

from peforge.sim.perf.workloads import (MODELS, TopologyWarning, load_hf_config,
                                        load_scalesim_topology, load_workload,
                                        transformer_workload, workload_gemms)
from peforge.sim.perf.workloads.hf import hf_workload

DATA = Path(__file__).parent / "data"


def test_named_models_give_the_gemms_of_the_hard_coded_tables():
    """The GEMM lists main's hard-coded model table gave (recorded before the change)."""
    recorded = json.loads((DATA / "named_model_gemms.json").read_text())
    recorded.pop("_source")
    assert len(recorded) == 12
    for key, gemms in recorded.items():
        name, phase, seq = key.split()
        new = workload_gemms(name, phase=phase, seq=int(seq))
        assert [list(astuple(g))[:8] for g in new] == gemms, key
        # what is new: attention's W is an activation, every projection's a weight
        assert [g.w_is_weight for g in new] == [not g.name.startswith("attn") for g in new]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


LLAMA_LIKE = {"model_type": "mistral", "hidden_size": 512, "intermediate_size": 1536,
              "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 3,
              "vocab_size": 1000, "head_dim": 64}


def test_hf_config_prefill_and_decode_with_gqa_and_lm_head():
    model = load_hf_config(LLAMA_LIKE, name="tiny")
    prefill = transformer_workload(model, "prefill", 32)
    shapes = {g.name: (g.m, g.k, g.n, g.count) for g in prefill.gemms}
    assert shapes == {"q_proj": (32, 512, 512, 3), "k_proj": (32, 512, 128, 3),
                      "v_proj": (32, 512, 128, 3), "attn_score": (32, 64, 32, 24),
                      "attn_value": (32, 32, 64, 24), "o_proj": (32, 512, 512, 3),
                      "ffn_gate": (32, 512, 1536, 3), "ffn_up": (32, 512, 1536, 3),
                      "ffn_down": (32, 1536, 512, 3), "lm_head": (32, 512, 1000, 1)}
    decode = {g.name: (g.m, g.k, g.n) for g in transformer_workload(model, "decode", 100).gemms}
    assert decode["attn_score"] == (1, 64, 100) and decode["lm_head"] == (1, 512, 1000)
    ops = {op.name: op for op in prefill.vector_ops}
    # 8 heads x 32 queries x 32 keys per layer, scores read at 32 bits, written at 8
    softmax = ops["softmax"]
    assert (softmax.elements, softmax.count, softmax.read_bytes, softmax.write_bytes) == (
        8 * 32 * 32, 3, 8 * 32 * 32 * 4, 8 * 32 * 32)
    assert ops["rotary"].elements == 32 * (8 + 2) * 64
    assert (ops["residual_add"].count, ops["final_norm"].count) == (2 * 3, 1)
    assert ops["ffn_act"].elements == ops["ffn_gating"].elements == 32 * 1536


def test_hf_field_names_of_each_family(tmp_path):
    gpt2 = load_hf_config(write(tmp_path, "gpt2.json", json.dumps(
        {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "n_inner": None,
         "vocab_size": 50257})))
    assert (gpt2.name, gpt2.hidden, gpt2.ffn, gpt2.kv_heads, gpt2.gated_ffn, gpt2.norm,
            gpt2.rotary) == ("gpt2", 768, 4 * 768, 12, False, "layer", False)
    opt = MODELS["opt-6.7b"]
    assert (opt.ffn, opt.vocab, opt.gated_ffn) == (16384, 50272, False)
    phi = load_hf_config({"model_type": "phi", "hidden_size": 2560, "num_attention_heads": 32,
                          "num_key_value_heads": None, "intermediate_size": 10240,
                          "num_hidden_layers": 32, "vocab_size": 51200}, name="phi-2")
    names = [op.name for op in transformer_workload(phi, "decode", 10).vector_ops]
    assert "ffn_norm" not in names and phi.parallel and phi.kv_heads == 32
    bitnet = load_hf_config({**LLAMA_LIKE, "model_type": "llama",
                             "quantization_config": {"quant_method": "bitnet"}})
    assert bitnet.w_bits == 2 and MODELS["bitnet-b1.58-3b"].w_bits == 2
    head = hf_workload("bitnet-b1.58-3b", "decode", 8).gemms[-1]
    assert (head.name, head.w_bits, head.n) == ("lm_head", 8, 32002)


@pytest.mark.parametrize("config, message", [
    ({**LLAMA_LIKE, "num_hidden_layers": None}, "c: num_hidden_layers: missing (the model's "
                                                "number of layers)"),
    ({k: v for k, v in LLAMA_LIKE.items() if k != "vocab_size"},
     "c: vocab_size: missing (the model's vocabulary size)"),
    ({**LLAMA_LIKE, "model_type": "t5"}, "c: model_type: must be one of llama, "),
    ({**LLAMA_LIKE, "hidden_size": 51.2}, "c: hidden_size: must be a positive integer, got 51.2"),
    ({**LLAMA_LIKE, "num_key_value_heads": 3}, "kv_heads: 3 must divide heads 8"),
    ({**LLAMA_LIKE, "num_local_experts": 8}, "c: num_local_experts: mixture-of-experts"),
])
def test_hf_config_errors_name_the_field(config, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        load_hf_config(config, name="c")


def test_hf_config_files_that_do_not_parse(tmp_path):
    with pytest.raises(ValueError, match=r"^hf-config: .*bad.json:2:5: not JSON"):
        load_hf_config(write(tmp_path, "bad.json", "{\n    oops}"))
    with pytest.raises(ValueError, match=r"^hf-config: .*list.json must hold a JSON object"):
        load_hf_config(write(tmp_path, "list.json", "[1]"))
    with pytest.raises(ValueError, match=r"^hf-config: cannot read .*none.json"):
        load_hf_config(tmp_path / "none.json")


SCALESIM_CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                        "Channels, Num Filter, Strides,\n")


def test_scalesim_conv_sizes_in_compat_and_plain_readings(tmp_path):
    # 7 x 7 input, 2 x 2 filter, stride 2: SCALE-Sim ceil((7 - 2 + 2) / 2) = 4, plain
    # (7 - 2) // 2 + 1 = 3; a second stride is the width's.
    path = write(tmp_path, "c.csv", SCALESIM_CONV_HEADER + "c1, 7, 7, 2, 2, 3, 8, 2,\n"
                 "c2, 9, 10, 3, 3, 4, 16, 1, 3,\n")
    compat, plain = (load_scalesim_topology(path, compat=flag) for flag in (True, False))
    assert [(g.m, g.k, g.n) for g in compat] == [(4 * 4, 2 * 2 * 3, 8),
                                                 (7 * -(-(10 - 3 + 3) // 3), 36, 16)]
    assert [(g.m, g.k, g.n) for g in plain] == [(3 * 3, 12, 8), (7 * 3, 36, 16)]


def test_scalesim_dp_layers_are_one_convolution_per_channel(tmp_path):
    path = write(tmp_path, "dw.csv", SCALESIM_CONV_HEADER + "Conv2_DP, 112, 112, 3, 3, 32, 1, 1,"
                 "#dw\n")
    (gemm,) = load_scalesim_topology(path, compat=True)
    assert (gemm.m, gemm.k, gemm.n, gemm.count) == (110 * 110, 9, 1, 32)


def test_scalesim_first_line_without_header(tmp_path):
    path = write(tmp_path, "noheader.csv", "fc1, 4, 5, 6,\nfc2, 7, 8, 9,\n")
    assert [g.name for g in load_scalesim_topology(path)] == ["fc1", "fc2"]
    with pytest.warns(TopologyWarning, match=r"noheader.csv:1 is a layer, not a header, and "
                                             r"SCALE-Sim skips a file's first line"):
        assert [g.name for g in load_scalesim_topology(path, compat=True)] == ["fc2"]
    workload = load_workload(topology=path, compat=True)
    assert [g.name for g in workload.gemms] == ["fc2"] and len(workload.warnings) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_scalesim_topology(write(tmp_path, "h.csv", "Layer, M, N, K,\nfc1, 4, 5, 6,\n"),
                               compat=True)


@pytest.mark.parametrize("row, where, message", [
    ("fc, 0, 5, 6,", "2:2", "M: must be an integer from 1 to 2147483647, got '0'"),
    ("fc, -4, 5, 6,", "2:2", "M: must be an integer from 1 to 2147483647, got '-4'"),
    ("fc, 4, 2.5, 6,", "2:3", "N: must be an integer from 1 to 2147483647, got '2.5'"),
    ("fc, 4, 5, six,", "2:4", "K: must be an integer from 1 to 2147483647, got 'six'"),
    ("fc, 4, 5, 4294967296,", "2:4", "K: must be an integer from 1 to 2147483647"),
    ("fc, 2000000, 2000000, 2000000,", "2:2", "layer 'fc': 8e\\+18 MACs is over the 2.81e\\+14"),
    ("c, 5, 5, 7, 3, 1, 1, 1,", "2:4", "filter height: 7 is larger than the IFMAP height 5"),
    ("c, 5, 5, 3, 6, 1, 1, 1,", "2:5", "filter width: 6 is larger than the IFMAP width 5"),
    ("c, 5, 5, 3, 3, 1, 1, 0,", "2:8", "stride: must be an integer from 1"),
    ("x, 1, 2,", "2", "a SCALE-Sim row has 3 \\(GEMM\\) or 7 or 8 \\(conv\\) numbers after the "
                      "name, got 2"),
])
def test_scalesim_bad_rows_name_file_line_and_column(tmp_path, row, where, message):
    path = write(tmp_path, "bad.csv", f"Layer, M, N, K,\n{row}\n")
    with pytest.raises(ValueError, match=f"^{tmp_path}/bad.csv:{where}: {message}"):
        load_scalesim_topology(path)


def test_scalesim_only_a_true_header_is_skipped(tmp_path):
    # a second header-like row, or a first row that is partly numeric, is an error
    path = write(tmp_path, "two.csv", "Layer, M, N, K,\nLayer, M, N, K,\n")
    with pytest.raises(ValueError, match=r"two.csv:2:2: M: must be an integer"):
        load_scalesim_topology(path)
    path = write(tmp_path, "mixed.csv", "fc1, abc, 5, 6,\n")
    with pytest.raises(ValueError, match=r"mixed.csv:1:2: M: must be an integer"):
        load_scalesim_topology(path)
    with pytest.raises(ValueError, match=r"^topology: no layers in .*empty.csv$"):
        load_scalesim_topology(write(tmp_path, "empty.csv", "Layer, M, N, K,\n\n"))
    with pytest.raises(ValueError, match=r"^topology: .* is a folder, not a SCALE-Sim .csv"):
        load_scalesim_topology(tmp_path)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 8)
    with pytest.raises(ValueError, match=r"bin.csv:\d+: not a CSV text file"):
        load_scalesim_topology(binary)


def test_load_workload_takes_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="^workload: give exactly one of .* got workload, onnx"):
        load_workload(workload="gpt2", onnx="m.onnx")
    with pytest.raises(ValueError, match=r"^dim: binds the dimensions of an ONNX model"):
        load_workload(workload="gpt2", dims={"batch": 1})
    named = load_workload(workload="gpt2", phase="decode", seq=4)
    assert named.vector_ops == () and [g.name for g in named.gemms][-1] == "ffn_fc2"
    whole = load_workload(hf_config="gpt2", phase="decode", seq=4)
    assert whole.gemms[:-1] == named.gemms and whole.gemms[-1].name == "lm_head"
    config = write(tmp_path, "config.json", json.dumps(LLAMA_LIKE))
    assert workload_gemms(str(config), phase="decode", seq=4)[-1].n == 1000


@pytest.mark.parametrize("extra, message", [
    (["--topology", "{tmp}"], "peforge: error: topology: {tmp} is a folder, not a SCALE-Sim .csv "
                              "file"),
    (["--hf-config", "{tmp}/none.json"], "peforge: error: hf-config: cannot read "
                                         "{tmp}/none.json: No such file or directory"),
    (["--workload", "gpt2", "--dim", "batch=1"], "peforge: error: dim: binds the dimensions of "
                                                 "an ONNX model (--onnx) only"),
])
def test_cli_workload_errors_are_one_line(tmp_path, capsys, extra, message):
    from peforge.sim.cli import main

    assert main(["sim", "--family", "systolic", *(arg.format(tmp=tmp_path) for arg in extra)]
                ) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == message.format(tmp=tmp_path) and captured.out == ""


def test_cli_prints_the_compat_warning(tmp_path, capsys):
    from peforge.sim.cli import main

    path = write(tmp_path, "t.csv", "fc1, 4, 5, 6,\nfc2, 7, 8, 9,\n")
    assert main(["sim", "--family", "systolic", "--rows", "4", "--cols", "4", "--timing",
                 "scalesim-os", "--topology", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"warning: topology: {path}:1 is a layer, not a header")
    assert [line.split()[0] for line in captured.out.splitlines()[1:3]] == ["fc2", "total"]


#: Odd strides, non-square inputs and a depthwise DP layer: where the two sizings differ.
SCALESIM_LAYERS = ("Conv1, 224, 224, 7, 7, 3, 64, 2,\nC2, 56, 56, 3, 3, 64, 64, 1,\n"
                   "C3, 56, 56, 1, 1, 64, 128, 2,\nC4, 28, 28, 3, 3, 128, 128, 2,\n"
                   "C5, 15, 17, 4, 2, 8, 16, 3,\nConv_DP, 112, 112, 3, 3, 32, 1, 2,\n"
                   "C6, 7, 7, 7, 7, 512, 1000, 1,\n")

_SCALESIM_MACS = """\
import json, sys
from scalesim.topology_utils import topologies
t = topologies()
t.load_arrays(sys.argv[1])
t.topo_calc_hyperparams(sys.argv[1])
print(json.dumps([[t.get_layer_name(i), t.get_layer_mac_ops(i)] for i in range(t.num_layers)]))
"""


@pytest.mark.skipif(not os.environ.get("SCALESIM_PYTHON"),
                    reason="SCALESIM_PYTHON (a python with scalesim 3.0.0) not set")
@pytest.mark.parametrize("header", [True, False])
def test_compat_reading_gives_scalesims_own_layers_and_macs(tmp_path, header):
    """SCALE-Sim 3.0.0's own topology reader (run in its venv, as bench/model_speed.py does)."""
    path = write(tmp_path, "t.csv", (SCALESIM_CONV_HEADER if header else "") + SCALESIM_LAYERS)
    result = subprocess.run([os.environ["SCALESIM_PYTHON"], "-c", _SCALESIM_MACS, str(path)],
                            capture_output=True, text=True, check=True)
    reference = {}
    for name, macs in json.loads(result.stdout.splitlines()[-1]):
        layer = name.split("Channel_")[0]  # SCALE-Sim names a DP layer's channels apart
        reference[layer] = reference.get(layer, 0) + macs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TopologyWarning)
        ours = {g.name: g.macs for g in load_scalesim_topology(path, compat=True)}
    assert ours == reference and len(ours) == (7 if header else 6)
