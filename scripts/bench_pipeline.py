"""The whole CPU pipeline (ingest, dedup, quality) on a generated RedPajama-like corpus, at several
sizes: per stage, seconds, docs/s per core, executor core-ms and shuffle bytes per document, and
the peak memory of the driver's process tree (JVM and Python workers), and how each grows.

The corpus: RedPajama-style JSON lines (``text`` + ``meta``) in zstd shards, documents remixed
from the sentences of real web pages (C4 and Dolma CC in ``../shared``; the sample generator's
sentences without it), 5% near copies at the dedup benchmark's edit rates and 2% exact copies.
Real sentences matter: language ID and the quality rules behave as on web text. Each stage runs
through the pipeline's own stage runner on one local session; Spark's per-stage task metrics
come from its REST API. Writes ``bench/results/pipeline.json``.

``--increment BASE NEW``: BASE documents through the pipeline, then NEW more in a late shard
(93% new, 7% copies of old documents); each stage's incremental run against a full re-run of
the union (``--stages`` picks them; ingest always). Writes ``bench/results/pipeline-increment-BASE.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_dedup import SHARED_WEB, PeakRss, completed_stages  # noqa: E402
from refinery.summary import render_table  # noqa: E402
from udfs.dedup.evaluate import EDIT_RATES, mutate  # noqa: E402

STAGES = ("ingest", "dedup", "quality")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences() -> list[str]:
    """Sentences of real web pages (../shared), else of the sample generator's documents."""
    pool: list[str] = []
    for name in ("c4_300.jsonl", "cc_en_head-0091.jsonl"):
        path = SHARED_WEB / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    pool += [s for s in SENTENCE_END.split(json.loads(line)["text"]) if 20 <= len(s) <= 400]
    if not pool:
        from make_sample import TOPICS, sentence

        rng = random.Random(0)
        pool = [sentence(rng, rng.choice(list(TOPICS))) for _ in range(20_000)]
    return pool


def write_corpus(out: Path, docs: int, shards: int, seed: int = 5) -> int:
    """``docs`` RedPajama-like records in ``shards`` zstd JSON-lines files; returns the text bytes."""
    import pyarrow as pa

    rng = random.Random(seed)
    pool = sentences()
    out.mkdir(parents=True, exist_ok=True)
    originals, near = int(docs * 0.93), int(docs * 0.05)
    texts: list[str] = []
    total = 0
    per_shard = -(-docs // shards)
    shard, handle = -1, None
    for i in range(docs):
        if i < originals:
            paragraphs = [" ".join(rng.choices(pool, k=rng.randint(2, 6))) for _ in range(rng.randint(2, 6))]
            text = "\n\n".join(paragraphs)
            texts.append(text)
        elif i < originals + near:
            text = mutate(rng, texts[rng.randrange(originals)], EDIT_RATES[i % len(EDIT_RATES)])
        else:
            text = texts[rng.randrange(originals)]
        if i // per_shard != shard:
            if handle:
                handle.close()
            shard = i // per_shard
            handle = pa.CompressedOutputStream(str(out / f"part-{shard:05d}.jsonl.zst"), "zstd")
        handle.write((json.dumps({"text": text, "meta": {"url": f"https://example.org/{i}", "source": "bench"}}) + "\n").encode())
        total += len(text.encode())
    handle.close()
    return total


def session_for(lake: Path, raw: Path, master: str, *overrides: str):
    from refinery.config import load_config
    from refinery.session import build_session

    cores = int(master[len("local["):-1]) if master.startswith("local[") and master[6:-1].isdigit() else os.cpu_count()
    cfg = load_config(None, [f"lake={lake}", f"spark.master={master}", f"spark.shuffle_partitions={max(4, 2 * cores)}",
                             "ingest.sources=[{name: web, path: " + str(raw) + ", format: text}]",
                             "spark.conf={spark.driver.memory: 6g, spark.ui.enabled: true}", "pipeline.progress_seconds=0",
                             *overrides], environ={})
    spark = build_session(cfg.spark)
    spark.sparkContext.setLogLevel("ERROR")
    return spark, cfg, cores


def measured(spark, run, docs: int, text_bytes: int, stage: str, cores: int, **extra) -> dict:
    """Run one stage (``run()`` returns its StageSummary) with Spark's task metrics and the peak RSS."""
    before = completed_stages(spark)
    sampler = PeakRss()
    sampler.start()
    started = time.perf_counter()
    summary = run()
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    spark_stages = [s for key, s in completed_stages(spark).items() if key not in before]
    work = extra.pop("work", summary.records_in)  # the documents the run processed
    row = {"docs": docs, "text_mb": text_bytes / 1e6, "stage": stage, "records_in": summary.records_in,
           "kept": summary.kept, "dropped": summary.dropped, "rejected": summary.rejected, "status": summary.status,
           "seconds": seconds, "docs_per_s": work / seconds, "docs_per_s_per_core": work / seconds / cores,
           "core_ms_per_doc": sum(s["executorRunTime"] for s in spark_stages) / max(work, 1),
           "shuffle_bytes_per_doc": sum(s["shuffleWriteBytes"] for s in spark_stages) / max(work, 1),
           "peak_rss_gb": peak / 2**30, "cores": cores, **extra}
    print(f"{docs:>9,} docs  {stage:<8} {summary.status:<11} {seconds:8.1f} s  "
          f"{row['docs_per_s_per_core']:9.1f} docs/s/core", flush=True)
    return row


def corpus(work: Path, docs: int, shards: int) -> tuple[Path, int]:
    """The generated corpus of ``docs`` documents (made once, then reused) and its text bytes."""
    raw = work / f"raw-{docs}"
    stamp = raw / "_bytes"
    if not stamp.is_file():
        shutil.rmtree(raw, ignore_errors=True)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(str(write_corpus(raw, docs, shards)))
    return raw, int(stamp.read_text())


def run_scale(docs: int, work: Path, shards: int, master: str, stages: list[str]) -> list[dict]:
    """``stages`` on a fresh lake; without ingest, on the lake an earlier run of this size left."""
    from refinery.stages import run_stage

    raw, text_bytes = corpus(work, docs, shards)
    lake = work / f"lake-{docs}"
    if "ingest" in stages:
        shutil.rmtree(lake, ignore_errors=True)
    spark, cfg, cores = session_for(lake, raw, master)
    try:
        return [measured(spark, lambda: run_stage(stage, spark, cfg, f"bench-{docs}").summary(0.0), docs, text_bytes,
                         stage, cores) for stage in stages]
    finally:
        spark.stop()


def write_increment(raw: Path, out: Path, docs: int, seed: int = 11) -> int:
    """``docs`` late documents in one new shard: 93% new, 5% near and 2% exact copies of documents
    already in ``raw`` (so the increment has duplicates across the old and the new)."""
    import pyarrow as pa
    import pyarrow.json as pj

    rng = random.Random(seed)
    old = [t for shard in sorted(raw.glob("part-*.jsonl.zst"))[:2]
           for t in pj.read_json(pa.CompressedInputStream(str(shard), "zstd")).column("text").to_pylist()]
    pool = sentences()
    total = 0
    with pa.CompressedOutputStream(str(out), "zstd") as handle:
        for i in range(docs):
            roll = rng.random()
            if roll < 0.02:
                text = rng.choice(old)
            elif roll < 0.07:
                text = mutate(rng, rng.choice(old), EDIT_RATES[i % len(EDIT_RATES)])
            else:
                text = "\n\n".join(" ".join(rng.choices(pool, k=rng.randint(2, 6))) for _ in range(rng.randint(2, 6)))
            handle.write((json.dumps({"text": text, "meta": {"url": f"https://late.example.org/{i}"}}) + "\n").encode())
            total += len(text.encode())
    return total


def run_increment(base: int, new: int, work: Path, shards: int, master: str, stages: list[str]) -> list[dict]:
    """``base`` documents through the pipeline, then ``new`` more in a late shard: each stage's
    incremental run, against a full re-run of the union in a second lake (what it saves)."""
    from jobs import pipeline

    raw, _ = corpus(work, base, shards)
    root = work / f"increment-{base}+{new}"
    shutil.rmtree(root, ignore_errors=True)
    grown = root / "raw"
    grown.mkdir(parents=True)
    for shard in raw.glob("part-*"):
        os.link(shard, grown / shard.name)  # the same files, under the path both lakes ingest
    rows = []
    for mode, lake in (("incremental", root / "lake"), ("full", root / "union")):
        spark, cfg, cores = session_for(lake, grown, master, f"pipeline.incremental={str(mode == 'incremental').lower()}")
        try:
            def stage_run(stage: str, run_id: str):
                return lambda: pipeline.run(spark, cfg, run_id, only=[stage], out=lambda line: None).summaries[0]

            if mode == "incremental":
                for stage in stages:
                    stage_run(stage, "base")()
                late = grown / "part-late.jsonl.zst"
                late_bytes = write_increment(raw, late, new)
            for stage in stages:
                rows.append(measured(spark, stage_run(stage, mode), base + new, late_bytes, stage, cores,
                                     mode=mode, base=base, new=new, work=new if mode == "incremental" else base + new))
        finally:
            spark.stop()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", default=str(ROOT / "bench" / "tmp" / "pipeline"))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="without ingest: re-measure these on the lake of an earlier run; their rows replace "
                             "those in the results file. With --increment: the stages to run (from ingest on)")
    parser.add_argument("--increment", type=int, nargs=2, metavar=("BASE", "NEW"),
                        help="instead: BASE documents, then NEW more in a late shard; incremental vs full re-run")
    args = parser.parse_args(argv)
    if args.increment:
        rows = run_increment(*args.increment, Path(args.work), args.shards, args.master, args.stages)
        return increment_report(rows, args)
    out = ROOT / "bench" / "results" / "pipeline.json"
    rows = [r for docs in args.scale for r in run_scale(docs, Path(args.work), args.shards, args.master, args.stages)]
    if "ingest" not in args.stages and out.is_file():
        fresh = {(r["docs"], r["stage"]) for r in rows}
        rows = [r for r in json.loads(out.read_text())["rows"] if (r["docs"], r["stage"]) not in fresh] + rows
        rows.sort(key=lambda r: (r["docs"], STAGES.index(r["stage"])))
    smallest = {r["stage"]: r for r in rows if r["docs"] == min(x["docs"] for x in rows)}
    for r in rows:
        base = smallest[r["stage"]]
        r["time_growth_per_doc_growth"] = (r["seconds"] / base["seconds"]) / (r["docs"] / base["docs"])
    print(render_table(["docs", "stage", "in", "kept", "seconds", "docs/s/core", "core-ms/doc", "shuffle B/doc",
                        "peak RSS GB", "time growth / size growth"],
                       [[r["docs"], r["stage"], r["records_in"], r["kept"], f"{r['seconds']:.1f}",
                         f"{r['docs_per_s_per_core']:.1f}", f"{r['core_ms_per_doc']:.3f}",
                         round(r["shuffle_bytes_per_doc"]), f"{r['peak_rss_gb']:.2f}",
                         f"{r['time_growth_per_doc_growth']:.2f}"] for r in rows]))
    out.write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def increment_report(rows: list[dict], args: argparse.Namespace) -> None:
    full = {r["stage"]: r for r in rows if r["mode"] == "full"}
    for r in rows:
        r["speedup_vs_full"] = full[r["stage"]]["seconds"] / r["seconds"]
    print(render_table(["stage", "mode", "status", "in (union)", "kept", "seconds", "core-ms per doc processed",
                        "shuffle B per doc processed", "peak RSS GB", "full / this"],
                       [[r["stage"], r["mode"], r["status"], r["records_in"], r["kept"], f"{r['seconds']:.1f}",
                         f"{r['core_ms_per_doc']:.1f}", round(r["shuffle_bytes_per_doc"]), f"{r['peak_rss_gb']:.2f}",
                         f"{r['speedup_vs_full']:.2f}"] for r in rows]))
    out = ROOT / "bench" / "results" / f"pipeline-increment-{args.increment[0]}.json"
    out.write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
