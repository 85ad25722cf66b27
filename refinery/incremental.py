"""Incremental runs: what changed in a stage's input since its last finished run.

A stage may build on its last run's output instead of recomputing it when that run is the
ledger's last entry for the stage, made with the same stage config and Refinery version, and
its tables are still exactly as it left them (a run that died part-way, or a hand edit, leaves
a table at another version: the next run is then a full one). The input's change feed (Delta
CDF, on for the tables stages read) names the rows inserted, updated or deleted since the
version that run read. Anything else (no ledger entry, the change feed vacuumed or turned off,
a forced re-run with nothing new) is a full run, which is always correct.
"""
from __future__ import annotations

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from refinery import __version__, ledger
from refinery.config import Config
from refinery.stages import FILE, STAGES
from refinery.tables import data_version, latest_version

CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


@dataclass(frozen=True)
class Increment:
    """An input's net changes between the version the last run read and the one this run reads."""

    since: int
    version: int
    upserts: DataFrame  # rows as they are at ``version``, inserted or updated after ``since``
    deletes: DataFrame  # doc_id of rows deleted after ``since`` and not inserted again
    only_inserts: bool  # no row was updated or deleted (an append, such as a new shard)


def last_current_run(spark: SparkSession, cfg: Config, stage: str) -> ledger.Entry | None:
    """The stage's last finished run, if its state can be built on (see the module docstring)."""
    if not cfg.pipeline.incremental:
        return None
    entry = ledger.last_entry(spark, cfg.table(ledger.LEDGER), stage)
    if entry is None or entry.config_hash != cfg.section_hash(STAGES[stage].section) or entry.code_version != __version__:
        return None
    tables = {name: cfg.table(name) for name in STAGES[stage].writes(cfg) if not name.startswith(FILE)}
    versions = ledger.table_versions(spark, tables)  # None where a table is missing: nothing to build on
    if any(version is None or entry.outputs.get(name) != version for name, version in versions.items()):
        return None
    return entry


def increment(spark: SparkSession, cfg: Config, stage: str, table: str) -> Increment | None:
    """Net changes of input ``table`` since the stage's last current run, or None for a full run."""
    previous = last_current_run(spark, cfg, stage)
    since = previous.inputs.get(table) if previous else None
    path = cfg.table(table)
    if not isinstance(since, int) or not DeltaTable.isDeltaTable(spark, path):
        return None
    version = latest_version(spark, path)
    if data_version(spark, path) <= since:
        return None  # nothing new: a forced re-run, which recomputes
    try:  # reads every change file once: a feed turned off, or files vacuumed, fail here and not mid-stage
        feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", since + 1)
                .option("endingVersion", version).load(path).where(F.col("_change_type") != "update_preimage"))
        only_inserts = feed.where(F.col("_change_type") != "insert").isEmpty()
    except Exception:  # noqa: BLE001 - whatever the feed's error, a full run is correct and reports real faults
        return None
    # Per doc_id, its last change; within one commit a re-inserted row wins over its delete.
    order = Window.partitionBy("doc_id").orderBy(F.desc("_commit_version"), (F.col("_change_type") == "delete").asc())
    last = feed.withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")
    upserts = last.where(F.col("_change_type") != "delete").drop(*CDF_COLUMNS)
    deletes = last.where(F.col("_change_type") == "delete").select("doc_id")
    return Increment(since, version, upserts, deletes, only_inserts)
