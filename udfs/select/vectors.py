"""Embedding columns as matrices: Arrow/pandas lists of floats in, float32 row-major matrices out."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd


def as_matrix(vectors: Iterable[Sequence[float]], dimension: int | None = None) -> np.ndarray:
    """Stack vectors into an (n, d) float32 matrix; a vector of another size is an error naming it."""
    rows = [np.asarray(v, dtype=np.float32) for v in vectors]
    if not rows:
        return np.zeros((0, dimension or 0), np.float32)
    width = dimension or rows[0].shape[0]
    for i, r in enumerate(rows):
        if r.shape != (width,):
            raise ValueError(f"vector {i} has {r.size} values, expected {width}")
    return np.stack(rows)


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so that a dot product is a cosine."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1).astype(x.dtype)


def whole_partition(batches: Iterable[pd.DataFrame]) -> pd.DataFrame | None:
    """A ``mapInPandas`` partition as one frame, or None when it is empty (an empty partition
    gives no batches at all, and ``pd.concat`` of nothing raises)."""
    parts = [b for b in batches if len(b)]
    return pd.concat(parts, ignore_index=True) if parts else None
