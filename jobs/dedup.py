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

A full run replaces every output as a whole in one commit per table, stamped with the input
version read, so a re-run is idempotent. It also stores its state: every fingerprint (bands
included) in ``dedup/fingerprints`` and every verified candidate pair per bucket in
``dedup/candidates``. When only new documents arrived since (``refinery.incremental``), a run
fingerprints just those and re-decides what they touch against that state; its tables equal a
full run's over the union. Counts reconcile: in = kept + dropped + rejected.
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
from refinery.frames import (COPIES, broadcast_if_small, dropped_frame, mark_repeated_ids, read_input, reconcile,
                             rejected_rows)
from refinery.incremental import CHANGE_FEED, Increment, increment
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, change_rows, pinned, replace_rows, stage_rejects, table_rows
from udfs.dedup.batches import FINGERPRINT_FIELDS, PAIR_SCHEMA, FingerprintPlan, fingerprints, pair_similarities
from udfs.dedup.minhash import MinHasher, Shingler, lsh_bands
from udfs.dedup.text import ExactNormalization

KEPT_TABLE = "dedup/kept"
CLUSTERS_TABLE = "dedup/clusters"
DROPPED_TABLE = "dedup/dropped"
FINGERPRINTS_TABLE = "dedup/fingerprints"
CANDIDATES_TABLE = "dedup/candidates"
REJECTS_TABLE = "bronze/rejects"
STATE_COLUMNS = ("doc_id", "source", "group", "exact_hash", "bands", "nid", "key", "rank")
REPRESENTATIVE, BEST = "representative", "best"
CANDIDATE_COLUMNS = ("bucket", "src", "dst", "jaccard")
CANDIDATE_SCHEMA = "bucket bigint, src bigint, dst bigint, jaccard double"
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
    totals: tuple[int, int, int]  # kept, dropped, rejected in the tables this run left
    new_records: int | None = None  # incremental: the input rows added since the last run
    displaced: int = 0  # incremental: earlier survivors that a new document now duplicates

    def problems(self) -> list[str]:
        """Dedup has no rate limits: what it cannot use is rejected, and counts must reconcile."""
        return []

    def details(self) -> str:
        near = (f"near: {self.bands} bands x {self.rows} rows, {self.candidate_pairs} candidate pairs, "
                f"{self.verified_pairs} kept after verification")
        if self.new_records is not None:
            near = (f"incremental: {self.new_records} new record(s) fingerprinted and matched against the stored "
                    f"bands; {self.displaced} earlier survivor(s) now duplicate a new one\n{near}")
        columns = ["in", "kept", EXACT, NEAR, "rejected"]
        rows = [[source, *(counts.get(c, 0) for c in columns)] for source, counts in sorted(self.by_source.items())]
        return near + "\nin = kept + exact + near duplicates + rejected, per source\n" + render_table(["source", *columns], rows)

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary("dedup", self.records_in, *self.totals, [self.kept, self.clusters, self.dropped], seconds,
                            "ran" if self.new_records is None else "incremental")


def run(spark: SparkSession, cfg: Config, run_id: str) -> DedupResult:
    d = cfg.dedup
    checkpoint = checkpointer(spark, d)
    changes = increment(spark, cfg, "dedup", d.input)
    result = incremental(spark, cfg, run_id, changes, checkpoint) if changes and changes.only_inserts else None
    if result is None:
        result = full(spark, cfg, run_id, checkpoint)
    if d.checkpoint_dir:
        drop_checkpoints(spark)
    return result


def full(spark: SparkSession, cfg: Config, run_id: str, checkpoint: Checkpoint) -> DedupResult:
    d = cfg.dedup
    needed = [*d.within, *([d.survivor.score_column] if d.survivor.score_column else [])]
    docs, usable, version = read_input(spark, cfg.table(d.input), d.input, "dedup", needed=needed,
                                       needed_by="dedup.within / dedup.survivor", error=DedupError,
                                       first="run the ingest stage first", checkpoint=checkpoint)
    run_info = RunInfo(run_id, "dedup", cfg.section_hash("dedup"), {d.input: version})
    bands, rows = banding(d)
    fp = checkpoint(fingerprint(docs.where(usable), d, bands, rows))
    marked = exact_duplicates(fp, d, checkpoint)
    links = near_links(marked, None, docs, d, checkpoint) if d.near.enabled else None
    members = checkpoint(clusters(fp, connected_components(all_links(marked, links), checkpoint, d.max_iterations),
                                  links, d))

    decided = broadcast_if_small(members.select("doc_id", "kept", "cluster_size"))
    kept = replace_rows(kept_rows(docs.where(usable), decided), cfg.table(KEPT_TABLE), None, run_info, ["source"],
                        kept_properties(docs))
    clusters_commit, dropped = write_decisions(members, cfg, run_info)
    rejects = replace_rows(rejected_rows(docs.where(~usable), "dedup"), cfg.table(REJECTS_TABLE), "stage = 'dedup'",
                           run_info, ["stage", "source"])
    if cfg.pipeline.incremental:
        write_state(marked, links, cfg, run_info)

    result = DedupResult(
        records_in=docs.count(), by_source=source_counts(spark, fp, kept, dropped, rejects), bands=bands, rows=rows,
        candidate_pairs=links.pairs() if links else 0, verified_pairs=links.near.count() if links else 0,
        kept=kept, clusters=clusters_commit, dropped=dropped, rejects=rejects,
        totals=(kept.rows, dropped.rows, rejects.rows),
    )
    reconcile(result.records_in, {"kept": kept.rows, "dropped": dropped.rows, "rejected": rejects.rows}, DedupError)
    return result


def incremental(spark: SparkSession, cfg: Config, run_id: str, changes: Increment,
                checkpoint: Checkpoint) -> DedupResult | None:
    """Deduplicate the documents added since the last run against the stored fingerprints.

    Only the new texts are shingled and hashed. Only the exact groups a new document joins are
    ranked again, and only the LSH buckets of documents that became (or stopped being) their
    group's representative are paired again; every other group and bucket keeps what is stored,
    and pairs verified before keep their Jaccard. The stored tables are scanned and joined
    against these small sets (broadcast), never shuffled. Connected components run again over
    the link graph (ids of duplicates only). Outputs change by MERGE plus append: new survivors
    in, earlier survivors that a new document now beats out, ``dup_count`` where a cluster grew.

    None (a full run) when a new row would be rejected or reuses an id the lake has seen: the
    rejects of a full run are decided over the whole input.
    """
    d = cfg.dedup
    state = pinned(spark, cfg.table(FINGERPRINTS_TABLE))
    if BEST not in state.columns:  # state stored by an earlier layout
        return None
    new_docs, usable = mark_repeated_ids(changes.upserts, checkpoint)
    new_docs = checkpoint(new_docs)
    if (not new_docs.where(~usable).isEmpty()
            or not state.join(broadcast_if_small(new_docs.select("doc_id")), "doc_id", "left_semi").isEmpty()):
        return None
    run_info = RunInfo(run_id, "dedup", cfg.section_hash("dedup"), {d.input: changes.version})
    bands, rows = banding(d)
    first_nid = ((state.agg(F.max("nid")).first()[0] >> 33) + 1) << 33 if not state.isEmpty() else 0
    new_fp = checkpoint(fingerprint(new_docs, d, bands, rows, first_nid))

    joined = broadcast_if_small(checkpoint(new_fp.select("group", "exact_hash").distinct()))
    earlier = checkpoint(state.join(joined, ["group", "exact_hash"], "left_semi"))  # stored members of those groups
    regrouped = exact_duplicates(earlier.select(*STATE_COLUMNS).unionByName(new_fp), d, checkpoint)
    marked = state.join(joined, ["group", "exact_hash"], "left_anti").unionByName(regrouped)
    flags = checkpoint(regrouped.join(earlier.select("nid", F.col(REPRESENTATIVE).alias("was")), "nid", "left"))
    docs = spark.read.format("delta").option("versionAsOf", changes.version).load(cfg.table(d.input))
    links = None
    if d.near.enabled:
        moved = flags.where(F.col(REPRESENTATIVE) != F.coalesce("was", F.lit(False)))
        links = near_links(marked, moved, docs, d, checkpoint, pinned(spark, cfg.table(CANDIDATES_TABLE)))
    members = checkpoint(clusters(marked, connected_components(all_links(marked, links), checkpoint, d.max_iterations),
                                  links, d))

    old = checkpoint(earlier_changes(members, pinned(spark, cfg.table(CLUSTERS_TABLE)), new_fp))
    decided = broadcast_if_small(members.select("doc_id", "kept", "cluster_size"))
    arrivals = kept_rows(new_docs, decided)
    back = old.where(F.col("was").isNull() & F.col("now").isNotNull()).select("doc_id")
    if not back.isEmpty():  # dropped before, kept now: a bucket that outgrew pairwise_bucket_limit lost a link
        arrivals = arrivals.unionByName(kept_rows(docs.join(broadcast_if_small(back), "doc_id", "left_semi"), decided))
    kept = change_rows(cfg.table(KEPT_TABLE), run_info, insert=arrivals,
                       delete=old.where(F.col("now").isNull()).select("doc_id"),
                       update=old.where(F.col("was").isNotNull() & F.col("now").isNotNull())
                       .select("doc_id", F.col("now").alias("dup_count")))
    clusters_commit, dropped = write_decisions(members, cfg, run_info)
    columns = [*STATE_COLUMNS, REPRESENTATIVE, BEST]
    change_rows(cfg.table(FINGERPRINTS_TABLE), run_info, insert=flags.where(F.col("was").isNull()).select(*columns),
                update=flags.where(F.col("was").isNotNull()).select("doc_id", REPRESENTATIVE, BEST))
    if links is not None:
        change_rows(cfg.table(CANDIDATES_TABLE), run_info, insert=links.fresh, delete=links.touched, key="bucket")

    totals = tuple(table_rows(spark, cfg.table(name)) for name in (KEPT_TABLE, DROPPED_TABLE))
    rejects = stage_rejects(spark, cfg.table(REJECTS_TABLE), "dedup")
    records_in = docs.count()
    reconcile(records_in, {"kept": totals[0], "dropped": totals[1], "rejected": rejects.rows}, DedupError)
    return DedupResult(
        records_in=records_in, by_source=source_counts(spark, marked, kept, dropped, rejects), bands=bands, rows=rows,
        candidate_pairs=links.pairs() if links else 0, verified_pairs=links.near.count() if links else 0,
        kept=kept, clusters=clusters_commit, dropped=dropped, rejects=rejects, totals=(*totals, rejects.rows),
        new_records=new_fp.count(), displaced=old.where(F.col("now").isNull() & F.col("was").isNotNull()).count(),
    )


def earlier_changes(members: DataFrame, before: DataFrame, new_fp: DataFrame) -> DataFrame:
    """(doc_id, was, now) for earlier documents whose ``dup_count`` in ``dedup/kept`` changed: null
    when dropped, 1 when in no cluster, else its cluster's size (the clusters before and now)."""
    def count(df: DataFrame, name: str) -> DataFrame:
        return df.select("doc_id", F.when(F.col("kept"), F.col("cluster_size")).cast(LongType()).alias(name),
                         F.lit(True).alias(f"in_{name}"))

    both = count(members, "now").join(count(before, "was"), "doc_id", "full").join(
        new_fp.select("doc_id"), "doc_id", "left_anti")
    alone = F.lit(1).cast(LongType())
    now = F.when(F.col("in_now").isNull(), alone).otherwise(F.col("now"))
    was = F.when(F.col("in_was").isNull(), alone).otherwise(F.col("was"))
    return both.select("doc_id", was.alias("was"), now.alias("now")).where(~now.eqNullSafe(was))


def kept_rows(docs: DataFrame, decided: DataFrame) -> DataFrame:
    """Input rows that survive, with ``dup_count`` (1 outside any cluster)."""
    return (docs.join(decided, "doc_id", "left")
            .where(F.col("kept").isNull() | F.col("kept"))
            .withColumn("dup_count", F.coalesce(F.col("cluster_size"), F.lit(1)).cast(LongType()))
            .drop("kept", "cluster_size", COPIES))


def kept_properties(docs: DataFrame) -> dict[str, str]:
    """Data-skipping stats on the narrow columns later stages filter on, and the change feed
    an incremental quality run reads."""
    return {"delta.dataSkippingStatsColumns": ",".join(c for c in KEPT_STATS if c in docs.columns), **CHANGE_FEED}


def write_decisions(members: DataFrame, cfg: Config, run_info: RunInfo) -> tuple[Commit, Commit]:
    """``dedup/clusters`` and ``dedup/dropped``: narrow (duplicate-cluster members only), so both
    full and incremental runs rewrite them whole."""
    cluster_rows = members.select("doc_id", "cluster_id", "cluster_size", "kept", "source")
    return (replace_rows(cluster_rows, cfg.table(CLUSTERS_TABLE), None, run_info, []),
            replace_rows(dropped_rows(members), cfg.table(DROPPED_TABLE), None, run_info, []))


def write_state(marked: DataFrame, links: "NearLinks | None", cfg: Config, run_info: RunInfo) -> None:
    """What the next incremental run builds on, written after the outputs: every usable
    document's fingerprint (bands included) with its exact group's best member, and every
    candidate pair per LSH bucket with its verified Jaccard."""
    replace_rows(marked.select(*STATE_COLUMNS, REPRESENTATIVE, BEST), cfg.table(FINGERPRINTS_TABLE), None, run_info, [])
    pairs = links.candidates if links is not None else marked.sparkSession.createDataFrame([], CANDIDATE_SCHEMA)
    replace_rows(pairs, cfg.table(CANDIDATES_TABLE), None, run_info, [])


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


def fingerprint(docs: DataFrame, d: DedupSection, bands: int, rows: int, first_nid: int = 0) -> DataFrame:
    """One pass over the text: the ``STATE_COLUMNS`` (doc_id, source, group, exact_hash, bands,
    nid, key, rank).

    ``group`` is a 64-bit hash of the ``within`` values (nulls included, as JSON), so that one
    long column, not several typed ones, keys every later grouping. ``nid`` is unique, from
    ``first_nid`` up (an incremental run numbers new documents after the stored ones); ``key``
    is a hash of doc_id, an order that does not depend on how a run numbered its documents.
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
    return (fp.withColumn("nid", F.monotonically_increasing_id() + F.lit(first_nid))
            .withColumn("key", F.xxhash64("doc_id")).withColumn("rank", survivor_rank(d)).select(*STATE_COLUMNS))


def survivor_rank(d: DedupSection) -> Column:
    """A struct whose minimum over a cluster is its survivor; doc_id breaks ties, so it is total."""
    tail = [F.col("doc_id"), F.col("nid"), F.col("exact_hash")]
    if d.survivor.policy == "longest":
        return F.struct((-F.col("_length")).alias("k"), *tail)
    if d.survivor.policy == "score":
        return F.struct(F.col("_score").isNull().alias("no_score"), (-F.col("_score")).alias("k"), *tail)
    return F.struct(*tail)


@dataclass(frozen=True)
class NearLinks:
    """Near-duplicate evidence, as ``nid`` pairs (src > dst)."""

    candidates: DataFrame  # (bucket, src, dst, jaccard): LSH bucket co-members, jaccard null unverified
    near: DataFrame  # (src, dst, jaccard): the accepted pairs
    touched: DataFrame | None = None  # incremental: the buckets paired again (bucket)
    fresh: DataFrame | None = None  # incremental: their candidates, as ``candidates``

    def pairs(self) -> int:
        return self.candidates.select("src", "dst").distinct().count()


def all_links(marked: DataFrame, links: NearLinks | None) -> DataFrame:
    """Each exact duplicate to its group's best member, and the accepted near pairs."""
    exact = marked.where(~F.col(REPRESENTATIVE)).select(F.col("nid").alias("src"), F.col(BEST).alias("dst"))
    return exact if links is None else exact.unionByName(links.near.select("src", "dst"))


def exact_duplicates(fp: DataFrame, d: DedupSection, checkpoint: Checkpoint) -> DataFrame:
    """The fingerprints with ``best`` (the nid of the best member of its exact group: one window)
    and ``representative`` (it is that member, or exact dedup is off: the documents near dedup
    compares)."""
    best = F.min("rank").over(Window.partitionBy("group", "exact_hash")).getField("nid") if d.exact.enabled else F.col("nid")
    return checkpoint(fp.withColumn(BEST, best).withColumn(REPRESENTATIVE, F.col("nid") == F.col(BEST)))


def near_links(marked: DataFrame, moved: DataFrame | None, docs: DataFrame, d: DedupSection, checkpoint: Checkpoint,
               stored: DataFrame | None = None) -> NearLinks:
    """Candidate pairs of every LSH bucket, verified; the accepted ones are the near links.

    Incremental (``moved``: documents that became or stopped being representatives; ``stored``:
    the last run's candidates): only the buckets a moved document is in are re-paired, and a pair
    verified before keeps its Jaccard; every other bucket keeps its stored pairs. A bucket's pairs
    depend only on its members, so the result is what pairing every bucket again would give.
    """
    representatives = marked.where(REPRESENTATIVE)
    if moved is None:
        pairs = checkpoint(bucket_pairs(bucket_rows(representatives), d))
        scored = verified(pairs.select("src", "dst").distinct(), marked, docs, d, checkpoint)
        candidates = pairs.join(scored, ["src", "dst"])
    else:
        touched = broadcast_if_small(checkpoint(bucket_rows(moved).select("bucket").distinct()))
        pairs = checkpoint(bucket_pairs(bucket_rows(representatives).join(touched, "bucket", "left_semi"), d))
        known = stored.join(touched, "bucket", "left_semi").select("src", "dst", "jaccard").distinct()
        scored = verified(pairs.select("src", "dst").distinct().join(known, ["src", "dst"], "left_anti"),
                          marked, docs, d, checkpoint)
        fresh = checkpoint(pairs.join(known.unionByName(scored), ["src", "dst"]).select(*CANDIDATE_COLUMNS))
        candidates = stored.join(touched, "bucket", "left_anti").select(*CANDIDATE_COLUMNS).unionByName(fresh)
    candidates = checkpoint(candidates.select(*CANDIDATE_COLUMNS))
    accepted = (F.col("jaccard") >= d.near.threshold) if d.near.verify else F.lit(True)
    near = candidates.where(accepted).select("src", "dst", "jaccard").distinct()
    return NearLinks(candidates, near) if moved is None else NearLinks(candidates, near, touched, fresh)


def bucket_rows(fp: DataFrame) -> DataFrame:
    """(bucket, nid, key) per band of each document with bands.

    Band keys are seeded with their band index, so one 64-bit hash of (group, key) names a bucket
    (a cross-bucket collision has odds ~2^-64 per pair, and verification re-checks).
    """
    return (fp.where(F.col("bands").isNotNull())
            .select("nid", "key", "group", F.explode("bands").alias("band"))
            .select(F.xxhash64("group", "band").alias("bucket"), "nid", "key"))


def bucket_pairs(rows: DataFrame, d: DedupSection) -> DataFrame:
    """(bucket, src, dst) with src > dst: documents that share a band bucket.

    Buckets up to ``near.pairwise_bucket_limit`` members give all their pairs, so verification
    can never cut two true duplicates apart through a third member; larger ones (boilerplate) link
    every member to one centre, a star: a bucket of a million copies is a million links, not
    10^12. The centre is the member with the smallest ``key``, so it does not depend on numbering.
    """
    bucket = Window.partitionBy("bucket")
    shared = (rows.select("bucket", "nid", F.count(F.lit(1)).over(bucket).alias("size"),
                          F.min(F.struct("key", "nid")).over(bucket).getField("nid").alias("centre"))
              .where(F.col("size") > 1))
    limit = d.near.pairwise_bucket_limit
    star = (shared.where((F.col("size") > limit) & (F.col("nid") != F.col("centre")))
            .select("bucket", F.greatest("nid", "centre").alias("src"), F.least("nid", "centre").alias("dst")))
    small = shared.where(F.col("size") <= limit).select("bucket", "nid")
    pairs = (small.alias("a").join(small.alias("b"), "bucket").where(F.col("a.nid") > F.col("b.nid"))
             .select("bucket", F.col("a.nid").alias("src"), F.col("b.nid").alias("dst")))
    return star.unionByName(pairs)


def verified(pairs: DataFrame, fp: DataFrame, docs: DataFrame, d: DedupSection, checkpoint: Checkpoint) -> DataFrame:
    """(src, dst, jaccard) for every pair: the exact Jaccard of the shingle sets, or null without
    verification. Only the texts of paired documents are shuffled: their ids are few, so they
    are broadcast against the text table when small."""
    if not d.near.verify:
        return pairs.withColumn("jaccard", F.lit(None).cast(DoubleType()))
    nodes = pairs.select(F.col("src").alias("nid")).union(pairs.select(F.col("dst").alias("nid"))).distinct()
    wanted = broadcast_if_small(checkpoint(fp.select("nid", "doc_id").join(broadcast_if_small(checkpoint(nodes)), "nid")))
    texts = docs.select("doc_id", "text").join(wanted, "doc_id")
    joined = (pairs
              .join(texts.select(F.col("nid").alias("src"), F.col("text").alias("text_src")), "src")
              .join(texts.select(F.col("nid").alias("dst"), F.col("text").alias("text_dst")), "dst")
              .select("src", "dst", "text_src", "text_dst"))
    return joined.mapInArrow(partial(pair_similarities, hasher=hasher(d)), from_arrow_schema(PAIR_SCHEMA))


def clusters(fp: DataFrame, labels: DataFrame, links: NearLinks | None, d: DedupSection) -> DataFrame:
    """Per member of a duplicate cluster: cluster id (its smallest doc_id), size, whether it is
    the survivor, and for the others why they go and which document they duplicate.

    ``value`` is the evidence: 1.0 for an exact duplicate of the survivor; for a near duplicate,
    the highest verified Jaccard among its own links (null without verification, or when it is
    linked only as an exact copy of another member). In a chain A~B~C it can exceed the
    similarity to the survivor: clustering is transitive, as in every MinHash-LSH deduplicator.
    """
    members = fp.select("nid", "doc_id", "source", "exact_hash", "rank").join(
        broadcast_if_small(labels), F.col("node") == F.col("nid"))  # duplicates only: few, next to every document
    per_cluster = members.groupBy("root").agg(
        F.min("rank").alias("best"), F.count(F.lit(1)).alias("cluster_size"), F.min("doc_id").alias("cluster_id"))
    members = members.join(per_cluster, "root")
    kept = F.col("nid") == F.col("best.nid")
    exact = F.col("exact_hash").isNotNull() & (F.col("exact_hash") == F.col("best.exact_hash"))
    similarity = F.lit(None).cast(DoubleType())
    if links is not None:
        near_links = links.near
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
