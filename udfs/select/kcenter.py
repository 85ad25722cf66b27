"""K-Center-Greedy (Gonzalez 1985; the coreset of Sener & Savarese 2018): repeatedly add the point
farthest from every centre chosen so far. Its coverage radius is at most twice the optimal one.

Distances are Euclidean; on unit vectors that orders points exactly as cosine distance does.
Each step is one matrix-vector product over the points, so the cost is O(n k d) with O(n) state.
"""
from __future__ import annotations

import numpy as np


def distances_to(x: np.ndarray, squared_norms: np.ndarray, centre: np.ndarray) -> np.ndarray:
    d2 = squared_norms + float(centre @ centre) - 2.0 * (x @ centre)
    return np.sqrt(np.maximum(d2, 0.0))


def k_center_greedy(x: np.ndarray, k: int, first: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chosen row indices in pick order; each one's distance to the earlier centres when picked,
    inf for the first; every row's nearest centre as a position in the pick order; its distance
    to it). ``k`` above the row count chooses every row. Ties go to the lowest row index."""
    n = x.shape[0]
    k = min(k, n)
    chosen = np.empty(k, np.int64)
    at_pick = np.empty(k, np.float64)
    owner = np.zeros(n, np.int64)
    if k == 0:
        return chosen, at_pick, owner, np.full(n, np.inf)
    squared = np.einsum("ij,ij->i", x, x)
    chosen[0], at_pick[0] = first, np.inf
    nearest = distances_to(x, squared, x[first]).astype(np.float64)
    nearest[first] = 0.0  # not rounding error's tiny distance: a centre is never picked twice
    taken = np.zeros(n, bool)
    taken[first] = True
    for step in range(1, k):
        far = int(np.argmax(nearest))
        if nearest[far] == 0.0:  # everything is covered (duplicates): take rows not yet chosen, in order
            far = int(np.argmin(taken))
        taken[far] = True
        chosen[step], at_pick[step] = far, nearest[far]
        distance = distances_to(x, squared, x[far])
        closer = distance < nearest
        owner[closer] = step
        nearest[closer] = distance[closer]
        nearest[far], owner[far] = 0.0, step
    return chosen, at_pick, owner, nearest


def nearest_centres(x: np.ndarray, centres: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest centre, distance to it) for every row, centres compared a chunk of
    rows at a time so memory stays at ``chunk`` x centres."""
    index = np.empty(x.shape[0], np.int64)
    distance = np.empty(x.shape[0], np.float64)
    centre_sq = np.einsum("ij,ij->i", centres, centres)
    for start in range(0, x.shape[0], chunk):
        block = x[start:start + chunk]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] + centre_sq[None, :] - 2.0 * (block @ centres.T)
        index[start:start + len(block)] = d2.argmin(axis=1)
        distance[start:start + len(block)] = np.sqrt(np.maximum(d2[np.arange(len(block)), index[start:start + len(block)]], 0.0))
    return index, distance
