"""`refinery run`: the stage graph is checked before anything runs, current stages are skipped,
a killed run resumes to the tables a clean run writes, and the tables get their configured care."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import pipeline
from refinery.config import ConfigError, load_config
from refinery.dag import PlanError, plan
from refinery.ledger import LEDGER
from tests.conftest import ROOT, pipeline_config
from udfs.dedup.evaluate import mutate

STAGE_TABLES = ["bronze/docs", "bronze/rejects", "dedup/kept", "dedup/clusters", "dedup/dropped",
                "quality/signals", "quality/kept", "quality/dropped"]


def config(tmp_path: Path, lake: Path, sources: list[dict], *overrides: str):
    return pipeline_config(tmp_path, lake, sources, *overrides)


def content(spark, path: str) -> tuple[int, int]:
    """(rows, an order-free hash of every row): equal for equal tables whatever their files."""
    table = spark.read.format("delta").load(path)
    row_hash = F.xxhash64(F.to_json(F.struct(*[F.col(c) for c in sorted(table.columns)]))).cast("decimal(38,0)")
    r = table.agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash).alias("h")).first()
    return r.n, int(r.h or 0)


def versions(spark, cfg) -> dict[str, int]:
    from refinery.tables import latest_version

    return {t: latest_version(spark, cfg.table(t)) for t in STAGE_TABLES}


# -- the plan (no Spark) -------------------------------------------------------------------------

def test_plan_follows_the_data_and_refuses_a_bad_order(tmp_path):
    _, cfg = config(tmp_path, tmp_path / "lake", [{"name": "w", "path": str(tmp_path), "format": "text"}],
                    "pipeline.stages=[ingest, dedup, quality, embed, select]", "select.kcenter.enabled=true")
    p = plan(cfg, exists=lambda name: name.startswith("file:"))
    assert p.stages == ["ingest", "dedup", "quality", "embed", "select"] and not p.forced
    assert p.depends_on["select"] == ["quality", "embed"] and p.depends_on["dedup"] == ["ingest"]
    assert plan(cfg, lambda n: True, start="quality").stages == ["quality", "embed", "select"]
    assert plan(cfg, lambda n: True, only=["embed"]).forced == {"embed"}

    cfg.pipeline.stages = ["ingest", "quality", "dedup"]
    with pytest.raises(PlanError, match="quality reads dedup/kept, which dedup writes; list dedup before quality"):
        plan(cfg, lambda n: True)
    cfg.pipeline.stages = ["quality"]
    with pytest.raises(PlanError, match="quality reads dedup/kept, which no stage of this run writes"):
        plan(cfg, lambda n: False)
    with pytest.raises(PlanError, match="--from dedup: not in pipeline.stages"):
        plan(cfg, lambda n: True, start="dedup")
    for bad, message in ((["ingest", "active_learning"], "runs on its own"), (["ingest", "ingest"], "listed twice"),
                         (["ingest", "dedupe"], "unknown stage 'dedupe'")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, [f"pipeline.stages=[{', '.join(bad)}]"], environ={})


# -- runs on the real session --------------------------------------------------------------------

def test_rerun_skips_what_is_current_and_redoes_what_changed(spark, clean_lake, pipeline_sources, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(Path(clean_lake.lake), lake)
    _, cfg = config(tmp_path, lake, pipeline_sources)
    before = versions(spark, cfg)

    again = pipeline.run(spark, cfg, "again")
    assert again.skipped() == ["ingest", "dedup", "quality"] and versions(spark, cfg) == before
    assert [s.records_in for s in again.summaries] == [512, 506, 472]  # counts come from the ledger

    _, stricter = config(tmp_path, lake, pipeline_sources, "quality.thresholds.gopher_min_words=80")
    assert pipeline.run(spark, stricter, "stricter").ran() == ["quality"]
    assert pipeline.run(spark, stricter, "from", start="quality").ran() == ["quality"]  # forced, though current

    spark.sql(f"DELETE FROM delta.`{stricter.table('quality/kept')}` WHERE source = 'web'")  # a hand edit
    assert pipeline.run(spark, stricter, "repair").ran() == ["quality"]
    assert content(spark, stricter.table("quality/kept"))[0] > 0



def test_new_shards_are_added_incrementally_and_equal_a_full_run_on_the_union(spark, clean_lake, pipeline_sources,
                                                                            tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(Path(clean_lake.lake), lake)
    _, cfg = config(tmp_path, lake, pipeline_sources, "pipeline.incremental=true")
    earlier = [r.text for r in spark.read.format("delta").load(clean_lake.table("dedup/kept"))
               .where("source = 'web'").orderBy(F.desc("doc_id")).select("text").limit(16).collect()]
    rng = random.Random(3)
    late = ([*earlier[:8],  # exact copies of the highest ids: where a copy sorts first, an earlier survivor loses
             *(mutate(rng, text, 0.02) for text in earlier[8:16])]  # near copies
            + [" ".join(rng.sample(earlier[0].split(), 60)) + " " + earlier[1], "Too short to keep."])
    web = Path(next(s["path"] for s in pipeline_sources if s["name"] == "web"))
    shards = [web / "part-0010.jsonl", web / "part-0011.jsonl"]
    for shard, part in zip(shards, (late[::2], late[1::2])):
        shard.write_text("".join(json.dumps({"text": t, "meta": {"url": "https://late.example"}}) + "\n" for t in part))
    try:
        grown = pipeline.run(spark, cfg, "grown")
        assert pipeline.run(spark, cfg, "again").skipped() == ["ingest", "dedup", "quality"]
        _, union = config(tmp_path, tmp_path / "union", pipeline_sources, "pipeline.incremental=false")
        full = pipeline.run(spark, union, "union")
    finally:
        for shard in shards:
            shard.unlink()

    assert grown.incremental() == ["ingest", "dedup", "quality"] and full.incremental() == []
    assert [s.records_in for s in grown.summaries][:2] == [512 + len(late), 506 + len(late)]
    for table in STAGE_TABLES:
        assert content(spark, cfg.table(table)) == content(spark, union.table(table)), table
    assert ([(s.records_in, s.kept, s.dropped, s.rejected) for s in grown.summaries]
            == [(s.records_in, s.kept, s.dropped, s.rejected) for s in full.summaries])
    # Only the new documents were fingerprinted and measured; some earlier survivors lost to new copies.
    from delta.tables import DeltaTable

    def commits(name: str) -> dict[str, dict[str, int]]:
        """The grown run's commits to a table: operation -> its metrics."""
        return {c.operation: {k: int(v) for k, v in c.operationMetrics.items() if v.isdigit()}
                for c in DeltaTable.forPath(spark, cfg.table(name)).history().collect()
                if c.userMetadata and json.loads(c.userMetadata)["run_id"] == "grown"}

    assert commits("dedup/fingerprints")["WRITE"]["numOutputRows"] == len(late)  # appended; stored ones updated
    assert commits("dedup/kept")["MERGE"]["numTargetRowsDeleted"] > 0  # earlier survivors beaten by new copies
    assert commits("quality/signals")["WRITE"]["numOutputRows"] <= len(late) + 8

    # Shards taken away: ingest removes their rows; dedup cannot build on deletions and runs in full.
    shrunk = pipeline.run(spark, cfg, "shrunk")
    assert shrunk.incremental() == ["ingest"] and shrunk.ran() == ["ingest", "dedup", "quality"]
    for table in STAGE_TABLES:
        assert content(spark, cfg.table(table)) == content(spark, clean_lake.table(table)), table


def test_incremental_dedup_equals_a_full_run_when_buckets_outgrow_the_pairwise_limit(spark, tmp_path):
    """Star buckets: with pairwise_bucket_limit 2 the late copies turn pairwise buckets into stars
    (some earlier links go, so an earlier duplicate may survive again); the centre must not depend
    on how a run numbered its documents."""
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(400)]
    families = [" ".join(rng.choices(vocabulary, k=120)) for _ in range(3)]
    unrelated = [" ".join(rng.choices(vocabulary, k=120)) for _ in range(6)]
    copies = [mutate(rng, families[i % 3], 0.04) for i in range(18)]
    raw = tmp_path / "raw"
    raw.mkdir()
    sources = [{"name": "web", "path": str(raw), "format": "text"}]

    def shard(name: str, texts: list[str]) -> None:
        (raw / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))

    shard("part-0.jsonl", [*families, *unrelated[:3], *copies[:6]])
    stages = ["pipeline.stages=[ingest, dedup]", "dedup.near.pairwise_bucket_limit=2"]
    _, cfg = config(tmp_path, tmp_path / "lake", sources, *stages, "pipeline.incremental=true")
    pipeline.run(spark, cfg, "base")
    shard("part-1.jsonl", [*unrelated[3:], *copies[6:], families[0]])
    grown = pipeline.run(spark, cfg, "grown")
    _, union = config(tmp_path, tmp_path / "union", sources, *stages, "pipeline.incremental=false")
    full = pipeline.run(spark, union, "union")

    assert grown.incremental() == ["ingest", "dedup"]
    assert [(s.kept, s.dropped) for s in grown.summaries] == [(s.kept, s.dropped) for s in full.summaries]
    for table in ("bronze/docs", "dedup/kept", "dedup/clusters", "dedup/dropped"):
        assert content(spark, cfg.table(table)) == content(spark, union.table(table)), table
    sizes = spark.read.format("delta").load(cfg.table("dedup/candidates")).groupBy("bucket").count()
    assert sizes.where("count > 2").count() > 0  # some bucket is a star now


def test_driver_killed_in_a_stage_resumes_to_the_clean_tables(spark, clean_lake, pipeline_sources, tmp_path):
    lake = tmp_path / "lake"
    path, cfg = config(tmp_path, lake, pipeline_sources)
    proc = subprocess.Popen([sys.executable, "-u", "-m", "refinery.cli", "run", "--config", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            if line.startswith("dedup: running") or time.monotonic() > deadline:
                break
        time.sleep(3)  # well inside dedup's Spark jobs
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM, as a lost driver node would
        proc.wait()
    stages = {r.stage for r in spark.read.format("delta").load(cfg.table(LEDGER)).collect()}
    assert stages == {"ingest"}  # dedup never finished

    resumed = pipeline.run(spark, cfg, "resumed")
    assert resumed.skipped() == ["ingest"] and resumed.ran() == ["dedup", "quality"]
    for table in STAGE_TABLES:
        assert content(spark, cfg.table(table)) == content(spark, clean_lake.table(table)), table
    kept = spark.read.format("delta").load(cfg.table("quality/kept"))
    assert kept.select("doc_id").distinct().count() == kept.count()


def test_table_care_compacts_zorders_vacuums_and_stays_current(spark, pipeline_sources, tmp_path):
    web = [s for s in pipeline_sources if s["name"] == "web"]
    _, cfg = config(tmp_path, tmp_path / "lake", web, "pipeline.stages=[ingest]", "pipeline.optimize=true",
                    "pipeline.zorder={bronze/docs: [doc_id]}", "pipeline.vacuum_retention_hours=0")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")  # retention 0 in a test only
    try:
        assert pipeline.run(spark, cfg, "cared").ran() == ["ingest"]
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    from delta.tables import DeltaTable

    ops = [(r.operation, r.operationParameters) for r in DeltaTable.forPath(spark, cfg.table("bronze/docs")).history().collect()]
    assert any(op == "OPTIMIZE" and "doc_id" in params.get("zOrderBy", "") for op, params in ops)
    assert any(op == "VACUUM END" for op, _ in ops)
    assert pipeline.run(spark, cfg, "again").skipped() == ["ingest"]  # the recorded versions include the care


def test_properties_reach_a_table_made_before_them_under_a_relative_lake(spark, tmp_path):
    """A lake written as a relative path (``lake: lake``) whose tables predate the change feed."""
    from delta.tables import DeltaTable

    from refinery.incremental import CHANGE_FEED
    from refinery.tables import RunInfo, data_version, replace_rows

    path = os.path.relpath(tmp_path / "t", os.getcwd())  # the JVM resolves it against the same working folder
    df = spark.createDataFrame([(1,)], "x long")
    replace_rows(df, path, None, RunInfo("a", "s", "h"), [])
    replace_rows(df, path, None, RunInfo("b", "s", "h"), [], CHANGE_FEED)
    assert DeltaTable.forPath(spark, path).detail().first().properties.get("delta.enableChangeDataFeed") == "true"
    assert data_version(spark, path) == 1  # the property commit changes no row
