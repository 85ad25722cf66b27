"""Large-star / small-star connected components against scipy on the same graphs."""
from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.csgraph import connected_components as scipy_components

from refinery.components import ComponentsError, connected_components


def reference(edges: list[tuple[int, int]]) -> dict[int, int]:
    nodes = sorted({n for e in edges for n in e})
    index = {n: i for i, n in enumerate(nodes)}
    rows, cols = zip(*[(index[a], index[b]) for a, b in edges])
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(nodes), len(nodes)))
    _, labels = scipy_components(graph, directed=False)
    smallest: dict[int, int] = {}
    for n in nodes:
        smallest[labels[index[n]]] = min(smallest.get(labels[index[n]], n), n)
    return {n: smallest[labels[index[n]]] for n in nodes}


@pytest.mark.parametrize("graph", ["random", "chain", "two_centres", "stars_and_loops"])
def test_components_equal_scipy(spark, graph):
    rng = random.Random(5)
    if graph == "random":  # many small components and a few large ones
        edges = [(rng.randrange(400), rng.randrange(400)) for _ in range(300)]
    elif graph == "chain":  # a long path in shuffled order: the worst case for label propagation
        order = rng.sample(range(10_000, 10_200), 200)
        edges = list(zip(order, order[1:]))
    elif graph == "two_centres":  # no centre is a leaf, but one leaf joins two stars
        edges = [(5, 1), (5, 2), (6, 2), (9, 3)]
    else:
        edges = [(7, 7), (3, 9), (9, 3), (3, 9)] + [(100, k) for k in range(101, 140)]
    df = spark.createDataFrame(edges, "src long, dst long")
    got = {r.node: r.root for r in connected_components(df, lambda d: d.localCheckpoint(eager=True)).collect()}
    expected = reference([e for e in edges if e[0] != e[1]])
    assert got == expected


def test_components_stop_after_max_iterations(spark):
    order = list(range(64))
    df = spark.createDataFrame(list(zip(order, order[1:])), "src long, dst long")
    with pytest.raises(ComponentsError, match="did not converge in 1 rounds"):
        connected_components(df, lambda d: d.localCheckpoint(eager=True), max_iterations=1)
