"""Self-instruct's ROUGE-L filter at pool scale: Alpaca's 52,002 instructions as the pool, new
instructions (planted near duplicates of pooled ones, and Alpaca-CoT instructions) screened with
MinHash-LSH candidates + compiled exact LCS, against the exact all-pairs check the Alpaca /
self-instruct code runs (rouge-score's LCS over every pooled instruction, one process per core),
timed on a sample and extrapolated. Agreement: the keep / drop decision (max ROUGE-L >= 0.7 against
the pool) of the LSH filter vs the compiled exact all-pairs on every new instruction, and vs
rouge-score on the sample. Writes ``bench/results/self_instruct.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.summary import render_table  # noqa: E402
from udfs.self_instruct.rouge import InstructionPool, rouge_l, tokens  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
THRESHOLD = 0.7


def instructions(*paths: Path) -> list[str]:
    return [r["instruction"] for p in paths for r in json.loads(p.read_text(encoding="utf-8"))]


def near_copy(text: str, rng: random.Random) -> str:
    """One word replaced, removed or added: what a model's rewording of a pooled task looks like."""
    words = text.split()
    i, op = rng.randrange(len(words)), rng.random()
    if op < 0.4:
        words[i] = rng.choice(["simple", "brief", "new", "short", "given"])
    elif op < 0.7 and len(words) > 3:
        del words[i]
    else:
        words.insert(i, rng.choice(["very", "quickly", "also", "please"]))
    return " ".join(words)


def exact_all_pairs(queries: list[str], pool: list[str], block: int = 64) -> np.ndarray:
    """Max ROUGE-L of each query over every pooled instruction (compiled LCS, no candidate search)."""
    tq, pq = tokens(queries)
    tp, pp = tokens(pool)
    best = np.zeros(len(queries))
    for lo in range(0, len(queries), block):
        rows = np.arange(lo, min(lo + block, len(queries)))
        left, right = np.repeat(rows, len(pool)), np.tile(np.arange(len(pool)), len(rows))
        best[rows] = rouge_l(tq, pq, tp, pp, left, right).reshape(len(rows), len(pool)).max(axis=1)
    return best


def rouge_score_max(query_tokens: list[str], pool_tokens: list[list[str]], workers: Pool) -> float:
    from rouge_score import rouge_scorer

    scores = workers.map(partial(rouge_scorer._score_lcs, query_tokens), pool_tokens, chunksize=2048)
    return max(s.fmeasure for s in scores)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planted", type=int, default=1000, help="near copies of pooled instructions")
    parser.add_argument("--fresh", type=int, default=1000, help="Alpaca-CoT instructions")
    parser.add_argument("--sample", type=int, default=20, help="new instructions timed with rouge-score all-pairs")
    args = parser.parse_args(argv)
    if not (DATA / "alpaca" / "alpaca_data.json").is_file():
        sys.exit(f"needs ../shared/data (Alpaca and Alpaca-CoT) beside the checkout: {DATA} is missing")
    from rouge_score import tokenize

    rng = random.Random(1)
    pooled = instructions(DATA / "alpaca" / "alpaca_data.json")
    cot = instructions(*sorted((DATA / "alpaca_cot").glob("*_train.json")))
    queries = [near_copy(rng.choice(pooled), rng) for _ in range(args.planted)] + rng.sample(cot, args.fresh)
    rng.shuffle(queries)

    pool = InstructionPool(THRESHOLD)
    pool.add(pooled[:10], [str(i) for i in range(10)])  # compile the kernels outside the timings
    pool.screen(queries[:10], [str(i) for i in range(10)])
    exact_all_pairs(queries[:2], pooled[:100])
    pool = InstructionPool(THRESHOLD)
    started = time.perf_counter()
    pool.add(pooled, [str(i) for i in range(len(pooled))])
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    (new, old, score), _ = pool.scores(queries)
    screen_s = time.perf_counter() - started
    lsh = np.zeros(len(queries))
    np.maximum.at(lsh, new, score)

    started = time.perf_counter()
    exact = exact_all_pairs(queries, pooled)
    exact_s = time.perf_counter() - started

    sample = rng.sample(range(len(queries)), args.sample)
    pool_tokens = [tokenize.tokenize(t, None) for t in pooled]
    with Pool(os.cpu_count()) as workers:
        started = time.perf_counter()
        reference = [rouge_score_max(tokenize.tokenize(queries[i], None), pool_tokens, workers) for i in sample]
        rouge_s = (time.perf_counter() - started) / len(sample) * len(queries)

    decisions = lsh >= THRESHOLD
    agree_exact = float(np.mean(decisions == (exact >= THRESHOLD)))
    missed = int(np.sum((exact >= THRESHOLD) & ~decisions))
    ref = np.array(reference) >= THRESHOLD
    agree_rouge = float(np.mean(decisions[sample] == ref))
    exact_vs_rouge = float(np.mean((exact[sample] >= THRESHOLD) == ref))
    n = len(queries)
    rows = [
        {"contender": "Refinery: MinHash-LSH candidates + compiled LCS", "seconds": screen_s, "per_s": n / screen_s,
         "agreement_exact": agree_exact, "agreement_rouge_score": agree_rouge},
        {"contender": "compiled LCS, all pairs (no candidate search)", "seconds": exact_s, "per_s": n / exact_s,
         "agreement_exact": 1.0, "agreement_rouge_score": exact_vs_rouge},
        {"contender": f"rouge-score all pairs, {os.cpu_count()} processes (Alpaca's code path; extrapolated from {args.sample})",
         "seconds": rouge_s, "per_s": n / rouge_s, "agreement_exact": exact_vs_rouge, "agreement_rouge_score": 1.0},
    ]
    print(f"pool {len(pooled)} Alpaca instructions (indexed in {index_s:.1f} s), {n} new: {args.planted} planted near "
          f"copies + {args.fresh} Alpaca-CoT; {int(np.sum(exact >= THRESHOLD))} are near duplicates (exact), "
          f"{len(new)} LSH candidate pairs ({len(new) / n:.0f} per new instruction), {missed} missed by LSH")
    print(render_table(["contender", "seconds", "instructions/s", "agreement vs exact", "agreement vs rouge-score sample"],
                       [[r["contender"], f"{r['seconds']:.2f}", f"{r['per_s']:.1f}", f"{r['agreement_exact']:.4f}",
                         f"{r['agreement_rouge_score']:.3f}"] for r in rows]))
    print(f"speed-up vs rouge-score all pairs: {rouge_s / screen_s:.0f}x; vs compiled all pairs: {exact_s / screen_s:.1f}x")
    out = ROOT / "bench" / "results" / "self_instruct.json"
    out.write_text(json.dumps({"pool": len(pooled), "new": n, "planted": args.planted, "fresh": args.fresh,
                               "rouge_sample": args.sample, "index_seconds": index_s, "candidate_pairs": int(len(new)),
                               "near_duplicates": int(np.sum(exact >= THRESHOLD)), "missed": missed,
                               "cores": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
