"""Distribution-shift statistics on real data: Alpaca against C4, against Alpaca-CoT, and against a
second Alpaca sample (the no-shift control), with the shift report's own functions (MiniLM
embeddings: MMD^2 with a permutation p-value and a classifier two-sample AUC; SmolLM2 perplexity).
Writes ``bench/results/shift.json``.
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

from refinery.summary import render_table  # noqa: E402
from udfs.models.embeddings import embed  # noqa: E402
from udfs.models.loading import causal_lm, embedding_model  # noqa: E402
from udfs.models.perplexity import perplexities  # noqa: E402
from udfs.shift.reading import shift_band  # noqa: E402
from udfs.shift.statistics import classifier_auc, mmd_test  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def instruction_texts(*paths: Path) -> list[str]:
    """Alpaca-style records as the ingest stage joins them: instruction, input, output."""
    rows = [r for p in paths for r in json.loads(p.read_text(encoding="utf-8"))]
    return ["\n\n".join(x for x in (r["instruction"], r.get("input"), r["output"]) if x) for r in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--ppl-sample", type=int, default=30)
    parser.add_argument("--permutations", type=int, default=500)
    args = parser.parse_args(argv)
    rng = random.Random(1)
    alpaca = instruction_texts(DATA / "alpaca" / "alpaca_data.json")
    first, control = rng.sample(alpaca, 2 * args.sample)[:args.sample], rng.sample(alpaca, args.sample)
    sides = {
        "Alpaca": first,
        "C4": [json.loads(line)["text"] for line in (DATA / "web" / "c4_300.jsonl").read_text().splitlines()][:args.sample],
        "Alpaca-CoT": rng.sample(instruction_texts(*sorted((DATA / "alpaca_cot").glob("*_train.json"))), args.sample),
        "Alpaca (2nd sample)": control,
    }
    encoder = embedding_model()
    vectors = {k: embed(v, encoder, 64) for k, v in sides.items()}
    model, tokenizer = causal_lm()
    ppl = {k: float(np.nanmedian(perplexities(v[:args.ppl_sample], model, tokenizer, 512, 256)[0])) for k, v in sides.items()}
    rows = []
    for other in ("C4", "Alpaca-CoT", "Alpaca (2nd sample)"):
        mmd2, p = mmd_test(vectors["Alpaca"], vectors[other], args.permutations)
        auc = classifier_auc(vectors["Alpaca"], vectors[other])
        rows.append({"a": "Alpaca", "b": other, "mmd2": mmd2, "mmd_p": p, "auc": auc, "band": shift_band(auc)[0],
                     "ppl_a": ppl["Alpaca"], "ppl_b": ppl[other]})
    print(f"{args.sample} records per side (MiniLM), perplexity: SmolLM2-135M median over {args.ppl_sample}")
    print(render_table(["pair", "MMD^2", "p", "AUC", "band", "ppl Alpaca", "ppl other"],
                       [[f"{r['a']} vs {r['b']}", f"{r['mmd2']:.4f}", f"{r['mmd_p']:.3g}", f"{r['auc']:.3f}", r["band"],
                         f"{r['ppl_a']:.1f}", f"{r['ppl_b']:.1f}"] for r in rows]))
    out = ROOT / "bench" / "results" / "shift.json"
    out.write_text(json.dumps({"sample": args.sample, "ppl_sample": args.ppl_sample, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
