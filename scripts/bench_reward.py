"""Reward model and quality classifier on real data, against the baselines, in one run.

Pairwise accuracy on held-out prompts (20%, by hash of the opening user turn) of Anthropic HH
(harmless-base) and LLaMA-Factory's DPO pairs: the length heuristic (longer answer wins), TF-IDF +
MLlib logistic regression, and the Bradley-Terry reward model (MiniLM backbone). Pointwise: the
quality classifier trained on Alpaca (trusted) against automatic negatives, ROC-AUC per negative
kind on held-out Alpaca rows, against TF-IDF + LR. Scoring throughput of the UDF core (records/s).
Writes ``bench/results/reward[-DEVICE].json``; ``--score-only`` times just the scoring core (GPU machine).
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refinery.summary import render_table  # noqa: E402
from udfs.reward.inputs import is_heldout, pair_problem, prompt_text  # noqa: E402
from udfs.reward.metrics import auc_by_group, length_accuracy, pairwise_accuracy  # noqa: E402
from udfs.reward.model import Training, load, rewards, train_pairwise, train_pointwise  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def canonical(records, fmt: str) -> list[dict]:
    from udfs.ingest.formats import RecordError, canonical_fields, resolve_fields

    out = []
    for r in records:
        try:
            out.append(canonical_fields(r, fmt, resolve_fields(fmt, {})))
        except RecordError:
            pass
    return out


def pair_sets() -> dict[str, list[dict]]:
    hh = [json.loads(line) for line in gzip.open(DATA / "hh_rlhf" / "harmless_base_part_a.jsonl.gz", "rt")]
    dpo = json.loads((DATA / "preference" / "dpo_en_sharegpt.json").read_text())
    sets = {"HH harmless-base": canonical(hh, "hh"), "DPO en (LLaMA-Factory)": canonical(dpo, "sharegpt_preference")}
    return {k: [r for r in v if pair_problem(r["messages"], r["chosen"], r["rejected"]) is None] for k, v in sets.items()}


def examples_of(pairs: list[dict]):
    from refinery.reward.examples import Examples

    ex = Examples()
    for r in pairs:
        ex.add(prompt_text(r["messages"]), r["chosen"], is_heldout(r["messages"], 0.2), other=r["rejected"])
    return ex.split(False), ex.split(True)


def pairwise_rows(spark, settings: Training) -> list[dict]:
    from refinery.reward.baseline import pairwise_accuracy as tfidf_accuracy

    rows = []
    for name, pairs in pair_sets().items():
        train, test = examples_of(pairs)
        started = time.perf_counter()
        model, tokenizer, losses = train_pairwise(None, train.prompts, train.responses, train.others, settings)
        seconds = time.perf_counter() - started
        chosen = rewards(model, tokenizer, test.prompts, test.responses, settings.max_length)
        rejected = rewards(model, tokenizer, test.prompts, test.others, settings.max_length)
        rows.append({"data": name, "train_pairs": len(train), "heldout_pairs": len(test),
                     "length": length_accuracy(test.responses, test.others),
                     "tfidf_lr": tfidf_accuracy(spark, train, test, 1 << 18),
                     "reward_model": pairwise_accuracy(chosen, rejected), "train_seconds": seconds, "losses": losses})
    return rows


def pointwise_row(spark, settings: Training, n: int) -> dict:
    from refinery.reward.baseline import pointwise_probabilities
    from refinery.reward.examples import Examples
    from udfs.reward.negatives import KINDS, make_negatives

    rng = random.Random(1)
    alpaca = rng.sample(canonical(json.loads((DATA / "alpaca" / "alpaca_data.json").read_text()), "alpaca"), n)
    zh = [r["output"] for f in sorted((DATA / "alpaca_zh").glob("*.json")) for r in _json_rows(f) if r.get("output")]
    ex = Examples()
    for r in alpaca:
        ex.add(prompt_text(r["messages"][:-1]), r["response"], is_heldout(r["messages"][:-1], 0.2), group="trusted")
    for i, kind, text in make_negatives([r["response"] for r in alpaca], KINDS, 1, zh):
        ex.add(ex.prompts[i], text, ex.heldout[i], label=0, group=kind)
    train, test = ex.split(False), ex.split(True)
    model, tokenizer, _ = train_pointwise(None, train.prompts, train.responses, train.labels, settings)
    scores = rewards(model, tokenizer, test.prompts, test.responses, settings.max_length)
    return {"train": len(train), "heldout": len(test), "classifier": auc_by_group(scores, test.labels, test.groups),
            "tfidf_lr": auc_by_group(pointwise_probabilities(spark, train, test, 1 << 18), test.labels, test.groups)}


def _json_rows(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:  # one of the shared Chinese Alpaca files is malformed on purpose
        return []


def scoring_texts() -> tuple[list[str], list[str]]:
    """The preference pairs' prompts and chosen answers; without ../shared (the GPU machine), the
    bundled sample's web documents cut in two."""
    if DATA.is_dir():
        pairs = [r for v in pair_sets().values() for r in v]
        return [prompt_text(r["messages"]) for r in pairs], [r["chosen"] for r in pairs]
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_sample import web_records

    docs = [d["text"] for d in web_records(random.Random(0))[0]]
    return [d[:len(d) // 3] for d in docs], [d[len(d) // 3:] for d in docs]


def throughput(n: int, batch_size: int, max_length: int, model_path: str | None) -> dict:
    from udfs.models.loading import device

    prompts, responses = scoring_texts()
    prompts, responses = (prompts * (n // len(prompts) + 1))[:n], (responses * (n // len(responses) + 1))[:n]
    model, tokenizer = load(model_path)
    if device() == "cuda":
        import torch

        model = model.to(torch.bfloat16)
    model.eval()
    rewards(model, tokenizer, prompts[:batch_size], responses[:batch_size], max_length, batch_size)  # warm-up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        rewards(model, tokenizer, prompts, responses, max_length, batch_size)
        best = min(best, time.perf_counter() - started)
    return {"device": device(), "records": n, "batch_size": batch_size, "max_length": max_length, "seconds": best,
            "records_per_s": n / best}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--pointwise-records", type=int, default=1500)
    parser.add_argument("--score-records", type=int, default=512)
    parser.add_argument("--score-batch", type=int, default=64)
    parser.add_argument("--score-only", action="store_true", help="no Spark, no training: time the scoring core")
    parser.add_argument("--model", default=None, help="encoder folder for --score-only (default: bundled MiniLM)")
    args = parser.parse_args(argv)
    speed = throughput(args.score_records, args.score_batch, args.max_length, args.model)
    print(f"scoring core on {speed['device']}: {speed['records_per_s']:.1f} records/s "
          f"({speed['records']} (prompt, response) pairs, batch {speed['batch_size']}, {speed['max_length']} tokens)")
    out = ROOT / "bench" / "results" / ("reward.json" if speed["device"] == "cpu" else f"reward-{speed['device']}.json")
    if args.score_only:
        out.write_text(json.dumps({"throughput": speed}, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
        return
    from refinery.config import SparkSection
    from refinery.session import build_session

    spark = build_session(SparkSection(master="local[2]", shuffle_partitions=2, conf={"spark.ui.enabled": "false"}))
    spark.sparkContext.setLogLevel("ERROR")
    settings = Training(epochs=args.epochs, learning_rate=args.learning_rate, max_length=args.max_length)
    pairwise = pairwise_rows(spark, settings)
    print(render_table(["held-out pairwise accuracy", "train / held-out pairs", "length (longer wins)", "TF-IDF + LR",
                        "reward model (MiniLM)"],
                       [[r["data"], f"{r['train_pairs']} / {r['heldout_pairs']}", f"{r['length']:.3f}",
                         f"{r['tfidf_lr']:.3f}", f"{r['reward_model']:.3f}"] for r in pairwise]))
    point = pointwise_row(spark, Training(epochs=1, learning_rate=args.learning_rate, max_length=128), args.pointwise_records)
    groups = sorted(point["classifier"])
    print(render_table(["ROC-AUC (Alpaca held out)", *groups],
                       [["quality classifier (MiniLM)", *(f"{point['classifier'][g]:.3f}" for g in groups)],
                        ["TF-IDF + LR", *(f"{point['tfidf_lr'].get(g, float('nan')):.3f}" for g in groups)]]))
    out.write_text(json.dumps({"settings": vars(args), "pairwise": pairwise, "pointwise": point, "throughput": speed},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
