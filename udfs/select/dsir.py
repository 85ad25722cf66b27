"""DSIR importance weights (Xie et al. 2023): a bag of hashed n-grams under the target domain's
distribution and under the raw pool's, each record weighted by how much likelier its n-grams are
under the target. The features themselves come from MLlib's HashingTF; this is the arithmetic."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def log_ratio(target_counts: np.ndarray, raw_counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """log p_target(bucket) - log p_raw(bucket), both add-``smoothing`` estimates."""
    target = (target_counts + smoothing) / (target_counts.sum() + smoothing * target_counts.size)
    raw = (raw_counts + smoothing) / (raw_counts.sum() + smoothing * raw_counts.size)
    return np.log(target) - np.log(raw)


def importance_log_weights(counts: sp.csr_matrix, ratio: np.ndarray) -> np.ndarray:
    """Each record's log importance weight: its n-gram counts dotted with the log ratio."""
    return np.asarray(counts @ ratio, dtype=np.float64).ravel()
