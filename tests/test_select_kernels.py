"""Selection kernels (``udfs/select``) against brute-force references, without Spark."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from udfs.select.dsir import importance_log_weights, log_ratio
from udfs.select.kcenter import k_center_greedy, nearest_centres
from udfs.select.leaders import greedy_leaders
from udfs.select.neighbors import sparse_rows, top_k
from udfs.select.vectors import as_matrix, normalized


def brute_k_center(x: np.ndarray, k: int) -> list[int]:
    """The textbook greedy: recompute every point's distance to every centre at each step."""
    chosen = [0]
    while len(chosen) < k:
        gaps = [min(np.linalg.norm(x[i] - x[c]) for c in chosen) for i in range(len(x))]
        chosen.append(int(np.argmax(gaps)))
    return chosen


def radius(x: np.ndarray, centres) -> float:
    return max(min(np.linalg.norm(x[i] - x[c]) for c in centres) for i in range(len(x)))


@pytest.mark.parametrize("seed", range(5))
def test_k_center_greedy_equals_brute_force(seed):
    x = np.random.default_rng(seed).normal(size=(60, 8))
    chosen, at_pick, owner, nearest = k_center_greedy(x, 7)
    assert chosen.tolist() == brute_k_center(x, 7)
    assert nearest.max() == pytest.approx(radius(x, chosen))
    assert np.isinf(at_pick[0]) and np.all(np.diff(at_pick[1:]) <= 1e-12)  # each pick no farther than the last
    assert np.allclose(nearest, np.linalg.norm(x - x[chosen][owner], axis=1))


@pytest.mark.parametrize("seed", range(3))
def test_k_center_greedy_within_twice_optimal(seed):
    x = np.random.default_rng(seed).normal(size=(11, 3))
    optimal = min(radius(x, c) for c in itertools.combinations(range(len(x)), 3))
    chosen, *_ = k_center_greedy(x, 3)
    assert optimal <= radius(x, chosen) <= 2 * optimal + 1e-9


def test_k_center_greedy_more_centres_than_points_and_duplicates():
    x = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    chosen, _, _, nearest = k_center_greedy(x, 10)
    assert sorted(chosen.tolist()) == [0, 1, 2] and nearest.max() == 0.0


def test_nearest_centres_brute_force():
    rng = np.random.default_rng(1)
    x, centres = rng.normal(size=(50, 5)), rng.normal(size=(6, 5))
    index, distance = nearest_centres(x, centres, chunk=7)
    full = np.linalg.norm(x[:, None, :] - centres[None, :, :], axis=2)
    assert index.tolist() == full.argmin(axis=1).tolist()
    assert np.allclose(distance, full.min(axis=1))


def naive_leaders(x: np.ndarray, threshold: float):
    leaders, leader_of, cos = [], [], []
    for i, row in enumerate(x):
        sims = [float(row @ x[j]) for j in leaders]
        if sims and max(sims) >= threshold:
            leader_of.append(leaders[int(np.argmax(sims))])
            cos.append(max(sims))
        else:
            leaders.append(i)
            leader_of.append(i)
            cos.append(1.0)
    return leader_of, cos


@pytest.mark.parametrize("chunk", [1, 3, 16, 512])
def test_greedy_leaders_equal_row_by_row_scan(chunk):
    rng = np.random.default_rng(2)
    centres = normalized(rng.normal(size=(5, 16)))
    x = normalized(centres[rng.integers(0, 5, 80)] + 0.3 * rng.normal(size=(80, 16))).astype(np.float64)
    leader_of, cosine = greedy_leaders(x, 0.7, chunk=chunk)
    want_leader, want_cos = naive_leaders(x, 0.7)
    assert leader_of.tolist() == want_leader
    assert np.allclose(cosine, want_cos, atol=1e-6)
    followers = leader_of != np.arange(len(x))
    assert np.all(leader_of[followers] < np.flatnonzero(followers))  # leaders come earlier
    assert np.all(leader_of[leader_of] == leader_of)  # everyone follows a leader, never a follower


def brute_top_k(q, keys, k, q_ids, k_ids):
    out = {}
    sims = q @ keys.T
    for i in range(len(q)):
        order = [j for j in np.argsort(-sims[i], kind="stable") if k_ids[j] != q_ids[i]][:k]
        out[q_ids[i]] = {k_ids[j]: sims[i, j] for j in order}
    return out


@pytest.mark.parametrize("sparse", [False, True])
def test_top_k_equals_brute_force_and_skips_self(sparse):
    rng = np.random.default_rng(3)
    dense = normalized(np.abs(rng.normal(size=(40, 12))) * (rng.random((40, 12)) < 0.4))
    ids = np.array([f"d{i}" for i in range(40)])
    queries, keys = (sp.csr_matrix(dense), sp.csr_matrix(dense)) if sparse else (dense, dense)
    rows, cols, sims = top_k(queries, keys, 4, np.arange(40), cells=9 * 40)
    got: dict = {}
    for r, c, s in zip(rows, cols, sims):
        got.setdefault(ids[r], {})[ids[c]] = s
    want = brute_top_k(dense, dense, 4, ids, ids)
    for doc, best in want.items():
        assert doc not in got[doc]
        assert sorted(got[doc].values(), reverse=True) == pytest.approx(sorted(best.values(), reverse=True), abs=1e-6)


def test_sparse_rows_from_mllib_dicts():
    vectors = [{"type": 0, "size": 5, "indices": np.array([1, 3]), "values": np.array([0.5, 2.0])},
               {"type": 1, "size": None, "indices": None, "values": np.array([0.0, 1.0, 0.0, 0.0, 3.0])}]
    assert sparse_rows(vectors).toarray().tolist() == [[0, 0.5, 0, 2.0, 0], [0, 1.0, 0, 0, 3.0]]


def test_as_matrix_names_a_vector_of_another_size():
    with pytest.raises(ValueError, match="vector 1 has 2 values, expected 3"):
        as_matrix([[1, 2, 3], [1, 2]])


def test_dsir_weights_favour_target_buckets():
    target, raw = np.array([10.0, 0, 0, 10]), np.array([10.0, 10, 10, 10])
    ratio = log_ratio(target, raw)
    assert ratio[0] > ratio[1] and ratio[3] > ratio[2]
    counts = sp.csr_matrix(np.array([[3, 0, 0, 3], [0, 3, 3, 0]], dtype=float))
    on, off = importance_log_weights(counts, ratio)
    assert on > 0 > off


def test_top_k_ties_go_to_the_lowest_key_rows():
    keys = np.ones((12, 3)) / np.sqrt(3)  # twelve identical keys: every similarity ties
    rows, cols, sims = top_k(keys[:2], keys, 4, np.array([0, 1]))
    assert {(r, c) for r, c in zip(rows.tolist(), cols.tolist())} == {(0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 2), (1, 3), (1, 4)}
