"""Ingest throughput: the reader core per core, and the Spark job vs Spark's own JSON reader.

Same generated RedPajama-style shards for every contender, one run:
  1. reader core (``udfs.ingest.reader``) in one process: records/s and MB/s per core;
  2. ``jobs.ingest.run`` end to end (files -> bronze/docs + bronze/rejects, reconciled);
  3. peer: ``spark.read.json`` + Delta write of the same files (no line numbers, no per-record
     rejects, no canonical mapping): what exact locators and rejects cost.
Spark contenders run twice in alternating order and the best time of each counts, so neither
gains from the other warming the JVM's write path. Prints a table and writes
``bench/results/ingest.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.config import SparkSection, load_config  # noqa: E402
from refinery.session import build_session  # noqa: E402
from refinery.summary import render_table  # noqa: E402
from udfs.ingest.formats import resolve_fields  # noqa: E402
from udfs.ingest.reader import SourceSpec, read_file_batches  # noqa: E402

WORDS = ("the a of and to in is that for with as on by from this it was are which can be star planet orbit "
         "cell protein gene market bond loan empire treaty flour butter oven").split()


def write_shards(folder: Path, docs: int, shards: int, words: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_shard = docs // shards
    for s in range(shards):
        with open(folder / f"part-{s:05d}.jsonl", "w") as handle:
            for i in range(per_shard):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(words // 2, words * 3 // 2)))
                meta = {"url": f"https://example.org/{s}/{i}", "timestamp": 1_700_000_000 + i, "source": "bench"}
                handle.write(json.dumps({"text": text, "meta": meta}) + "\n")
    return per_shard * shards


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_reader(folder: Path) -> tuple[float, int]:
    spec = SourceSpec("bench", "text", resolve_fields("text", {}))
    files = sorted(folder.glob("*.jsonl"))
    seconds, rows = timed(lambda: sum(b.num_rows for f in files for b in read_file_batches(spec, str(f), str(f), f.name)))
    return seconds, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--words", type=int, default=300, help="mean words per document")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--work", default=str(ROOT / "bench" / "tmp"))
    args = parser.parse_args(argv)

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    data = work / "raw"
    docs = write_shards(data, args.docs, args.shards, args.words)
    size = sum(f.stat().st_size for f in data.glob("*.jsonl"))

    reader_s, reader_rows = bench_reader(data)
    assert reader_rows == docs

    spark_conf = SparkSection(master=args.master, shuffle_partitions=args.shards,
                              conf={"spark.ui.enabled": "false", "spark.driver.memory": "4g"})
    spark = build_session(spark_conf)
    spark.sparkContext.setLogLevel("ERROR")
    cfg = load_config(None, [f"lake={work / 'lake'}", f"ingest.sources=[{{name: bench, path: '{data}', format: text}}]"],
                      environ={})
    from jobs import ingest

    def job():
        result = ingest.run(spark, cfg, "bench")
        assert result.docs.rows == docs

    def peer():
        spark.read.json(str(data)).write.format("delta").mode("overwrite").save(str(work / "peer"))

    times: dict[str, list[float]] = {"job": [], "peer": []}
    for _ in range(2):
        times["job"].append(timed(job)[0])
        times["peer"].append(timed(peer)[0])
    job_s, peer_s = min(times["job"]), min(times["peer"])
    assert spark.read.format("delta").load(str(work / "peer")).count() == docs
    cores = spark.sparkContext.defaultParallelism
    spark.stop()

    rows = [
        ["reader core (1 process)", docs, reader_s, docs / reader_s, size / reader_s / 1e6, 1],
        ["refinery ingest job", docs, job_s, docs / job_s, size / job_s / 1e6, cores],
        ["peer: spark.read.json + Delta", docs, peer_s, docs / peer_s, size / peer_s / 1e6, cores],
    ]
    print(f"{docs} documents, {size / 1e6:.0f} MB JSON lines in {args.shards} shards, {cores} cores")
    print(render_table(["contender", "docs", "seconds", "docs/s", "MB/s", "cores"], rows))
    print(f"ingest job / peer time ratio: {job_s / peer_s:.2f} (above 1: slower than the peer)")
    print(f"reader core per core: {docs / reader_s:,.0f} docs/s, {size / reader_s / 1e6:.1f} MB/s")

    out = ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "docs": docs, "bytes": size, "shards": args.shards, "cores": cores, "cpu_count": os.cpu_count(),
        "reader_core": {"seconds": reader_s, "docs_per_s": docs / reader_s, "mb_per_s": size / reader_s / 1e6},
        "ingest_job": {"seconds": job_s, "docs_per_s": docs / job_s, "runs": times["job"]},
        "peer_spark_read_json_delta": {"seconds": peer_s, "docs_per_s": docs / peer_s, "runs": times["peer"]},
        "job_over_peer_time": job_s / peer_s,
    }, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
