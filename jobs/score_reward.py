"""Score records with the trained reward model and / or quality classifier: ``scored/reward``
with ``reward_score`` (the response's, or a preference record's chosen answer's), ``reward_margin``
(chosen minus rejected) and ``quality_prob``.

The model folders are shipped to the executors with ``SparkContext.addFile`` (so a driver-local
folder works on a cluster), and each Python worker loads a model once and keeps it for every
later batch (``udfs/reward/model.load_scorer``), on its GPU when it has one. in = scored + rejected.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError
from refinery.frames import read_input, reconcile, rejected_rows, spread
from refinery.reward.models import scored
from refinery.summary import StageSummary
from refinery.tables import Commit, RunInfo, replace_rows
from udfs.reward.model import META

STAGE = "score_reward"
SCORES_TABLE = "scored/reward"
REJECTS_TABLE = "bronze/rejects"


@dataclass(frozen=True)
class ScoreRewardResult:
    records_in: int
    models: dict[str, str]
    scores: Commit
    rejects: Commit

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.models.items()) + f"; wrote {self.scores.rows} rows"

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary(STAGE, self.records_in, self.scores.rows, 0, self.rejects.rows, [self.scores, self.rejects], seconds)


def model_folder(configured: str | None, default: Path) -> str | None:
    folder = Path(configured).expanduser() if configured else default
    if (folder / META).is_file():
        return str(folder)
    if configured:
        raise ConfigError(f"{configured} is not a trained model folder (no {META}); run train_reward first")
    return None


def run(spark: SparkSession, cfg: Config, run_id: str) -> ScoreRewardResult:
    r = cfg.reward
    out = Path(r.out).expanduser()
    models = {"pairwise": model_folder(r.pairwise_model, out / "pairwise"),
              "pointwise": model_folder(r.pointwise_model, out / "pointwise")}
    models = {k: v for k, v in models.items() if v}
    if not models:
        raise ConfigError(f"no trained model under {out} (reward.out) and none configured "
                          "(reward.pairwise_model / pointwise_model); run train_reward first")
    docs, usable, version = read_input(spark, cfg.table(r.score_input), r.score_input, STAGE,
                                       needed=("kind", "messages", "chosen", "rejected"))
    run_info = RunInfo(run_id, STAGE, cfg.section_hash("reward"), {r.score_input: version})
    scorable = usable & F.col("kind").isin("sft", "preference") & (F.size("messages") > 0)
    frame = scored(cfg, spread(docs.where(scorable)), models.get("pairwise"), models.get("pointwise"))
    scores = replace_rows(frame, cfg.table(SCORES_TABLE), None, run_info, ["source"])
    reason = F.when(F.col("doc_id").isNotNull() & F.col("text").isNotNull(), F.lit(f"{STAGE}: not an sft or preference record"))
    rejects = replace_rows(rejected_rows(docs.where(~scorable), STAGE, reason), cfg.table(REJECTS_TABLE),
                           f"stage = '{STAGE}'", run_info, ["stage", "source"])
    records_in = docs.count()
    reconcile(records_in, {"scored": scores.rows, "rejected": rejects.rows})
    return ScoreRewardResult(records_in, models, scores, rejects)


if __name__ == "__main__":  # spark-submit jobs/score_reward.py --config ...
    from refinery.cli import main

    sys.exit(main(["score_reward", *sys.argv[1:]]))
