"""Quality stage: ``dedup/kept`` -> ``quality/{signals,kept,dropped}`` (Delta).

Signals first, filtering second (RedPajama-v2's layout):

1. One ``mapInArrow`` pass over the text (``udfs/quality``) measures every Gopher, C4 and FineWeb
   heuristic, identifies the language, and decides, under the document's source thresholds, which
   rules it fails. That narrow table (no text) is ``quality/signals``: re-thresholding later reads
   it, not the corpus.
2. Documents that failed nothing are joined back to their text, PII is scrubbed from every text
   field, and they are written to ``quality/kept``; the others go to ``quality/dropped`` with the
   first failing rule, its value and threshold, and every rule they failed.

A full run replaces every output whole in one commit stamped with the input version. Signals are
per document, so an incremental run (``refinery.incremental``) measures only the rows of
``dedup/kept`` inserted or updated since the last run: their old rows and the rows that left the
input are deleted (one MERGE) and the new ones appended. Counts reconcile over the whole tables: in = kept + dropped + rejected,
else the stage fails.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import DoubleType

from refinery.config import Config, QualitySection
from refinery.frames import (COPIES, broadcast_if_small, dropped_frame, mark_repeated_ids, read_input, reconcile,
                             rejected_rows)
from refinery.incremental import Increment, increment
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, change_rows, replace_rows, stage_rejects, table_rows
from udfs.quality.batches import PII_FIELDS, SIGNAL_FIELDS, QualityPlan, quality_signals, scrub_pii
from udfs.quality.pii import PiiScrubber
from udfs.quality.rules import BY_NAME, LANGUAGE_RULE, RULES, defaults

SIGNALS_TABLE = "quality/signals"
KEPT_TABLE = "quality/kept"
DROPPED_TABLE = "quality/dropped"
REJECTS_TABLE = "bronze/rejects"
KEPT_STATS = ("doc_id", "kind", "source_file", "source_line", "lang", "lang_score", "dup_count")


class QualityError(RuntimeError):
    """The stage cannot run (no input table, a needed column is missing)."""


@dataclass(frozen=True)
class QualityResult:
    records_in: int
    by_rule: list[list[object]]  # [source, rule, removed (first failing), flagged (failing at all)]
    by_source: dict[str, dict[str, int]]
    signals: Commit
    kept: Commit
    dropped: Commit
    rejects: Commit
    totals: tuple[int, int, int]  # kept, dropped, rejected in the tables this run left
    changed: int | None = None  # incremental: input rows measured (inserted or updated since the last run)
    removed: int = 0  # incremental: rows gone from the input since, removed from the outputs

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        sources = render_table(["source", "in", "kept", "dropped", "rejected"],
                               [[s, *(c.get(k, 0) for k in ("in", "kept", "dropped", "rejected"))]
                                for s, c in sorted(self.by_source.items(), key=lambda item: item[0] or "")])
        rules = render_table(["source", "rule", "removed (first failing)", "failing (any)"], self.by_rule)
        head = (f"incremental: {self.changed} new or changed record(s) measured, {self.removed} removed\n"
                if self.changed is not None else "")
        return f"{head}in = kept + dropped + rejected, per source\n{sources}\nper rule\n{rules}"

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary("quality", self.records_in, *self.totals, [self.signals, self.kept, self.dropped], seconds,
                            "ran" if self.changed is None else "incremental")


def run(spark: SparkSession, cfg: Config, run_id: str) -> QualityResult:
    changes = increment(spark, cfg, "quality", cfg.quality.input)
    result = incremental(spark, cfg, run_id, changes) if changes else None
    return result if result is not None else full(spark, cfg, run_id)


def full(spark: SparkSession, cfg: Config, run_id: str) -> QualityResult:
    q = cfg.quality
    docs, usable, version = read_input(spark, cfg.table(q.input), q.input, "quality", needed=["kind"],
                                       error=QualityError)
    run_info = RunInfo(run_id, "quality", cfg.section_hash("quality"), {q.input: version})
    rules = plan(q)
    signals = replace_rows(measure(docs.where(usable), rules), cfg.table(SIGNALS_TABLE), None, run_info, ["source"])
    table = spark.read.format("delta").option("versionAsOf", signals.version).load(signals.path)
    kept_docs = kept_rows(docs.where(usable), table, q)
    stats = {"delta.dataSkippingStatsColumns": ",".join(c for c in KEPT_STATS if c in kept_docs.columns)}
    kept = replace_rows(kept_docs, cfg.table(KEPT_TABLE), None, run_info, ["source"], stats)
    dropped = replace_rows(dropped_rows(table.where(~F.col("kept")), rules), cfg.table(DROPPED_TABLE), None, run_info, [])
    rejects = replace_rows(rejected_rows(docs.where(~usable), "quality"), cfg.table(REJECTS_TABLE),
                           "stage = 'quality'", run_info, ["stage", "source"])

    result = QualityResult(docs.count(), rule_counts(table), source_counts(table, rejects, spark),
                           signals, kept, dropped, rejects, (kept.rows, dropped.rows, rejects.rows))
    reconcile(result.records_in, {"kept": kept.rows, "dropped": dropped.rows, "rejected": rejects.rows}, QualityError)
    reconcile(signals.rows, {"kept": kept.rows, "dropped": dropped.rows}, QualityError)  # every measured record decided
    return result


def incremental(spark: SparkSession, cfg: Config, run_id: str, changes: Increment) -> QualityResult | None:
    """Measure only the rows inserted or updated since the last run; None (a full run) when most
    of the input changed (a full rewrite is then cheaper than a MERGE) or a changed row would be
    rejected (rejects are decided over the whole input)."""
    q = cfg.quality
    docs, usable = mark_repeated_ids(changes.upserts, lambda df: df.localCheckpoint(eager=True))
    records_in = spark.read.format("delta").option("versionAsOf", changes.version).load(cfg.table(q.input)).count()
    changed, removed = docs.count(), changes.deletes.count()
    if 2 * (changed + removed) > records_in or not docs.where(~usable).isEmpty():
        return None
    run_info = RunInfo(run_id, "quality", cfg.section_hash("quality"), {q.input: changes.version})
    rules = plan(q)
    measured = measure(docs, rules).localCheckpoint(eager=True)
    replaced = changes.deletes.unionByName(docs.select("doc_id")).localCheckpoint(eager=True)  # removed or rewritten
    signals = change_rows(cfg.table(SIGNALS_TABLE), run_info, insert=measured, delete=replaced)
    kept = change_rows(cfg.table(KEPT_TABLE), run_info, insert=kept_rows(docs, measured, q), delete=replaced)
    dropped = change_rows(cfg.table(DROPPED_TABLE), run_info, insert=dropped_rows(measured.where(~F.col("kept")), rules),
                          delete=replaced)

    rejects = stage_rejects(spark, cfg.table(REJECTS_TABLE), "quality")
    totals = (table_rows(spark, kept.path), table_rows(spark, dropped.path), rejects.rows)
    reconcile(records_in, dict(zip(("kept", "dropped", "rejected"), totals)), QualityError)
    table = spark.read.format("delta").option("versionAsOf", signals.version).load(signals.path)
    reconcile(table.count(), {"kept": totals[0], "dropped": totals[1]}, QualityError)
    return QualityResult(records_in, rule_counts(table), source_counts(table, rejects, spark), signals, kept, dropped,
                         rejects, totals, changed, removed)


def measure(docs: DataFrame, rules: QualityPlan) -> DataFrame:
    """Every signal of each usable document, which rules it fails, and whether it is kept."""
    narrow = docs.select("doc_id", "source", "kind", "text")
    schema = to_arrow_schema(narrow.drop("text").schema)
    for f in SIGNAL_FIELDS:
        schema = schema.append(f)
    measured = narrow.mapInArrow(partial(quality_signals, plan=rules), from_arrow_schema(schema))
    return measured.withColumn("kept", F.size("failed") == 0)


def kept_rows(docs: DataFrame, signals: DataFrame, q: QualitySection) -> DataFrame:
    """The documents that failed no rule, with their language and their text fields PII-scrubbed."""
    passed = broadcast_if_small(signals.where("kept").select("doc_id", "lang_detected", "lang_score"))
    kept_docs = (docs.join(passed, "doc_id").drop(COPIES)
                 .withColumn("lang", F.coalesce(F.col("lang"), F.col("lang_detected")) if "lang" in docs.columns
                             else F.col("lang_detected"))
                 .drop("lang_detected"))
    if q.pii.enabled:
        scrubber = PiiScrubber(tuple(q.pii.kinds), q.pii.phone_region)
        out = to_arrow_schema(kept_docs.schema)
        for f in PII_FIELDS:
            out = out.append(f)
        kept_docs = kept_docs.mapInArrow(partial(scrub_pii, scrubber=scrubber), from_arrow_schema(out))
    return kept_docs


def plan(q: QualitySection) -> QualityPlan:
    languages = frozenset(q.languages) if q.languages is not None else None
    return QualityPlan(
        thresholds={**defaults(), **q.thresholds},
        source_thresholds={s: o.thresholds for s, o in q.sources.items()},
        languages=languages,
        source_languages={s: frozenset(o.languages) if o.languages is not None else None
                          for s, o in q.sources.items() if "languages" in o.model_fields_set},
        kinds=frozenset(q.kinds),
        lang_max_chars=q.lang_max_chars,
    )


def by_source(value: dict[str, Column], default: Column) -> Column:
    """``value[source]`` for sources with an override, else ``default``."""
    column = default
    for source, v in value.items():
        column = F.when(F.col("source") == source, v).otherwise(column)
    return column


def dropped_rows(failed: DataFrame, rules: QualityPlan) -> DataFrame:
    """The first failing rule's signal value and (per-source) threshold; every failing rule."""
    reason = F.col("failed").getItem(0)
    signal = F.create_map(*[x for r in RULES for x in (F.lit(r.name), F.col(r.signal).cast(DoubleType()))])

    def thresholds(values: dict[str, float | None]) -> Column:
        return F.create_map(*[x for name, t in values.items() for x in (F.lit(name), F.lit(t).cast(DoubleType()))])

    threshold = by_source({s: thresholds(rules.thresholds_for(s)) for s in rules.source_thresholds},
                          thresholds(dict(rules.thresholds)))
    return dropped_frame(failed, "quality", reason,
                         F.when(reason == LANGUAGE_RULE, None).otherwise(F.element_at(signal, reason)),
                         F.when(reason == LANGUAGE_RULE, None).otherwise(F.element_at(threshold, reason)),
                         reasons=F.col("failed"))


def rule_counts(table: DataFrame) -> list[list[object]]:
    """Per source and rule: documents it removed (their first failing rule) and that failed it at all."""
    exploded = table.where(~F.col("kept")).select("source", F.posexplode("failed").alias("pos", "rule"))
    rows = exploded.groupBy("source", "rule").agg(
        F.sum((F.col("pos") == 0).cast("long")).alias("removed"), F.count(F.lit(1)).alias("failing")).collect()
    order = {name: i for i, name in enumerate([LANGUAGE_RULE, *BY_NAME])}
    return [[r["source"], r["rule"], r["removed"], r["failing"]]
            for r in sorted(rows, key=lambda r: (r["source"] or "", order.get(r["rule"], len(order))))]


def source_counts(table: DataFrame, rejects: Commit, spark: SparkSession) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for r in table.groupBy("source").agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("kept").cast("long")).alias("k")).collect():
        counts[r["source"]] = {"in": r["n"], "kept": r["k"], "dropped": r["n"] - r["k"]}
    if rejects.rows:
        rejected = spark.read.format("delta").option("versionAsOf", rejects.version).load(rejects.path)
        for r in rejected.where("stage = 'quality'").groupBy("source").count().collect():
            entry = counts.setdefault(r["source"], {"in": 0})
            entry["rejected"] = r["count"]
            entry["in"] += r["count"]
    return counts


if __name__ == "__main__":  # spark-submit jobs/quality.py --config ...
    from refinery.cli import main

    sys.exit(main(["quality", *sys.argv[1:]]))
