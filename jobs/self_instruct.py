"""Self-instruct: new instruction data from seed tasks, filtered, written round by round to Delta.

The loop runs on the driver (``udfs/self_instruct/loop.py``): completions come from a local model
or an OpenAI-compatible endpoint, every finished request is journaled, and each round replaces its
own rows (``round = r``) in four tables under ``self_instruct.out``: ``tasks`` (the machine pool,
one row per kept task with its instances), ``records`` (canonical SFT records, one per instance,
what export reads), ``dropped`` (every candidate instruction that went, with the filter, its score
and the instruction it resembles) and ``rounds`` (per-round counts; written last, it marks a round
done). A run continues after the last finished round, so a crash costs at most one round's
unjournaled requests. Candidates per round = kept + dropped; unusable seed lines go to rejects.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError, SamplingSection, SelfInstructSection
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows
from udfs.generate.backends import Backend, Sampling
from udfs.generate.journal import Journal
from udfs.ingest.formats import canonical_fields, resolve_fields
from udfs.schema import DROPPED_SCHEMA, RECORD_SCHEMA, REJECT_SCHEMA
from udfs.self_instruct.filters import DEFAULT_RULES, Rules
from udfs.self_instruct.loop import Loop, Round, Settings, Task
from udfs.self_instruct.prompts import Seed
from udfs.self_instruct.rouge import InstructionPool

REJECTS_TABLE = "bronze/rejects"
STAGE = "self_instruct"
INSTANCE = pa.struct([("input", pa.string()), ("output", pa.string())])
TASK_SCHEMA = pa.schema([("task_id", pa.string()), ("round", pa.int64()), ("instruction", pa.string()),
                         ("is_classification", pa.bool_()), ("instances", pa.list_(INSTANCE)),
                         ("rouge_l", pa.float64()), ("nearest", pa.string())])
ROUND_SCHEMA = pa.schema([("round", pa.int64()), ("run_id", pa.string()), ("prompts", pa.int64()),
                          ("requests", pa.int64()), ("failed_requests", pa.int64()), ("candidates", pa.int64()),
                          ("kept", pa.int64()), ("drops", pa.map_(pa.string(), pa.int64()))])
SEED_DDL = ("id string, instruction string, is_classification boolean, "
            "instances array<struct<input:string,output:string>>, _corrupt_record string")


@dataclass(frozen=True)
class SelfInstructResult:
    rounds: list[Round]
    kept_before: int
    seeds: int
    rejects: Commit
    outputs: list[Commit]

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        rows = [[r.round, r.requests, r.failed, r.candidates, len(r.kept),
                 ", ".join(f"{k} {v}" for k, v in sorted(r.drop_counts().items()))] for r in self.rounds]
        kept = self.kept_before + sum(len(r.kept) for r in self.rounds)
        return (render_table(["round", "requests sent", "failed", "candidates", "kept", "dropped by filter"], rows)
                + f"\n{self.seeds} seed tasks ({self.rejects.rows} seed lines rejected); {kept} tasks kept in all")

    def summary(self, seconds: float) -> StageSummary:
        kept = sum(len(r.kept) for r in self.rounds)
        dropped = sum(len(r.dropped) for r in self.rounds)
        return StageSummary(STAGE, kept + dropped, kept, dropped, 0, [*self.outputs, self.rejects], seconds)


def read_seeds(spark: SparkSession, path: str) -> tuple[list[Seed], DataFrame]:
    """Seed tasks, and REJECT_SCHEMA rows for lines that are not JSON or have no instruction."""
    where = path if "://" in path else str(Path(path).expanduser())
    rows = (spark.read.schema(SEED_DDL).option("mode", "PERMISSIVE").json(where)
            .withColumn("source_file", F.input_file_name())
            .withColumn("reason", F.when(F.col("_corrupt_record").isNotNull(), "self_instruct: seed line is not a JSON object")
                        .when(F.trim(F.coalesce("instruction", F.lit(""))) == "", "self_instruct: seed has no instruction"))
            .localCheckpoint(eager=True))
    seeds = [Seed(r.id or f"seed_{i}", r.instruction.strip(), bool(r.is_classification),
                  tuple((x.input or "", x.output or "") for x in r.instances or [] if x.output))
             for i, r in enumerate(rows.where(F.col("reason").isNull()).orderBy("source_file", "id").collect())]
    bad = rows.where(F.col("reason").isNotNull()).select(
        F.lit(STAGE).alias("stage"), F.lit("seeds").alias("source"), F.col("id").alias("doc_id"), "source_file",
        F.lit(None).cast("long").alias("source_line"), "reason",
        F.substring(F.coalesce("_corrupt_record", F.to_json(F.struct("id", "instruction"))), 1, 200).alias("raw_snippet"))
    return seeds, bad.select(*REJECT_SCHEMA.names)


def pool_instructions(spark: SparkSession, cfg: Config, name: str) -> list[str]:
    """A lake table's SFT prompts, or a JSON / JSON-lines file's ``instruction`` field."""
    if DeltaTable.isDeltaTable(spark, cfg.table(name)):
        frame = spark.read.format("delta").load(cfg.table(name))
        column = "prompt"
    else:
        where = name if "://" in name else str(Path(name).expanduser())
        frame = spark.read.option("multiLine", name.endswith(".json")).json(where)
        column = "instruction"
    if column not in frame.columns:
        raise ConfigError(f"self_instruct.pool: {name} has no {column} column")
    return [r[0] for r in frame.where(F.col(column).isNotNull()).select(column).collect()]


def backend(s: SelfInstructSection, cfg: Config) -> Backend:
    b = s.backend
    if b.kind == "openai":
        from udfs.generate.http import OpenAICompatible

        return OpenAICompatible(b.base_url, b.model, b.chat, b.api_key_env, b.timeout_s, b.max_retries,
                                concurrency=b.concurrency, requests_per_minute=b.requests_per_minute)
    from udfs.generate.local import LocalModel

    return LocalModel(b.model, cfg.perplexity.cache_dir, b.batch_size)


def rules(s: SelfInstructSection) -> Rules:
    base = DEFAULT_RULES[s.language]
    return Rules(s.min_words or base.min_words, s.max_words or base.max_words,
                 tuple(base.blacklist if s.blacklist is None else s.blacklist),
                 tuple(base.banned_prefixes if s.banned_prefixes is None else s.banned_prefixes), base.start)


def settings(s: SelfInstructSection) -> Settings:
    def sampling(x: SamplingSection, stop: tuple[str, ...] = ()) -> Sampling:
        return Sampling(x.max_new_tokens, x.temperature, x.top_p, stop)
    return Settings(s.language, s.prompts_per_round, s.human_examples, s.machine_examples, s.classification_shots,
                    s.instance_shots, s.max_instance_chars, s.seed,
                    sampling(s.instructions, Settings.instructions.stop), sampling(s.classification), sampling(s.instances))


def journal_path(cfg: Config) -> str:
    s = cfg.self_instruct
    return s.journal or f"~/.cache/refinery/journal/{hashlib.sha256(cfg.table(s.out).encode()).hexdigest()[:16]}.jsonl"


def finished(spark: SparkSession, cfg: Config) -> tuple[int, list[Task]]:
    """The next round to run and the tasks kept by finished rounds (a round is finished once its
    ``rounds`` row is written; rows of a round that died half-written are replaced when it re-runs)."""
    s = cfg.self_instruct
    rounds, tasks = cfg.table(f"{s.out}/rounds"), cfg.table(f"{s.out}/tasks")
    if not DeltaTable.isDeltaTable(spark, rounds):
        return 0, []
    last = spark.read.format("delta").load(rounds).agg(F.max("round")).first()[0]
    if last is None:
        return 0, []
    rows = spark.read.format("delta").load(tasks).where(F.col("round") <= last).orderBy("round", "task_id").collect()
    return last + 1, [Task(r.task_id, r.round, r.instruction, r.is_classification,
                           tuple((x.input, x.output) for x in r.instances), r.rouge_l, r.nearest) for r in rows]


def record_rows(tasks: list[Task]) -> pa.Table:
    """Canonical SFT records, one per instance (Alpaca's instruction / input / output mapping)."""
    fields = resolve_fields("alpaca", {})
    rows = []
    for t in tasks:
        for i, (inp, out) in enumerate(t.instances):
            raw = {"instruction": t.instruction, "input": inp, "output": out, "task_id": t.task_id,
                   "is_classification": t.is_classification}
            rows.append({**canonical_fields(raw, "alpaca", fields), "source": STAGE, "round": t.round,
                         "doc_id": hashlib.blake2b(f"{STAGE}\x1f{t.task_id}\x1f{i}".encode(), digest_size=16).hexdigest()})
    return pa.Table.from_pylist(rows, RECORD_SCHEMA.append(pa.field("round", pa.int64())))


def write_round(spark: SparkSession, cfg: Config, stats: Round, run: RunInfo) -> list[Commit]:
    s, r = cfg.self_instruct, stats.round
    tasks = pa.Table.from_pylist([{"task_id": t.task_id, "round": r, "instruction": t.instruction,
                                   "is_classification": t.is_classification,
                                   "instances": [{"input": i, "output": o} for i, o in t.instances],
                                   "rouge_l": t.rouge_l, "nearest": t.nearest} for t in stats.kept], TASK_SCHEMA)
    dropped = pa.Table.from_pylist(
        [{"stage": STAGE, "source": STAGE, "doc_id": d.task_id, "reason": d.reason, "reasons": [d.reason],
          "value": d.value, "threshold": s.rouge_threshold if d.reason == "rouge_l" else None, "duplicate_of": d.nearest,
          "round": r, "instruction": d.instruction} for d in stats.dropped],
        DROPPED_SCHEMA.append(pa.field("round", pa.int64())).append(pa.field("instruction", pa.string())))
    rounds = pa.Table.from_pylist([{"round": r, "run_id": run.run_id, "prompts": stats.prompts, "requests": stats.requests,
                                    "failed_requests": stats.failed, "candidates": stats.candidates,
                                    "kept": len(stats.kept), "drops": list(stats.drop_counts().items())}], ROUND_SCHEMA)
    predicate = f"round = {r}"
    return [replace_rows(spark.createDataFrame(table), cfg.table(f"{s.out}/{name}"), predicate, run, [])
            for name, table in (("tasks", tasks), ("records", record_rows(stats.kept)), ("dropped", dropped),
                                ("rounds", rounds))]  # rounds last: it marks the round finished


def run(spark: SparkSession, cfg: Config, run_id: str) -> SelfInstructResult:
    s = cfg.self_instruct
    if not s.seeds:
        raise ConfigError("self_instruct.seeds is required: a JSON-lines file of seed tasks")
    run_info = RunInfo(run_id, STAGE, cfg.section_hash("self_instruct"))
    seeds, bad = read_seeds(spark, s.seeds)
    rejects = replace_rows(bad, cfg.table(REJECTS_TABLE), f"stage = '{STAGE}'", run_info, ["stage", "source"])
    if not seeds:
        raise ConfigError(f"self_instruct.seeds: {s.seeds} holds no usable seed task")
    pool = InstructionPool(s.rouge_threshold, s.lsh_threshold, seed=s.seed)
    pool.add([x.instruction for x in seeds], [x.task_id for x in seeds])
    for name in s.pool:
        texts = pool_instructions(spark, cfg, name)
        pool.add(texts, [f"{name}#{i}" for i in range(len(texts))])
    start, machine = finished(spark, cfg)
    pool.add([t.instruction for t in machine], [t.task_id for t in machine])
    loop = Loop(seeds, pool, rules(s), backend(s, cfg), Journal(journal_path(cfg)), settings(s), list(machine))
    rounds: list[Round] = []
    outputs: list[Commit] = []
    for r in range(start, start + s.max_rounds):
        if len(loop.machine) >= s.target:
            break
        stats = loop.run_round(r)
        if stats.requests and stats.failed == stats.requests:
            raise RuntimeError(f"round {r}: every one of {stats.requests} generation requests failed; "
                               f"is the back-end ({loop.backend.identity}) up? Finished requests are journaled")
        outputs = write_round(spark, cfg, stats, run_info)
        rounds.append(stats)
        print(f"self_instruct round {r}: {len(stats.kept)} kept of {stats.candidates} candidates "
              f"({len(loop.machine)}/{s.target})", flush=True)
    return SelfInstructResult(rounds, len(machine), len(seeds), rejects, outputs)


if __name__ == "__main__":  # spark-submit jobs/self_instruct.py --config ...
    from refinery.cli import main

    sys.exit(main(["self_instruct", *sys.argv[1:]]))
