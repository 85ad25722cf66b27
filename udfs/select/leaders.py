"""Greedy leader assignment: the one kernel behind one-pass clustering and SemDeDup.

Rows are visited in order; a row whose cosine to its most similar leader so far reaches the
threshold follows that leader, otherwise it becomes a leader itself. For one-pass clustering the
leaders are cluster seeds; for SemDeDup they are the kept records and followers are the dropped
ones, so a dropped record's partner is always kept. Rows are compared to leaders a chunk at a time
(one matrix product), and only within a chunk is the scan row by row.
"""
from __future__ import annotations

import numpy as np


def greedy_leaders(x: np.ndarray, threshold: float, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For unit rows ``x``: (index of each row's leader, its own index for a leader; cosine to it,
    1.0 for a leader). Ties go to the earliest leader, so the result depends only on row order."""
    n = x.shape[0]
    leader_of = np.empty(n, np.int64)
    cosine = np.empty(n, np.float32)
    leaders = np.empty_like(x)  # leader rows so far, in order
    leader_rows = np.empty(n, np.int64)
    count = 0
    for start in range(0, n, chunk):
        block = x[start:start + chunk]
        if count:
            sims = block @ leaders[:count].T
            best = sims.argmax(axis=1)
            best_sim = sims[np.arange(len(block)), best]
            best_row = leader_rows[best]
        else:
            best_sim = np.full(len(block), -np.inf, np.float32)
            best_row = np.full(len(block), -1)
        inner = block @ block.T
        fresh: list[int] = []  # positions in this block that became leaders
        for i in range(len(block)):
            sim, row = best_sim[i], best_row[i]
            if fresh:
                j = int(np.argmax(inner[i, fresh]))
                if inner[i, fresh[j]] > sim:
                    sim, row = inner[i, fresh[j]], start + fresh[j]
            if sim >= threshold:
                leader_of[start + i], cosine[start + i] = row, sim
            else:
                leader_of[start + i], cosine[start + i] = start + i, 1.0
                fresh.append(i)
        leaders[count:count + len(fresh)] = block[fresh]
        leader_rows[count:count + len(fresh)] = start + np.asarray(fresh, np.int64)
        count += len(fresh)
    return leader_of, cosine
