"""Adversarial semi-supervised filtering: drop pool records that stay confidently unlike a trusted set.

PU learning in rounds, fully distributed (MLlib): round 0 trains a discriminator, trusted (1)
against the whole unlabelled pool (0), class-balanced and cross-fitted (each record scored by a
model that did not see it); the records scoring below ``drop_ratio`` times the round's median
P(trusted), at most ``max_drop_fraction`` of what remains, are reliable negatives and are dropped.
Each later round retrains on the trusted set against every reliable negative so far and scores
what remains, dropping the next batch. Features are hashed word + bigram TF-IDF, unit length.

Writes ``adversarial/kept``, ``adversarial/dropped`` (the shared dropped schema with the score as
``value``, the threshold and the ``round``) and ``adversarial/rounds`` (per round: examples trained
on, threshold, drops, model path); each round's model is saved. pool in = kept + dropped + rejected.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import reduce

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError
from refinery.frames import COPIES, dropped_frame, read_input, reconcile, rejected_rows, table_or_file
from refinery.selection.features import word_features
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows

STAGE = "adversarial"
REJECTS_TABLE = "bronze/rejects"


@dataclass(frozen=True)
class AdversarialResult:
    records_in: int
    rounds: list[dict]
    kept: Commit
    dropped: Commit
    rejects: Commit

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        return render_table(["round", "trusted", "negatives", "scored", "P(trusted) below", "dropped"],
                            [[r["round"], r["trusted"], r["negatives"], r["scored"], f"{r['threshold']:.3g}", r["dropped"]]
                             for r in self.rounds])

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary(STAGE, self.records_in, self.kept.rows, self.dropped.rows, self.rejects.rows,
                            [self.kept, self.dropped, self.rejects], seconds)


def trusted_texts(spark: SparkSession, cfg: Config) -> DataFrame:
    name = cfg.adversarial.trusted
    if not name:
        raise ConfigError("adversarial.trusted is required: a lake table or a text file of trusted documents")
    return table_or_file(spark, cfg.table(name), name, "trusted").select("text").where(F.col("text").isNotNull())


def discriminator(a, positives: DataFrame, negatives: DataFrame) -> PipelineModel:
    """Trusted (1) vs negatives (0), each class weighted to half the total: the pool outnumbers the
    trusted set by orders of magnitude."""
    n_pos, n_neg = positives.count(), negatives.count()
    data = (positives.select("text", F.lit(1.0).alias("label"), F.lit(0.5 / n_pos).alias("w"))
            .unionByName(negatives.select("text", F.lit(0.0).alias("label"), F.lit(0.5 / n_neg).alias("w"))))
    lr = LogisticRegression(featuresCol="features", labelCol="label", weightCol="w", maxIter=100, regParam=a.reg_param)
    return Pipeline(stages=[word_features(a.features, bigrams=True, idf=True, unit=True), lr]).fit(data)


def cross_fitted(a, trusted: DataFrame, remaining: DataFrame, negatives: DataFrame, path: str) -> DataFrame:
    """P(trusted) of every remaining record from a model that did not train on it: a discriminator
    scores its own training negatives near 0, whatever they are. Records are split into
    ``a.folds`` folds by a hash of doc_id; fold f is scored by the model fitted without fold f."""
    fold = F.pmod(F.xxhash64("doc_id"), F.lit(a.folds))
    parts = []
    for f in range(a.folds):
        model = discriminator(a, trusted, negatives.where(fold != f))
        model.write().overwrite().save(f"{path}/fold={f}")
        parts.append(model.transform(remaining.where(fold == f).select("doc_id", "text"))
                     .select("doc_id", vector_to_array("probability")[1].alias("score")))
    return reduce(DataFrame.unionByName, parts).localCheckpoint(eager=True)


def run(spark: SparkSession, cfg: Config, run_id: str) -> AdversarialResult:
    a = cfg.adversarial
    trusted = trusted_texts(spark, cfg).localCheckpoint(eager=True)
    if trusted.count() < 2:
        raise ConfigError(f"adversarial.trusted: {a.trusted} has fewer than 2 documents")
    docs, usable, version = read_input(spark, cfg.table(a.pool), a.pool, STAGE, needed=("kind",) if a.kinds else ())
    run_info = RunInfo(run_id, STAGE, cfg.section_hash("adversarial"), {a.pool: version})
    in_scope = F.col("kind").isin(a.kinds) if a.kinds else F.lit(True)
    pool = docs.where(usable & in_scope).localCheckpoint(eager=True)
    remaining, negatives = pool, None
    drops: list[DataFrame] = []
    rounds: list[dict] = []
    for k in range(a.rounds):
        path = f"{a.out.rstrip('/')}/{run_id}/round={k}"
        scored = cross_fitted(a, trusted, remaining, pool if negatives is None else negatives, path)
        n = scored.count()
        threshold = a.drop_ratio * scored.approxQuantile("score", [0.5], 0.001)[0]
        out = (scored.where(F.col("score") < threshold).orderBy("score", "doc_id")
               .limit(max(1, int(n * a.max_drop_fraction))).withColumn("round", F.lit(k))
               .withColumn("threshold", F.lit(threshold)).localCheckpoint(eager=True))
        dropped_now = out.count()
        rounds.append({"round": k, "trusted": trusted.count(), "negatives": n if negatives is None else negatives.count(),
                       "scored": n, "threshold": threshold, "dropped": dropped_now, "model": path})
        if not dropped_now:
            break
        drops.append(out)
        new = remaining.join(out.select("doc_id"), "doc_id", "left_semi")
        negatives = new if negatives is None else negatives.unionByName(new)
        remaining = remaining.join(out.select("doc_id"), "doc_id", "left_anti").localCheckpoint(eager=True)
    scores = reduce(DataFrame.unionByName, drops) if drops else \
        spark.createDataFrame([], "doc_id string, score double, round int, threshold double")
    dropped_rows = pool.join(scores, "doc_id")
    dropped = dropped_frame(dropped_rows, STAGE, F.lit("unlike_trusted"), F.col("score"), F.col("threshold")) \
        .join(scores.select("doc_id", F.col("round").cast("int")), "doc_id")
    kept = replace_rows(remaining.drop(COPIES), cfg.table(f"{STAGE}/kept"), None, run_info, [])
    dropped_commit = replace_rows(dropped, cfg.table(f"{STAGE}/dropped"), None, run_info, [])
    rounds_frame = spark.createDataFrame([(r["round"], run_id, r["trusted"], r["negatives"], r["scored"], r["threshold"],
                                           r["dropped"], r["model"]) for r in rounds],
                                         "round int, run_id string, trusted long, negatives long, scored long, "
                                         "threshold double, dropped long, model string")
    replace_rows(rounds_frame, cfg.table(f"{STAGE}/rounds"), None, run_info, [])
    reason = F.when(F.col("doc_id").isNotNull() & F.col("text").isNotNull(), F.lit(f"{STAGE}: record kind not filtered"))
    rejects = replace_rows(rejected_rows(docs.where(~(usable & in_scope)), STAGE, reason), cfg.table(REJECTS_TABLE),
                           f"stage = '{STAGE}'", run_info, ["stage", "source"])
    records_in = docs.count()
    reconcile(records_in, {"kept": kept.rows, "dropped": dropped_commit.rows, "rejected": rejects.rows})
    return AdversarialResult(records_in, rounds, kept, dropped_commit, rejects)


if __name__ == "__main__":  # spark-submit jobs/adversarial_filter.py --config ...
    from refinery.cli import main

    sys.exit(main(["adversarial_filter", *sys.argv[1:]]))
