"""DataFrame steps every stage over ``doc_id``-keyed tables shares: which input rows are usable,
what is rejected and why, and joining small id tables to the text table without shuffling texts."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import LongType, StringType

from refinery.tables import broadcast_if_small, latest_version
from udfs.schema import DROPPED_SCHEMA, REJECT_SCHEMA

COPIES = "_copies"  # rows sharing a doc_id in the input
def mark_repeated_ids(docs: DataFrame, checkpoint: Callable[[DataFrame], DataFrame]) -> tuple[DataFrame, Column]:
    """``docs`` with ``_copies`` set on rows whose doc_id is not unique, and the predicate of usable
    rows (doc_id and text present, doc_id unique). A repeated id cannot be joined on safely, so all
    its rows are rejected. Counting ids reads one narrow column."""
    repeated = checkpoint(docs.groupBy("doc_id").agg(F.count(F.lit(1)).alias(COPIES)).where(F.col(COPIES) > 1))
    marked = docs.join(broadcast_if_small(repeated), "doc_id", "left")
    return marked, F.col("doc_id").isNotNull() & F.col("text").isNotNull() & F.col(COPIES).isNull()


def read_input(spark: SparkSession, path: str, name: str, stage: str, *, needed: Iterable[str] = (),
               needed_by: str = "", error: type[Exception] = RuntimeError, first: str = "",
               checkpoint: Callable[[DataFrame], DataFrame] | None = None) -> tuple[DataFrame, Column, int]:
    """A stage's input table at its latest version (pinned for the whole run), with repeated ids
    marked, the usable-row predicate, and the version read. A missing table or column is ``error``:
    ``first`` says which stage to run before (default: the stages before this one), ``needed_by``
    which settings asked for the ``needed`` columns beyond doc_id, text and source."""
    if not DeltaTable.isDeltaTable(spark, path):
        raise error(f"input table {path} does not exist; {first or f'run the stages before {stage} first'}")
    version = latest_version(spark, path)
    docs = spark.read.format("delta").option("versionAsOf", version).load(path)
    missing = sorted({"doc_id", "text", "source", *needed} - set(docs.columns))
    if missing:
        raise error(f"input table {name} has no column(s) {missing}" + (f" ({needed_by})" if needed_by else ""))
    marked, usable = mark_repeated_ids(docs, checkpoint or (lambda df: df.localCheckpoint(eager=True)))
    return marked, usable, version


def reconcile(records_in: int, parts: dict[str, int], error: type[Exception] = RuntimeError) -> None:
    """in = the sum of ``parts`` (kept, dropped, rejected... from the Delta commits), else the stage
    fails loudly."""
    if records_in != sum(parts.values()):
        counts = " + ".join(f"{name} {n}" for name, n in parts.items())
        raise error(f"counts do not reconcile: in {records_in} != {counts} (re-run the stage; it is idempotent)")


def rejected_rows(bad: DataFrame, stage: str, reason: Column | None = None) -> DataFrame:
    """Rejects-table rows for the unusable rows of ``mark_repeated_ids``, with the reason; a
    stage's own ``reason`` column, where not null, names why a usable-id row is rejected."""
    reason = (F.when(reason.isNotNull(), reason) if reason is not None else F)
    reason = (reason.when(F.col("doc_id").isNull(), f"{stage}: record has no doc_id")
              .when(F.col(COPIES).isNotNull(), F.format_string(f"{stage}: doc_id appears %d times in the input", F.col(COPIES)))
              .otherwise(f"{stage}: record has no text"))
    columns = {
        "stage": F.lit(stage),
        "source": F.col("source"),
        "doc_id": F.col("doc_id"),
        "source_file": F.col("source_file") if "source_file" in bad.columns else F.lit(None).cast(StringType()),
        "source_line": F.col("source_line").cast(LongType()) if "source_line" in bad.columns else F.lit(None).cast(LongType()),
        "reason": reason,
        "raw_snippet": F.lit(None).cast(StringType()),
    }
    return bad.select(*[columns[n].alias(n) for n in REJECT_SCHEMA.names])


def dropped_frame(rows: DataFrame, stage: str, reason: Column, value: Column | None = None,
                  threshold: Column | None = None, duplicate_of: Column | None = None,
                  reasons: Column | None = None) -> DataFrame:
    """Rows of the shared dropped schema: why each record went (``reasons``: every cause, default
    just ``reason``), the value and threshold that decided it, and the record it duplicates or lost to."""
    columns = {"stage": F.lit(stage), "source": F.col("source"), "doc_id": F.col("doc_id"), "reason": reason,
               "reasons": F.array(reason) if reasons is None else reasons, "value": value, "threshold": threshold,
               "duplicate_of": duplicate_of}
    types = {f.name: f.dataType for f in from_arrow_schema(DROPPED_SCHEMA).fields}
    return rows.select(*[(columns[n] if columns[n] is not None else F.lit(None)).cast(types[n]).alias(n)
                         for n in DROPPED_SCHEMA.names])


def text_sample(spark: SparkSession, path: str, source: str) -> DataFrame:
    """A small text set given by path (local, ``~``, or object store): one document per line, or
    JSON lines with a ``text`` field. Rows: doc_id (line id), source, text."""
    where = path if "://" in path else str(Path(path).expanduser())
    lines = spark.read.text(where).where(F.trim("value") != "")
    text = F.when(F.ltrim("value").startswith("{"), F.get_json_object("value", "$.text")).otherwise(F.col("value"))
    return (lines.select(F.monotonically_increasing_id().cast("string").alias("doc_id"), F.lit(source).alias("source"),
                         text.alias("text"))
            .where(F.col("text").isNotNull() & (F.trim("text") != "")))  # a JSON line without text, a blank one


def table_or_file(spark: SparkSession, table: str, path: str, source: str) -> DataFrame:
    """A lake table (``table``, its own columns) when one is there, else ``path`` as a text file
    (``text_sample``: doc_id, source, text). Settings that take "a lake table or a text file" use it."""
    if DeltaTable.isDeltaTable(spark, table):
        return spark.read.format("delta").load(table)
    return text_sample(spark, path, source)


def spread(df: DataFrame) -> DataFrame:
    """Rows over at least every task slot before a model UDF: a small table is often one file and
    so one partition, which would leave all but one core (or GPU) idle for the whole stage."""
    slots = df.sparkSession.sparkContext.defaultParallelism
    return df.repartition(slots) if df.rdd.getNumPartitions() < slots else df
