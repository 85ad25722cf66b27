"""Connected components of a large edge list with Spark DataFrames: large-star / small-star.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014): alternating the two
steps turns every component into a star around its smallest node in O(log^2 n) rounds, each a
few shuffles of the edge list, and nothing is collected to the driver. Hand-written because
GraphFrames (the same algorithm) is one more JAR and Python package to match to every Spark
build; this is thirty lines of DataFrame code. Every round is checkpointed so the plan does not
grow with the number of rounds.
"""
from __future__ import annotations

from typing import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

Checkpoint = Callable[[DataFrame], DataFrame]


class ComponentsError(RuntimeError):
    """The rounds did not converge within the allowed number."""


def connected_components(edges: DataFrame, checkpoint: Checkpoint, max_iterations: int = 50) -> DataFrame:
    """``(node, root)`` for every node of ``edges(src, dst)`` (long ids); ``root`` is the smallest
    node of its component, so a root maps to itself. Self-loops and repeated edges are fine."""
    current = checkpoint(oriented(edges))
    for _ in range(max_iterations + 1):
        if is_star_forest(current):
            roots = current.select(F.col("dst").alias("node"), F.col("dst").alias("root")).distinct()
            return current.select(F.col("src").alias("node"), F.col("dst").alias("root")).unionByName(roots)
        current = checkpoint(small_star(large_star(current)))
    raise ComponentsError(f"connected components did not converge in {max_iterations} rounds")


def is_star_forest(edges: DataFrame) -> bool:
    """Every leaf (src) has one centre (dst) and no centre is a leaf: each component is a star
    around its smallest node (edges point from larger to smaller), the fixed point of both steps.
    Many duplicate graphs (pairs, exact copies around one original) are stars from the start."""
    two_centres = edges.groupBy("src").agg(F.count(F.lit(1)).alias("n")).where(F.col("n") > 1)
    return two_centres.isEmpty() and edges.join(edges.select(F.col("src").alias("dst")), "dst", "left_semi").isEmpty()


def oriented(edges: DataFrame) -> DataFrame:
    """Each undirected edge once, as (larger, smaller); self-loops removed."""
    return (edges.where(F.col("src") != F.col("dst"))
            .select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst")).distinct())


def large_star(edges: DataFrame) -> DataFrame:
    """Each node links its larger neighbours to the smallest node of its neighbourhood (itself included)."""
    both = edges.select(F.col("src").alias("u"), F.col("dst").alias("v")).unionByName(
        edges.select(F.col("dst").alias("u"), F.col("src").alias("v")))
    smallest = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    return (both.where(F.col("v") > F.col("u")).join(smallest, "u")
            .select(F.col("v").alias("src"), F.col("m").alias("dst")).distinct())


def small_star(edges: DataFrame) -> DataFrame:
    """Each node and its smaller neighbours link to the smallest of those neighbours."""
    smallest = edges.groupBy("src").agg(F.min("dst").alias("m"))
    moved = (edges.join(smallest, "src").where(F.col("dst") != F.col("m"))
             .select(F.col("dst").alias("src"), F.col("m").alias("dst")))
    return moved.unionByName(smallest.select("src", F.col("m").alias("dst"))).distinct()
