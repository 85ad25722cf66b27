"""Top-k nearest neighbours of every record by cosine, without a cross join of the table and
without its vectors on the driver: records are hashed into ``blocks`` blocks; every (query block,
key block) pair is one ``applyInPandas`` group that takes the exact top-k by a blockwise matrix
product (``udfs/select/neighbors.py``); each record's ``blocks`` partial lists are then merged.
Each vector is shuffled 2 x ``blocks`` times; the products are n^2 d in all, as exact search is.

Back-ends: ``tfidf`` (MLlib HashingTF + IDF + L2 Normalizer over lower-cased words), ``bow`` (the
same without IDF), ``embedding`` (the embed stage's unit vectors)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from refinery.config import NeighborsSection
from refinery.selection.features import word_features
from udfs.select.neighbors import sparse_rows, top_k
from udfs.select.vectors import as_matrix, normalized

PAIRS = "doc_id string, neighbor_id string, similarity double"


def block_top_k(k: int, dense: bool):
    def run(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values("doc_id", kind="stable")  # ties at the k-th neighbour go to the lowest ids
        queries, keys = group[group["_role"] == "q"], group[group["_role"] == "k"]
        if queries.empty or keys.empty:
            return pd.DataFrame({"doc_id": [], "neighbor_id": [], "similarity": []})
        if dense:
            q, kv = normalized(as_matrix(queries["vector"])), normalized(as_matrix(keys["vector"]))
        else:
            q, kv = sparse_rows(list(queries["vector"])), sparse_rows(list(keys["vector"]))
        q_ids, k_ids = queries["doc_id"].to_numpy(), keys["doc_id"].to_numpy()
        rows, cols, sims = top_k(q, kv, k, pd.Index(k_ids).get_indexer(q_ids))
        return pd.DataFrame({"doc_id": q_ids[rows], "neighbor_id": k_ids[cols], "similarity": sims.astype(np.float64)})
    return run


def neighbors(pool: DataFrame, s: NeighborsSection) -> tuple[DataFrame, str]:
    """(doc_id, source, neighbor_id, rank, similarity) for each record's k nearest, note."""
    if s.backend == "embedding":
        vectors = pool.select("doc_id", F.col("embedding").alias("vector"))
    else:
        docs = pool.select("doc_id", "text")
        model = word_features(s.num_features, idf=s.backend == "tfidf", unit=True).fit(docs)
        vectors = model.transform(docs).select("doc_id", F.col("features").alias("vector"))
    blocks = F.sequence(F.lit(0), F.lit(s.blocks - 1))
    block = F.pmod(F.xxhash64("doc_id"), F.lit(s.blocks))
    queries = vectors.select("doc_id", "vector", block.alias("_qb"), F.explode(blocks).alias("_kb"), F.lit("q").alias("_role"))
    keys = vectors.select("doc_id", "vector", F.explode(blocks).alias("_qb"), block.alias("_kb"), F.lit("k").alias("_role"))
    partial = queries.unionByName(keys).groupBy("_qb", "_kb").applyInPandas(block_top_k(s.k, s.backend == "embedding"), PAIRS)
    best = Window.partitionBy("doc_id").orderBy(F.desc("similarity"), "neighbor_id")
    ranked = partial.withColumn("rank", F.row_number().over(best)).where(F.col("rank") <= s.k)
    out = ranked.join(pool.select("doc_id", "source"), "doc_id").select("doc_id", "source", "neighbor_id", "rank", "similarity")
    return out, f"{s.backend}, k {s.k}, {s.blocks} x {s.blocks} blocks"
