"""Rejection sampling for annotation: keep records the current model is unsure about AND whose
quality score passes a bar (labelling junk teaches little), then spread the batch with
K-Center-Greedy on embeddings so it does not spend the budget on near-copies."""
from __future__ import annotations

from typing import Literal

import numpy as np

from udfs.select.kcenter import k_center_greedy

Cut = Literal["quantile", "absolute"]


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of P(good) = p: 1 at p = 0.5, 0 at 0 or 1."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def margin(p: np.ndarray) -> np.ndarray:
    """1 - |P(good) - P(bad)|: the same order as entropy for two classes, linear in p."""
    return 1 - np.abs(2 * np.asarray(p, np.float64) - 1)


def rank_uncertainty(values: np.ndarray) -> np.ndarray:
    """Any score where higher means less known (perplexity): its rank scaled to [0, 1]."""
    order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return order / max(1, len(values) - 1)


def bar(values: np.ndarray, value: float, cut: Cut) -> float:
    """The threshold: ``value`` itself, or that quantile of ``values``."""
    return float(np.quantile(values, value)) if cut == "quantile" and len(values) else value


def accepted(uncertainty: np.ndarray, quality: np.ndarray, min_uncertainty: float, min_quality: float) -> np.ndarray:
    """Indices of the records that are uncertain AND good enough, most uncertain first."""
    keep = np.flatnonzero((uncertainty >= min_uncertainty) & (quality >= min_quality))
    return keep[np.argsort(-uncertainty[keep], kind="stable")]


def spread(embeddings: np.ndarray | None, ranked: np.ndarray, k: int) -> np.ndarray:
    """``k`` of the ``ranked`` candidates: K-Center-Greedy from the most uncertain one when there are
    embeddings, else the ``k`` most uncertain."""
    if embeddings is None or len(ranked) <= k:
        return ranked[:k]
    chosen, _, _, _ = k_center_greedy(np.asarray(embeddings[ranked], np.float64), k)
    return ranked[chosen]


def label_studio_tasks(rows: list[dict]) -> list[dict]:
    """Label Studio's task import format: one task per record, its fields under ``data``."""
    return [{"id": i + 1, "data": {"doc_id": r["doc_id"], "prompt": r["prompt"], "response": r["response"]}}
            for i, r in enumerate(rows)]


LABEL_CONFIG = """<View>
  <Text name="prompt" value="$prompt"/>
  <Text name="response" value="$response"/>
  <Choices name="label" toName="response" choice="single" required="true">
    <Choice value="good"/>
    <Choice value="bad"/>
  </Choices>
</View>
"""


def parse_label(value) -> int | None:
    """1 (good) or 0 (bad) from the values annotators and tools write, else None."""
    if isinstance(value, bool):
        return int(value)
    text = str(value).strip().lower()
    if text in {"1", "good", "true", "yes", "desirable"}:
        return 1
    if text in {"0", "bad", "false", "no", "undesirable"}:
        return 0
    return None
