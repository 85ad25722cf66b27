"""The report's numbers, read from the lake: small aggregates and seeded samples, never a corpus
on the driver. A table that is not there (a stage not run) is simply left out of the report."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery import ledger
from refinery.config import Config
from udfs.quality.rules import RULES, defaults

# source-level funnel: the table that holds what survives each stage
FUNNEL = (("ingest", "bronze/docs"), ("dedup", "dedup/kept"), ("quality", "quality/kept"),
          ("adversarial_filter", "adversarial/kept"))
DROPPED = ("dedup/dropped", "quality/dropped", "select/dropped", "adversarial/dropped")


@dataclass
class ReportData:
    stages: pd.DataFrame  # stage, run_id, records_in, kept, dropped, rejected, seconds, outputs
    sources: pd.DataFrame  # source x funnel step: records
    rejects: pd.DataFrame  # stage, source, reason, records
    reasons: pd.DataFrame  # table, reason, records
    signals: pd.DataFrame | None = None  # a sample of quality/signals
    thresholds: dict[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)  # signal -> (bound, threshold)s
    perplexity: pd.DataFrame | None = None  # a sample: perplexity, bucket
    cluster_sizes: pd.DataFrame | None = None  # cluster_size, clusters
    embeddings: pd.DataFrame | None = None  # a sample: doc_id, source, x, y, group, selected
    selected: pd.DataFrame | None = None  # source, pool, selected


def table(spark: SparkSession, cfg: Config, name: str) -> DataFrame | None:
    path = cfg.table(name)
    return spark.read.format("delta").load(path) if DeltaTable.isDeltaTable(spark, path) else None


def sample(df: DataFrame, n: int, seed: int) -> DataFrame:
    """About ``n`` rows, the same ones for the same table and seed."""
    total = df.count()
    return df if total <= n else df.sample(fraction=min(1.0, 1.2 * n / total), seed=seed).limit(n)


def stage_runs(spark: SparkSession, cfg: Config) -> pd.DataFrame:
    """The latest recorded run of each stage, in pipeline order."""
    rows = ledger.history(spark, cfg.table(ledger.LEDGER))
    latest: dict[str, object] = {}
    for r in rows:  # newest first
        latest.setdefault(r.stage, r)
    order = {s: i for i, s in enumerate(cfg.pipeline.stages)}
    frame = pd.DataFrame([{"stage": s, "run_id": r.run_id, "records_in": r.records_in, "kept": r.kept,
                           "dropped": r.dropped, "rejected": r.rejected, "seconds": r.seconds,
                           "outputs": dict(r.outputs or {})} for s, r in latest.items()],
                         columns=["stage", "run_id", "records_in", "kept", "dropped", "rejected", "seconds", "outputs"])
    return frame.sort_values("stage", key=lambda s: s.map(lambda x: order.get(x, len(order))), kind="stable")


def source_funnel(spark: SparkSession, cfg: Config) -> pd.DataFrame:
    counts = {}
    for step, name in FUNNEL:
        df = table(spark, cfg, name)
        if df is not None:
            counts[step] = {r.source: r["count"] for r in df.groupBy("source").count().collect()}
    frame = pd.DataFrame(counts).fillna(0).astype("int64")
    frame.index.name = "source"
    return frame.sort_index()


def rejects(spark: SparkSession, cfg: Config) -> pd.DataFrame:
    df = table(spark, cfg, "bronze/rejects")
    if df is None:
        return pd.DataFrame(columns=["stage", "source", "reason", "records"])
    reason = F.regexp_replace(F.col("reason"), r"[:(].*$", "")  # "malformed JSON: line 3 ..." -> "malformed JSON"
    out = df.groupBy("stage", "source", F.trim(reason).alias("reason")).agg(F.count(F.lit(1)).alias("records"))
    return out.orderBy(F.desc("records")).toPandas()


def drop_reasons(spark: SparkSession, cfg: Config) -> pd.DataFrame:
    frames = []
    for name in DROPPED:
        df = table(spark, cfg, name)
        if df is not None:
            frames.append(df.groupBy("reason").agg(F.count(F.lit(1)).alias("records")).toPandas().assign(table=name))
    if not frames:
        return pd.DataFrame(columns=["table", "reason", "records"])
    return pd.concat(frames)[["table", "reason", "records"]].sort_values(["table", "records"], ascending=[True, False])


def signal_thresholds(cfg: Config) -> dict[str, tuple[tuple[str, float], ...]]:
    """Signal -> (bound, threshold) of the stage-wide rules in force (per-source overrides are listed apart)."""
    active = {**defaults(), **cfg.quality.thresholds}
    out: dict[str, list[tuple[str, float]]] = {}
    for rule in RULES:
        if active.get(rule.name) is not None:
            out.setdefault(rule.signal, []).append((rule.bound, float(active[rule.name])))
    return {signal: tuple(bounds) for signal, bounds in out.items()}


def embedding_map(spark: SparkSession, cfg: Config, n: int, seed: int, selected_name: str | None) -> pd.DataFrame | None:
    """A seeded sample of the vectors projected on their first two principal components (numpy's
    SVD on a few thousand rows: no extra dependency), with the one-pass cluster when selection ran."""
    vectors = table(spark, cfg, cfg.select.embeddings)
    if vectors is None:
        return None
    rows = sample(vectors.select("doc_id", "source", "embedding"), n, seed)
    clusters = table(spark, cfg, "select/onepass")
    if clusters is not None:
        rows = rows.join(clusters.select("doc_id", "cluster_id"), "doc_id", "left")
    chosen = table(spark, cfg, selected_name) if selected_name else None
    if chosen is not None:
        rows = rows.join(chosen.select("doc_id").withColumn("selected", F.lit(True)), "doc_id", "left")
    pdf = rows.toPandas()
    if len(pdf) < 3:
        return None
    matrix = np.stack(pdf["embedding"].to_numpy()).astype(np.float64)
    centered = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    xy = centered @ vt[:2].T
    out = pdf[["doc_id", "source"]].assign(x=xy[:, 0], y=xy[:, 1])
    out["group"] = pdf["cluster_id"].fillna("(none)") if "cluster_id" in pdf else pdf["source"]
    out["selected"] = pdf["selected"].eq(True) if "selected" in pdf else False
    return out


def selected_vs_pool(spark: SparkSession, cfg: Config, selected_name: str | None) -> pd.DataFrame | None:
    chosen = table(spark, cfg, selected_name) if selected_name else None
    pool = table(spark, cfg, cfg.select.input)
    if chosen is None or pool is None:
        return None
    kinds = cfg.select.kinds
    pool = pool.where(F.col("kind").isin(*kinds)) if kinds and "kind" in pool.columns else pool
    a = pool.groupBy("source").count().withColumnRenamed("count", "pool")
    b = chosen.groupBy("source").count().withColumnRenamed("count", "selected")
    return a.join(b, "source", "full").fillna(0).orderBy("source").toPandas()


def gather(spark: SparkSession, cfg: Config) -> ReportData:
    r = cfg.report
    data = ReportData(stage_runs(spark, cfg), source_funnel(spark, cfg), rejects(spark, cfg), drop_reasons(spark, cfg))
    signals = table(spark, cfg, "quality/signals")
    if signals is not None:
        data.thresholds = signal_thresholds(cfg)
        columns = ["source", "kind", "kept", *[s for s in data.thresholds if s in signals.columns]]
        filtered = signals.where(F.col("kind").isin(*cfg.quality.kinds))  # the records the rules decide on
        data.signals = sample(filtered.select(*columns), r.signal_sample, r.seed).toPandas()
    ppl = table(spark, cfg, "scored/perplexity")
    if ppl is not None:
        data.perplexity = sample(ppl.select("perplexity", "bucket"), r.signal_sample, r.seed).toPandas()
    clusters = table(spark, cfg, "dedup/clusters")
    if clusters is not None:
        sizes = clusters.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("cluster_size"))
        data.cluster_sizes = sizes.groupBy("cluster_size").agg(F.count(F.lit(1)).alias("clusters")).orderBy("cluster_size").toPandas()
    data.embeddings = embedding_map(spark, cfg, r.embedding_sample, r.seed, r.selected)
    data.selected = selected_vs_pool(spark, cfg, r.selected)
    return data
