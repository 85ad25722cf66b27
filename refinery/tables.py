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

from refinery import __version__


@dataclass(frozen=True)
class RunInfo:
    """What a Delta commit records about the run: later re-runs and training jobs read it back."""

    run_id: str
    stage: str
    config_hash: str
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


def replace_rows(df: DataFrame, path: str, predicate: str, run: RunInfo, partition_by: list[str]) -> Commit:
    """Atomically replace the rows matching ``predicate`` with ``df`` (create the table if new).

    Replacing by predicate is what makes a re-run idempotent: the rows a run owns (for ingest, the
    rows of the files it read) are swapped in one commit, and every other row stays. Returns the
    version and the number of rows the commit wrote, from Delta's own operation metrics.
    """
    spark = df.sparkSession
    writer = df.write.format("delta").option("userMetadata", run.user_metadata()).partitionBy(*partition_by)
    before = last_commit(spark, path) if DeltaTable.isDeltaTable(spark, path) else None
    if before:
        writer = writer.mode("overwrite").option("replaceWhere", predicate)
    else:
        writer = writer.mode("append")
    writer.save(path)
    after = last_commit(spark, path)
    # Delta makes no commit when there is nothing to add and nothing to remove.
    return Commit(path, after.version, 0) if before and after.version == before.version else after


def last_commit(spark: SparkSession, path: str) -> Commit:
    """The table's latest commit with the rows it wrote (``numOutputRows``)."""
    last = DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics").first()
    return Commit(path, int(last.version), int((last.operationMetrics or {}).get("numOutputRows", 0)))
