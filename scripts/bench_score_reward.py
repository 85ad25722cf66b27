"""Reward scoring throughput: ``score_reward``'s Spark UDF against a plain loop, same model, same records.

The Spark side is the job's own ``refinery.reward.models.scored`` (model folder shipped with
``addFile``, ``mapInPandas``, one model per Python worker) into Spark's ``noop`` sink; the loop
calls the same batch body (``udfs.reward.scoring.score_batches``) in-process. Both score with a
pairwise and a pointwise folder, as a run with both trained models does: a MiniLM scalar model
saved untrained (throughput does not depend on the weights). One task at a time holds every core
(``spark.task.cpus``) so torch gets the loop's threads; the two take turns ``--rounds`` times and
each side's fastest counts, after one untimed UDF run that starts the worker and loads the models.
Writes ``bench/results/score_reward.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_models import alternating  # noqa: E402
from bench_reward import scoring_texts  # noqa: E402
from refinery.summary import render_table  # noqa: E402

SCHEMA = ("doc_id string, source string, kind string, messages array<struct<role:string,content:string>>, "
          "chosen string, rejected string")


def records(n: int) -> list[tuple]:
    prompts, responses = scoring_texts()
    rows = []
    for i in range(n):
        p, r = prompts[i % len(prompts)], responses[i % len(responses)]
        rows.append((f"d{i}", "bench", "sft", [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                     None, None))
    return rows


def model_folders(root: Path, max_length: int) -> tuple[str, str]:
    from udfs.reward.model import Training, load, save

    model, tokenizer = load(None)
    settings = Training(max_length=max_length)
    return (str(save(model, tokenizer, root / "pairwise", "pairwise", "all-MiniLM-L6-v2", settings, {})),
            str(save(model, tokenizer, root / "pointwise", "pointwise", "all-MiniLM-L6-v2", settings, {})))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import pandas as pd

    from refinery.config import SparkSection, load_config
    from refinery.reward.models import scored
    from refinery.session import build_session
    from udfs.reward.scoring import score_batches

    cores = os.cpu_count() or 1
    rows = records(args.records)
    cfg = load_config(None, [f"reward.score_batch_size={args.batch_size}", "reward.device=cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        pairwise, pointwise = model_folders(Path(tmp), args.max_length)
        frame = pd.DataFrame({"doc_id": [r[0] for r in rows], "source": "bench", "kind": "sft",
                              "messages_json": [json.dumps(r[3]) for r in rows], "chosen": None, "rejected": None})

        def loop():
            for _ in score_batches(iter([frame]), pairwise, pointwise, args.batch_size, "cpu"):
                pass

        spark = build_session(SparkSection(master=f"local[{cores}]", shuffle_partitions=1,
                                           conf={"spark.ui.enabled": "false", "spark.task.cpus": str(cores)}))
        spark.sparkContext.setLogLevel("ERROR")
        source = spark.createDataFrame(rows, SCHEMA).repartition(1).localCheckpoint(eager=True)

        def udf():
            scored(cfg, source, pairwise, pointwise).write.format("noop").mode("overwrite").save()

        udf()  # starts the Python worker and loads both models into it
        loop()  # loads them in this process
        best = alternating({"in-process loop": loop, "Spark score_reward UDF": udf}, args.rounds)
        spark.stop()
    loop_seconds = best["in-process loop"]
    table = [{"contender": name, "records": args.records, "seconds": s, "records_per_s": args.records / s,
              "vs_loop": loop_seconds / s} for name, s in best.items()]
    print(f"CPU, {cores} cores; pairwise + pointwise MiniLM scorers, batch {args.batch_size}, {args.max_length} tokens")
    print(render_table(["contender", "records", "seconds", "records/s", "x loop"],
                       [[r["contender"], r["records"], f"{r['seconds']:.2f}", f"{r['records_per_s']:.1f}",
                         f"{r['vs_loop']:.2f}"] for r in table]))
    out = ROOT / "bench" / "results" / "score_reward.json"
    out.write_text(json.dumps({"settings": vars(args), "cores": cores, "rows": table}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
