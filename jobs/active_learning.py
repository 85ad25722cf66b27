"""Active learning, one annotation round per run.

1. **Import** (``active.labels``): JSON lines of ``{doc_id, label}`` merge into ``active/labels``
   (keyed by doc_id, the latest label wins); lines without a known doc_id or with a label outside
   good/bad go to ``bronze/rejects``.
2. **Retrain** once both classes are labelled: the pointwise quality classifier
   (``udfs/reward/model``) on the labels of training prompts, saved to
   ``<reward.out>/active/round=<r>``, with its ROC-AUC on the fixed held-out prompts (by hash) in
   ``active/rounds``; it scores the pool (distributed) for this round's uncertainty.
3. **Select**: records of ``active.input`` not yet sent for annotation whose uncertainty (entropy or
   margin of the current classifier's P(good), or perplexity rank) passes its bar AND whose quality
   (``active.quality`` from the scores table: an independent judge) passes its bar
   (each a quantile or an absolute value); the ``batch_size`` of them are spread with
   K-Center-Greedy on their embeddings. Written to ``active/batches`` and as files for annotators:
   ``batch.jsonl`` and Label Studio's task JSON with its labelling config.

Simulation (``active.oracle``: a meta field holding known labels, e.g. KTO's ``label``): the batch
is answered from the records themselves, so repeated runs draw a learning curve.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from refinery.config import Config, ConfigError
from refinery.exports import write_text
from refinery.reward.models import scored, training
from refinery.summary import StageSummary, render_table
from refinery.tables import RunInfo, replace_rows
from udfs.active.sampling import (LABEL_CONFIG, accepted, bar, binary_entropy, label_studio_tasks, margin,
                                  parse_label, rank_uncertainty, spread)
from udfs.reward.inputs import is_heldout, record_inputs
from udfs.reward.metrics import auc_by_group
from udfs.schema import REJECT_SCHEMA

STAGE = "active_learning"
REJECTS_TABLE = "bronze/rejects"


@dataclass(frozen=True)
class ActiveResult:
    round: int
    imported: int
    rejected: int
    labels: int
    metric: float | None
    candidates: int
    accepted: int
    batch: int
    folder: str

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        auc = "n/a" if self.metric is None else f"{self.metric:.3f}"
        return render_table(["round", "labels imported", "rejected", "labels in all", "held-out ROC-AUC", "candidates",
                             "uncertain and good enough", "batch"],
                            [[self.round, self.imported, self.rejected, self.labels, auc, self.candidates, self.accepted,
                              self.batch]]) + f"\nbatch files in {self.folder}"

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary(STAGE, self.candidates, self.batch, self.candidates - self.batch, 0, [], seconds)


def table(spark: SparkSession, cfg: Config, name: str) -> DataFrame | None:
    return spark.read.format("delta").load(cfg.table(name)) if DeltaTable.isDeltaTable(spark, cfg.table(name)) else None


def merge_labels(spark: SparkSession, cfg: Config, good: list[tuple[str, int, int]]) -> None:
    """(doc_id, label, round) into ``active/labels``: the latest label of a record wins."""
    target = cfg.table("active/labels")
    frame = spark.createDataFrame(good, "doc_id string, label int, round int").dropDuplicates(["doc_id"])
    if DeltaTable.isDeltaTable(spark, target):
        (DeltaTable.forPath(spark, target).alias("t").merge(frame.alias("s"), "t.doc_id = s.doc_id")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    else:
        frame.write.format("delta").save(target)


def import_labels(spark: SparkSession, cfg: Config, pool: DataFrame, r: int, run: RunInfo) -> tuple[int, int]:
    """Merge the labels file into ``active/labels``; (labels imported, lines rejected)."""
    path = cfg.active.labels
    where = path if "://" in path else str(Path(path).expanduser())
    rows = spark.read.text(where).where(F.trim("value") != "").collect()
    known = {x.doc_id for x in pool.select("doc_id").collect()}
    good, bad = [], []
    for i, row in enumerate(rows):
        try:
            item = json.loads(row.value)
            label = parse_label(item.get("label")) if isinstance(item, dict) else None
            problem = ("not a JSON object" if not isinstance(item, dict) else
                       "unknown doc_id" if item.get("doc_id") not in known else
                       f"label {item.get('label')!r} outside good/bad" if label is None else None)
        except json.JSONDecodeError:
            problem = "not JSON"
        if problem:
            bad.append((STAGE, "labels", None, path, i + 1, f"{STAGE}: {problem}", row.value[:200]))
        else:
            good.append((item["doc_id"], label, r))
    merge_labels(spark, cfg, good)
    rejects = spark.createDataFrame(bad, from_arrow_schema(REJECT_SCHEMA))
    replace_rows(rejects, cfg.table(REJECTS_TABLE), f"stage = '{STAGE}'", run, ["stage", "source"])
    return len(good), len(bad)


def retrain(spark: SparkSession, cfg: Config, pool: DataFrame, r: int) -> tuple[float | None, str | None]:
    """The quality classifier on the labels so far: (its held-out ROC-AUC, its folder); (None, None)
    until both classes are labelled."""
    from udfs.reward.model import rewards, save, train_pointwise

    labels = table(spark, cfg, "active/labels")
    rows = pool.join(labels, "doc_id").collect() if labels is not None else []
    if len({x.label for x in rows}) < 2:
        return None, None
    data = [(*record_inputs(x.kind, [m.asDict() for m in x.messages], x.chosen, x.rejected)[:2], x.label,
             is_heldout([m.asDict() for m in x.messages][:-1], cfg.active.heldout)) for x in rows]
    train = [d for d in data if not d[3]]
    test = [d for d in data if d[3]]
    rw, settings = cfg.reward, training(cfg)
    model, tokenizer, _ = train_pointwise(rw.backbone, [d[0] for d in train], [d[1] for d in train],
                                          [d[2] for d in train], settings, rw.allow_download)
    scores = rewards(model, tokenizer, [d[0] for d in test], [d[1] for d in test], rw.max_length)
    auc = auc_by_group(scores, [d[2] for d in test], ["labelled"] * len(test)).get("all")
    folder = save(model, tokenizer, Path(rw.out).expanduser() / "active" / f"round={r}", "pointwise",
                  rw.backbone or "MiniLM", settings, {"heldout_auc": auc, "train": len(train), "heldout": len(test)})
    return auc, str(folder)


def select(spark: SparkSession, cfg: Config, pool: DataFrame, model: str | None) -> tuple[list, int, int]:
    """(chosen rows, candidates considered, accepted by both bars). The uncertainty is the current
    round's classifier's (``model``) when there is one, else that of ``quality_prob`` in the scores
    table; the quality is always the scores table's (an independent judge)."""
    a = cfg.active
    scores = table(spark, cfg, a.scores)
    if scores is None or a.quality not in scores.columns:
        raise ConfigError(f"active.scores: {cfg.table(a.scores)} with a {a.quality} column is needed; run score_reward first")
    sent = table(spark, cfg, "active/batches")
    probs = (scored(cfg, pool, None, model) if model else scores).select("doc_id", F.col("quality_prob").alias("_p"))
    frame = pool.join(scores.select("doc_id", F.col(a.quality).alias("_quality")), "doc_id").join(probs, "doc_id", "left")
    if a.uncertainty == "perplexity":
        ppl = table(spark, cfg, "scored/perplexity")
        if ppl is None:
            raise ConfigError("active.uncertainty 'perplexity' needs scored/perplexity; run the perplexity stage")
        frame = frame.join(ppl.select("doc_id", "perplexity"), "doc_id")
    if sent is not None:
        frame = frame.join(sent.select("doc_id"), "doc_id", "left_anti")
    frame = frame.where(F.col("_quality").isNotNull())
    cols = ["doc_id", "_quality", "_p"] + (["perplexity"] if a.uncertainty == "perplexity" else [])
    rows = frame.select(*cols).collect()
    if not rows:
        return [], 0, 0
    quality = np.array([x._quality for x in rows], np.float64)
    if a.uncertainty == "perplexity":
        uncertainty = rank_uncertainty(np.array([x.perplexity for x in rows], np.float64))
    else:
        p = np.array([x._p if x._p is not None else 0.5 for x in rows], np.float64)
        uncertainty = binary_entropy(p) if a.uncertainty == "entropy" else margin(p)
    ranked = accepted(uncertainty, quality, bar(uncertainty, a.min_uncertainty, a.uncertainty_cut),
                      bar(quality, a.min_quality, a.quality_cut))[:a.max_candidates]
    vectors = None
    emb = table(spark, cfg, a.embeddings) if a.embeddings else None
    if emb is not None and len(ranked) > a.batch_size:
        ids = [rows[i].doc_id for i in ranked]
        got = {x.doc_id: x.embedding for x in emb.where(F.col("doc_id").isin(ids)).select("doc_id", "embedding").collect()}
        if all(i in got for i in ids):
            vectors = np.zeros((len(rows), len(next(iter(got.values())))))
            vectors[ranked] = np.array([got[i] for i in ids])
    chosen = spread(vectors, ranked, a.batch_size)
    picked = [(rows[i].doc_id, float(uncertainty[i]), float(quality[i]), k) for k, i in enumerate(chosen)]
    return picked, len(rows), len(ranked)


def run(spark: SparkSession, cfg: Config, run_id: str) -> ActiveResult:
    a = cfg.active
    if not DeltaTable.isDeltaTable(spark, cfg.table(a.input)):
        raise ConfigError(f"active.input: table {cfg.table(a.input)} does not exist")
    pool = spark.read.format("delta").load(cfg.table(a.input)).where(F.col("kind") == "sft")
    rounds = table(spark, cfg, "active/rounds")
    r = rounds.count() if rounds is not None else 0
    run_info = RunInfo(run_id, STAGE, cfg.section_hash("active"))
    imported, rejected = import_labels(spark, cfg, pool, r, run_info) if a.labels else (0, 0)
    metric, model = retrain(spark, cfg, pool, r)
    picked, candidates, n_accepted = select(spark, cfg, pool, model)
    batch = spark.createDataFrame([(r, *p) for p in picked],
                                  "round int, doc_id string, uncertainty double, quality double, pick int")
    replace_rows(batch, cfg.table("active/batches"), f"round = {r}", run_info, [])
    records = {x.doc_id: x for x in pool.join(batch.select("doc_id"), "doc_id").collect()}
    rows = []
    for doc_id, u, q, _ in picked:
        x = records[doc_id]
        prompt, response, _ = record_inputs(x.kind, [m.asDict() for m in x.messages], x.chosen, x.rejected)
        rows.append({"doc_id": doc_id, "prompt": prompt, "response": response, "uncertainty": u, "quality": q})
    folder = f"{a.out.rstrip('/')}/round={r}"
    write_text(spark, f"{folder}/batch.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows))
    write_text(spark, f"{folder}/label_studio_tasks.json", json.dumps(label_studio_tasks(rows), ensure_ascii=False, indent=1))
    write_text(spark, f"{folder}/label_config.xml", LABEL_CONFIG)
    if a.oracle:  # simulation: the records' own labels answer at once, the next run trains on them
        answers = [(d, parse_label(json.loads(records[d].meta or "{}").get(a.oracle)), r) for d, _, _, _ in picked]
        merge_labels(spark, cfg, [x for x in answers if x[1] is not None])
    labels = table(spark, cfg, "active/labels")
    n_labels = labels.count() if labels is not None else 0
    summary = spark.createDataFrame([(r, run_id, imported, rejected, n_labels, metric, candidates, n_accepted, len(picked))],
                                    "round int, run_id string, imported int, rejected int, labels long, heldout_auc double, "
                                    "candidates int, accepted int, batch int")
    replace_rows(summary, cfg.table("active/rounds"), f"round = {r}", run_info, [])
    return ActiveResult(r, imported, rejected, n_labels, metric, candidates, n_accepted, len(picked), folder)


if __name__ == "__main__":  # spark-submit jobs/active_learning.py --config ...
    from refinery.cli import main

    sys.exit(main(["active_learning", *sys.argv[1:]]))
