"""The ``reward`` section applied to the model code: training settings, and distributed scoring
with model folders shipped to the executors (``SparkContext.addFile``, so a driver-local folder
works on a cluster) and loaded once per Python worker."""
from __future__ import annotations

from pathlib import Path

from pyspark import SparkFiles
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from refinery.config import Config
from udfs.reward.model import Training
from udfs.reward.scoring import OUTPUT, score_batches


def training(cfg: Config) -> Training:
    r = cfg.reward
    return Training(r.epochs, r.learning_rate, r.batch_size, r.max_length, r.weight_decay, r.warmup_ratio, r.seed)


def scored(cfg: Config, records: DataFrame, pairwise: str | None, pointwise: str | None) -> DataFrame:
    """``OUTPUT`` rows (reward_score, reward_margin, quality_prob) for canonical sft / preference records."""
    spark = records.sparkSession
    for folder in (pairwise, pointwise):
        if folder:
            spark.sparkContext.addFile(folder, recursive=True)
    names = {k: Path(v).name if v else None for k, v in (("pairwise", pairwise), ("pointwise", pointwise))}
    batch, device = cfg.reward.score_batch_size, None if cfg.reward.device == "auto" else cfg.reward.device

    def score(frames):
        local = {k: SparkFiles.get(v) if v else None for k, v in names.items()}
        return score_batches(frames, local["pairwise"], local["pointwise"], batch, device)

    rows = records.select("doc_id", "source", "kind", F.to_json("messages").alias("messages_json"), "chosen", "rejected")
    return rows.mapInPandas(score, OUTPUT)
