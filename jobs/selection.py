"""Selection stage: ``quality/kept`` (+ ``scored/embeddings``) -> ``select/<method>`` tables.

Which records a fine-tune should use, diversity first and relevance second; each method has its
own config section and table, and reads the same candidate pool (``refinery/selection/pool.py``):

- ``neighbors``: each record's top-k most similar records (TF-IDF, bag of words, or embeddings).
- ``semdedup``: semantic dedup inside KMeans clusters; drops go to ``select/dropped``.
- ``onepass``: leader clustering with a cosine threshold; deterministic cluster ids.
- ``kcenter``: K-Center-Greedy coreset of k records and its coverage radius.
- ``balance``: at most ``cap`` records per group (column, meta field, or one-pass cluster).
- ``domain``: relevance to a target-domain sample (DSIR or a TF-IDF classifier) and a subset.

Every record a method does not choose is a ``select/dropped`` row saying why; unusable records
(no text, no embedding) are rejects. Per method: pool = chosen + dropped, else the stage fails.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from refinery.config import Config, ConfigError
from refinery.frames import dropped_frame, reconcile
from refinery.selection.balance import balance, group_column
from refinery.selection.domain import domain
from refinery.selection.kcenter import kcenter
from refinery.selection.neighbors import neighbors
from refinery.selection.onepass import onepass
from refinery.selection.outputs import MethodResult, write_method
from refinery.selection.pool import STAGE, candidate_pool
from refinery.selection.semdedup import semdedup
from refinery.summary import StageSummary, render_table
from refinery.tables import Commit, RunInfo, replace_rows

REJECTS_TABLE = "bronze/rejects"
METHODS = ("neighbors", "semdedup", "onepass", "kcenter", "balance", "domain")


@dataclass(frozen=True)
class SelectResult:
    records_in: int
    pool: int
    methods: list[MethodResult]
    rejects: Commit
    balance: list[list[object]]  # [group, before, after] of the largest groups

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        lines = [f"{self.pool} selectable of {self.records_in} records ({self.rejects.rows} rejected)",
                 render_table(["method", "pool", "written", "dropped", "table", "note"], [m.row(self.pool) for m in self.methods])]
        if self.balance:
            lines.append("balance, largest groups:\n" + render_table(["group", "before", "after"], self.balance))
        return "\n".join(lines)

    def summary(self, seconds: float) -> StageSummary:
        outputs = [m.table for m in self.methods] + [m.dropped for m in self.methods if m.dropped]
        return StageSummary("select", self.records_in, self.pool, 0, self.rejects.rows, outputs, seconds)


def run(spark: SparkSession, cfg: Config, run_id: str) -> SelectResult:
    s = cfg.select
    enabled = [m for m in METHODS if getattr(s, m).enabled]
    if not enabled:
        raise ConfigError(f"select: no method enabled (set select.<method>.enabled for one of {', '.join(METHODS)})")
    pool = candidate_pool(spark, cfg)
    if s.balance.enabled and s.balance.by != "cluster":
        group_column(pool.records, s.balance.by)  # a wrong column is an error before any method runs
    run_info = RunInfo(run_id, STAGE, cfg.section_hash("select"), pool.versions)
    records, rows = pool.records, pool.usable
    results: list[MethodResult] = []
    clusters = None
    sizes: list[list[object]] = []
    if s.neighbors.enabled:
        table, note = neighbors(records, s.neighbors)
        results.append(write_method(cfg, run_info, "neighbors", table, None, rows, note, per_record=False))
    if s.semdedup.enabled:
        kept, dropped, note = semdedup(records, s.semdedup)
        results.append(write_method(cfg, run_info, "semdedup", kept, dropped, rows, note))
    if s.onepass.enabled:
        clusters, note = onepass(records, s.onepass)
        result = write_method(cfg, run_info, "onepass", clusters, None, rows, note)
        clusters = spark.read.format("delta").option("versionAsOf", result.table.version).load(result.table.path)
        results.append(replace(result, note=f"{clusters.where('is_leader').count()} clusters; {note}"))
    if s.kcenter.enabled:
        chosen, nearest, mode, radius = kcenter(spark, records, rows, s.kcenter)
        others = nearest.join(chosen.select("doc_id"), "doc_id", "left_anti")
        dropped = dropped_frame(others, "select.kcenter", F.lit(f"kcenter: not among the {s.kcenter.k} centres"),
                                F.col("distance"), F.lit(radius), F.col("centre"))
        results.append(write_method(cfg, run_info, "kcenter", chosen, dropped, rows,
                                    f"{mode}; coverage radius {radius:.4f}"))
    if s.balance.enabled:
        kept, dropped, sizes = balance(records, s.balance, clusters)
        results.append(write_method(cfg, run_info, "balance", kept, dropped, rows, f"cap {s.balance.cap} per {s.balance.by}"))
    if s.domain.enabled:
        selected, dropped, note = domain(spark, records, s.domain)
        results.append(write_method(cfg, run_info, "domain", selected, dropped, rows, note))
    rejects = replace_rows(pool.rejects, cfg.table(REJECTS_TABLE), f"stage = '{STAGE}'", run_info, ["stage", "source"])
    reconcile(pool.records_in, {"selectable": rows, "rejected": rejects.rows})
    return SelectResult(pool.records_in, rows, results, rejects, sizes)


if __name__ == "__main__":  # spark-submit jobs/selection.py --config ...
    from refinery.cli import main

    sys.exit(main(["select", *sys.argv[1:]]))
