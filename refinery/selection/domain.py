"""Domain relevance of each record to a small target-domain sample, and a subset of ``size``.

- ``dsir`` (Xie et al. 2023): words and word bigrams hashed into ``num_features`` buckets (MLlib
  RegexTokenizer, NGram, HashingTF); the bucket distributions of the target and of the pool (two
  sums); relevance = the record's log importance weight; ``size`` records drawn without
  replacement in proportion to the weights (Gumbel top-k, seeded by doc_id: reproducible).
- ``classifier``: the same features with IDF, MLlib LogisticRegression of target (1) against a
  seeded pool sample (0) of ten times the target's size, cross-fitted over two halves of the pool
  (each half scored by the model whose negatives came from the other); relevance = P(target); the
  ``size`` most relevant are selected.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import ConfigError, DomainSection
from refinery.frames import dropped_frame, text_sample
from refinery.selection.features import word_features
from udfs.select.dsir import importance_log_weights, log_ratio
from udfs.select.neighbors import sparse_rows

NEGATIVES_PER_TARGET = 10


def bucket_totals(features: DataFrame) -> np.ndarray:
    return np.asarray(features.agg(Summarizer.sum(F.col("features")).alias("s")).first().s.toArray())


def weigh(ratio: np.ndarray):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            relevance = importance_log_weights(sparse_rows(list(batch["features"])), ratio) if len(batch) else []
            yield pd.DataFrame({"doc_id": batch["doc_id"], "source": batch["source"], "relevance": relevance})
    return run


def gumbel(seed: int):
    """Standard Gumbel noise from a hash of (seed, doc_id): the same draw on every run."""
    uniform = (F.pmod(F.xxhash64(F.lit(seed), "doc_id"), F.lit(1 << 52)).cast("double") + 0.5) / float(1 << 52)
    return -F.log(-F.log(uniform))


def domain(spark: SparkSession, pool: DataFrame, s: DomainSection) -> tuple[DataFrame, DataFrame, str]:
    """(selected: doc_id, source, relevance; dropped rows with their relevance; note)."""
    target = text_sample(spark, s.target, "target").localCheckpoint(eager=True)
    if target.isEmpty():
        raise ConfigError(f"select.domain.target: {s.target} holds no text")
    docs = pool.select("doc_id", "source", "text")
    if s.method == "dsir":
        model: PipelineModel = word_features(s.num_features, bigrams=True).fit(docs)
        ratio = log_ratio(bucket_totals(model.transform(target)), bucket_totals(model.transform(docs)))
        scored = model.transform(docs).select("doc_id", "source", "features").mapInPandas(
            weigh(ratio), "doc_id string, source string, relevance double")
        key = F.col("relevance") + gumbel(s.seed)
    else:
        model = word_features(s.num_features, bigrams=True, idf=True).fit(docs.select("text").unionByName(target.select("text")))
        positives = model.transform(target).select("features", F.lit(1.0).alias("label"))
        features = model.transform(docs.withColumn("_fold", F.pmod(F.xxhash64(F.lit(s.seed), "doc_id"), F.lit(2))))
        # Cross-fitted: the model for one half of the pool trains its negatives on the other half,
        # so no record is scored by a model that saw it as a negative.
        fraction = min(1.0, 2 * NEGATIVES_PER_TARGET * target.count() / max(pool.count(), 1))
        halves = []
        for fold in (0, 1):
            negatives = features.where(F.col("_fold") != fold).sample(fraction=fraction, seed=s.seed)
            train = positives.unionByName(negatives.select("features", F.lit(0.0).alias("label")))
            classifier = LogisticRegression(maxIter=100, regParam=0.01).fit(train)
            halves.append(classifier.transform(features.where(F.col("_fold") == fold)).select(
                "doc_id", "source", vector_to_array("probability")[1].alias("relevance")))
        scored = halves[0].unionByName(halves[1])
        key = F.col("relevance")
    scored = scored.localCheckpoint(eager=True)
    chosen = scored.withColumn("_key", key).orderBy(F.desc("_key"), "doc_id").limit(s.size).select("doc_id").localCheckpoint(eager=True)
    marked = scored.join(chosen.withColumn("_chosen", F.lit(True)), "doc_id", "left")
    selected = marked.where(F.col("_chosen").isNotNull()).select("doc_id", "source", "relevance")
    dropped = dropped_frame(marked.where(F.col("_chosen").isNull()), "select.domain",
                            F.lit(f"domain: not among the {s.size} selected ({s.method})"), F.col("relevance"))
    return selected, dropped, f"{s.method} against {s.target}"
