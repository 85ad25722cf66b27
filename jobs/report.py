"""Run report: ``<report.out>/report-<run_id>.html``, one self-contained page (figures inlined,
no network) with the funnel per stage and per source, drop and reject reasons, every quality
signal's histogram with its thresholds, perplexity by reference bucket, duplicate-cluster sizes,
a 2-D map of the embeddings, and the selected subset against the pool: whatever of those the
lake holds. ``report.html`` beside it is the latest.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from refinery.config import Config
from refinery.report.collect import gather
from refinery.report.page import render
from refinery.summary import StageSummary

STAGE = "report"


@dataclass(frozen=True)
class ReportResult:
    path: Path
    stages: int

    def problems(self) -> list[str]:
        return []

    def details(self) -> str:
        return f"wrote {self.path} ({self.stages} stages)"

    def summary(self, seconds: float) -> StageSummary:
        return StageSummary(STAGE, 0, 0, 0, 0, [], seconds)


def run(spark: SparkSession, cfg: Config, run_id: str) -> ReportResult:
    r = cfg.report
    data = gather(spark, cfg)
    page = render(data, r.title, run_id)
    out = Path(r.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"report-{run_id}.html"
    path.write_text(page, encoding="utf-8")
    (out / "report.html").write_text(page, encoding="utf-8")
    return ReportResult(path, len(data.stages))


if __name__ == "__main__":  # spark-submit jobs/report.py --config ...
    from refinery.cli import main

    sys.exit(main(["report", *sys.argv[1:]]))
