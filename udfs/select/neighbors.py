"""Exact top-k nearest neighbours by cosine between a block of queries and a block of keys, for
dense unit vectors or L2-normalized sparse (TF-IDF / bag-of-words) rows. A whole table is covered
by running this on every (query block, key block) pair and keeping each query's best k overall.

Hand-written because it is one matrix product plus ``argpartition`` per chunk: exact, and with no
index to build (faiss's flat index does the same arithmetic).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(queries, keys, k: int, self_index: np.ndarray,
          cells: int = 1 << 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, key row, cosine) for each query's ``k`` most similar keys; ``self_index[i]`` is
    query i's own row among the keys (-1: not there), never its neighbour. ``queries``/``keys`` are
    dense arrays or scipy sparse matrices. Queries go a chunk at a time, ``cells`` similarities each."""
    out_q, out_k, out_s = [], [], []
    keys_t = keys.T.tocsc() if sp.issparse(keys) else keys.T
    chunk = max(1, cells // max(keys.shape[0], 1))
    for start in range(0, queries.shape[0], chunk):
        sims = queries[start:start + chunk] @ keys_t
        sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
        sims = sims.astype(np.float32, copy=False)
        rows = np.arange(start, start + sims.shape[0])
        own = self_index[rows]
        sims[np.flatnonzero(own >= 0), own[own >= 0]] = -np.inf
        take = min(k, sims.shape[1])
        if take == 0:
            continue
        # The k-th largest value per row; ties at it go to the lowest key rows, so the result does
        # not depend on argpartition's order (keys come sorted by id: the same ids win every run).
        kth = -np.partition(-sims, take - 1, axis=1)[:, take - 1:take]
        above = sims > kth
        tied = sims == kth
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= take - above.sum(axis=1, keepdims=True)))
        chosen &= np.isfinite(sims)
        q, c = np.nonzero(chosen)
        out_q.append(rows[q])
        out_k.append(c)
        out_s.append(sims[q, c])
    if not out_q:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_q), np.concatenate(out_k), np.concatenate(out_s)


def sparse_rows(vectors: list[dict]) -> sp.csr_matrix:
    """MLlib vectors as they reach pandas (dicts of type, size, indices, values) as a CSR matrix."""
    size = vectors[0]["size"] if vectors and vectors[0]["type"] == 0 else len(vectors[0]["values"]) if vectors else 0
    indptr, indices, values = [0], [], []
    for v in vectors:
        if v["type"] == 0:
            indices.append(np.asarray(v["indices"], np.int32))
            values.append(np.asarray(v["values"], np.float32))
        else:
            dense = np.asarray(v["values"], np.float32)
            nz = np.flatnonzero(dense)
            indices.append(nz.astype(np.int32))
            values.append(dense[nz])
        indptr.append(indptr[-1] + len(indices[-1]))
    return sp.csr_matrix((np.concatenate(values) if values else np.zeros(0, np.float32),
                          np.concatenate(indices) if indices else np.zeros(0, np.int32), indptr),
                         shape=(len(vectors), size))
