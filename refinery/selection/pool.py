"""The candidate pool every selection method reads: the input table's records of the selected
kinds, with their embedding when a method needs one, the unusable ones set aside with a reason,
and every setting that depends on the data checked before any method runs."""
from __future__ import annotations

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError
from refinery.frames import COPIES, read_input, rejected_rows
from refinery.tables import latest_version

STAGE = "select"
LOCATORS = ("source_file", "source_line")


@dataclass(frozen=True)
class Pool:
    records: DataFrame  # doc_id, source, text (+ kind, meta, embedding), usable rows of a checkpoint
    rejects: DataFrame  # rejects-table rows
    records_in: int
    usable: int
    dimension: int | None  # embedding size, when embeddings were read
    versions: dict[str, int]  # input table -> Delta version read


def needs_embeddings(cfg: Config) -> bool:
    s = cfg.select
    return (s.semdedup.enabled or s.onepass.enabled or s.kcenter.enabled
            or (s.neighbors.enabled and s.neighbors.backend == "embedding"))


def candidate_pool(spark: SparkSession, cfg: Config) -> Pool:
    s = cfg.select
    docs, usable, version = read_input(spark, cfg.table(s.input), s.input, STAGE, error=ConfigError,
                                       first="run quality first (select.input)", needed=["kind"] if s.kinds else [],
                                       needed_by="select.kinds")
    versions = {s.input: version}
    if s.kinds is not None:
        docs = docs.where(F.col("kind").isin(s.kinds))
    reason = F.when(usable & (F.trim(F.coalesce(F.col("text"), F.lit(""))) == ""), F.lit(f"{STAGE}: record has empty text"))
    optional = [c for c in ("kind", "meta", *LOCATORS) if c in docs.columns]
    candidates = docs.select("doc_id", "source", "text", *optional, COPIES, usable.alias("_usable"))
    dimension = None
    if needs_embeddings(cfg):
        path = cfg.table(s.embeddings)
        if not DeltaTable.isDeltaTable(spark, path):
            raise ConfigError(f"select.embeddings: table {path} does not exist; run embed first")
        versions[s.embeddings] = latest_version(spark, path)
        vectors = spark.read.format("delta").option("versionAsOf", versions[s.embeddings]).load(path)
        if "embedding" not in vectors.columns:
            raise ConfigError(f"select.embeddings: table {s.embeddings} has no 'embedding' column")
        candidates = candidates.join(vectors.select("doc_id", "embedding").dropDuplicates(["doc_id"]), "doc_id", "left")
        reason = reason.when(usable & (F.coalesce(F.size("embedding"), F.lit(0)) <= 0),
                             F.lit(f"{STAGE}: record has no embedding in {s.embeddings}"))
    marked = candidates.withColumn("_reason", reason).localCheckpoint(eager=True)
    good = marked.where(F.col("_usable") & F.col("_reason").isNull()).drop("_reason", "_usable", COPIES, *LOCATORS)
    unusable = rejected_rows(marked.where(~F.col("_usable") | F.col("_reason").isNotNull()), STAGE, F.col("_reason"))
    records = good  # a filter of the checkpointed rows: no second copy
    usable_rows = records.count()
    if needs_embeddings(cfg):
        sizes = records.agg(F.min(F.size("embedding")).alias("lo"), F.max(F.size("embedding")).alias("hi")).first()
        if usable_rows and sizes.lo != sizes.hi:
            raise ConfigError(f"select.embeddings: vectors of sizes {sizes.lo} and {sizes.hi} in {s.embeddings}; "
                              "re-run embed with one model")
        dimension = sizes.hi
    check_sizes(cfg, usable_rows)
    return Pool(records, unusable, marked.count(), usable_rows, dimension, versions)


def check_sizes(cfg: Config, rows: int) -> None:
    """Counts asked for that the pool cannot give are errors naming the setting."""
    s = cfg.select
    for enabled, key, value in ((s.kcenter.enabled, "select.kcenter.k", s.kcenter.k),
                                (s.semdedup.enabled, "select.semdedup.clusters", s.semdedup.clusters),
                                (s.domain.enabled, "select.domain.size", s.domain.size)):
        if enabled and value > rows:
            raise ConfigError(f"{key} = {value} is more than the {rows} selectable records in {s.input}")
