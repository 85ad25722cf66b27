"""The run report renders in a real headless Chromium with every figure drawn and no script
error, and the numbers on the page are the lake's."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from jobs import pipeline
from refinery.config import load_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Tables(HTMLParser):
    """Rows of each <table id=...> as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def lake(spark, clean_lake, tmp_path_factory):
    """The clean pipeline run, plus vectors, perplexities and a selection written as the model
    stages would (random vectors: the report's code paths, not the models, are under test)."""
    copy = tmp_path_factory.mktemp("report") / "lake"
    shutil.copytree(clean_lake.lake, copy)
    cfg = load_config(None, [f"lake={copy}"], environ={})
    kept = spark.read.format("delta").load(cfg.table("quality/kept")).select("doc_id", "source").toPandas()
    rng = np.random.default_rng(0)
    vectors = [(d, s, rng.normal(size=8).astype(np.float32).tolist()) for d, s in zip(kept.doc_id, kept.source)]
    spark.createDataFrame(vectors, "doc_id string, source string, embedding array<float>") \
        .write.format("delta").mode("overwrite").save(cfg.table("scored/embeddings"))
    ppl = [(d, s, float(np.exp(rng.normal(3, 1))), ["head", "middle", "tail"][i % 3]) for i, (d, s) in enumerate(zip(kept.doc_id, kept.source))]
    spark.createDataFrame(ppl, "doc_id string, source string, perplexity double, bucket string") \
        .write.format("delta").mode("overwrite").save(cfg.table("scored/perplexity"))
    spark.createDataFrame([(d, s) for d, s in zip(kept.doc_id[:20], kept.source[:20])], "doc_id string, source string") \
        .write.format("delta").mode("overwrite").save(cfg.table("select/kcenter"))
    return cfg


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (scripts/setup.sh installs Debian's for the test extra)")
def test_report_renders_in_chromium_and_its_numbers_match_the_lake(spark, lake, tmp_path):
    cfg = load_config(None, [f"lake={lake.lake}", f"report.out={tmp_path}", "select.kinds=null"], environ={})
    result = pipeline.run(spark, cfg, "report-run", only=["report"])
    assert result.ran() == ["report"]
    page = tmp_path / "report-report-run.html"
    assert page.read_text() == (tmp_path / "report.html").read_text()
    assert "http://" not in page.read_text() and "https://" not in page.read_text()  # nothing fetched

    shown = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                            "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert not re.search(r"Uncaught|CONSOLE\(\d+\).*[Ee]rror", shown.stderr), shown.stderr[-2000:]
    drawn, total = map(int, re.search(r'data-images="(\d+)/(\d+)"', shown.stdout).groups())
    assert drawn == total >= 30  # funnel, sources, reasons, signal histograms, perplexity, clusters, map, selection

    tables = Tables()
    tables.feed(shown.stdout)
    stages = {row[0]: row for row in tables.tables["stages"][1:]}
    assert list(stages) == ["ingest", "dedup", "quality"]
    for stage, table in (("ingest", "bronze/docs"), ("dedup", "dedup/kept"), ("quality", "quality/kept")):
        assert number(stages[stage][3]) == spark.read.format("delta").load(cfg.table(table)).count()
    dropped = spark.read.format("delta").load(cfg.table("dedup/dropped")).count()
    assert number(stages["dedup"][4]) == dropped
    header, *rows = tables.tables["sources"]
    by_source = {r[0]: dict(zip(header[1:], map(number, r[1:]))) for r in rows}
    truth = {r.source: r["count"] for r in spark.read.format("delta").load(cfg.table("quality/kept")).groupBy("source").count().collect()}
    assert {s: v["quality"] for s, v in by_source.items()} == truth
    reasons = {(r[0], r[1]): number(r[2]) for r in tables.tables["reasons"][1:]}
    truth = spark.read.format("delta").load(cfg.table("quality/dropped")).groupBy("reason").count().collect()
    assert {k[1]: v for k, v in reasons.items() if k[0] == "quality/dropped"} == {r.reason: r["count"] for r in truth}
    assert [number(v) for v in tables.tables["selected"][-1][1:]][1] >= 0
    embedded = json.loads(re.search(r"<script type=\"application/json\" id=\"numbers\">(.*?)</script>", shown.stdout, re.S).group(1))
    assert [s["stage"] for s in embedded["stages"]] == ["ingest", "dedup", "quality"]
