"""ROUGE-L near-duplicate search of new instructions against a pool of 50k+ instructions.

The self-instruct filter keeps an instruction only when its ROUGE-L F-measure against every pooled
instruction is below 0.7; an all-pairs loop over rouge-score costs pool x new Python calls. Here
MinHash-LSH over word sets (the dedup stage's hashing) proposes candidate pairs, and only those are
scored exactly with a compiled LCS. ROUGE-L >= 0.7 needs most words shared, so such pairs have a
high word-set Jaccard; the LSH banding is tuned for recall at a lower Jaccard (``lsh_threshold``),
and ``scripts/bench_self_instruct.py`` measures agreement with the exact all-pairs check.

Tokens are rouge-score's for English (lower case, split at anything not a letter or digit) and one
per character for scripts written without spaces (Chinese), where rouge-score's default tokenizer
sees nothing. Tokens are compared as 32-bit hashes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from numba import njit, prange

from udfs.dedup.kernels import CACHE
from udfs.dedup.minhash import MinHasher, Shingler, lsh_bands
from udfs.dedup.text import ExactNormalization, exact_hashes

WORDS = Shingler(ngram=1, unit="word")
EXACT = ExactNormalization(punctuation=True)


def tokens(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(token hashes of every text in order, per-text offsets)."""
    return WORDS.all_hashes(pa.array(texts, pa.large_string()))


@njit(cache=CACHE, parallel=True)
def rouge_l(tok_a: np.ndarray, ptr_a: np.ndarray, tok_b: np.ndarray, ptr_b: np.ndarray,
            left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """ROUGE-L F-measure (2 LCS / (m + n), rouge-score's) of a-text ``left[p]`` and b-text ``right[p]``."""
    out = np.zeros(len(left), np.float64)
    for p in prange(len(left)):
        x = tok_a[ptr_a[left[p]]:ptr_a[left[p] + 1]]
        y = tok_b[ptr_b[right[p]]:ptr_b[right[p] + 1]]
        m, n = len(x), len(y)
        if m == 0 or n == 0:
            continue
        prev = np.zeros(n + 1, np.int32)
        cur = np.zeros(n + 1, np.int32)
        for i in range(m):
            for j in range(n):
                cur[j + 1] = prev[j] + 1 if x[i] == y[j] else max(prev[j + 1], cur[j])
            prev, cur = cur, prev
        out[p] = 2.0 * prev[n] / (m + n)
    return out


def _matches(sorted_keys: np.ndarray, order: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (query row, indexed row) whose keys are equal, from one band's sorted keys."""
    lo = np.searchsorted(sorted_keys, queries, "left")
    counts = np.searchsorted(sorted_keys, queries, "right") - lo
    rows = np.repeat(np.arange(len(queries)), counts)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return rows, order[np.arange(counts.sum()) + starts]


@dataclass
class Screen:
    """Per new instruction: why it goes (None: it stays), its highest ROUGE-L, and the most similar
    instruction's id (pooled or earlier in the batch)."""

    reason: list[str | None]
    score: np.ndarray
    nearest: list[str | None]


@dataclass
class InstructionPool:
    threshold: float = 0.7
    lsh_threshold: float = 0.4
    num_perm: int = 128
    seed: int = 1
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hasher = MinHasher(WORDS, self.num_perm, self.seed)
        self.bands, self.rows = lsh_bands(self.lsh_threshold, self.num_perm, 0.1, 0.9)  # recall first
        self.tok, self.ptr = np.zeros(0, np.uint32), np.zeros(1, np.int64)
        self.keys = np.zeros((0, self.bands), np.int64)
        self.exact: dict[bytes, str] = {}
        self._index()

    def __len__(self) -> int:
        return len(self.ids)

    def _index(self) -> None:
        self.order = np.argsort(self.keys, axis=0, kind="stable").T  # (bands, pool)
        self.sorted = np.take_along_axis(self.keys, self.order.T, axis=0).T

    def _band_keys(self, texts: list[str]) -> np.ndarray:
        return self.hasher.band_keys(self.hasher.signatures(pa.array(texts, pa.large_string())), self.bands, self.rows)

    def add(self, texts: list[str], ids: list[str]) -> None:
        """Pool these instructions (those without a single token can match nothing and are skipped:
        in the LSH they would all share every bucket)."""
        tok, ptr = tokens(texts)
        has = np.diff(ptr) > 0
        if not has.all():
            texts, ids = [t for t, h in zip(texts, has) if h], [i for i, h in zip(ids, has) if h]
            tok, ptr = tokens(texts)
        for digest, i in zip(exact_hashes(pa.array(texts, pa.large_string()), EXACT).to_pylist(), ids):
            self.exact.setdefault(digest, i)
        self.keys = np.concatenate([self.keys, self._band_keys(texts)])
        self.ptr = np.concatenate([self.ptr, ptr[1:] + self.ptr[-1]])
        self.tok = np.concatenate([self.tok, tok])
        self.ids += ids
        self._index()

    def scores(self, texts: list[str]) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Candidate pairs with their exact ROUGE-L: (against the pool: new row, pool row, score;
        within the batch: earlier row, later row, score) as two flat triples (pool ones first)."""
        tok, ptr = tokens(texts)
        keys = self._band_keys(texts)
        pool_pairs, batch_pairs = [], []
        b_order = np.argsort(keys, axis=0, kind="stable").T
        b_sorted = np.take_along_axis(keys, b_order.T, axis=0).T
        for j in range(self.bands):
            pool_pairs.append(_matches(self.sorted[j], self.order[j], keys[:, j]))
            batch_pairs.append(_matches(b_sorted[j], b_order[j], keys[:, j]))
        new, old = _unique_pairs(pool_pairs, len(self) + 1)
        later, earlier = _unique_pairs(batch_pairs, len(texts) + 1)
        keep = earlier < later
        earlier, later = earlier[keep], later[keep]
        return ((new, old, rouge_l(tok, ptr, self.tok, self.ptr, new, old)),
                (earlier, later, rouge_l(tok, ptr, tok, ptr, earlier, later)))

    def screen(self, texts: list[str], ids: list[str]) -> Screen:
        """Exact duplicates (normalized text) first, then ROUGE-L >= threshold, against the pool
        and against the instructions kept before it in this batch (the paper's sequential order)."""
        n = len(texts)
        (new, old, pool_score), (earlier, later, batch_score) = self.scores(texts)
        best = np.zeros(n)
        nearest: list[str | None] = [None] * n
        for i, j, s in zip(new.tolist(), old.tolist(), pool_score.tolist()):
            if s > best[i]:
                best[i], nearest[i] = s, self.ids[j]
        similar: dict[int, list[tuple[int, float]]] = {}
        for a, b, s in zip(earlier.tolist(), later.tolist(), batch_score.tolist()):
            similar.setdefault(b, []).append((a, s))
        reason: list[str | None] = [None] * n
        seen: dict[bytes, int] = {}
        for i, digest in enumerate(exact_hashes(pa.array(texts, pa.large_string()), EXACT).to_pylist()):
            if digest in self.exact or digest in seen:
                reason[i], best[i] = "exact_duplicate", 1.0
                nearest[i] = self.exact.get(digest) or ids[seen[digest]]
                continue
            for a, s in similar.get(i, ()):
                if reason[a] is None and s > best[i]:
                    best[i], nearest[i] = s, ids[a]
            if best[i] >= self.threshold:
                reason[i] = "rouge_l"
            else:
                seen[digest] = i
        return Screen(reason, best, nearest)


def _unique_pairs(parts: list[tuple[np.ndarray, np.ndarray]], width: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.unique(np.concatenate([a.astype(np.int64) * width + b for a, b in parts] or [np.zeros(0, np.int64)]))
    return codes // width, codes % width
