"""Faults a week-long run meets: a full disk, a read-only lake, corrupt input shards. Each gives a
clear error naming the place (or rejects with reasons), and the lake stays at its last good version."""
from __future__ import annotations

import gzip
import json
import os
import random
import subprocess

import pytest
from delta.tables import DeltaTable

from jobs import pipeline
from refinery.ledger import LEDGER
from tests.conftest import pipeline_config
from tests.test_pipeline import content


def mount_tmpfs(where, megabytes: int) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    mount_tmpfs(disk, 4)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def noise_docs(path, n: int, words: int, seed: int) -> None:
    """JSON lines of random words: text that compresses poorly, so it fills a disk."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            text = " ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(words))
            f.write(json.dumps({"text": f"doc {i}: {text}", "meta": {}}) + "\n")


def test_full_disk_and_read_only_lake_fail_clearly_and_keep_the_last_good_version(spark, small_disk, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    noise_docs(raw / "a.jsonl", 50, 100, 1)
    sources = [{"name": "web", "path": str(raw), "format": "text"}]
    _, cfg = pipeline_config(tmp_path, small_disk / "lake", sources, "pipeline.stages=[ingest]")
    assert pipeline.run(spark, cfg, "good").ran() == ["ingest"]
    good = content(spark, cfg.table("bronze/docs"))

    noise_docs(raw / "b.jsonl", 1500, 1200, 2)  # ~10 MB of text into a 4 MB lake
    with pytest.raises(pipeline.StageFailed) as failed:
        pipeline.run(spark, cfg, "full")
    message = str(failed.value)
    assert "stage ingest failed: No space left on device writing under " + str(small_disk / "lake") in message
    assert "bronze/docs@v0" in message
    (raw / "b.jsonl").unlink()
    assert content(spark, cfg.table("bronze/docs")) == good
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # the operator adds space
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:  # the failed write's files belong to no version: VACUUM frees their space, as the message says
        DeltaTable.forPath(spark, cfg.table("bronze/docs")).vacuum(0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert pipeline.run(spark, cfg, "after").skipped() == ["ingest"]  # the failed run recorded nothing

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(pipeline.StageFailed, match=f"the lake {small_disk / 'lake'} is not writable: Read-only file system"):
            pipeline.run(spark, cfg, "read-only", only=["ingest"])
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert content(spark, cfg.table("bronze/docs")) == good
    assert {r.run_id for r in spark.read.format("delta").load(cfg.table(LEDGER)).collect()} == {"good"}
    assert "VACUUM" in message


def test_corrupt_shards_are_rejected_not_fatal(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    noise_docs(raw / "good.jsonl", 3, 60, 3)
    (raw / "garbage.jsonl").write_bytes(random.Random(4).randbytes(64 * 1024))  # binary noise with a text name
    whole = gzip.compress(b"".join(json.dumps({"text": f"line {i} " * 20}).encode() + b"\n" for i in range(200)))
    (raw / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with (raw / "huge.jsonl").open("w") as f:  # one 50 MB line
        f.write('{"text": "' + "a" * (50 * 1024 * 1024) + '"}\n')
    sources = [{"name": "web", "path": str(raw), "format": "text"}]
    _, cfg = pipeline_config(tmp_path, tmp_path / "lake", sources, "pipeline.stages=[ingest]",
                             "ingest.max_reject_rate=1", "ingest.max_unreadable_files=5")
    result = pipeline.run(spark, cfg, "corrupt")
    assert result.ran() == ["ingest"]
    summary = result.summaries[0]
    assert summary.records_in == summary.kept + summary.rejected
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).collect()
    by_file = {}
    for r in rejects:
        by_file.setdefault(os.path.basename(r.source_file), []).append(r.reason)
    assert any(reason.startswith("record too large") for reason in by_file["huge.jsonl"])
    assert any("unreadable" in reason or "truncated" in reason.lower() for reason in by_file["truncated.jsonl.gz"])
    assert by_file["garbage.jsonl"]
    docs = spark.read.format("delta").load(cfg.table("bronze/docs"))
    assert docs.where("source_file LIKE '%good.jsonl'").count() == 3
    assert max(len(r.raw_snippet or "") for r in rejects) <= 1000  # snippets, not the 50 MB line
