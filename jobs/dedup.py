"""Dedup stage: ``bronze/docs`` -> ``dedup/{kept,clusters,dropped}`` (Delta).

1. One pass over the text (``mapInArrow``, ``udfs/dedup``) turns each document into a normalized
   exact hash and its MinHash-LSH band keys; the text is not carried further. The result is
   checkpointed with a unique ``nid`` (long) so every later shuffle moves 8-byte ids, not texts.
2. Exact duplicates: documents sharing (``within`` columns, hash) link to their group's best one.
3. Near duplicates, among exact survivors only: documents sharing a band bucket are candidate
   pairs (all pairs in small buckets, a star in large ones); with ``near.verify`` each candidate
   pair is re-read and kept only if the exact Jaccard of the shingle sets reaches the threshold.
4. Connected components over both kinds of links (``refinery.components``); per cluster one
   survivor by ``survivor.policy``. The rest are dropped with reason and the survivor's id.

Every output is replaced as a whole in one commit per table, stamped with the input version read,
so a re-run is idempotent. Counts reconcile: in = kept + dropped + rejected.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import DoubleType, LongType

from refinery.components import Checkpoint, connected_components
from refinery.config import Config, DedupSection
from refinery.frames import COPIES, broadcast_if_small, dropped_frame, read_input, reconcile, rejected_rows
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows
from udfs.dedup.batches import FINGERPRINT_FIELDS, PAIR_SCHEMA, FingerprintPlan, fingerprints, pair_similarities
from udfs.dedup.minhash import MinHasher, Shingler, lsh_bands
from udfs.dedup.text import ExactNormalization

KEPT_TABLE = "dedup/kept"
CLUSTERS_TABLE = "dedup/clusters"
DROPPED_TABLE = "dedup/dropped"
REJECTS_TABLE = "bronze/rejects"
# Data-skipping stats on the narrow columns later stages filter on (those the input has).
KEPT_STATS = ("doc_id", "kind", "source_file", "source_line", "lang", "dup_count")
EXACT, NEAR = "exact_duplicate", "near_duplicate"


class DedupError(RuntimeError):
    """The stage cannot run (no input table, a configured column is missing)."""


@dataclass(frozen=True)
class DedupResult:
    records_in: int
    by_source: dict[str, dict[str, int]]
    bands: int
    rows: int
    candidate_pairs: int
    verified_pairs: int
    kept: Commit
    clusters: Commit
    dropped: Commit
    rejects: Commit

    def problems(self) -> list[str]:
        """Dedup has no rate limits: what it cannot use is rejected, and counts must reconcile."""
        return []

    def details(self) -> str:
        near = (f"near: {self.bands} bands x {self.rows} rows, {self.candidate_pairs} candidate pairs, "
                f"{self.verified_pairs} kept after verification")
        columns = ["in", "kept", EXACT, NEAR, "rejected"]
        rows = [[source, *(counts.get(c, 0) for c in columns)] for source, counts in sorted(self.by_source.items())]
        return near + "\nin = kept + exact + near duplicates + rejected, per source\n" + render_table(["source", *columns], rows)

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary("dedup", self.records_in, self.kept.rows, self.dropped.rows, self.rejects.rows,
                            [self.kept, self.clusters, self.dropped], seconds)


def run(spark: SparkSession, cfg: Config, run_id: str) -> DedupResult:
    d = cfg.dedup
    checkpoint = checkpointer(spark, d)
    needed = [*d.within, *([d.survivor.score_column] if d.survivor.score_column else [])]
    docs, usable, version = read_input(spark, cfg.table(d.input), d.input, "dedup", needed=needed,
                                       needed_by="dedup.within / dedup.survivor", error=DedupError,
                                       first="run the ingest stage first", checkpoint=checkpoint)
    run_info = RunInfo(run_id, "dedup", cfg.section_hash("dedup"), {d.input: version})
    bands, rows = banding(d)
    fp = checkpoint(fingerprint(docs.where(usable), d, bands, rows))
    links = duplicate_links(fp, docs, d, checkpoint)
    members = checkpoint(clusters(fp, connected_components(links.all(), checkpoint, d.max_iterations), links.near, d))

    decided = broadcast_if_small(members.select("doc_id", "kept", "cluster_size"))
    kept_docs = (docs.where(usable).join(decided, "doc_id", "left")
                 .where(F.col("kept").isNull() | F.col("kept"))
                 .withColumn("dup_count", F.coalesce(F.col("cluster_size"), F.lit(1)).cast(LongType()))
                 .drop("kept", "cluster_size", COPIES))
    stats = {"delta.dataSkippingStatsColumns": ",".join(c for c in KEPT_STATS if c in kept_docs.columns)}
    kept = replace_rows(kept_docs, cfg.table(KEPT_TABLE), None, run_info, ["source"], stats)
    cluster_rows = members.select("doc_id", "cluster_id", "cluster_size", "kept", "source")
    clusters_commit = replace_rows(cluster_rows, cfg.table(CLUSTERS_TABLE), None, run_info, [])
    dropped = replace_rows(dropped_rows(members), cfg.table(DROPPED_TABLE), None, run_info, [])
    rejects = replace_rows(rejected_rows(docs.where(~usable), "dedup"), cfg.table(REJECTS_TABLE), "stage = 'dedup'",
                           run_info, ["stage", "source"])

    result = DedupResult(
        records_in=docs.count(), by_source=source_counts(spark, fp, kept, dropped, rejects), bands=bands, rows=rows,
        candidate_pairs=links.candidates.count() if links.candidates is not None else 0,
        verified_pairs=links.near.count() if links.near is not None else 0,
        kept=kept, clusters=clusters_commit, dropped=dropped, rejects=rejects,
    )
    reconcile(result.records_in, {"kept": kept.rows, "dropped": dropped.rows, "rejected": rejects.rows}, DedupError)
    if d.checkpoint_dir:
        drop_checkpoints(spark)
    return result


def checkpointer(spark: SparkSession, d: DedupSection) -> Checkpoint:
    """Reliable checkpoints (survive lost executors) when a directory is configured, else
    executor-local ones (faster; a lost executor fails the stage, which is then re-run)."""
    if d.checkpoint_dir:
        spark.sparkContext.setCheckpointDir(d.checkpoint_dir)
        return lambda df: df.checkpoint(eager=True)
    return lambda df: df.localCheckpoint(eager=True)


def drop_checkpoints(spark: SparkSession) -> None:
    """Delete this application's reliable checkpoints (Spark keeps them by default)."""
    directory = spark.sparkContext.getCheckpointDir()
    if directory:
        path = spark._jvm.org.apache.hadoop.fs.Path(directory)
        path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(path, True)


def banding(d: DedupSection) -> tuple[int, int]:
    near = d.near
    if near.bands and near.rows:
        return near.bands, near.rows
    return lsh_bands(near.threshold, near.num_perm, near.false_positive_weight, near.false_negative_weight)


def hasher(d: DedupSection) -> MinHasher:
    return MinHasher(Shingler(d.near.ngram, d.near.unit, d.near.hash), d.near.num_perm, d.near.seed)


def fingerprint(docs: DataFrame, d: DedupSection, bands: int, rows: int) -> DataFrame:
    """One pass over the text: (doc_id, source, group, survivor keys, exact_hash, bands, nid, rank).

    ``group`` is a 64-bit hash of the ``within`` values (nulls included, as JSON), so that one
    long column, not several typed ones, keys every later grouping.
    """
    exact = d.exact
    plan = FingerprintPlan(
        ExactNormalization(exact.nfkc, exact.lowercase, exact.whitespace, exact.punctuation) if exact.enabled else None,
        hasher(d) if d.near.enabled else None, bands, rows,
    )
    group = F.xxhash64(F.to_json(F.struct(*d.within))) if d.within else F.lit(0).cast(LongType())
    columns = [F.col("doc_id"), F.col("source"), group.alias("group"), F.length("text").cast(LongType()).alias("_length")]
    if d.survivor.score_column:  # a value that is not a number counts as no score
        columns.append(F.col(d.survivor.score_column).try_cast(DoubleType()).alias("_score"))
    narrow = docs.select(*columns, "text")
    out_schema = to_arrow_schema(narrow.drop("text").schema)
    for f in FINGERPRINT_FIELDS:
        out_schema = out_schema.append(f)
    fp = narrow.mapInArrow(partial(fingerprints, plan=plan), from_arrow_schema(out_schema))
    return fp.withColumn("nid", F.monotonically_increasing_id()).withColumn("rank", survivor_rank(d))


def survivor_rank(d: DedupSection) -> Column:
    """A struct whose minimum over a cluster is its survivor; doc_id breaks ties, so it is total."""
    tail = [F.col("doc_id"), F.col("nid"), F.col("exact_hash")]
    if d.survivor.policy == "longest":
        return F.struct((-F.col("_length")).alias("k"), *tail)
    if d.survivor.policy == "score":
        return F.struct(F.col("_score").isNull().alias("no_score"), (-F.col("_score")).alias("k"), *tail)
    return F.struct(*tail)


@dataclass(frozen=True)
class Links:
    """Duplicate links between documents (``nid`` pairs ``src``, ``dst``)."""

    exact: DataFrame  # each exact duplicate to its group's best member
    candidates: DataFrame | None  # LSH bucket co-members (near dedup on)
    near: DataFrame | None  # accepted candidates, with their exact Jaccard when verified

    def all(self) -> DataFrame:
        return self.exact if self.near is None else self.exact.unionByName(self.near.select("src", "dst"))


def duplicate_links(fp: DataFrame, docs: DataFrame, d: DedupSection, checkpoint: Checkpoint) -> Links:
    exact, representatives = exact_duplicates(fp, d, checkpoint)
    if not d.near.enabled:
        return Links(exact, None, None)
    candidates = checkpoint(near_candidates(representatives, d, checkpoint))
    return Links(exact, candidates, checkpoint(verified(candidates, fp, docs, d, checkpoint)))


def exact_duplicates(fp: DataFrame, d: DedupSection, checkpoint: Checkpoint) -> tuple[DataFrame, DataFrame]:
    """Links (src, dst) from each exact duplicate to its group's best member, and the documents
    that are no exact duplicate of a better one (the ones near dedup compares): one window."""
    if not d.exact.enabled:
        return fp.sparkSession.createDataFrame([], "src long, dst long"), fp
    best = F.min("rank").over(Window.partitionBy("group", "exact_hash")).getField("nid")
    marked = checkpoint(fp.select("nid", "group", "bands", best.alias("best")))
    links = marked.where(F.col("nid") != F.col("best")).select(F.col("nid").alias("src"), F.col("best").alias("dst"))
    return links, marked.where(F.col("nid") == F.col("best"))


def near_candidates(representatives: DataFrame, d: DedupSection, checkpoint: Checkpoint) -> DataFrame:
    """(src, dst) with src > dst: documents that share a band bucket.

    Band keys are seeded with their band index, so one 64-bit hash of (group, key) names a bucket
    (a cross-bucket collision has odds ~2^-64 per pair, and verification re-checks). Buckets up to
    ``near.pairwise_bucket_limit`` members give all their pairs, so verification can never cut
    two true duplicates apart through a third member; larger ones (boilerplate) link every member
    to the smallest one, a star: a bucket of a million copies is a million links, not 10^12.
    """
    rows = (representatives.where(F.col("bands").isNotNull())
            .select("nid", "group", F.explode("bands").alias("key"))
            .select("nid", F.xxhash64("group", "key").alias("bucket")))
    bucket = Window.partitionBy("bucket")
    shared = checkpoint(rows.select("nid", "bucket", F.count(F.lit(1)).over(bucket).alias("size"),
                                    F.min("nid").over(bucket).alias("smallest")).where(F.col("size") > 1))
    limit = d.near.pairwise_bucket_limit
    star = (shared.where((F.col("size") > limit) & (F.col("nid") != F.col("smallest")))
            .select(F.col("nid").alias("src"), F.col("smallest").alias("dst")))
    small = shared.where(F.col("size") <= limit).select("bucket", "nid")
    pairs = (small.alias("a").join(small.alias("b"), "bucket").where(F.col("a.nid") > F.col("b.nid"))
             .select(F.col("a.nid").alias("src"), F.col("b.nid").alias("dst")))
    return star.unionByName(pairs).distinct()


def verified(candidates: DataFrame, fp: DataFrame, docs: DataFrame, d: DedupSection,
             checkpoint: Checkpoint) -> DataFrame:
    """(src, dst, jaccard): candidates whose exact shingle Jaccard reaches the threshold, or all
    candidates (jaccard null) without verification. Only the texts of candidate documents are
    shuffled: their ids are few, so they are broadcast against the text table when small."""
    if not d.near.verify:
        return candidates.withColumn("jaccard", F.lit(None).cast(DoubleType()))
    nodes = candidates.select(F.col("src").alias("nid")).union(candidates.select(F.col("dst").alias("nid"))).distinct()
    wanted = broadcast_if_small(checkpoint(nodes.join(fp.select("nid", "doc_id"), "nid")))
    texts = docs.select("doc_id", "text").join(wanted, "doc_id")
    pairs = (candidates
             .join(texts.select(F.col("nid").alias("src"), F.col("text").alias("text_src")), "src")
             .join(texts.select(F.col("nid").alias("dst"), F.col("text").alias("text_dst")), "dst")
             .select("src", "dst", "text_src", "text_dst"))
    scored = pairs.mapInArrow(partial(pair_similarities, hasher=hasher(d)), from_arrow_schema(PAIR_SCHEMA))
    return scored.where(F.col("jaccard") >= d.near.threshold)


def clusters(fp: DataFrame, labels: DataFrame, near_links: DataFrame | None, d: DedupSection) -> DataFrame:
    """Per member of a duplicate cluster: cluster id (its smallest doc_id), size, whether it is
    the survivor, and for the others why they go and which document they duplicate.

    ``value`` is the evidence: 1.0 for an exact duplicate of the survivor; for a near duplicate,
    the highest verified Jaccard among its own links (null without verification, or when it is
    linked only as an exact copy of another member). In a chain A~B~C it can exceed the
    similarity to the survivor: clustering is transitive, as in every MinHash-LSH deduplicator.
    """
    members = labels.join(fp.select("nid", "doc_id", "source", "exact_hash", "rank"), F.col("node") == F.col("nid"))
    per_cluster = members.groupBy("root").agg(
        F.min("rank").alias("best"), F.count(F.lit(1)).alias("cluster_size"), F.min("doc_id").alias("cluster_id"))
    members = members.join(per_cluster, "root")
    kept = F.col("nid") == F.col("best.nid")
    exact = F.col("exact_hash").isNotNull() & (F.col("exact_hash") == F.col("best.exact_hash"))
    similarity = F.lit(None).cast(DoubleType())
    if near_links is not None:
        best_edge = near_links.select(F.col("src").alias("nid"), "jaccard").unionByName(
            near_links.select(F.col("dst").alias("nid"), "jaccard")).groupBy("nid").agg(F.max("jaccard").alias("best_j"))
        members = members.join(best_edge, "nid", "left")
        similarity = F.col("best_j")
    return members.select(
        "doc_id", "source", "cluster_id", F.col("cluster_size").cast(LongType()), kept.alias("kept"),
        F.when(kept, None).when(exact, EXACT).otherwise(NEAR).alias("reason"),
        F.when(kept, None).when(exact, 1.0).otherwise(similarity).alias("value"),
        F.when(kept, None).when(exact, 1.0).otherwise(d.near.threshold).alias("threshold"),
        F.when(kept, None).otherwise(F.col("best.doc_id")).alias("duplicate_of"),
    )


def dropped_rows(members: DataFrame) -> DataFrame:
    return dropped_frame(members.where(~F.col("kept")), "dedup", F.col("reason"), F.col("value"), F.col("threshold"),
                         F.col("duplicate_of"))


def source_counts(spark: SparkSession, fp: DataFrame, kept: Commit, dropped: Commit,
                  rejects: Commit) -> dict[str, dict[str, int]]:
    """in / kept / per reason / rejected per source, read back from the committed versions."""
    counts: dict[str, dict[str, int]] = {}
    for r in fp.groupBy("source").count().collect():
        counts.setdefault(r["source"], {})["in"] = r["count"]
    table = spark.read.format("delta").option("versionAsOf", kept.version).load(kept.path)
    for r in table.groupBy("source").count().collect():
        counts.setdefault(r["source"], {})["kept"] = r["count"]
    table = spark.read.format("delta").option("versionAsOf", dropped.version).load(dropped.path)
    for r in table.groupBy("source", "reason").count().collect():
        counts.setdefault(r["source"], {})[r["reason"]] = r["count"]
    if rejects.rows:
        table = spark.read.format("delta").option("versionAsOf", rejects.version).load(rejects.path)
        for r in table.where("stage = 'dedup'").groupBy("source").count().collect():
            entry = counts.setdefault(r["source"], {})
            entry["rejected"] = r["count"]
            entry["in"] = entry.get("in", 0) + r["count"]
    return counts


if __name__ == "__main__":  # spark-submit jobs/dedup.py --config ...
    from refinery.cli import main

    sys.exit(main(["dedup", *sys.argv[1:]]))
