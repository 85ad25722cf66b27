"""The whole pipeline (``refinery run``): the configured stages in order, each skipped when its
output is current, with progress lines while a stage runs and one table at the end.

- Order and edges: ``pipeline.stages`` and what each stage reads and writes (``refinery.dag``),
  checked before the first stage starts.
- Skipping and resuming: a stage is current when the ledger (``refinery.ledger``) holds a run of
  it with the same config hash, input table versions, input file digest and code version, and
  its tables are still at the versions that run wrote. A run killed in the middle of a stage
  left no ledger row for it, so the next run starts again at that stage (stages are idempotent).
  ``--from STAGE`` re-runs that stage and the ones after it; ``--only STAGE`` re-runs one.
- Table care after each stage that ran: ``OPTIMIZE`` (Z-order by the configured columns) and
  ``VACUUM`` with the configured retention. Versions are data versions (the newest commit that
  changed rows), so neither this nor a hand-run ``OPTIMIZE`` / ``VACUUM`` makes a stage look stale.
- Faults: the lake is probed for writing before the first stage; a stage that fails on storage
  (disk full, read-only, no permission) says so in one line naming the lake and the versions its
  tables are still at (a failed Delta write commits nothing).

Run it with ``refinery run --config conf/local.yaml`` or ``spark-submit ... jobs/pipeline.py --config ...``.
"""
from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from refinery import ledger, locations
from refinery.config import Config, ConfigError
from refinery.dag import Plan, plan
from refinery.progress import Progress, elapsed
from refinery.stages import FILE, STAGES, run_stage
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, data_version, optimize, vacuum


class StageFailed(RuntimeError):
    """A stage stopped with an error; the stages before it stay recorded, so a re-run resumes here."""


@dataclass
class PipelineResult:
    plan: Plan
    summaries: list[StageSummary] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def ran(self) -> list[str]:
        """Stages that ran, in full or incrementally."""
        return [s.stage for s in self.summaries if s.status != "skipped"]

    def incremental(self) -> list[str]:
        return [s.stage for s in self.summaries if s.status == "incremental"]

    def skipped(self) -> list[str]:
        return [s.stage for s in self.summaries if s.status == "skipped"]


def lake_tables(cfg: Config, names: Sequence[str]) -> dict[str, str]:
    """The lake tables among ``names`` (not ``file:`` locations), name -> path."""
    return {n: cfg.table(n) for n in names if not n.startswith(FILE)}


def is_lake_table(spark: SparkSession, cfg: Config, name: str) -> bool:
    """A read names a lake table when it is not a ``file:`` location and the lake has it (as the jobs decide)."""
    return not name.startswith(FILE) and DeltaTable.isDeltaTable(spark, cfg.table(name))


def exists(spark: SparkSession, cfg: Config) -> Callable[[str], bool]:
    return lambda name: is_lake_table(spark, cfg, name) or locations.exists(name.removeprefix(FILE))


def fingerprint(spark: SparkSession, cfg: Config, stage: str) -> ledger.Fingerprint:
    """A lake table read is pinned by its data version, anything else by a digest of its files."""
    inputs: dict[str, object] = {}
    for name in STAGES[stage].reads(cfg):
        if is_lake_table(spark, cfg, name):
            inputs[name] = data_version(spark, cfg.table(name))
        else:
            inputs[name] = locations.digest(name.removeprefix(FILE))
    return ledger.Fingerprint(stage, cfg.section_hash(STAGES[stage].section), inputs)


def current(spark: SparkSession, cfg: Config, fp: ledger.Fingerprint) -> ledger.Entry | None:
    """The ledger's last run of the stage, if its output is still what that run made."""
    entry = ledger.last_entry(spark, cfg.table(ledger.LEDGER), fp.stage)
    if entry is None or entry.fingerprint != fp.key():
        return None
    writes = STAGES[fp.stage].writes(cfg)
    versions = ledger.table_versions(spark, lake_tables(cfg, writes))
    if any(entry.outputs.get(name) != version for name, version in versions.items()):
        return None  # a table was rewritten, or deleted, since
    if not all(locations.exists(n.removeprefix(FILE)) for n in writes if n.startswith(FILE)):
        return None
    return entry


def input_records(spark: SparkSession, cfg: Config, stage: str) -> int | None:
    """Rows of the stage's first input table (answered from Delta's file statistics), if it has one."""
    tables = lake_tables(cfg, STAGES[stage].reads(cfg))
    for path in tables.values():
        if DeltaTable.isDeltaTable(spark, path):
            return spark.read.format("delta").load(path).count()
    return None


STORAGE_ERRORS = ("No space left on device", "Read-only file system", "Permission denied", "Disk quota exceeded",
                  "AccessDenied", "Access Denied")


def first_line(exc: BaseException) -> str:
    """An error's message without the Java stack trace py4j appends (that stays in the log)."""
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def storage_problem(exc: BaseException) -> str | None:
    """The storage error behind a failed write (deep in a Java stack trace), if that is what it was."""
    text = str(exc)
    return next((e for e in STORAGE_ERRORS if e in text), None)


def failure(spark: SparkSession, cfg: Config, stage: str, exc: BaseException) -> StageFailed:
    """A failed stage as one clear line: for a storage error, the location and the versions the
    stage's tables are still at (Delta commits are atomic: a failed write commits nothing)."""
    problem = storage_problem(exc)
    if problem is None:
        jvm = type(exc).__module__.startswith(("py4j", "pyspark"))
        return StageFailed(f"stage {stage} failed: {first_line(exc) if jvm else str(exc).strip() or type(exc).__name__}")
    tables = lake_tables(cfg, STAGES[stage].writes(cfg))
    kept = ", ".join(f"{n}@v{v}" if v is not None else f"{n} (none yet)"
                     for n, v in ledger.table_versions(spark, tables).items())
    return StageFailed(f"stage {stage} failed: {problem} writing under {cfg.lake}; its tables are unchanged at "
                       f"their last good versions: {kept} (the failed write's files belong to no version: "
                       "VACUUM removes them once they are older than the retention)")


def writable(spark: SparkSession, cfg: Config) -> None:
    """Fail before the first stage when the lake cannot be written (read-only mount, no permission)."""
    hadoop = spark._jvm.org.apache.hadoop.fs
    probe = hadoop.Path(cfg.table(f"{ledger.LEDGER}-write-probe-{uuid.uuid4().hex[:8]}"))
    try:
        fs = probe.getFileSystem(spark._jsc.hadoopConfiguration())
        fs.create(probe, True).close()
        fs.delete(probe, False)
    except Exception as exc:  # py4j wraps the Java IOException
        raise StageFailed(f"the lake {cfg.lake} is not writable: {storage_problem(exc) or first_line(exc)}") from None


def care(spark: SparkSession, cfg: Config, stage: str) -> None:
    p = cfg.pipeline
    for name, path in lake_tables(cfg, STAGES[stage].writes(cfg)).items():
        if not DeltaTable.isDeltaTable(spark, path):
            continue
        if p.optimize:
            optimize(spark, path, p.zorder.get(name, []))
        if p.vacuum_retention_hours is not None:
            vacuum(spark, path, p.vacuum_retention_hours)


def attempts(spark: SparkSession, cfg: Config, stage: str, run_id: str, out: Callable[[str], None]):
    """The stage and its table care, again after a failure that can pass (an executor lost with
    the blocks it held, a flaky store): up to ``pipeline.stage_retries`` more times. A stage
    replaces its outputs whole, so a repeat cannot double anything. Config errors and storage
    errors (a full disk stays full) are not retried."""
    retries = cfg.pipeline.stage_retries
    for attempt in range(retries + 1):
        try:
            result = run_stage(stage, spark, cfg, run_id)
            care(spark, cfg, stage)
            return result
        except ConfigError as exc:
            raise StageFailed(f"stage {stage} failed: {exc}") from exc
        except Exception as exc:  # a stage's own error, or a Spark / Delta error from the JVM
            if storage_problem(exc) or attempt == retries:
                raise failure(spark, cfg, stage, exc) from exc
            out(f"{stage}: attempt {attempt + 1} of {retries + 1} failed ({failure(spark, cfg, stage, exc)}); "
                "running it again")


def run(spark: SparkSession, cfg: Config, run_id: str, start: str | None = None, only: Sequence[str] = (),
        out: Callable[[str], None] = print) -> PipelineResult:
    result = PipelineResult(plan(cfg, exists(spark, cfg), start, only))
    writable(spark, cfg)
    book = cfg.table(ledger.LEDGER)
    for stage in result.plan.stages:
        fp = fingerprint(spark, cfg, stage)
        entry = None if stage in result.plan.forced else current(spark, cfg, fp)
        if entry is not None:
            out(f"\n{stage}: current (run {entry.run_id}, same config, inputs and code): skipped")
            result.summaries.append(StageSummary(
                stage, entry.records_in, entry.kept, entry.dropped, entry.rejected,
                [Commit(cfg.table(n), v, 0) for n, v in sorted(entry.outputs.items())], 0.0, "skipped"))
            if entry.problems:
                result.problems[stage] = entry.problems
            continue
        out(f"\n{stage}: running")
        started = time.monotonic()
        every = cfg.pipeline.progress_seconds
        total = input_records(spark, cfg, stage) if every > 0 else None  # a count job only for progress lines
        with Progress(spark, stage, total, every, out):
            stage_result = attempts(spark, cfg, stage, run_id, out)
        seconds = time.monotonic() - started
        summary = stage_result.summary(seconds)
        result.summaries.append(summary)
        problems = stage_result.problems()
        if problems:
            result.problems[stage] = problems
        out(f"{stage} done in {elapsed(seconds)}: {stage_result.details()}")
        versions = ledger.table_versions(spark, lake_tables(cfg, STAGES[stage].writes(cfg)))
        ledger.record(spark, book, run_id, fp, versions,
                      (summary.records_in, summary.kept, summary.dropped, summary.rejected), seconds, problems)
    return result


def history_table(spark: SparkSession, cfg: Config, limit: int = 50) -> str:
    """Every recorded stage run, newest first, with the table versions it wrote (to pin)."""
    rows = ledger.history(spark, cfg.table(ledger.LEDGER))[:limit]
    return render_table(
        ["finished (UTC)", "run", "stage", "in", "kept", "dropped", "rejected", "seconds", "tables (name@version)"],
        [[str(r.finished_at)[:19], r.run_id, r.stage, r.records_in, r.kept, r.dropped, r.rejected, r.seconds,
          ", ".join(f"{k}@v{v}" for k, v in sorted((r.outputs or {}).items()))] for r in rows])


if __name__ == "__main__":  # spark-submit jobs/pipeline.py --config ...
    from refinery.cli import main

    sys.exit(main(["run", *sys.argv[1:]]))
