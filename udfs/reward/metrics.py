"""Held-out metrics of reward and quality models, the same for every contender."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pairwise_accuracy(chosen: np.ndarray, rejected: np.ndarray) -> float:
    """Share of pairs whose chosen answer scores higher (ties count as wrong)."""
    return float(np.mean(np.asarray(chosen) > np.asarray(rejected))) if len(chosen) else float("nan")


def length_accuracy(chosen: Sequence[str], rejected: Sequence[str]) -> float:
    """The length heuristic: the longer answer wins."""
    return pairwise_accuracy(np.array([len(c) for c in chosen]), np.array([len(r) for r in rejected]))


def auc_by_group(scores: np.ndarray, labels: Sequence[int], groups: Sequence[str]) -> dict[str, float]:
    """ROC-AUC of all examples (``all``) and, per negative group, of the positives against that
    group's negatives alone: which kinds of bad answer the model tells apart."""
    from sklearn.metrics import roc_auc_score

    scores, labels, groups = np.asarray(scores), np.asarray(labels), np.asarray(groups)
    out = {}
    if len(set(labels.tolist())) == 2:
        out["all"] = float(roc_auc_score(labels, scores))
    positives = labels == 1
    for group in sorted(set(groups[~positives].tolist()) - set(groups[positives].tolist())):
        keep = positives | (groups == group)
        if positives.any() and (groups == group).any():
            out[group] = float(roc_auc_score(labels[keep], scores[keep]))
    return out
