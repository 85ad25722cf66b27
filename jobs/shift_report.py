"""Distribution-shift report: how far a fine-tuning set is from a reference sample of the base
model's pretraining distribution, which is what decides how much fine-tuning data is needed.

Seeded samples of both sides (at most ``shift.sample`` records each) reach the driver; on them:
the base model's perplexity (the perplexity stage's model and code), an MMD two-sample test on
sentence embeddings (the embed stage's model) with a permutation p-value, and the cross-validated
AUC of a classifier separating the two; then a plain-language reading whose bands are stated as
heuristics (``udfs/shift/reading.py``). Writes ``<out>/shift-<run_id>.md`` and ``.json``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError
from refinery.exports import write_text
from refinery.frames import table_or_file
from refinery.summary import StageSummary, render_table


@dataclass(frozen=True)
class ShiftResult:
    report: dict[str, Any]
    path: str

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        r = self.report
        rows = [["fine-tuning", r["finetune"]["rows"], r["finetune"].get("ppl_median")],
                ["reference", r["reference"]["rows"], r["reference"].get("ppl_median")]]
        return (render_table(["sample", "rows", "median perplexity"], rows)
                + f"\nMMD^2 {r['mmd2']:.4f} (p {r['mmd_p']:.3g}), classifier AUC {r['auc']:.3f}\n{r['reading']}\nwrote {self.path}")

    def summary(self, seconds: float) -> StageSummary:
        n = self.report["finetune"]["rows"] + self.report["reference"]["rows"]
        return StageSummary("shift_report", n, n, 0, 0, [], seconds)


def side(spark: SparkSession, cfg: Config, name: str, kinds: list[str] | None) -> DataFrame:
    """A lake table (records of ``kinds`` when it has a kind column), else a text file."""
    frame = table_or_file(spark, cfg.table(name), name, "reference")
    if kinds is not None and "kind" in frame.columns:
        frame = frame.where(F.col("kind").isin(kinds))
    return frame.select("doc_id", "text")


def sample_texts(frame: DataFrame, n: int, seed: int) -> list[str]:
    usable = frame.where(F.col("text").isNotNull() & (F.trim("text") != ""))
    # ordered by a hash of the text: a text file's line ids depend on how it is split into partitions
    return [r.text for r in usable.orderBy(F.xxhash64(F.lit(seed), "text"), "text").limit(n).collect()]


def run(spark: SparkSession, cfg: Config, run_id: str) -> ShiftResult:
    from udfs.models.embeddings import embed
    from udfs.models.loading import causal_lm, embedding_model
    from udfs.models.perplexity import perplexities
    from udfs.shift.reading import reading
    from udfs.shift.statistics import classifier_auc, mmd_test

    s = cfg.shift
    if not s.reference:
        raise ConfigError("shift.reference is required: a lake table or a text file of reference documents")
    if not DeltaTable.isDeltaTable(spark, cfg.table(s.finetune)):
        raise ConfigError(f"shift.finetune: table {cfg.table(s.finetune)} does not exist")
    texts = {"finetune": sample_texts(side(spark, cfg, s.finetune, s.kinds), s.sample, s.seed),
             "reference": sample_texts(side(spark, cfg, s.reference, None), s.sample, s.seed)}
    for name, values in texts.items():
        if len(values) < 2:
            raise ConfigError(f"shift.{name}: {len(values)} usable records; the statistics need at least 2 per side")
    encoder = embedding_model(cfg.embed.model)
    vectors = {k: embed(v, encoder, cfg.embed.batch_size) for k, v in texts.items()}
    mmd2, p_value = mmd_test(vectors["finetune"], vectors["reference"], s.permutations, s.seed)
    auc = classifier_auc(vectors["finetune"], vectors["reference"], seed=s.seed)
    report: dict[str, Any] = {"run_id": run_id, "finetune": {"source": s.finetune, "rows": len(texts["finetune"])},
                              "reference": {"source": s.reference, "rows": len(texts["reference"])},
                              "embedding_model": cfg.embed.model or "all-MiniLM-L6-v2 (bundled)",
                              "mmd2": mmd2, "mmd_p": p_value, "permutations": s.permutations, "auc": auc}
    ratio = None
    if s.ppl_sample:
        model, tokenizer = causal_lm(cfg.perplexity.model, cfg.perplexity.cache_dir)
        for name, values in texts.items():
            ppl, _ = perplexities(values[:s.ppl_sample], model, tokenizer, s.max_length, s.max_length // 2)
            report[name]["ppl_median"] = float(np.nanmedian(ppl))
        ratio = report["finetune"]["ppl_median"] / report["reference"]["ppl_median"]
        report["ppl_ratio"] = ratio
        report["base_model"] = cfg.perplexity.model or "SmolLM2-135M-Instruct (bundled)"
    report["reading"] = reading(auc, p_value, ratio)
    path = f"{s.out.rstrip('/')}/shift-{run_id}"
    write_text(spark, path + ".json", json.dumps(report, indent=2) + "\n")
    write_text(spark, path + ".md", markdown(report))
    return ShiftResult(report, path + ".md")


def markdown(r: dict[str, Any]) -> str:
    ppl = (f"| base-model perplexity (median) | {r['finetune'].get('ppl_median', float('nan')):.1f} | "
           f"{r['reference'].get('ppl_median', float('nan')):.1f} |\n") if "ppl_ratio" in r else ""
    return f"""# Distribution shift: {r['finetune']['source']} vs {r['reference']['source']}

| | fine-tuning | reference |
|---|---|---|
| records sampled | {r['finetune']['rows']} | {r['reference']['rows']} |
{ppl}
- MMD^2 on {r['embedding_model']} embeddings: {r['mmd2']:.4f}, permutation p = {r['mmd_p']:.3g} ({r['permutations']} permutations)
- Classifier two-sample AUC (logistic regression, 5-fold): {r['auc']:.3f}

{r['reading']}
"""


if __name__ == "__main__":  # spark-submit jobs/shift_report.py --config ...
    from refinery.cli import main

    sys.exit(main(["shift_report", *sys.argv[1:]]))
