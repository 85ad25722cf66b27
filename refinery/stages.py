"""What each stage reads and writes, from the config: the edges of the pipeline DAG, and what a
re-run compares to decide whether a stage's output is still current.

A stage reads lake tables (``dedup/kept``) and outside locations (raw files, a reference text, a
model folder); it owns the lake tables it writes (``bronze/rejects`` is shared: every stage
replaces only its own rows there, so it is no stage's output) and may write folders outside the
lake (exports, models, reports). One stage runs after another when it reads something the other
writes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from refinery.config import Config

Names = Callable[["Config"], list[str]]


@dataclass(frozen=True)
class Stage:
    name: str
    section: str  # the config section whose hash a commit records
    reads: Names  # lake tables, or locations outside the lake (``file:`` prefixed when always one)
    writes: Names  # lake tables it owns, or folders outside the lake (``file:`` prefixed)


FILE = "file:"


def file(path: str | None) -> list[str]:
    return [FILE + path] if path else []


def optional(name: str | None) -> list[str]:
    """A setting that may name a lake table or a file (``shift.reference``, ``adversarial.trusted``):
    it is read as a table when a stage writes it or the lake has it, as the jobs do."""
    return [name] if name else []


def _select_reads(cfg: "Config") -> list[str]:
    s = cfg.select
    vectors = (s.semdedup.enabled or s.onepass.enabled or s.kcenter.enabled
               or (s.neighbors.enabled and s.neighbors.backend == "embedding"))
    return [s.input, *([s.embeddings] if vectors else []), *file(s.domain.target if s.domain.enabled else None)]


def _select_writes(cfg: "Config") -> list[str]:
    s = cfg.select
    methods = [m for m in ("neighbors", "semdedup", "onepass", "kcenter", "balance", "domain") if getattr(s, m).enabled]
    return [f"select/{m}" for m in methods] + ["select/dropped"]


def _reward_models(cfg: "Config") -> list[str]:
    r = cfg.reward
    if r.pairwise_model or r.pointwise_model:
        return file(r.pairwise_model) + file(r.pointwise_model)
    return file(r.out)


def _report_reads(cfg: "Config") -> list[str]:
    """The tables every other listed stage writes: the report comes after them and is current
    while they are."""
    return [name for stage in cfg.pipeline.stages if stage != "report"
            for name in STAGES[stage].writes(cfg) if not name.startswith(FILE)]


# The state tables (``bronze/files``, ``dedup/fingerprints``, ``dedup/candidates``) are outputs only
# with ``pipeline.incremental``: a run without it leaves them stale and its ledger row does not
# list them, so the next incremental run cannot take them for current and runs in full.

# Stages that run on their own, never inside `refinery run`: each run of them is a new round
# (more generated tasks, a new annotation batch), not a function of its inputs to re-check.
STANDALONE = ("self_instruct", "active_learning")

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("ingest", "ingest", lambda c: [FILE + src.path for src in c.ingest.sources], lambda c: ["bronze/docs", *(["bronze/files"] if c.pipeline.incremental else [])]),
    Stage("dedup", "dedup", lambda c: [c.dedup.input],
          lambda c: ["dedup/kept", "dedup/clusters", "dedup/dropped",
                     *(["dedup/fingerprints", "dedup/candidates"] if c.pipeline.incremental else [])]),
    Stage("quality", "quality", lambda c: [c.quality.input],
          lambda c: ["quality/signals", "quality/kept", "quality/dropped"]),
    Stage("embed", "embed", lambda c: [c.embed.input], lambda c: ["scored/embeddings"]),
    Stage("perplexity", "perplexity", lambda c: [c.perplexity.input, *file(c.perplexity.reference)],
          lambda c: ["scored/perplexity"]),
    Stage("select", "select", _select_reads, _select_writes),
    Stage("train_reward", "reward", lambda c: [c.reward.input], lambda c: file(c.reward.out)),
    Stage("score_reward", "reward", lambda c: [c.reward.score_input, *_reward_models(c)], lambda c: ["scored/reward"]),
    Stage("adversarial_filter", "adversarial", lambda c: [c.adversarial.pool, *optional(c.adversarial.trusted)],
          lambda c: ["adversarial/kept", "adversarial/dropped", "adversarial/rounds"]),
    Stage("export", "export", lambda c: [c.export.input, *optional(c.export.only)],
          lambda c: file(f"{c.export.out.rstrip('/')}/{c.export.name}")),
    Stage("shift_report", "shift", lambda c: [c.shift.finetune, *optional(c.shift.reference)], lambda c: file(c.shift.out)),
    Stage("report", "report", _report_reads, lambda c: file(c.report.out)),
)}

# A stage whose job module has another name: jobs/select.py would shadow Python's own ``select``
# module for every ``spark-submit jobs/<stage>.py`` (the script's folder comes first on sys.path).
JOB_MODULES = {"select": "selection"}


def run_stage(stage: str, spark, cfg: "Config", run_id: str):
    """Run one stage's job; jobs import lazily so a stage's heavy dependencies load only when used."""
    return importlib.import_module(f"jobs.{JOB_MODULES.get(stage, stage)}").run(spark, cfg, run_id)
