"""The quality stage on real Spark and Delta: decisions with per-source thresholds and languages,
the dropped table's first and all failing rules, PII scrubbed in kept records, rejects,
reconciliation and re-runs."""
from __future__ import annotations

import json

import pytest
from pyspark.sql.pandas.types import from_arrow_schema

import jobs.quality as quality
from refinery.config import load_config
from tests.conftest import write_config
from tests.test_quality_rules import CHINESE, CLEAN
from udfs.schema import RECORD_SCHEMA

SHORT = "Buy now. Click here for the best deals of the year."


@pytest.fixture()
def quality_input(spark, tmp_path):
    def record(doc_id, text, source="web", kind="pretrain", **more):
        return {"doc_id": doc_id, "kind": kind, "text": text, "source": source, **more}
    rows = [
        record("e1", CLEAN),
        record("e2", SHORT),                                   # too short, too few sentences
        record("e3", SHORT, source="ads"),                     # same text, a source with lower thresholds
        record("p1", CLEAN + "\nWrite to jane.doe@example.com or call (415) 555-2671. Server 8.8.8.8."),
        record("z1", CHINESE, source="zh"),                   # Chinese source: zh allowed there
        record("z2", CHINESE),                                 # Chinese in an English-only source
        record("s1", "Hi, mail me at a@b.io", kind="sft", prompt="Hi, mail me at a@b.io", response="Sure.",
               messages=[{"role": "user", "content": "Hi, mail me at a@b.io"}, {"role": "assistant", "content": "Sure."}]),
        record("n1", None),                                    # no text: rejected
    ]
    schema = from_arrow_schema(RECORD_SCHEMA)
    full = [{**{f: None for f in schema.fieldNames()}, **r} for r in rows]
    spark.createDataFrame(full, schema).write.format("delta").save(str(tmp_path / "lake" / "custom" / "docs"))
    return write_config(tmp_path / "refinery.yaml", tmp_path / "lake", [{"name": "web", "path": str(tmp_path), "format": "text"}])


def config(path):
    return load_config(path, [
        "quality.input=custom/docs", "quality.languages=[en]",
        "quality.sources.zh.languages=[zh]",
        "quality.sources.ads.thresholds.gopher_min_words=5", "quality.sources.ads.thresholds.c4_min_sentences=null",
        "quality.sources.ads.thresholds.gopher_max_top_4gram=null",  # its one 4-gram is 29% of a short text
    ], environ={})


def outcome(spark, cfg) -> dict[str, object]:
    kept = spark.read.format("delta").load(cfg.table("quality/kept")).collect()
    dropped = spark.read.format("delta").load(cfg.table("quality/dropped")).collect()
    return {**{r.doc_id: "kept" for r in kept}, **{r.doc_id: (r.reason, tuple(r.reasons)) for r in dropped}}


def test_decisions_per_source_pii_rejects_and_reruns(spark, quality_input):
    cfg = config(quality_input)
    result = quality.run(spark, cfg, "q1")
    got = outcome(spark, cfg)
    assert {d for d, o in got.items() if o == "kept"} == {"e1", "e3", "p1", "z1", "s1"}
    assert got["e2"][0] == "gopher_min_words" and "c4_min_sentences" in got["e2"][1]
    assert got["z2"][0] == "lang_not_allowed"
    assert (result.records_in, result.kept.rows, result.dropped.rows, result.rejects.rows) == (8, 5, 2, 1)

    dropped = {r.doc_id: r for r in spark.read.format("delta").load(cfg.table("quality/dropped")).collect()}
    assert dropped["e2"].stage == "quality" and dropped["e2"].threshold == 50 and 0 < dropped["e2"].value < 50
    assert dropped["z2"].value is None and dropped["z2"].threshold is None

    kept = {r.doc_id: r for r in spark.read.format("delta").load(cfg.table("quality/kept")).collect()}
    assert "jane.doe" not in kept["p1"].text and "<EMAIL>" in kept["p1"].text and "<PHONE_NUMBER>" in kept["p1"].text
    assert (kept["p1"].pii_email, kept["p1"].pii_phone, kept["p1"].pii_ip) == (1, 1, 1)
    assert kept["s1"].messages[0]["content"] == "Hi, mail me at <EMAIL>" and kept["s1"].pii_email == 3
    assert kept["z1"].lang == "zh" and kept["e1"].lang == "en" and kept["e1"].lang_score > 0.65

    signals = spark.read.format("delta").load(cfg.table("quality/signals"))
    assert signals.count() == 7 and "text" not in signals.columns
    assert signals.where("doc_id = 's1'").first().failed == []  # rules skip sft records
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).where("stage = 'quality'").collect()
    assert [(r.doc_id, r.reason) for r in rejects] == [("n1", "quality: record has no text")]
    assert ["web", "gopher_min_words", 1, 1] in result.by_rule
    commit = spark.sql(f"DESCRIBE HISTORY delta.`{cfg.table('quality/kept')}`").first()
    assert json.loads(commit.userMetadata)["inputs"] == {"custom/docs": 0}

    again = quality.run(spark, cfg, "q2")  # a re-run replaces every output with the same rows
    assert outcome(spark, cfg) == got and again.kept.version == result.kept.version + 1


def test_missing_input_is_a_clear_error(spark, quality_input):
    with pytest.raises(quality.QualityError, match="does not exist"):
        quality.run(spark, load_config(quality_input, environ={}), "q1")
