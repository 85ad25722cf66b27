"""Learning curve of active-learning rejection sampling against random sampling, at equal label
budgets, 3 seeds. Simulation with known labels as the oracle: Alpaca records (good) and one
automatic negative of each (bad: swapped, truncated, repeated, wrong language, refusal, empty).

The learner is a logistic regression on frozen MiniLM features of (prompt, response) (the prompt's
and response's embeddings and their product, so relevance is visible), refitted after every batch.
Active: records whose entropy under the current learner is in the top half AND whose P(good) is
above the learner's own 20% quantile (uncertain and not clearly bad), spread with K-Center-Greedy on
the response embeddings; random: a uniform draw. Metric: ROC-AUC on a fixed held-out split (20% of
prompts, by hash). Writes ``bench/results/active_learning.{json,png}``.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from refinery.summary import render_table  # noqa: E402
from udfs.active.sampling import accepted, bar, binary_entropy, spread  # noqa: E402
from udfs.reward.inputs import is_heldout, prompt_text  # noqa: E402
from udfs.reward.negatives import KINDS, make_negatives  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def dataset(n: int):
    from bench_reward import _json_rows, canonical

    from udfs.models.embeddings import embed
    from udfs.models.loading import embedding_model

    rng = random.Random(0)
    alpaca = rng.sample(canonical(json.loads((DATA / "alpaca" / "alpaca_data.json").read_text()), "alpaca"), n)
    zh = [r["output"] for f in sorted((DATA / "alpaca_zh").glob("*.json")) for r in _json_rows(f) if r.get("output")]
    prompts = [prompt_text(r["messages"][:-1]) for r in alpaca]
    heldout = [is_heldout(r["messages"][:-1], 0.2) for r in alpaca]
    responses, labels, owner = [r["response"] for r in alpaca], [1] * n, list(range(n))
    for i, _, text in make_negatives(responses[:n], KINDS, 1, zh):
        responses.append(text)
        labels.append(0)
        owner.append(i)
    encoder = embedding_model()
    p_vec = embed(prompts, encoder, 64)[owner]
    r_vec = embed(responses, encoder, 64)
    features = np.hstack([p_vec, r_vec, p_vec * r_vec])
    return features, r_vec, np.array(labels), np.array([heldout[i] for i in owner])


def curve(strategy: str, x, emb, y, test_mask, seed: int, start: int, batch: int, rounds: int) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(~test_mask)
    labelled = list(rng.choice(pool, start, replace=False))
    scores = []
    for _ in range(rounds + 1):
        model = LogisticRegression(max_iter=2000, C=1.0).fit(x[labelled], y[labelled])
        scores.append(float(roc_auc_score(y[test_mask], model.predict_proba(x[test_mask])[:, 1])))
        rest = np.setdiff1d(pool, labelled)
        if strategy == "random":
            picked = rng.choice(rest, batch, replace=False)
        else:
            p = model.predict_proba(x[rest])[:, 1]
            u = binary_entropy(p)
            ranked = accepted(u, p, bar(u, 0.5, "quantile"), bar(p, 0.2, "quantile"))
            picked = rest[spread(emb[rest], ranked, batch)]
        labelled += list(picked)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="Alpaca records (each also gives one negative)")
    parser.add_argument("--start", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    x, emb, y, test_mask = dataset(args.records)
    results = {s: [curve(s, x, emb, y, test_mask, seed, args.start, args.batch, args.rounds) for seed in range(args.seeds)]
               for s in ("random", "active")}
    budgets = [args.start + args.batch * r for r in range(args.rounds + 1)]
    mean = {s: np.mean(v, axis=0) for s, v in results.items()}
    std = {s: np.std(v, axis=0) for s, v in results.items()}
    print(f"{len(y)} examples ({int(test_mask.sum())} held out); mean held-out ROC-AUC over {args.seeds} seeds")
    print(render_table(["labels", "random", "active", "active - random"],
                       [[b, f"{mean['random'][i]:.3f}±{std['random'][i]:.3f}", f"{mean['active'][i]:.3f}±{std['active'][i]:.3f}",
                         f"{mean['active'][i] - mean['random'][i]:+.3f}"] for i, b in enumerate(budgets)]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in ("random", "active"):
        ax.plot(budgets, mean[s], marker="o", label=s)
        ax.fill_between(budgets, mean[s] - std[s], mean[s] + std[s], alpha=0.2)
    ax.set_xlabel("labels")
    ax.set_ylabel("held-out ROC-AUC")
    ax.set_title(f"Active vs random sampling ({args.seeds} seeds)")
    ax.legend()
    fig.tight_layout()
    out = ROOT / "bench" / "results"
    fig.savefig(out / "active_learning.png", dpi=120)
    (out / "active_learning.json").write_text(json.dumps({"settings": vars(args), "examples": len(y),
                                                          "heldout": int(test_mask.sum()), "budgets": budgets,
                                                          "curves": results}, indent=2) + "\n")
    print("wrote bench/results/active_learning.json and .png")


if __name__ == "__main__":
    main()
