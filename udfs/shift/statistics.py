"""Two-sample statistics over embeddings: MMD with an RBF kernel and a permutation p-value
(Gretton et al. 2012), and the ROC-AUC of a classifier told to separate the samples (the
classifier two-sample test, Lopez-Paz & Oquab 2017): 0.5 means indistinguishable, 1.0 disjoint."""
from __future__ import annotations

import numpy as np


def rbf_kernel(z: np.ndarray, bandwidth: float | None = None) -> tuple[np.ndarray, float]:
    """Gaussian kernel matrix over the rows of ``z``; bandwidth: the median pairwise distance."""
    squared = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2.0 * (z @ z.T), 0.0)
    if bandwidth is None:
        upper = d2[np.triu_indices_from(d2, k=1)]
        bandwidth = float(np.sqrt(np.median(upper))) if upper.size else 1.0
    return np.exp(-d2 / (2.0 * max(bandwidth, 1e-12) ** 2)), bandwidth


def mmd2(kernel: np.ndarray, in_x: np.ndarray) -> float:
    """Unbiased MMD^2 from the joint kernel matrix and a boolean mask of the first sample's rows."""
    x, y = in_x, ~in_x
    n, m = x.sum(), y.sum()
    kxx, kyy, kxy = kernel[np.ix_(x, x)], kernel[np.ix_(y, y)], kernel[np.ix_(x, y)]
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2.0 * kxy.mean())


def mmd_test(x: np.ndarray, y: np.ndarray, permutations: int = 500, seed: int = 0) -> tuple[float, float]:
    """(MMD^2, permutation p-value): how often a random relabelling of the pooled rows gives an
    MMD^2 at least as large (with the +1 correction, so p is never 0)."""
    kernel, _ = rbf_kernel(np.vstack([x, y]).astype(np.float64))
    labels = np.zeros(len(x) + len(y), bool)
    labels[:len(x)] = True
    observed = mmd2(kernel, labels)
    rng = np.random.default_rng(seed)
    hits = sum(mmd2(kernel, rng.permutation(labels)) >= observed for _ in range(permutations))
    return observed, (hits + 1) / (permutations + 1)


def classifier_auc(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated ROC-AUC of logistic regression telling x (1) from y (0), every row scored
    by a model that did not train on it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    features = np.vstack([x, y])
    labels = np.r_[np.ones(len(x)), np.zeros(len(y))]
    split = StratifiedKFold(n_splits=max(2, min(folds, len(x), len(y))), shuffle=True, random_state=seed)
    scores = cross_val_predict(LogisticRegression(max_iter=1000), features, labels, cv=split, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))
