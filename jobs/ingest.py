"""Ingest stage: raw files -> ``bronze/docs`` and ``bronze/rejects`` (Delta, partitioned by source).

Each input file is read by one Spark task (``mapInArrow`` over the file list), so files never pass
through the driver. The rows of the files a run reads are replaced in one commit per table, which
makes a re-run idempotent. Counts reconcile per file: in = written + rejected, and the totals must
equal what Delta's commits report having written.

Run it with ``refinery ingest --config conf/local.yaml`` or
``spark-submit ... jobs/ingest.py --config conf/cluster.yaml``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import LongType, StringType, StructField, StructType

from refinery.config import Config
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows, sql_string
from udfs.ingest.discovery import list_input_files
from udfs.ingest.formats import resolve_fields
from udfs.ingest.reader import SourceSpec, read_file_table_batches
from udfs.schema import INGEST_OUTPUT_SCHEMA, RECORD_SCHEMA, REJECT_SCHEMA

DOCS_TABLE = "bronze/docs"
REJECTS_TABLE = "bronze/rejects"
FILES_SCHEMA = StructType([StructField(n, StringType()) for n in ("source", "path", "relpath")])


class IngestError(RuntimeError):
    """The stage cannot run (for example a source matches no files)."""


@dataclass(frozen=True)
class FileCount:
    source: str
    path: str
    records_in: int
    written: int
    rejected: int


@dataclass(frozen=True)
class IngestResult:
    files: list[FileCount]
    docs: Commit
    rejects: Commit
    max_reject_rate: float

    def by_source(self) -> dict[str, tuple[int, int, int]]:
        """(in, written, rejected) per source."""
        totals: dict[str, tuple[int, int, int]] = {}
        for f in self.files:
            i, w, r = totals.get(f.source, (0, 0, 0))
            totals[f.source] = (i + f.records_in, w + f.written, r + f.rejected)
        return totals

    def over_reject_limit(self) -> dict[str, float]:
        """Sources whose reject rate passed ``ingest.max_reject_rate``, with their rate."""
        return {
            source: rejected / records_in
            for source, (records_in, _, rejected) in self.by_source().items()
            if records_in and rejected / records_in > self.max_reject_rate
        }

    def problems(self) -> list[str]:
        """Reasons this run should not count as a success (it still wrote its tables)."""
        return [
            f"source '{source}' reject rate {rate:.1%} > ingest.max_reject_rate {self.max_reject_rate:.1%}; "
            f"see {self.rejects.path}"
            for source, rate in sorted(self.over_reject_limit().items())
        ]

    def details(self) -> str:
        rows = [[f.source, f.path, f.records_in, f.written, f.rejected] for f in self.files]
        return "in = written + rejected, per file\n" + render_table(["source", "file", "in", "written", "rejected"], rows)

    def summary(self, seconds: float) -> StageSummary:
        records_in = sum(f.records_in for f in self.files)
        return StageSummary("ingest", records_in, self.docs.rows, 0, self.rejects.rows, [self.docs, self.rejects], seconds)


def source_specs(cfg: Config) -> dict[str, SourceSpec]:
    ingest = cfg.ingest
    return {
        s.name: SourceSpec(s.name, s.format, resolve_fields(s.format, s.fields), s.lang,
                           ingest.max_record_bytes, ingest.snippet_chars)
        for s in ingest.sources
    }


def input_files(cfg: Config) -> list[tuple[str, str, str]]:
    """(source, path, relpath) of every input file; a source that matches nothing is an error."""
    files = []
    for source in cfg.ingest.sources:
        found = list_input_files(source.path)
        if not found:
            raise IngestError(f"source '{source.name}': no input files at {source.path}")
        files += [(source.name, f.path, f.relpath) for f in found]
    return files


def owned_rows_predicate(files: list[tuple[str, str, str]]) -> str:
    """The rows this run owns in both tables: those that came from the files it reads."""
    by_source: dict[str, list[str]] = {}
    for source, path, _ in files:
        by_source.setdefault(source, []).append(sql_string(path))
    return " OR ".join(
        f"(source = {sql_string(source)} AND source_file IN ({', '.join(paths)}))" for source, paths in by_source.items()
    )


def run(spark: SparkSession, cfg: Config, run_id: str) -> IngestResult:
    files = input_files(cfg)
    listing = spark.sparkContext.parallelize(files, len(files)).toDF(FILES_SCHEMA)  # one file per task
    parsed = listing.mapInArrow(
        partial(read_file_table_batches, specs=source_specs(cfg)), from_arrow_schema(INGEST_OUTPUT_SCHEMA)
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = file_counts(parsed, files)
        run_info = RunInfo(run_id, "ingest", cfg.section_hash("ingest"))
        predicate = owned_rows_predicate(files)
        docs = replace_rows(records(parsed), cfg.table(DOCS_TABLE), predicate, run_info, ["source"])
        rejects = replace_rows(rejected(parsed), cfg.table(REJECTS_TABLE), predicate, run_info, ["source"])
    finally:
        parsed.unpersist()
    result = IngestResult(counts, docs, rejects, cfg.ingest.max_reject_rate)
    reconcile(result)
    return result


def records(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNull()).select(*RECORD_SCHEMA.names)


def rejected(parsed: DataFrame) -> DataFrame:
    columns = {
        "stage": F.lit("ingest"),
        "source": F.col("source"),
        "doc_id": F.lit(None).cast(StringType()),
        "source_file": F.col("source_file"),
        "source_line": F.col("source_line").cast(LongType()),
        "reason": F.col("reject_reason"),
        "raw_snippet": F.col("raw_snippet"),
    }
    return parsed.where(F.col("reject_reason").isNotNull()).select(*[columns[n].alias(n) for n in REJECT_SCHEMA.names])


def file_counts(parsed: DataFrame, files: list[tuple[str, str, str]]) -> list[FileCount]:
    """In / written / rejected per input file (a file with no records still gets its row)."""
    rows = {
        (r.source, r.source_file): r
        for r in parsed.groupBy("source", "source_file")
        .agg(F.count(F.lit(1)).alias("records_in"), F.count("reject_reason").alias("rejected"))
        .collect()
    }
    out = []
    for source, path, _ in files:
        row = rows.get((source, path))
        records_in, rejects = (row.records_in, row.rejected) if row else (0, 0)
        out.append(FileCount(source, path, records_in, records_in - rejects, rejects))
    return out


def reconcile(result: IngestResult) -> None:
    """What the reader counted must be exactly what Delta committed; anything else is data loss."""
    written = sum(f.written for f in result.files)
    rejects = sum(f.rejected for f in result.files)
    if (written, rejects) != (result.docs.rows, result.rejects.rows):
        raise IngestError(
            f"counts do not reconcile: reader saw {written} records + {rejects} rejects, "
            f"Delta committed {result.docs.rows} + {result.rejects.rows}"
        )


if __name__ == "__main__":  # spark-submit jobs/ingest.py --config ...
    from refinery.cli import main

    sys.exit(main(["ingest", *sys.argv[1:]]))
