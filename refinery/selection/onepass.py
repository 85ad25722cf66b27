"""One-pass (leader) clustering: each partition (records hashed by doc_id, in doc_id order) streams
its records and opens a cluster when no leader so far reaches ``threshold`` cosine; then every
partition's leaders, in doc_id order, go through the same pass in one task, and each record
follows its leader's leader. A cluster's id is its leader's doc_id: for a given input and
``partitions`` the result is the same on every run."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from refinery.config import OnePassSection
from udfs.select.leaders import greedy_leaders
from udfs.select.vectors import as_matrix, normalized, whole_partition

PASS = "doc_id string, leader string, similarity double"


def leader_pass(threshold: float):
    """``mapInPandas`` over one partition, which it holds whole (records arrive in doc_id order)."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        part = whole_partition(batches)
        if part is None:
            return
        leader_of, cosine = greedy_leaders(normalized(as_matrix(part["embedding"])), threshold)
        ids = part["doc_id"].to_numpy()
        yield pd.DataFrame({"doc_id": ids, "leader": ids[leader_of], "similarity": cosine.astype(np.float64)})
    return run


def onepass(pool: DataFrame, s: OnePassSection) -> tuple[DataFrame, str]:
    """(doc_id, source, cluster_id, is_leader, cosine to the leader the record followed), note."""
    vectors = pool.select("doc_id", "embedding")
    first = (vectors.repartition(s.partitions, "doc_id").sortWithinPartitions("doc_id")
             .mapInPandas(leader_pass(s.threshold), PASS).localCheckpoint(eager=True))
    leaders = first.where(F.col("leader") == F.col("doc_id")).select("doc_id").join(vectors, "doc_id")
    merged = (leaders.repartition(1).sortWithinPartitions("doc_id")
              .mapInPandas(leader_pass(s.threshold), PASS)
              .select(F.col("doc_id").alias("leader"), F.col("leader").alias("cluster_id"),
                      F.col("similarity").alias("merge_similarity")))
    # A partition's leader followed another leader only in the merge: its similarity is that one.
    similarity = F.when(F.col("doc_id") == F.col("leader"), F.col("merge_similarity")).otherwise(F.col("similarity"))
    clusters = (first.join(merged, "leader").join(pool.select("doc_id", "source"), "doc_id")
                .select("doc_id", "source", "cluster_id", (F.col("doc_id") == F.col("cluster_id")).alias("is_leader"),
                        similarity.alias("similarity")))
    return clusters, f"threshold {s.threshold}, {s.partitions} partitions"
