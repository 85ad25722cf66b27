"""K-Center-Greedy coreset of ``k`` records, and its coverage radius (the largest distance from any
record to its nearest chosen centre).

- ``exact``: the greedy on one node (the driver) over every vector, for tables up to
  ``exact_max_rows``; radius at most 2x the optimal k-center radius (Gonzalez 1985).
- ``two_round``: the greedy picks ``k`` centres in each of ``partitions`` partitions, then the greedy
  again over the union of those (``partitions`` x ``k`` vectors reach the driver, never the table);
  radius at most 4x optimal (Malkomes et al. 2015), so at most 4x the exact greedy's radius. Every
  record's nearest centre is then found in a distributed pass with the ``k`` centres broadcast.
Distances are Euclidean between unit vectors (sqrt(2 - 2 cos)); ties go to the lowest doc_id."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import KCenterSection
from udfs.select.kcenter import k_center_greedy, nearest_centres
from udfs.select.vectors import as_matrix, normalized, whole_partition

CENTRES = "doc_id string, embedding array<float>"
NEAREST = "doc_id string, source string, centre string, distance double"


def greedy_on(frame: pd.DataFrame, k: int) -> tuple[np.ndarray, ...]:
    """(doc_ids in doc_id order, their unit vectors, then k_center_greedy's four arrays)."""
    frame = frame.sort_values("doc_id", kind="stable")
    x = normalized(as_matrix(frame["embedding"]))
    return (frame["doc_id"].to_numpy(), x, *k_center_greedy(x, k))


def first_round(k: int):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        part = whole_partition(batches)
        if part is None:
            return
        ids, x, chosen, *_ = greedy_on(part, k)
        yield pd.DataFrame({"doc_id": ids[chosen], "embedding": list(x[chosen])})
    return run


def assign(centre_ids: np.ndarray, centres: np.ndarray):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            owner, distance = nearest_centres(normalized(as_matrix(batch["embedding"], centres.shape[1])), centres)
            yield pd.DataFrame({"doc_id": batch["doc_id"], "source": batch["source"],
                                "centre": centre_ids[owner], "distance": distance})
    return run


def collect(frame: DataFrame) -> pd.DataFrame:
    return frame.toArrow().to_pandas()


def kcenter(spark: SparkSession, pool: DataFrame, rows: int, s: KCenterSection) -> tuple[DataFrame, DataFrame, str, float]:
    """(chosen: doc_id, source, rank, distance_at_pick; every record's nearest centre and distance;
    mode; coverage radius)."""
    mode = s.mode if s.mode != "auto" else ("exact" if rows <= s.exact_max_rows else "two_round")
    if mode == "exact":
        ids, _, chosen, at_pick, owner, nearest = greedy_on(collect(pool.select("doc_id", "embedding")), s.k)
        centre_ids, picked = ids[chosen], at_pick
        nearest_frame = spark.createDataFrame(
            pa.table({"doc_id": ids, "centre": centre_ids[owner], "distance": nearest})
        ).join(pool.select("doc_id", "source"), "doc_id").select("doc_id", "source", "centre", "distance")
    else:
        union = collect(pool.select("doc_id", "embedding").repartition(s.partitions, "doc_id")
                        .mapInPandas(first_round(s.k), CENTRES))
        ids, x, chosen, at_pick, *_ = greedy_on(union, s.k)
        centre_ids, picked = ids[chosen], at_pick
        nearest_frame = pool.select("doc_id", "source", "embedding").mapInPandas(assign(centre_ids, x[chosen]), NEAREST)
    nearest_frame = nearest_frame.localCheckpoint(eager=True)
    ranks = spark.createDataFrame(pa.table({"doc_id": centre_ids, "rank": np.arange(1, len(centre_ids) + 1),
                                            "distance_at_pick": pa.array(picked, mask=~np.isfinite(picked))}))
    chosen_frame = ranks.join(pool.select("doc_id", "source"), "doc_id").select("doc_id", "source", "rank", "distance_at_pick")
    radius = nearest_frame.agg(F.max("distance")).first()[0] or 0.0
    return chosen_frame, nearest_frame, mode, float(radius)
