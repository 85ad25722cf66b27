"""Perplexity stage: ``quality/kept`` -> ``scored/perplexity`` (doc_id, source, perplexity, tokens, bucket).

Each document's perplexity under a causal LM (``udfs/models/perplexity.py``: sliding windows,
token-budget batches; bf16 on GPU). Perplexity only means something relative to clean text, so,
as CCNet does, documents are bucketed by the percentiles of a reference set's perplexities
(``perplexity.reference``, e.g. Wikipedia): ``head`` (at most the first percentile: as clean as
the reference's cleaner part), ``middle``, ``tail``. The job prints each source's distribution
beside the reference's. in = written + rejected, else the stage fails.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from pyspark.ml.functions import predict_batch_udf
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from refinery.config import Config, PerplexitySection
from refinery.frames import read_input, reconcile, rejected_rows, spread, text_sample
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows

PERPLEXITY_TABLE = "scored/perplexity"
REJECTS_TABLE = "bronze/rejects"
SCORE = StructType([StructField("perplexity", DoubleType()), StructField("tokens", LongType())])
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class PerplexityResult:
    records_in: int
    cutoffs: tuple[float, float] | None  # reference perplexities at the configured percentiles
    distribution: list[list[object]]  # [name, docs, p10, p50, p90, head, middle, tail]
    scores: Commit
    rejects: Commit

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        cut = (f"buckets by reference perplexity: head <= {self.cutoffs[0]:.1f} < middle <= {self.cutoffs[1]:.1f} < tail"
               if self.cutoffs else "no reference set: no buckets")
        return cut + "\n" + render_table(["source", "docs", "p10", "p50", "p90", "head", "middle", "tail"], self.distribution)

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary("perplexity", self.records_in, self.scores.rows, 0, self.rejects.rows, [self.scores], seconds)


def scorer(p: PerplexitySection):
    """``make_predict_fn`` for ``predict_batch_udf``: the model loads once per Python worker."""
    def make():
        from udfs.models.loading import causal_lm
        from udfs.models.perplexity import perplexities

        model, tokenizer = causal_lm(p.model, p.cache_dir)

        def predict(texts: np.ndarray) -> dict[str, np.ndarray]:
            ppl, tokens = perplexities([str(t) for t in texts], model, tokenizer, p.max_length, p.stride, p.token_budget)
            return {"perplexity": ppl, "tokens": tokens}
        return predict
    return make


def score(frame: DataFrame, p: PerplexitySection) -> DataFrame:
    udf = predict_batch_udf(scorer(p), return_type=SCORE, batch_size=p.rows_per_call)
    return frame.withColumn("_score", udf("text")).select(
        "doc_id", "source", F.col("_score.perplexity").alias("perplexity"), F.col("_score.tokens").alias("tokens"))


def run(spark: SparkSession, cfg: Config, run_id: str) -> PerplexityResult:
    p = cfg.perplexity
    docs, usable, version = read_input(spark, cfg.table(p.input), p.input, "perplexity")
    run_info = RunInfo(run_id, "perplexity", cfg.section_hash("perplexity"), {p.input: version})
    cutoffs = None
    distribution: list[list[object]] = []
    if p.reference:
        reference = score(text_sample(spark, p.reference, "reference"), p).localCheckpoint(eager=True)
        values = reference.where(F.col("perplexity").isNotNull()).approxQuantile("perplexity", [q / 100 for q in p.percentiles], 0.0)
        cutoffs = (values[0], values[1])
        distribution.append(quantile_row(reference, cutoffs))
    scored = score(spread(docs.where(usable).select("doc_id", "source", "text")), p).withColumn("bucket", bucket(cutoffs))
    written = replace_rows(scored, cfg.table(PERPLEXITY_TABLE), None, run_info, ["source"])
    rejects = replace_rows(rejected_rows(docs.where(~usable), "perplexity"), cfg.table(REJECTS_TABLE),
                           "stage = 'perplexity'", run_info, ["stage", "source"])
    table = spark.read.format("delta").option("versionAsOf", written.version).load(written.path)
    for source in sorted(r.source for r in table.select("source").distinct().collect()):
        distribution.append(quantile_row(table.where(F.col("source") == source), cutoffs, source))
    result = PerplexityResult(docs.count(), cutoffs, distribution, written, rejects)
    reconcile(result.records_in, {"written": written.rows, "rejected": rejects.rows})
    return result


def bucket(cutoffs: tuple[float, float] | None):
    if cutoffs is None:
        return F.lit(None).cast("string")
    ppl = F.col("perplexity")
    return F.when(ppl.isNull(), None).when(ppl <= cutoffs[0], "head").when(ppl <= cutoffs[1], "middle").otherwise("tail")


def quantile_row(frame: DataFrame, cutoffs: tuple[float, float] | None, name: str = "reference") -> list[object]:
    valid = frame.where(F.col("perplexity").isNotNull())
    quantiles = valid.approxQuantile("perplexity", list(QUANTILES), 0.0) or [None] * len(QUANTILES)
    buckets = {"head": 0, "middle": 0, "tail": 0}
    if cutoffs is not None:
        for r in valid.groupBy(bucket(cutoffs).alias("b")).count().collect():
            buckets[r.b] = r["count"]
    return [name, valid.count(), *(round(q, 1) if q is not None else None for q in quantiles), *buckets.values()]


if __name__ == "__main__":  # spark-submit jobs/perplexity.py --config ...
    from refinery.cli import main

    sys.exit(main(["perplexity", *sys.argv[1:]]))
