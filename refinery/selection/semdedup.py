"""SemDeDup (Abbas et al. 2023): MLlib KMeans (cosine) on the embeddings, then inside each cluster
the records are visited from the farthest from the centroid to the nearest (``keep: outlying``,
the paper's default) or the other way, and one whose cosine to an already-kept record is at
least 1 - eps is dropped with that record as its partner. A dropped record's partner is always
kept, so no near-duplicate pair loses both members. Each cluster is one ``applyInPandas`` group:
raise ``clusters`` with the data so groups stay a few thousand records."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml.clustering import KMeans
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from refinery.config import SemDedupSection
from refinery.frames import dropped_frame
from udfs.select.leaders import greedy_leaders
from udfs.select.vectors import as_matrix, normalized

RESULT = "doc_id string, source string, cluster int, centroid_cosine double, partner string, cosine double"


def dedup_cluster(centres: np.ndarray, threshold: float, outlying: bool):
    def run(group: pd.DataFrame) -> pd.DataFrame:
        x = normalized(as_matrix(group["embedding"]))
        cluster = int(group["cluster"].iloc[0])
        to_centre = x @ centres[cluster]
        ids = group["doc_id"].to_numpy()
        order = np.lexsort((ids, to_centre if outlying else -to_centre))  # ties: lowest doc_id first
        leader_of, cosine = greedy_leaders(x[order], threshold)
        kept = leader_of == np.arange(len(order))
        ordered_ids = ids[order]
        return pd.DataFrame({
            "doc_id": ordered_ids, "source": group["source"].to_numpy()[order], "cluster": cluster,
            "centroid_cosine": to_centre[order].astype(np.float64),
            "partner": np.where(kept, None, ordered_ids[leader_of]),
            "cosine": np.where(kept, np.nan, cosine).astype(np.float64)})
    return run


def semdedup(pool: DataFrame, s: SemDedupSection) -> tuple[DataFrame, DataFrame, str]:
    """(kept records with cluster and centroid cosine, dropped rows, note)."""
    features = pool.select("doc_id", "source", "embedding", array_to_vector("embedding").alias("features"))
    model = KMeans(k=s.clusters, seed=s.seed, maxIter=s.max_iterations, distanceMeasure="cosine",
                   predictionCol="cluster").fit(features)
    centres = normalized(np.asarray(model.clusterCenters(), np.float32))
    threshold = 1.0 - s.eps
    decided = (model.transform(features).select("doc_id", "source", "embedding", F.col("cluster").cast("int"))
               .groupBy("cluster").applyInPandas(dedup_cluster(centres, threshold, s.keep == "outlying"), RESULT)
               .localCheckpoint(eager=True))
    kept = decided.where(F.col("partner").isNull()).select("doc_id", "source", "cluster", "centroid_cosine")
    dropped = dropped_frame(decided.where(F.col("partner").isNotNull()), "select.semdedup",
                            F.lit(f"semdedup: cosine >= {threshold:g} to a kept record of the same cluster"),
                            F.col("cosine"), F.lit(threshold), F.col("partner"))
    return kept, dropped, f"{s.clusters} KMeans clusters, eps {s.eps}"
