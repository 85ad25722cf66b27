"""Writing stage outputs as Delta tables, each commit stamped with the run that made it."""
from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery import __version__

BROADCAST_ROWS = 1_000_000  # rows of (doc_id, a few narrow columns): ~60 MB on the driver and each executor


def broadcast_if_small(df: DataFrame) -> DataFrame:
    """Broadcast a materialized side table of documents when it is small, so that joining it to
    the text table does not shuffle every text; past BROADCAST_ROWS a shuffle join is cheaper."""
    return F.broadcast(df) if df.count() <= BROADCAST_ROWS else df


@dataclass(frozen=True)
class RunInfo:
    """What a Delta commit records about the run: later re-runs and training jobs read it back."""

    run_id: str
    stage: str
    config_hash: str
    inputs: dict[str, int] = field(default_factory=dict)  # input table -> Delta version read
    git_rev: str | None = field(default_factory=lambda: git_revision())
    code_version: str = __version__

    def user_metadata(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The code's git revision (``-dirty`` when changed), or None outside a checkout (a wheel)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Commit:
    """A Delta commit a stage made: the version to pin and the rows it wrote."""

    path: str
    version: int
    rows: int


def replace_rows(
    df: DataFrame, path: str, predicate: str | None, run: RunInfo, partition_by: list[str],
    properties: dict[str, str] | None = None,
) -> Commit:
    """Atomically replace the rows matching ``predicate`` with ``df`` (create the table if new).

    Replacing by predicate is what makes a re-run idempotent: the rows a run owns are swapped in
    one commit and every other row stays; ``predicate=None`` replaces the whole table (schema and
    partitioning included), for stages whose output is a function of their whole input.
    ``properties`` (``delta.*``) are set when the table is created, and on a table made before
    they were asked for. Returns the commit's version and the rows it wrote.
    """
    spark = df.sparkSession
    before = latest_version(spark, path) if DeltaTable.isDeltaTable(spark, path) else -1
    writer = df.write.format("delta").option("userMetadata", run.user_metadata()).partitionBy(*partition_by)
    if before >= 0 and predicate is None:
        writer = writer.mode("overwrite").option("overwriteSchema", "true")
    elif before >= 0:
        writer = writer.mode("overwrite").option("replaceWhere", predicate)
    else:
        writer = writer.mode("append").options(**(properties or {}))
    writer.save(path)
    commit = run_commit(spark, path, run, after=before)
    if before >= 0 and properties:
        set_properties(spark, path, properties)
    return commit


def set_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Set the table properties that differ (a metadata commit, which changes no row)."""
    current = DeltaTable.forPath(spark, path).detail().first().properties or {}
    missing = {k: v for k, v in properties.items() if current.get(k) != v}
    if missing:
        pairs = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in missing.items())
        hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(path)  # SQL takes only a qualified path (not ./lake)
        qualified = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()).makeQualified(hadoop_path).toString()
        spark.sql(f"ALTER TABLE delta.`{qualified}` SET TBLPROPERTIES ({pairs})")


def change_rows(path: str, run: RunInfo, *, insert: DataFrame | None = None, delete: DataFrame | None = None,
                update: DataFrame | None = None, key: str = "doc_id") -> Commit:
    """What incremental runs write: delete the rows whose ``key`` is in ``delete`` and set the
    columns of ``update`` on the rows with its keys (one MERGE, its small source broadcast, so only
    the files holding those rows are rewritten and the table is never shuffled), then append
    ``insert`` (a second commit; a plain append rewrites nothing). Both carry their rows in the
    change feed for the next stage. Returns the last commit, with the rows updated + inserted.
    """
    spark = next(df for df in (insert, delete, update) if df is not None).sparkSession
    before = latest_version(spark, path)
    changed = 0
    if delete is not None or update is not None:
        marks = [] if delete is None else [delete.select(key).distinct().withColumn("_delete", F.lit(True))]
        if update is not None:
            marks.append(update.withColumn("_delete", F.lit(False)))
        source = marks[0] if len(marks) == 1 else marks[0].unionByName(marks[1], allowMissingColumns=True)
        merge = (DeltaTable.forPath(spark, path).alias("t")
                 .merge(broadcast_if_small(source).alias("s"), f"t.`{key}` = s.`{key}`").whenMatchedDelete("s._delete"))
        if update is not None:
            merge = merge.whenMatchedUpdate(set={c: F.col(f"s.`{c}`") for c in update.columns if c != key})
        setting = "spark.databricks.delta.commitInfo.userMetadata"
        spark.conf.set(setting, run.user_metadata())
        try:
            merge.execute()
        finally:
            spark.conf.unset(setting)
        changed = run_commit(spark, path, run, after=before).rows
    if insert is None:
        return Commit(path, latest_version(spark, path), changed)
    after = latest_version(spark, path)
    insert.write.format("delta").mode("append").option("userMetadata", run.user_metadata()).save(path)
    appended = run_commit(spark, path, run, after=after)
    return Commit(path, appended.version, changed + appended.rows)


def latest_version(spark: SparkSession, path: str) -> int:
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first().version)


def pinned(spark: SparkSession, path: str) -> DataFrame:
    """A table at its current version, so that a run's own later writes do not change what it reads."""
    return spark.read.format("delta").option("versionAsOf", latest_version(spark, path)).load(path)


def table_rows(spark: SparkSession, path: str) -> int:
    return spark.read.format("delta").load(path).count()


def stage_rejects(spark: SparkSession, path: str, stage: str) -> Commit:
    """A stage's rows in the shared rejects table as they stand (an incremental run adds none)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return Commit(path, -1, 0)
    return Commit(path, latest_version(spark, path),
                  spark.read.format("delta").load(path).where(F.col("stage") == stage).count())


# Commits that rewrite files without changing a row: they leave a table's data version alone.
MAINTENANCE = ("OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES")


def data_version(spark: SparkSession, path: str, look_back: int = 50) -> int:
    """The newest version that changed rows: what a stage's output or input is pinned by, so
    compaction and vacuuming (by the pipeline or by hand) make nothing look stale."""
    history = DeltaTable.forPath(spark, path).history(look_back).select("version", "operation").collect()
    changed = [r.version for r in history if r.operation not in MAINTENANCE]
    return int(max(changed) if changed else max(r.version for r in history))


def run_commit(spark: SparkSession, path: str, run: RunInfo, after: int) -> Commit:
    """The commit this run made after version ``after``, found by its metadata (not "the latest",
    which a concurrent writer may own), with the rows it wrote.

    ``numOutputRows`` of an overwrite also counts rows Delta copied out of rewritten files, so
    those are subtracted; a MERGE wrote the rows it inserted and updated. Delta makes no commit
    when there is nothing to add or remove: 0 rows.
    """
    commit = (
        DeltaTable.forPath(spark, path).history()
        .where((F.col("version") > after) & (F.col("userMetadata") == run.user_metadata()))
        .orderBy(F.desc("version")).select("version", "operationMetrics").first()
    )
    if commit is None:
        return Commit(path, after, 0)
    metrics = {k: int(v) for k, v in (commit.operationMetrics or {}).items() if v.isdigit()}
    if "numTargetRowsInserted" in metrics:
        return Commit(path, int(commit.version), metrics["numTargetRowsInserted"] + metrics.get("numTargetRowsUpdated", 0))
    return Commit(path, int(commit.version), metrics.get("numOutputRows", 0) - metrics.get("numCopiedRows", 0))


def optimize(spark: SparkSession, path: str, zorder: list[str]) -> None:
    """Compact small files (and cluster by ``zorder`` columns, so filters on them skip files)."""
    table = DeltaTable.forPath(spark, path).optimize()
    table.executeZOrderBy(*zorder) if zorder else table.executeCompaction()


def vacuum(spark: SparkSession, path: str, retention_hours: float) -> None:
    """Delete files no version within ``retention_hours`` reads; older versions stop being readable."""
    DeltaTable.forPath(spark, path).vacuum(retention_hours)
