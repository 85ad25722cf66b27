"""Model scoring throughput: documents/s and tokens/s of the embedding and perplexity UDFs on CPU,
against a plain in-process loop with the same model, batch size and documents, in one run.

The Spark side runs ``predict_batch_udf`` exactly as ``jobs/embed.py`` / ``jobs/perplexity.py``
do, in local mode with one task at a time holding every core (``spark.task.cpus``), into Spark's ``noop``
sink so only scoring is timed. This machine's speed drifts by tens of percent over minutes, so the
loop and the UDF take turns, ``--rounds`` times each, and each side's fastest run counts (after one
untimed UDF run that starts the worker and loads the model). With
``--cores-only`` it times just the UDF cores (``udfs/models``) on whatever device torch sees,
which is how the GPU machine (no Java there) is measured. Writes ``bench/results/models[-DEVICE].json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.summary import render_table  # noqa: E402
from udfs.models.embeddings import embed  # noqa: E402
from udfs.models.loading import causal_lm, device, embedding_model  # noqa: E402
from udfs.models.perplexity import perplexities  # noqa: E402

WEB = ROOT.parent / "shared" / "data" / "web"


def documents(limit: int) -> list[str]:
    """Real web documents (../shared) when present, else the bundled sample corpus's texts."""
    texts: list[str] = []
    for path in sorted(WEB.glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        import random

        sys.path.insert(0, str(ROOT / "scripts"))
        from make_sample import web_records  # noqa: E402

        texts = [d["text"] for d in web_records(random.Random(0))[0]]
    return (texts * (limit // max(len(texts), 1) + 1))[:limit]


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def loop_run(fn, texts: list[str], rows_per_call: int):
    def run():
        for i in range(0, len(texts), rows_per_call):
            fn(texts[i:i + rows_per_call])
    return run


def udf_run(spark, make, return_type, texts: list[str], rows_per_call: int):
    from pyspark.ml.functions import predict_batch_udf

    frame = spark.createDataFrame([(t,) for t in texts], "text string").repartition(1).localCheckpoint(eager=True)
    udf = predict_batch_udf(make, return_type=return_type, batch_size=rows_per_call)
    return lambda: frame.select(udf("text").alias("out")).write.format("noop").mode("overwrite").save()


def alternating(runs: dict[str, object], rounds: int) -> dict[str, float]:
    """Fastest of ``rounds`` turns per contender, the contenders taking turns so drift hits all alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], timed(run))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-docs", type=int, default=512)
    parser.add_argument("--ppl-docs", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="turns per contender; the fastest counts")
    parser.add_argument("--embed-rows", type=int, default=256, help="rows per UDF call (Arrow batch), embed")
    parser.add_argument("--ppl-rows", type=int, default=16, help="rows per UDF call (Arrow batch), perplexity")
    parser.add_argument("--embed-model", default=None, help="sentence-transformers folder (default: bundled MiniLM)")
    parser.add_argument("--ppl-model", default=None, help="causal LM folder (default: bundled SmolLM2-135M)")
    parser.add_argument("--cores-only", action="store_true", help="no Spark: time the UDF cores only")
    args = parser.parse_args(argv)
    encoder = embedding_model(args.embed_model)
    model, tokenizer = causal_lm(args.ppl_model)
    embed_texts, ppl_texts = documents(args.embed_docs), documents(args.ppl_docs)
    stride = args.max_length // 2

    def encode(texts):
        return embed(texts, encoder, args.batch_size)

    def score(texts):
        return perplexities(texts, model, tokenizer, args.max_length, stride, args.batch_size * args.max_length)

    embed_tokens = sum(len(ids) for ids in encoder.tokenizer(embed_texts, truncation=True,
                                                             max_length=encoder.max_seq_length)["input_ids"])
    ppl_tokens = int(score(ppl_texts)[1].sum())
    stages = (("embed", encode, embed_texts, args.embed_rows, embed_tokens),
              ("perplexity", score, ppl_texts, args.ppl_rows, ppl_tokens))
    rows = []
    if args.cores_only:
        for stage, fn, texts, rows_per_call, tokens in stages:
            seconds = alternating({"loop": loop_run(fn, texts, rows_per_call)}, args.rounds)["loop"]
            rows.append({"stage": stage, "contender": "in-process loop", "docs": len(texts), "seconds": seconds, "tokens": tokens})
    else:
        from pyspark.sql.types import ArrayType, FloatType

        from jobs.embed import embedder
        from jobs.perplexity import SCORE, scorer
        from refinery.config import PerplexitySection, SparkSection
        from refinery.session import build_session

        # One task at a time with every core: PySpark gives a Python worker OMP_NUM_THREADS =
        # spark.task.cpus, so torch in the UDF gets the threads the loop gets.
        cores = os.cpu_count() or 1
        # The jobs' own predict functions: the model loads inside the worker, nothing is pickled.
        makers = {"embed": (embedder(args.embed_model, args.batch_size), ArrayType(FloatType())),
                  "perplexity": (scorer(PerplexitySection(model=args.ppl_model, max_length=args.max_length, stride=stride,
                                                          token_budget=args.batch_size * args.max_length)), SCORE)}
        # Each stage is its own application, as jobs/embed.py and jobs/perplexity.py are: a fresh
        # session (and Python workers) per stage.
        for stage, fn, texts, rows_per_call, tokens in stages:
            spark = build_session(SparkSection(master=f"local[{cores}]", shuffle_partitions=1,
                                               conf={"spark.ui.enabled": "false", "spark.task.cpus": str(cores)}))
            spark.sparkContext.setLogLevel("ERROR")
            make, return_type = makers[stage]
            udf = udf_run(spark, make, return_type, texts, rows_per_call)
            udf()  # starts the Python worker and loads the model into it
            best = alternating({"in-process loop": loop_run(fn, texts, rows_per_call),
                                "Spark predict_batch_udf": udf}, args.rounds)
            rows += [{"stage": stage, "contender": name, "docs": len(texts), "seconds": seconds, "tokens": tokens}
                     for name, seconds in best.items()]
            spark.stop()
    for r in rows:
        loop = next(x for x in rows if x["stage"] == r["stage"] and x["contender"] == "in-process loop")
        r.update(docs_per_s=r["docs"] / r["seconds"], tokens_per_s=r["tokens"] / r["seconds"],
                 vs_loop=loop["seconds"] / r["seconds"])
    where = device()
    import torch

    print(f"device {where}{' ' + torch.cuda.get_device_name() if where == 'cuda' else ''}; MiniLM batch {args.batch_size}; SmolLM2-135M windows {args.max_length}/{stride}")
    print(render_table(["stage", "contender", "docs", "seconds", "docs/s", "tokens/s", "x loop"],
                       [[r["stage"], r["contender"], r["docs"], f"{r['seconds']:.2f}", f"{r['docs_per_s']:.1f}",
                         round(r["tokens_per_s"]), f"{r['vs_loop']:.2f}"] for r in rows]))
    out = ROOT / "bench" / "results" / ("models.json" if where == "cpu" else f"models-{where}.json")
    gpu = torch.cuda.get_device_name() if where == "cuda" else None
    out.write_text(json.dumps({"device": where, "gpu": gpu, "embed_model": args.embed_model, "ppl_model": args.ppl_model,
                               "embed_rows": args.embed_rows, "ppl_rows": args.ppl_rows, "batch_size": args.batch_size, "max_length": args.max_length,
                               "rounds": args.rounds, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
