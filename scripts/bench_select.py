"""Selection on Alpaca's 52k instructions with MiniLM embeddings, and K-Center-Greedy at 1M vectors.

1. Alpaca (``../shared/data/alpaca/alpaca_data.json``) goes through the real ingest and embed jobs
   into a bench lake (``bench/tmp/select``, kept between runs: embedding 52k texts on CPU takes minutes).
2. K-Center-Greedy's coverage radius against a seeded random subset of the same size, k = 1k, 5k, 10k.
3. SemDeDup removal rate at three ``eps``, with 20 sampled removed pairs printed for inspection.
4. Wall time of exact vs two-round K-Center (the job's code paths) on the 52k and on 1M synthetic
   384-d unit vectors (exact: the kernel over an in-memory matrix; two-round: Spark, 8 partitions).
5. TF-IDF top-k neighbours: records/s of the whole neighbours method.
Writes ``bench/results/select.json``.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.config import KCenterSection, NeighborsSection, SemDedupSection, load_config  # noqa: E402
from refinery.selection.kcenter import kcenter  # noqa: E402
from refinery.selection.neighbors import neighbors  # noqa: E402
from refinery.selection.pool import candidate_pool  # noqa: E402
from refinery.selection.semdedup import semdedup  # noqa: E402
from refinery.session import build_session  # noqa: E402
from refinery.summary import render_table  # noqa: E402
from udfs.select.kcenter import k_center_greedy, nearest_centres  # noqa: E402
from udfs.select.vectors import as_matrix, normalized  # noqa: E402

ALPACA = ROOT.parent / "shared" / "data" / "alpaca" / "alpaca_data.json"
WORK = ROOT / "bench" / "tmp" / "select"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_config():
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "refinery.yaml"
    path.write_text(yaml.safe_dump({
        "lake": str(WORK / "lake"),
        "spark": {"master": "local[2]", "shuffle_partitions": 8, "conf": {"spark.driver.memory": "6g", "spark.ui.enabled": "false"}},
        "ingest": {"sources": [{"name": "alpaca", "path": str(ALPACA), "format": "instruction"}]},
        "dedup": {"input": "bronze/docs"},
        "embed": {"input": "bronze/docs"},
        "select": {"input": "bronze/docs", "kinds": None},
    }))
    return load_config(path, environ={})


def alpaca_pool(spark, cfg):
    """Ingest and embed once; later runs reuse the bench lake."""
    import jobs.embed
    import jobs.ingest
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, cfg.table("scored/embeddings")):
        jobs.ingest.run(spark, cfg, "bench")
        _, seconds = timed(lambda: jobs.embed.run(spark, cfg, "bench"))
        print(f"embedded Alpaca with MiniLM in {seconds:.0f} s")
    cfg.select.kcenter.enabled = True  # the pool reads embeddings
    return candidate_pool(spark, cfg)


def radius_rows(x: np.ndarray, sizes: list[int], seed: int) -> list[dict]:
    rows = []
    rng = np.random.default_rng(seed)
    for k in sizes:
        (chosen, _, _, nearest), seconds = timed(lambda: k_center_greedy(x, k))
        random_subset = rng.choice(len(x), size=k, replace=False)
        _, random_distance = nearest_centres(x, x[random_subset])
        rows.append({"k": k, "kcenter_radius": float(nearest.max()), "random_radius": float(random_distance.max()),
                     "kcenter_mean_distance": float(nearest.mean()), "random_mean_distance": float(random_distance.mean()),
                     "seconds": seconds})
    return rows


def semdedup_rows(spark, pool, texts: dict[str, str], eps_values: list[float], clusters: int) -> list[dict]:
    rows = []
    for eps in eps_values:
        (kept, dropped, _), seconds = timed(lambda: semdedup(pool.records, SemDedupSection(enabled=True, clusters=clusters, eps=eps)))
        dropped = dropped.localCheckpoint(eager=True)
        removed = dropped.count()
        sample = dropped.orderBy("doc_id").collect()
        pairs = random.Random(0).sample(sample, min(20, len(sample)))
        print(f"\nSemDeDup eps {eps}: {removed} of {pool.usable} removed; sampled pairs (removed <- kept, cosine):")
        for r in pairs:
            print(f"  {r.value:.3f}  {texts[r.doc_id][:90]!r}\n         <- {texts[r.duplicate_of][:90]!r}")
        rows.append({"eps": eps, "clusters": clusters, "removed": removed, "rate": removed / pool.usable, "seconds": seconds})
    return rows


def synthetic_vectors(spark, n: int, dimension: int, path: str):
    """n unit vectors around 1,000 random centres, as a Delta table and (same values) in memory."""
    rng = np.random.default_rng(0)
    centres = normalized(rng.normal(size=(1000, dimension)).astype(np.float32))
    x = normalized(centres[rng.integers(0, 1000, n)] + 0.5 * rng.normal(size=(n, dimension)).astype(np.float32) / np.sqrt(dimension))
    import pyarrow as pa

    ids = np.char.add("v", np.char.zfill(np.arange(n).astype(str), 7))
    table = pa.table({"doc_id": ids, "source": np.full(n, "synthetic"),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dimension).cast(pa.list_(pa.float32()))})
    for start in range(0, n, 100_000):
        spark.createDataFrame(table.slice(start, 100_000)).write.format("delta").mode("append").save(path)
    return x


def kcenter_wall_rows(spark, name: str, frame, x: np.ndarray, k: int, partitions: int) -> list[dict]:
    rows = []
    (_, _, _, nearest), exact_s = timed(lambda: k_center_greedy(x, k))
    rows.append({"data": name, "rows": len(x), "k": k, "mode": "exact (driver, in memory)", "seconds": exact_s,
                 "radius": float(nearest.max())})
    section = KCenterSection(enabled=True, k=k, mode="two_round", partitions=partitions)
    (_, _, _, radius), two_s = timed(lambda: kcenter(spark, frame, len(x), section))
    rows.append({"data": name, "rows": len(x), "k": k, "mode": f"two_round ({partitions} partitions, Spark)",
                 "seconds": two_s, "radius": radius})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--eps", default="0.01,0.05,0.1")
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--synthetic-k", type=int, default=1000)
    args = parser.parse_args(argv)
    cfg = bench_config()
    spark = build_session(cfg.spark)
    spark.sparkContext.setLogLevel("ERROR")
    pool = alpaca_pool(spark, cfg)
    local = pool.records.select("doc_id", "text", "embedding").orderBy("doc_id").toArrow().to_pandas()
    x = normalized(as_matrix(local["embedding"]))
    texts = dict(zip(local["doc_id"], local["text"]))
    print(f"Alpaca pool: {pool.usable} records ({pool.records_in - pool.usable} rejected), dimension {pool.dimension}")

    radius = radius_rows(x, [int(k) for k in args.sizes.split(",")], seed=0)
    print(render_table(["k", "K-Center radius", "random radius", "K-Center mean", "random mean", "seconds"],
                       [[r["k"], f"{r['kcenter_radius']:.3f}", f"{r['random_radius']:.3f}", f"{r['kcenter_mean_distance']:.3f}",
                         f"{r['random_mean_distance']:.3f}", f"{r['seconds']:.1f}"] for r in radius]))
    dedup = semdedup_rows(spark, pool, texts, [float(e) for e in args.eps.split(",")], args.clusters)
    print(render_table(["eps", "clusters", "removed", "rate", "seconds"],
                       [[f"{r['eps']:g}", r["clusters"], r["removed"], f"{r['rate']:.3f}", f"{r['seconds']:.1f}"] for r in dedup]))

    walls = kcenter_wall_rows(spark, "alpaca", pool.records, x, 1000, 8)
    synthetic_path = WORK / f"synthetic-{args.synthetic}"
    shutil.rmtree(synthetic_path, ignore_errors=True)
    y = synthetic_vectors(spark, args.synthetic, 384, str(synthetic_path))
    frame = spark.read.format("delta").load(str(synthetic_path))
    walls += kcenter_wall_rows(spark, "synthetic", frame, y, args.synthetic_k, 8)
    del y
    print(render_table(["data", "rows", "k", "mode", "seconds", "radius"],
                       [[r["data"], r["rows"], r["k"], r["mode"], f"{r['seconds']:.1f}", f"{r['radius']:.3f}"] for r in walls]))

    section = NeighborsSection(enabled=True, backend="tfidf", k=10, blocks=4)
    _, seconds = timed(lambda: neighbors(pool.records, section)[0].write.format("noop").mode("overwrite").save())
    tfidf = {"records": pool.usable, "k": 10, "blocks": 4, "seconds": seconds, "records_per_s": pool.usable / seconds}
    print(f"\nTF-IDF top-10 neighbours of {pool.usable} records: {seconds:.1f} s, {tfidf['records_per_s']:.0f} records/s")
    out = ROOT / "bench" / "results" / "select.json"
    out.write_text(json.dumps({"pool": pool.usable, "dimension": pool.dimension, "radius": radius, "semdedup": dedup,
                               "kcenter_wall": walls, "tfidf_neighbors": tfidf}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
