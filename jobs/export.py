"""Export stage: curated Delta records -> the files fine-tuning reads, with a dataset card.

``udfs/export`` maps each record (``sft`` and ``preference`` kinds) to the TRL / LLaMA-Factory
formats: SFT ``messages`` and ``prompt``/``completion``, reward-model ``prompt``/``chosen``/``rejected``,
RL prompts (the SFT prompts, deduplicated, length-capped). Splits come from a hash of the prompt,
so no prompt crosses splits. Each format is written as Parquet and JSON lines, one folder per split,
into a staging folder that replaces ``<out>/<name>`` only when every file and the card are written:
a reader never sees half an export. Records that cannot be mapped (no prompt, empty answer, broken
turn order, chosen equal to rejected) are rejects with the reason. in = exported + rejected.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError
from refinery.frames import read_input, reconcile, rejected_rows
from refinery.summary import StageSummary, render_table
from refinery.exports import card_markdown, replace_folder, write_text
from refinery.tables import Commit, RunInfo, latest_version, replace_rows
from udfs.export.batches import ROWS, ExportPlan, export_rows

REJECTS_TABLE = "bronze/rejects"
COLUMNS = {  # the columns each format's files hold (file name: mapped column), as TRL names them
    "sft_messages": {"messages": "messages"},
    "sft_prompt_completion": {"prompt": "prompt", "completion": "completion"},
    "reward": {"prompt": "prompt_turns", "chosen": "chosen", "rejected": "rejected"},
    "rl": {"prompt": "prompt_turns"},
}
PRIMARY = ("sft_messages", "reward")  # every mapped record has exactly one row of one of these


@dataclass(frozen=True)
class ExportResult:
    records_in: int
    folder: str
    counts: list[list[object]]  # [format, split, rows, tokens]
    left_out: list[list[object]]  # [format, why, rows]
    rejects: Commit

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        return (f"wrote {self.folder}\n" + render_table(["format", "split", "rows", "tokens"], self.counts)
                + ("\nleft out of a format:\n" + render_table(["format", "why", "rows"], self.left_out) if self.left_out else ""))

    def summary(self, seconds: float) -> StageSummary:
        exported = sum(r[2] for r in self.counts if r[0] in PRIMARY)
        return StageSummary("export", self.records_in, exported, self.records_in - exported - self.rejects.rows,
                            self.rejects.rows, [self.rejects], seconds)


def plan_for(cfg: Config) -> ExportPlan:
    e = cfg.export
    targets = tuple([f"sft_{s}" for s in e.sft] + (["reward"] if e.reward else []) + (["rl"] if e.rl else []))
    if not targets:
        raise ConfigError("export: nothing to export (export.sft is empty and export.reward / export.rl are false)")
    counter = None if e.tokenizer == "none" else e.tokenizer
    if (e.tokenizer != "none" or e.chat_template) and importlib.util.find_spec("transformers") is None:
        raise ConfigError("export.tokenizer / export.chat_template need the ml extra (transformers); "
                          "install it, or set export.tokenizer: none and no chat_template")
    if e.tokenizer is None:
        from udfs.models.loading import default_causal_lm  # the bundled SmolLM2's tokenizer

        counter = default_causal_lm(cfg.perplexity.cache_dir)
    return ExportPlan(targets, e.splits, e.system_prompt, e.chat_template, counter, e.rl_max_prompt_tokens)


def deduplicated_prompts(mapped: DataFrame) -> DataFrame:
    """RL rows whose prompt key repeats an earlier (lower doc_id) one are left out, naming it."""
    rl = mapped.where((F.col("target") == "rl") & F.col("problem").isNull())
    keeper = rl.groupBy("key").agg(F.min("doc_id").alias("_keeper"))
    duplicate = F.when((F.col("target") == "rl") & F.col("problem").isNull() & (F.col("doc_id") != F.col("_keeper")),
                       F.lit("duplicate prompt (a lower doc_id has it)")).otherwise(F.col("problem"))
    return mapped.join(keeper, "key", "left").withColumn("problem", duplicate).drop("_keeper")


def run(spark: SparkSession, cfg: Config, run_id: str) -> ExportResult:
    e = cfg.export
    plan = plan_for(cfg)
    docs, usable, version = read_input(spark, cfg.table(e.input), e.input, "export", error=ConfigError,
                                       needed=("kind", "prompt", "response", "messages", "chosen", "rejected"),
                                       needed_by="the export formats")
    inputs = {e.input: version}
    if e.only:
        only = cfg.table(e.only)
        inputs[e.only] = latest_version(spark, only)
        docs = docs.join(spark.read.format("delta").option("versionAsOf", inputs[e.only]).load(only).select("doc_id"),
                         "doc_id", "left_semi")
    run_info = RunInfo(run_id, "export", cfg.section_hash("export"), inputs)
    docs = docs.where(F.col("kind").isin("sft", "preference"))
    mapped = (docs.where(usable).select("doc_id", "source", "kind", "prompt", "response", "messages", "chosen", "rejected")
              .mapInPandas(export_rows(plan), ROWS))
    mapped = deduplicated_prompts(mapped.localCheckpoint(eager=True)).localCheckpoint(eager=True)
    good = mapped.where(~F.col("reject") & F.col("problem").isNull())

    folder = f"{e.out.rstrip('/')}/{e.name}"
    staging = f"{e.out.rstrip('/')}/.{e.name}.{run_id}.staging"
    for target in plan.targets:
        columns = [F.col(column).alias(name) for name, column in COLUMNS[target].items()]
        rows = good.where(F.col("target") == target).select(*columns, "doc_id", "source", "split")
        for file_format in e.file_formats:
            writer = rows.write.mode("overwrite").partitionBy("split")
            (writer.parquet if file_format == "parquet" else writer.json)(f"{staging}/{file_format}/{target}")
    counts = [[r.target, r.split, r.rows, int(r.tokens) if r.tokens is not None else None] for r in
              good.groupBy("target", "split").agg(F.count(F.lit(1)).alias("rows"), F.sum("tokens").alias("tokens"))
              .orderBy("target", "split").collect()]
    left_out = [[r.target, r.problem, r["count"]] for r in mapped.where(~F.col("reject") & F.col("problem").isNotNull())
                .groupBy("target", "problem").count().orderBy("target", "problem").collect()]
    bad = mapped.where(F.col("reject"))
    rejects_frame = rejected_rows(docs.where(~usable), "export").unionByName(
        bad.select(F.lit("export").alias("stage"), "source", "doc_id", F.lit(None).cast("string").alias("source_file"),
                   F.lit(None).cast("long").alias("source_line"), F.col("problem").alias("reason"),
                   F.lit(None).cast("string").alias("raw_snippet")))
    reasons = [[r.reason, r["count"]] for r in rejects_frame.groupBy("reason").count().orderBy("reason").collect()]
    card = {"name": e.name, "run_id": run_id, "input": {"table": cfg.table(e.input), "delta_version": version},
            "only": {"table": cfg.table(e.only), "delta_version": inputs[e.only]} if e.only else None,
            "splits": e.splits, "file_formats": e.file_formats, "tokenizer": plan.counter,
            "chat_template": e.chat_template, "system_prompt": e.system_prompt,
            "counts": [dict(zip(["format", "split", "rows", "tokens"], c)) for c in counts],
            "left_out": [dict(zip(["format", "why", "rows"], r)) for r in left_out],
            "rejected": [dict(zip(["reason", "rows"], r)) for r in reasons],
            "sources": [{"name": s.name, "format": s.format, "license": s.license} for s in cfg.ingest.sources],
            "filters": {"dedup": cfg.dedup.model_dump(mode="json"), "quality": cfg.quality.model_dump(mode="json")}}
    write_text(spark, f"{staging}/card.json", json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    write_text(spark, f"{staging}/README.md", card_markdown(card, plan.targets))
    rejects = replace_rows(rejects_frame, cfg.table(REJECTS_TABLE), "stage = 'export'", run_info, ["stage", "source"])
    records_in = docs.count()
    primary = sum(r[2] for r in counts + left_out if r[0] in PRIMARY)  # exported, or kept out of its format
    reconcile(records_in, {"exported": primary, "rejected": rejects.rows})  # before the swap: a failed check publishes nothing
    replace_folder(spark, staging, folder)
    return ExportResult(records_in, folder, counts, left_out, rejects)


if __name__ == "__main__":  # spark-submit jobs/export.py --config ...
    from refinery.cli import main

    sys.exit(main(["export", *sys.argv[1:]]))
