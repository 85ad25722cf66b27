"""Ingest stage: raw files -> ``bronze/docs`` and ``bronze/rejects`` (Delta, partitioned by source).

Each input file is read by one Spark task (``mapInArrow`` over the file list), so files never pass
through the driver. Two streaming passes, no cache of the corpus: the first writes the records, the
second parses again but ships only the rejects and, per file, how many records it saw. Re-parsing
costs CPU; caching a corpus costs executor memory and disk on the order of the corpus itself, which
does not scale. A full run replaces the partitions of the sources it reads, in one commit per table:
a re-run is idempotent, and a source's partition always mirrors its current files. An incremental
run (``refinery.incremental``) reads only the files that are new or changed (name, size, mtime)
since the last run, per ``bronze/files``, and replaces only their rows and those of files that are
gone. Counts reconcile per file: records seen = written (read back from the committed version) +
rejected, so a read that failed in one pass or a file that changed between them stops the stage
instead of losing rows.

Run it with ``refinery ingest --config conf/local.yaml`` or
``spark-submit ... jobs/ingest.py --config conf/cluster.yaml``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import LongType, StringType, StructField, StructType

from refinery.config import Config
from refinery.incremental import CHANGE_FEED, last_current_run
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows, sql_string
from udfs.ingest.discovery import list_input_files
from udfs.ingest.formats import resolve_fields
from udfs.ingest.reader import UNREADABLE, SourceSpec, records_of_files, tallies_of_files
from udfs.schema import INGEST_OUTPUT_SCHEMA, INGEST_TALLY_SCHEMA, RECORD_SCHEMA, REJECT_SCHEMA

DOCS_TABLE = "bronze/docs"
REJECTS_TABLE = "bronze/rejects"
FILES_TABLE = "bronze/files"  # every input file read: what the next incremental run compares against
# Data-skipping stats only where later stages filter: min/max of long text columns never prune a
# file and cost write time (2.0 s -> 1.5 s for 300 MB in scripts/bench_ingest.py's data). The
# change feed is what an incremental dedup reads the new documents from.
DOCS_PROPERTIES = {"delta.dataSkippingStatsColumns": "doc_id,kind,source_file,source_line,lang", **CHANGE_FEED}
FILES_SCHEMA = StructType([StructField(n, StringType()) for n in ("source", "path", "uri", "relpath")]
                          + [StructField(n, LongType()) for n in ("size", "mtime_ns")])
KNOWN_SCHEMA = ("source string, uri string, size bigint, mtime_ns bigint, records_in bigint, written bigint, "
                "rejected bigint, unreadable boolean")


class IngestError(RuntimeError):
    """The stage cannot run (for example a source matches no files)."""


@dataclass(frozen=True)
class FileCount:
    source: str
    uri: str
    records_in: int
    written: int
    rejected: int
    unreadable: bool = False


@dataclass(frozen=True)
class IngestResult:
    files: list[FileCount]  # read by this run
    docs: Commit
    rejects: Commit
    max_reject_rate: float
    max_unreadable_files: int
    carried: list[FileCount] = field(default_factory=list)  # unchanged since an earlier run, not read again

    @property
    def incremental(self) -> bool:
        return bool(self.carried)

    def all_files(self) -> list[FileCount]:
        return self.files + self.carried

    def by_source(self) -> dict[str, tuple[int, int, int]]:
        """(in, written, rejected) per source, over every current file."""
        totals: dict[str, tuple[int, int, int]] = {}
        for f in self.all_files():
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
        """Reasons this run should not count as a success (it still wrote its tables).

        Unreadable files are counted apart: a corrupt 10 GB shard is one reject row, which a
        record-based reject rate would never notice.
        """
        problems = [
            f"source '{source}' reject rate {rate:.1%} > ingest.max_reject_rate {self.max_reject_rate:.1%}; "
            f"see {self.rejects.path}"
            for source, rate in sorted(self.over_reject_limit().items())
        ]
        unreadable = [f.uri for f in self.all_files() if f.unreadable]
        if len(unreadable) > self.max_unreadable_files:
            problems.append(f"{len(unreadable)} unreadable file(s) > ingest.max_unreadable_files "
                            f"{self.max_unreadable_files}: {', '.join(unreadable[:5])}")
        return problems

    def details(self) -> str:
        headers = ["source", "file", "in", "written", "rejected"]
        rows = [[f.source, f.uri, f.records_in, f.written, f.rejected] for f in self.files]
        if any(f.unreadable for f in self.files):
            headers.append("status")
            rows = [row + ["UNREADABLE" if f.unreadable else "ok"] for row, f in zip(rows, self.files)]
        carried = (f"incremental: {len(self.files)} new or changed file(s) read, {len(self.carried)} unchanged "
                   "since the last run not read again\n" if self.incremental else "")
        return carried + "in = written + rejected, per file read\n" + render_table(headers, rows)

    def summary(self, seconds: float) -> StageSummary:
        """Totals over every current file (so an incremental run reports what a full one would)."""
        every = self.all_files()
        return StageSummary("ingest", sum(f.records_in for f in every), sum(f.written for f in every), 0,
                            sum(f.rejected for f in every), [self.docs, self.rejects], seconds,
                            "incremental" if self.incremental else "ran")


def discover(cfg: Config) -> tuple[dict[str, SourceSpec], list[tuple]]:
    """Reader specs per source and (source, path, uri, relpath, size, mtime_ns) of every input file.

    A source that matches no file, or whose location cannot be listed, stops the stage here.
    """
    ingest = cfg.ingest
    specs, files = {}, []
    for source in ingest.sources:
        try:
            fs, found = list_input_files(source.path)
        except (OSError, ValueError) as exc:
            raise IngestError(f"source '{source.name}': cannot list {source.path}: {exc}") from None
        if not found:
            raise IngestError(f"source '{source.name}': no input files at {source.path}")
        specs[source.name] = SourceSpec(source.name, source.format, resolve_fields(source.format, source.fields),
                                        source.lang, ingest.max_record_bytes, ingest.snippet_chars, fs)
        files += [(source.name, f.path, f.uri, f.relpath, f.size, f.mtime_ns) for f in found]
    return specs, files


def sources_predicate(specs: dict[str, SourceSpec]) -> str:
    """The rows a run owns: the partitions of the sources it reads."""
    return f"source IN ({', '.join(sql_string(name) for name in specs)})"


def run(spark: SparkSession, cfg: Config, run_id: str) -> IngestResult:
    specs, files = discover(cfg)
    run_info = RunInfo(run_id, "ingest", cfg.section_hash("ingest"))
    scope = sources_predicate(specs)
    known = known_files(spark, cfg)
    todo, carried = files, []
    if known is not None:
        todo = [f for f in files if known.get((f[0], f[2]), (None,))[0] != (f[4], f[5])]
        gone = sorted({k for k in known if k[0] in specs} - {(f[0], f[2]) for f in files})
        changed = {(f[0], f[2]) for f in todo}
        carried = [known[(f[0], f[2])][1] for f in files if (f[0], f[2]) not in changed]
        if not carried or (not todo and not gone):  # nothing to build on, or a forced re-run: read all
            todo, carried = files, []
        else:
            uris = ", ".join(sql_string(uri) for uri in sorted({f[2] for f in todo} | {uri for _, uri in gone}))
            scope = f"{scope} AND source_file IN ({uris})"

    listing = spark.sparkContext.parallelize(todo, len(todo)).toDF(FILES_SCHEMA) if todo else None  # a file per task
    parsed = (listing.mapInArrow(partial(records_of_files, specs=specs), from_arrow_schema(INGEST_OUTPUT_SCHEMA))
              if listing is not None else spark.createDataFrame([], from_arrow_schema(INGEST_OUTPUT_SCHEMA)))
    docs = replace_rows(records(parsed), cfg.table(DOCS_TABLE), scope, run_info, ["source"], DOCS_PROPERTIES)

    # Rejects plus one row per file: small, so caching it costs nothing like caching the corpus.
    tally = (listing.mapInArrow(partial(tallies_of_files, specs=specs), from_arrow_schema(INGEST_TALLY_SCHEMA))
             if listing is not None else spark.createDataFrame([], from_arrow_schema(INGEST_TALLY_SCHEMA))).cache()
    try:
        rejects = replace_rows(rejected(tally), cfg.table(REJECTS_TABLE), f"stage = 'ingest' AND {scope}",
                               run_info, ["stage", "source"])
        counts = file_counts(spark, scope, docs, tally, todo)
    finally:
        tally.unpersist()
    result = IngestResult(counts, docs, rejects, cfg.ingest.max_reject_rate, cfg.ingest.max_unreadable_files, carried)
    reconcile(result)
    if cfg.pipeline.incremental:
        remember_files(spark, cfg, specs, files, result, run_info)
    return result


def known_files(spark: SparkSession, cfg: Config) -> dict[tuple[str, str], tuple[tuple[int, int], FileCount]] | None:
    """(source, uri) -> ((size, mtime_ns), its counts) of the files the last run read, when that
    run can be built on; None for a full run. One row per file: small enough for the driver,
    which lists the files anyway."""
    if last_current_run(spark, cfg, "ingest") is None:  # which also means bronze/files is there and current
        return None
    return {(r.source, r.uri): ((r.size, r.mtime_ns),
                                FileCount(r.source, r.uri, r.records_in, r.written, r.rejected, r.unreadable))
            for r in spark.read.format("delta").load(cfg.table(FILES_TABLE)).collect()}


def remember_files(spark: SparkSession, cfg: Config, specs: dict[str, SourceSpec], files: list[tuple],
                   result: IngestResult, run_info: RunInfo) -> Commit:
    """Every current file of the sources read, with its size, mtime and counts (written last: a
    run that dies before it leaves the previous listing, and the next run reads those files again)."""
    counts = {(f.source, f.uri): f for f in result.all_files()}
    rows = [(source, uri, size, mtime, c.records_in, c.written, c.rejected, c.unreadable)
            for source, _, uri, _, size, mtime in files for c in [counts[(source, uri)]]]
    return replace_rows(spark.createDataFrame(rows, KNOWN_SCHEMA), cfg.table(FILES_TABLE), sources_predicate(specs),
                        run_info, [])


def records(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNull()).select(*RECORD_SCHEMA.names)


def rejected(tally: DataFrame) -> DataFrame:
    columns = {
        "stage": F.lit("ingest"),
        "source": F.col("source"),
        "doc_id": F.lit(None).cast(StringType()),
        "source_file": F.col("source_file"),
        "source_line": F.col("source_line").cast(LongType()),
        "reason": F.col("reject_reason"),
        "raw_snippet": F.col("raw_snippet"),
    }
    return tally.where(F.col("reject_reason").isNotNull()).select(*[columns[n].alias(n) for n in REJECT_SCHEMA.names])


def file_counts(
    spark: SparkSession, sources: str, docs: Commit, tally: DataFrame, files: list[tuple]
) -> list[FileCount]:
    """Seen / written / rejected per input file. Written is read back from the version this run
    committed (two narrow columns); seen and rejected come from the tally pass."""
    table = spark.read.format("delta").option("versionAsOf", docs.version).load(docs.path).where(sources)
    written = {(r.source, r.source_file): r.n for r in
               table.groupBy("source", "source_file").agg(F.count(F.lit(1)).alias("n")).collect()}
    per_file = tally.groupBy("source", "source_file").agg(
        F.sum("records_seen").alias("seen"),
        F.count("reject_reason").alias("rejected"),
        F.max(F.coalesce(F.col("reject_reason").startswith(UNREADABLE), F.lit(False))).alias("unreadable"),
    )
    tallies = {(r.source, r.source_file): r for r in per_file.collect()}
    out = []
    for source, _, uri, *_ in files:
        t = tallies[(source, uri)]
        out.append(FileCount(source, uri, t.seen, written.get((source, uri), 0), t.rejected, t.unreadable))
    return out


def reconcile(result: IngestResult) -> None:
    """Every record the reader saw must be written or rejected, in the tables and in the commits;
    anything else is a lost or duplicated row (a failed read, a file changed between the passes)."""
    broken = [f"{f.uri}: seen {f.records_in}, written {f.written} + rejected {f.rejected}"
              for f in result.files if f.records_in != f.written + f.rejected]
    written = sum(f.written for f in result.files)
    rejects = sum(f.rejected for f in result.files)
    if (written, rejects) != (result.docs.rows, result.rejects.rows):
        broken.append(f"tables hold {written} records + {rejects} rejects, "
                      f"Delta committed {result.docs.rows} + {result.rejects.rows}")
    if broken:
        raise IngestError("counts do not reconcile (re-run the stage; it is idempotent):\n  " + "\n  ".join(broken[:20]))


if __name__ == "__main__":  # spark-submit jobs/ingest.py --config ...
    from refinery.cli import main

    sys.exit(main(["ingest", *sys.argv[1:]]))
