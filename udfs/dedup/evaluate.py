"""How dedup accuracy is measured: planted near duplicates, exact all-pairs ground truth, and
precision / recall per Jaccard band. Used by the tests and ``scripts/bench_dedup.py``."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
from scipy import sparse

from udfs.dedup.minhash import Shingler

BANDS = ((0.5, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.0))
# Word edit rates whose 5-gram Jaccard spreads over 0.5 .. 1 on documents of a few hundred words.
EDIT_RATES = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05)


def mutate(rng: random.Random, text: str, rate: float) -> str:
    """Replace, delete or insert about ``rate`` of the words (at least one edit)."""
    words = text.split()
    edits = max(1, round(rate * len(words)))
    for _ in range(edits):
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 0.6:
            words[i] = rng.choice(words)
        elif op < 0.8 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, rng.choice(words))
    return " ".join(words)


def plant_near_duplicates(texts: Sequence[str], copies: int, seed: int,
                          rates: Sequence[float] = EDIT_RATES) -> list[str]:
    """``texts`` followed by edited copies of ``copies`` distinct random ones (so that clusters are
    pairs and chains come only from the data), edit rates cycling over ``rates``."""
    rng = random.Random(seed)
    bases = rng.sample(range(len(texts)), copies)
    return list(texts) + [mutate(rng, texts[b], rates[k % len(rates)]) for k, b in enumerate(bases)]


def true_pairs(texts: Sequence[str], shingler: Shingler, min_jaccard: float = 0.5) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every pair of documents (i < j) at or above ``min_jaccard``: one sparse
    documents x shingles matrix, its Gram matrix gives every intersection at once. Shingles are
    identified by a 64-bit SipHash of their bytes (a collision among 10^8 shingles has odds 3e-4)."""
    starts, ends, doc_ptr, data = shingler.spans(pa.array(texts, pa.large_string()))
    view = memoryview(data)
    keys = np.fromiter((hash(view[s:e].tobytes()) for s, e in zip(starts.tolist(), ends.tolist())), np.int64, len(starts))
    rows = np.repeat(np.arange(len(texts)), np.diff(doc_ptr))
    _, cols = np.unique(keys, return_inverse=True)
    x = sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(texts), int(cols.max(initial=0)) + 1))
    x.data[:] = 1  # a shingle repeated in a document counts once
    sizes = np.asarray(x.sum(axis=1)).ravel()
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    jaccard = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    keep = jaccard >= min_jaccard
    return {(int(i), int(j)): float(v) for i, j, v in zip(inter.row[keep], inter.col[keep], jaccard[keep])}


def cluster_pairs(clusters: Iterable[Iterable[int]]) -> set[tuple[int, int]]:
    """Every pair (i < j) of documents put in the same cluster."""
    return {pair for members in clusters for pair in itertools.combinations(sorted(members), 2)}


@dataclass(frozen=True)
class Accuracy:
    threshold: float
    bands: list[tuple[float, float, int, int]]  # (low, high, true pairs in band, of them predicted)
    below: int  # predicted pairs with Jaccard under the lowest band
    precision: float
    recall: float
    false_positives: int

    @property
    def f1(self) -> float:
        return 2 * self.precision * self.recall / (self.precision + self.recall) if self.precision + self.recall else 0.0

    def recall_at_least(self, jaccard: float) -> float:
        total = sum(n for low, _, n, _ in self.bands if low >= jaccard)
        found = sum(p for low, _, _, p in self.bands if low >= jaccard)
        return found / total if total else 1.0

    def rows(self) -> list[list[object]]:
        """Per band: pairs, predicted duplicates, and the share (recall above the threshold, false
        positive rate below it)."""
        rows = [[f"{low:.2f}-{high:.2f}", n, p, round(p / n, 4) if n else "-"] for low, high, n, p in self.bands]
        return [[f"< {BANDS[0][0]:.2f}", "-", self.below, "-"], *rows]


def accuracy(truth: dict[tuple[int, int], float], predicted: set[tuple[int, int]], threshold: float) -> Accuracy:
    """Pairs predicted to be duplicates (same cluster) against exact Jaccard. Predicted pairs
    missing from ``truth`` have Jaccard below its ``min_jaccard`` and count as false positives."""
    bands = []
    for low, high in BANDS:
        in_band = [p for p, j in truth.items() if low <= j < high or (high == 1.0 and j == 1.0)]
        bands.append((low, high, len(in_band), sum(p in predicted for p in in_band)))
    positives = {p for p, j in truth.items() if j >= threshold}
    hits = len(positives & predicted)
    return Accuracy(
        threshold, bands, below=len(predicted - truth.keys()),
        precision=hits / len(predicted) if predicted else 1.0,
        recall=hits / len(positives) if positives else 1.0,
        false_positives=len(predicted) - hits,
    )
