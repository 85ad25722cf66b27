"""Normalized sentence embeddings for a batch of texts."""
from __future__ import annotations

import numpy as np


def embed(texts: list[str], model, batch_size: int = 64) -> np.ndarray:
    """(n, dim) float32, L2-normalized. ``SentenceTransformer.encode`` sorts the texts by length
    before batching (so padding is minimal) and restores their order."""
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), np.float32)
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    return vectors.astype(np.float32, copy=False)
