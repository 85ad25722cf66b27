"""Train the reward model (``reward.objective: pairwise``, Bradley-Terry on preference pairs) or
the quality classifier (``pointwise``: good vs bad, from the records' labels or from a trusted set
against automatic negatives) on the driver or its GPU, and measure it on held-out prompts (by hash)
against the length heuristic and a distributed TF-IDF + logistic-regression baseline.

Writes the model folder ``<reward.out>/<objective>`` (model, tokenizer, ``refinery_reward.json``
with the settings and metrics); unusable rows (chosen equals rejected, empty responses, labels
outside true / false) go to ``bronze/rejects``. in = used + left out (over ``max_train``) + rejected.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from refinery.config import Config, ConfigError
from refinery.frames import read_input, reconcile, rejected_rows, table_or_file
from refinery.reward import baseline
from refinery.reward.examples import collect, labelled, pairs
from refinery.reward.models import training
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows
from udfs.reward.metrics import auc_by_group, length_accuracy, pairwise_accuracy
from udfs.reward.model import ModelError, resolve_backbone, rewards, save, train_pairwise, train_pointwise
from udfs.schema import REJECT_SCHEMA

STAGE = "train_reward"
REJECTS_TABLE = "bronze/rejects"


@dataclass(frozen=True)
class TrainRewardResult:
    objective: str
    folder: str
    metrics: dict
    records_in: int
    used: int
    left_out: int
    rejects: Commit

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        m = self.metrics
        if self.objective == "pairwise":
            rows = [["reward model", m["heldout_accuracy"]], ["TF-IDF + logistic regression", m["tfidf_accuracy"]],
                    ["length (longer wins)", m["length_accuracy"]]]
            table = render_table(["held-out pairwise accuracy", "value"], [[n, f"{v:.3f}"] for n, v in rows])
        else:
            groups = sorted(m["auc"])
            table = render_table(["ROC-AUC", *groups], [["quality classifier", *(f"{m['auc'][g]:.3f}" for g in groups)],
                                                        ["TF-IDF + LR", *(f"{m['tfidf_auc'].get(g, float('nan')):.3f}" for g in groups)]])
        return f"{table}\ntrain {m['train']}, held out {m['heldout']}; saved {self.folder}"

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary(STAGE, self.records_in, self.used, self.left_out, self.rejects.rows, [self.rejects], seconds)


def other_language_texts(spark: SparkSession, cfg: Config) -> list[str]:
    """Texts for wrong_language negatives: a lake table's, or a text file's."""
    path = cfg.reward.pointwise.other_language
    if not path:
        return []
    frame = table_or_file(spark, cfg.table(path), path, "other_language")
    return [r.text for r in frame.select("text").limit(10_000).collect() if r.text]


def run(spark: SparkSession, cfg: Config, run_id: str) -> TrainRewardResult:
    r = cfg.reward
    try:
        backbone = resolve_backbone(r.backbone, r.allow_download)
    except ModelError as exc:
        raise ConfigError(f"reward.backbone: {exc}") from None
    docs, usable, version = read_input(spark, cfg.table(r.input), r.input, STAGE,
                                       needed=("kind", "messages", "chosen", "rejected", "meta"))
    run_info = RunInfo(run_id, STAGE, cfg.section_hash("reward"), {r.input: version})
    kind = "preference" if r.objective == "pairwise" else "sft"
    rows, left_out = collect(docs.where(usable), kind, r.max_train, r.seed)
    if r.objective == "pairwise":
        examples, bad = pairs(rows, r.heldout)
    else:
        p = r.pointwise
        examples, bad = labelled(rows, r.heldout, p.label_field if p.labels == "meta" else None, p.negatives, r.seed,
                                 other_language_texts(spark, cfg))
    train, test = examples.split(False), examples.split(True)
    if len(train) < 2 or len(test) < 1:
        raise ConfigError(f"reward.input: {len(train)} training and {len(test)} held-out {kind} examples; "
                          "need at least 2 and 1 (check reward.objective and the table's kinds)")
    started = time.monotonic()
    settings = training(cfg)
    metrics: dict = {"train": len(train), "heldout": len(test), "input": cfg.table(r.input), "input_version": version}
    if r.objective == "pairwise":
        model, tokenizer, losses = train_pairwise(backbone, train.prompts, train.responses, train.others, settings,
                                                  r.allow_download)
        chosen = rewards(model, tokenizer, test.prompts, test.responses, r.max_length)
        rejected = rewards(model, tokenizer, test.prompts, test.others, r.max_length)
        metrics |= {"heldout_accuracy": pairwise_accuracy(chosen, rejected),
                    "length_accuracy": length_accuracy(test.responses, test.others),
                    "tfidf_accuracy": baseline.pairwise_accuracy(spark, train, test, r.baseline_features)}
    else:
        model, tokenizer, losses = train_pointwise(backbone, train.prompts, train.responses, train.labels, settings,
                                                   r.allow_download)
        scores = rewards(model, tokenizer, test.prompts, test.responses, r.max_length)
        metrics |= {"auc": auc_by_group(scores, test.labels, test.groups),
                    "tfidf_auc": auc_by_group(baseline.pointwise_probabilities(spark, train, test, r.baseline_features),
                                              test.labels, test.groups)}
    metrics |= {"losses": losses, "train_seconds": time.monotonic() - started}
    folder = save(model, tokenizer, Path(r.out).expanduser() / r.objective, r.objective, backbone, settings, metrics)
    rejects_frame = rejected_rows(docs.where(~usable), STAGE)
    if bad:
        frame = spark.createDataFrame([(STAGE, row.source, row.doc_id, None, None, f"{STAGE}: {why}", None) for row, why in bad],
                                      rejects_frame.schema)
        rejects_frame = rejects_frame.unionByName(frame)
    rejects = replace_rows(rejects_frame.select(*REJECT_SCHEMA.names), cfg.table(REJECTS_TABLE), f"stage = '{STAGE}'",
                           run_info, ["stage", "source"])
    records_in = docs.where(~usable | (docs.kind == kind)).count()
    used = len(rows) - len(bad)
    reconcile(records_in, {"used": used, "left out": left_out, "rejected": rejects.rows}, ConfigError)
    return TrainRewardResult(r.objective, str(folder), metrics, records_in, used, left_out, rejects)


if __name__ == "__main__":  # spark-submit jobs/train_reward.py --config ...
    from refinery.cli import main

    sys.exit(main(["train_reward", *sys.argv[1:]]))
