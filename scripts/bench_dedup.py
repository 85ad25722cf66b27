"""Near-dedup speed and accuracy: Refinery vs datasketch and vs Spark MLlib, on the same data, one run.

1. Signatures per second per core (one process, same documents, same shingles, 128 perms):
   ``udfs.dedup`` vs a loop of ``datasketch.MinHash`` (``update_batch`` per document, and
   ``update`` per shingle), with xxh32 and with datasketch's default sha1 (values checked equal).
2. Near dedup end to end in one Spark session (local mode), same corpus, threshold 0.8:
   Refinery's fingerprints + LSH + verification + components vs MLlib ``MinHashLSH`` +
   ``approxSimilarityJoin`` (same tokens and 5-grams, HashingTF) + the same components; F1 of
   both against exact all-pairs Jaccard. Also the whole stage with its Delta writes.
3. Scaling of the whole stage over corpus sizes, with peak memory of the process tree.

Corpus: Zipf-distributed synthetic words (so 5-grams are rarely shared by chance), with 5% of
documents near copies at known edit rates and 2% exact copies. Prints tables and writes
``bench/results/dedup.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.config import SparkSection, load_config  # noqa: E402
from refinery.summary import render_table  # noqa: E402
from udfs.dedup.evaluate import EDIT_RATES, accuracy, cluster_pairs, mutate, plant_near_duplicates, true_pairs  # noqa: E402
from udfs.dedup.minhash import MinHasher, Shingler  # noqa: E402

THRESHOLD = 0.8
SHARED_WEB = ROOT.parent / "shared" / "data" / "web"


def corpus(docs: int, seed: int = 11, vocab: int = 50_000, words: tuple[int, int] = (80, 240)) -> list[str]:
    """``docs`` texts: 93% original, 5% near copies (edit rates cycling), 2% exact copies."""
    rng = np.random.default_rng(seed)
    import random

    prng = random.Random(seed)
    names = np.array([f"w{i}" for i in range(vocab)])
    ranks = np.arange(1, vocab + 1)
    p = 1 / ranks ** 1.05
    p /= p.sum()
    originals = int(docs * 0.93)
    lengths = rng.integers(*words, originals)
    ids = rng.choice(vocab, lengths.sum(), p=p)
    cuts = np.cumsum(lengths)[:-1]
    out = [" ".join(chunk) for chunk in np.split(names[ids], cuts)]
    near = int(docs * 0.05)
    out += [mutate(prng, out[prng.randrange(originals)], EDIT_RATES[k % len(EDIT_RATES)]) for k in range(near)]
    out += [out[prng.randrange(originals)] for _ in range(docs - len(out))]
    return out


class PeakRss(threading.Thread):
    """Peak resident memory of this process and all its descendants (JVM, Python workers)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self._done = 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.25):
            self.peak = max(self.peak, tree_rss(os.getpid()))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def tree_rss(root: int) -> int:
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry)] = int(fields.get("PPid", "0"))
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total = 0
    for pid in rss:
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        total += rss[pid] if p == root else 0
    return total


# ---- 1. signatures per core ------------------------------------------------------------------

def python_shingles(text: str, n: int = 5) -> list[bytes]:
    """What a datasketch user writes: lower-case words, joined n-grams, encoded."""
    words = re.findall(r"\w+", text.lower())
    return [" ".join(words[i:i + n]).encode() for i in range(max(len(words) - n + 1, 1))]


def bench_signatures(texts: list[str]) -> list[dict]:
    import xxhash
    from datasketch import MinHash

    arr = pa.array(texts)
    rows = []
    for hash_name, hashfunc in (("xxh32", xxhash.xxh32_intdigest), ("sha1", None)):
        hasher = MinHasher(Shingler(5, "word", hash_name), 128, 1)
        hasher.signatures(arr[:10])  # compile the kernels outside the timing
        start = time.perf_counter()
        ours = hasher.signatures(arr)
        ours_s = time.perf_counter() - start
        kwargs = {"hashfunc": hashfunc} if hashfunc else {}
        start = time.perf_counter()
        batch = [MinHash(128, seed=1, **kwargs) for _ in texts]
        for m, text in zip(batch, texts):
            m.update_batch(python_shingles(text))
        batch_s = time.perf_counter() - start
        loop_docs = texts[: max(len(texts) // 5, 1)]
        start = time.perf_counter()
        for text in loop_docs:
            m = MinHash(128, seed=1, **kwargs)
            for s in python_shingles(text):
                m.update(s)
        loop_s = (time.perf_counter() - start) * len(texts) / len(loop_docs)
        equal = all((m.hashvalues == row).all() for m, row in zip(batch, ours))
        rows.append({"hash": hash_name, "docs": len(texts), "refinery_docs_s": len(texts) / ours_s,
                     "datasketch_update_batch_docs_s": len(texts) / batch_s,
                     "datasketch_update_loop_docs_s": len(texts) / loop_s,
                     "speedup_vs_update_batch": batch_s / ours_s, "speedup_vs_update_loop": loop_s / ours_s,
                     "values_equal": bool(equal)})
    return rows


# ---- 2. and 3. in Spark ----------------------------------------------------------------------

def write_input(spark, texts: list[str], path: str) -> None:
    table = pa.table({
        "doc_id": [f"{i:012d}" for i in range(len(texts))], "kind": ["pretrain"] * len(texts),
        "text": texts, "source": ["bench"] * len(texts), "source_line": list(range(1, len(texts) + 1)),
    })
    staging = Path(path + "_parquet")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    import pyarrow.parquet as pq

    for k, part in enumerate(table.to_batches(max_chunksize=20_000)):
        pq.write_table(pa.Table.from_batches([part]), staging / f"part-{k:05d}.parquet")
    spark.read.parquet(str(staging)).write.format("delta").mode("overwrite").save(path)
    shutil.rmtree(staging)


def refinery_to_clusters(spark, cfg) -> tuple[float, list[list[int]]]:
    """Fingerprints, LSH, verification and components: what MLlib's side computes too."""
    import jobs.dedup as dedup
    from refinery.components import connected_components
    from pyspark.sql import functions as F

    d = cfg.dedup
    start = time.perf_counter()
    docs = spark.read.format("delta").load(cfg.table(d.input))
    checkpoint = dedup.checkpointer(spark, d)
    bands, rows = dedup.banding(d)
    fp = checkpoint(dedup.fingerprint(docs, d, bands, rows))
    links = dedup.duplicate_links(fp, docs, d, checkpoint)
    labels = connected_components(links.all(), checkpoint, d.max_iterations)
    members = labels.join(fp.select("nid", "doc_id"), F.col("node") == F.col("nid")).groupBy("root").agg(
        F.collect_list("doc_id").alias("m")).collect()
    return time.perf_counter() - start, [[int(x) for x in r.m] for r in members]


def mllib_to_clusters(spark, cfg, tables: int) -> tuple[float, list[list[int]]]:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, MinHashLSH, NGram, RegexTokenizer
    from pyspark.sql import functions as F

    from refinery.components import connected_components

    start = time.perf_counter()
    docs = spark.read.format("delta").load(cfg.table(cfg.dedup.input)).select(
        F.col("doc_id").cast("long").alias("id"), "text")
    features = Pipeline(stages=[
        RegexTokenizer(inputCol="text", outputCol="words", pattern=r"[^\p{L}\p{N}\p{M}]+", toLowercase=True),
        NGram(n=5, inputCol="words", outputCol="grams"),
        HashingTF(inputCol="grams", outputCol="features", numFeatures=1 << 24, binary=True),
    ]).fit(docs).transform(docs).select("id", "features").where(F.size(F.col("grams")) > 0)
    features = features.localCheckpoint(eager=True)
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=tables, seed=1).fit(features)
    pairs = model.approxSimilarityJoin(features, features, 1 - THRESHOLD, distCol="distance").select(
        F.col("datasetA.id").alias("src"), F.col("datasetB.id").alias("dst")).where(F.col("src") < F.col("dst"))
    labels = connected_components(pairs, lambda df: df.localCheckpoint(eager=True), 50)
    members = labels.groupBy("root").agg(F.collect_list("node").alias("m")).collect()
    return time.perf_counter() - start, [list(r.m) for r in members]


def bench_vs_mllib(spark, cfg, texts: list[str], tables: list[int], repeats: int = 2) -> dict:
    """Best of ``repeats`` alternating runs of each contender (neither gains from the other
    warming the JVM); accuracy of the last run (all are deterministic)."""
    truth = true_pairs(texts, Shingler())
    contenders = {"refinery": lambda: refinery_to_clusters(spark, cfg),
                  **{f"mllib_x{t}": (lambda t=t: mllib_to_clusters(spark, cfg, t)) for t in tables}}
    best: dict[str, float] = {}
    clusters: dict[str, list] = {}
    for _ in range(repeats):
        for name, run in contenders.items():
            seconds, clusters[name] = run()
            best[name] = min(seconds, best.get(name, seconds))
    out = {"docs": len(texts), "true_pairs_at_or_above_0.5": len(truth)}
    for name in contenders:
        acc = accuracy(truth, cluster_pairs(clusters[name]), THRESHOLD)
        out[name] = {"seconds": best[name], "precision": acc.precision, "recall": acc.recall, "f1": acc.f1,
                     "recall_at_0.85": acc.recall_at_least(0.85), "bands": acc.rows()}
    return out


def completed_stages(spark) -> dict[int, dict]:
    """Spark's own task metrics per completed stage, from the UI's REST API."""
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?status=complete"
    with urllib.request.urlopen(url) as response:
        return {(s["stageId"], s["attemptId"]): s for s in json.load(response)}


def real_text(copies_per_doc: float = 0.5) -> list[str]:
    """Real web documents (C4 and Dolma CC from ../shared, when present) followed by edited copies
    of half of them at the planted edit rates; empty without ../shared."""
    base: list[str] = []
    for name in ("c4_300.jsonl", "cc_en_head-0091.jsonl"):
        path = SHARED_WEB / name
        if path.is_file():
            base += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return plant_near_duplicates(base, int(len(base) * copies_per_doc), seed=7) if base else []


def bench_real_text(spark, cfg, texts: list[str]) -> dict:
    truth = true_pairs(texts, Shingler())
    _, clusters = refinery_to_clusters(spark, cfg)
    acc = accuracy(truth, cluster_pairs(clusters), THRESHOLD)
    return {"docs": len(texts), "precision": acc.precision, "recall": acc.recall, "f1": acc.f1,
            "recall_at_0.85": acc.recall_at_least(0.85), "bands": acc.rows()}


def bench_stage(spark, cfg, docs: int) -> dict:
    """The whole stage, with what a cluster estimate needs: executor core-seconds (task run
    time summed over tasks) and bytes shuffled, per document."""
    import jobs.dedup as dedup

    before = completed_stages(spark)
    sampler = PeakRss()
    sampler.start()
    start = time.perf_counter()
    result = dedup.run(spark, cfg, f"bench-{docs}")
    seconds = time.perf_counter() - start
    stages = [s for key, s in completed_stages(spark).items() if key not in before]
    return {"docs": docs, "seconds": seconds, "docs_per_s": docs / seconds, "peak_rss_gb": sampler.stop() / 2**30,
            "core_ms_per_doc": sum(s["executorRunTime"] for s in stages) / docs,
            "shuffle_bytes_per_doc": sum(s["shuffleWriteBytes"] for s in stages) / docs,
            "input_bytes_per_doc": sum(s["inputBytes"] for s in stages) / docs,
            "dropped": result.dropped.rows, "candidate_pairs": result.candidate_pairs,
            "verified_pairs": result.verified_pairs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signature-docs", type=int, default=5_000)
    parser.add_argument("--compare-docs", type=int, default=100_000)
    parser.add_argument("--scale", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--mllib-tables", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", default=str(ROOT / "bench" / "tmp" / "dedup"))
    args = parser.parse_args(argv)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    results: dict = {"cores": os.cpu_count(), "master": args.master, "threshold": THRESHOLD}

    results["signatures"] = bench_signatures(corpus(args.signature_docs, seed=3))
    print(render_table(["hash", "docs", "refinery docs/s", "update_batch docs/s", "update loop docs/s",
                        "x update_batch", "x update loop", "equal"],
                       [[r["hash"], r["docs"], round(r["refinery_docs_s"]), round(r["datasketch_update_batch_docs_s"]),
                         round(r["datasketch_update_loop_docs_s"]), round(r["speedup_vs_update_batch"], 1),
                         round(r["speedup_vs_update_loop"], 1), r["values_equal"]] for r in results["signatures"]]))

    from refinery.session import build_session

    spark = build_session(SparkSection(master=args.master, shuffle_partitions=8,
                                       conf={"spark.ui.enabled": "true", "spark.ui.port": "0",
                                             "spark.ui.retainedStages": "100000", "spark.driver.memory": "8g"}))
    spark.sparkContext.setLogLevel("ERROR")

    def config(name: str, *overrides: str):
        return load_config(overrides=[f"lake={work / name}", "dedup.input=bench/docs", *overrides], environ={})

    warm = config("warm")  # JVM, Python workers and compiled kernels warm before anything is timed
    write_input(spark, corpus(2_000, seed=1), warm.table("bench/docs"))
    refinery_to_clusters(spark, warm)
    mllib_to_clusters(spark, warm, 1)

    texts = corpus(args.compare_docs, seed=5)
    cfg = config("compare")
    write_input(spark, texts, cfg.table("bench/docs"))
    compare = bench_vs_mllib(spark, cfg, texts, args.mllib_tables)
    stage = bench_stage(spark, cfg, len(texts))
    compare["refinery_stage_s"] = stage["seconds"]
    results["vs_mllib"] = compare
    ours = compare["refinery"]
    print(f"\nnear dedup of {len(texts)} docs, threshold {THRESHOLD} (best of 2, alternating)")
    rows = [["refinery (fingerprints -> clusters)", round(ours["seconds"], 1), "1.0"],
            ["refinery (whole stage, Delta writes)", round(stage["seconds"], 1), ""]]
    for t in args.mllib_tables:
        theirs = compare[f"mllib_x{t}"]
        theirs["speedup"] = theirs["seconds"] / ours["seconds"]
        rows.append([f"mllib MinHashLSH x{t} + similarity join", round(theirs["seconds"], 1), f"{theirs['speedup']:.1f}"])
    names = ["refinery", *(f"mllib_x{t}" for t in args.mllib_tables)]
    print(render_table(["contender", "seconds", "refinery faster by"], rows))
    print(render_table(["contender", "precision", "recall", "recall J>=0.85", "F1"],
                       [[n, *(f"{compare[n][k]:.4f}" for k in ("precision", "recall", "recall_at_0.85", "f1"))]
                        for n in names]))
    print(render_table(["Jaccard", "pairs", *names], [
        [band[0], band[1], *(compare[n]["bands"][i][2] for n in names)]
        for i, band in enumerate(ours["bands"])]))

    texts = real_text()
    if texts:
        cfg = config("real")
        write_input(spark, texts, cfg.table("bench/docs"))
        real = results["real_text"] = bench_real_text(spark, cfg, texts)
        print(f"\nreal web text (C4 + Dolma CC) with planted copies, {real['docs']} docs: precision "
              f"{real['precision']:.4f}, recall {real['recall']:.4f}, recall J>=0.85 {real['recall_at_0.85']:.4f}, "
              f"F1 {real['f1']:.4f}")
        print(render_table(["Jaccard", "pairs", "in one cluster", "share"],
                           [[*r[:3], r[3] if isinstance(r[3], str) else f"{r[3]:.3f}"] for r in real["bands"]]))

    results["scaling"] = []
    for docs in args.scale:
        cfg = config(f"scale{docs}")
        write_input(spark, corpus(docs, seed=docs), cfg.table("bench/docs"))
        results["scaling"].append(bench_stage(spark, cfg, docs))
        shutil.rmtree(work / f"scale{docs}", ignore_errors=True)
    base = results["scaling"][0]
    print("\n" + render_table(
        ["docs", "seconds", "docs/s", "s per doc vs smallest", "core ms/doc", "shuffle B/doc", "peak RSS GB", "dropped"],
        [[r["docs"], round(r["seconds"], 1), round(r["docs_per_s"]), round(r["seconds"] / r["docs"] / (
            base["seconds"] / base["docs"]), 2), round(r["core_ms_per_doc"], 3), round(r["shuffle_bytes_per_doc"]),
          round(r["peak_rss_gb"], 2), r["dropped"]] for r in results["scaling"]]))
    spark.stop()
    out = ROOT / "bench" / "results" / "dedup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
