"""The run ledger, ``<lake>/_refinery/runs``: one Delta row per finished stage run.

A row holds the stage's fingerprint (config-section hash, the versions of the tables it read,
a digest of the files it read, the code version) and the versions of the tables it wrote. A
re-run skips a stage whose fingerprint is unchanged and whose tables are still at the recorded
versions; a stage that died wrote no row, so the next run does it again (every stage replaces
its outputs in one commit per table, so a repeat is idempotent). The ledger is also the list of
every run's table versions that a training job pins (``versionAsOf``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from refinery import __version__
from refinery.tables import data_version, git_revision

LEDGER = "_refinery/runs"
SCHEMA = ("run_id string, stage string, fingerprint string, config_hash string, inputs string, "
          "outputs map<string,bigint>, records_in bigint, kept bigint, dropped bigint, rejected bigint, "
          "seconds double, problems array<string>, code_version string, git_rev string, finished_at timestamp")


@dataclass(frozen=True)
class Fingerprint:
    """What a stage's output is a function of."""

    stage: str
    config_hash: str
    inputs: dict[str, object]  # lake table -> version read; outside location -> digest of its files
    code_version: str = __version__
    git_rev: str | None = field(default_factory=git_revision)

    def key(self) -> str:
        payload = json.dumps([self.stage, self.config_hash, self.inputs, self.code_version, self.git_rev], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Entry:
    """A finished stage run as the ledger holds it."""

    run_id: str
    stage: str
    fingerprint: str
    config_hash: str
    inputs: dict[str, object]
    code_version: str
    outputs: dict[str, int]
    records_in: int
    kept: int
    dropped: int
    rejected: int
    seconds: float
    problems: list[str]


def table_versions(spark: SparkSession, paths: dict[str, str]) -> dict[str, int | None]:
    """The data version of each table (name -> path), None where there is no table."""
    return {name: data_version(spark, path) if DeltaTable.isDeltaTable(spark, path) else None
            for name, path in paths.items()}


def last_entry(spark: SparkSession, lake_table: str, stage: str) -> Entry | None:
    if not DeltaTable.isDeltaTable(spark, lake_table):
        return None
    row = (spark.read.format("delta").load(lake_table).where(F.col("stage") == stage)
           .orderBy(F.desc("finished_at")).limit(1).collect())
    if not row:
        return None
    r = row[0]
    return Entry(r.run_id, r.stage, r.fingerprint, r.config_hash, json.loads(r.inputs), r.code_version,
                 dict(r.outputs or {}), r.records_in, r.kept, r.dropped, r.rejected, r.seconds, list(r.problems or []))


def record(spark: SparkSession, lake_table: str, run_id: str, fp: Fingerprint, outputs: dict[str, int | None],
           counts: tuple[int, int, int, int], seconds: float, problems: list[str]) -> None:
    """Append one finished stage run (a blind append: concurrent runs never conflict on it)."""
    row = (run_id, fp.stage, fp.key(), fp.config_hash, json.dumps(fp.inputs, sort_keys=True),
           {k: v for k, v in outputs.items() if v is not None}, *counts, float(seconds), problems,
           fp.code_version, fp.git_rev, datetime.now(timezone.utc).replace(tzinfo=None))
    spark.createDataFrame([row], SCHEMA).write.format("delta").mode("append").save(lake_table)


def history(spark: SparkSession, lake_table: str):
    """Every recorded stage run, newest first: what a training job reads to pin a table version."""
    if not DeltaTable.isDeltaTable(spark, lake_table):
        return []
    return (spark.read.format("delta").load(lake_table)
            .select("finished_at", "run_id", "stage", "records_in", "kept", "dropped", "rejected", "seconds", "outputs")
            .orderBy(F.desc("finished_at")).collect())
