"""Ingest of the real public files in ../shared/data (skipped cleanly when it is absent).

Expected counts come from reading the files with plain ``json`` here, not from Refinery's readers.
"""
from __future__ import annotations

import gzip
import json

import pytest

from jobs import ingest
from tests.conftest import make_config


def non_empty(*values) -> bool:
    return all(isinstance(v, str) and v.strip() for v in values)


@pytest.fixture(scope="module")
def shared_run(spark, shared_data, tmp_path_factory):
    d = shared_data
    seed_fields = {"prompt": ["instruction", "instances.0.input"], "response": "instances.0.output"}
    sources = [
        {"name": "alpaca_cot", "path": str(d / "alpaca_cot"), "format": "instruction"},
        {"name": "alpaca_zh", "path": str(d / "alpaca_zh"), "format": "alpaca", "lang": "zh"},
        {"name": "self_instruct", "path": str(d / "self_instruct/seed_tasks.jsonl"), "format": "instruction", "fields": seed_fields},
        {"name": "belle_seed", "path": str(d / "belle/zh_seed_tasks.jsonl"), "format": "instruction", "fields": seed_fields, "lang": "zh"},
        {"name": "belle_eval", "path": str(d / "belle/eval_set.json"), "format": "instruction",
         "fields": {"prompt": "question", "response": "std_answer"}, "lang": "zh"},
        {"name": "hh", "path": str(d / "hh_rlhf"), "format": "hh"},
        {"name": "dpo", "path": str(d / "preference/dpo_*_sharegpt.json"), "format": "sharegpt_preference"},
        {"name": "kto", "path": str(d / "preference/kto_en_messages.json"), "format": "messages"},
        {"name": "dolma", "path": str(d / "web/cc_en_head-0091.jsonl"), "format": "text", "fields": {"lang": "metadata.language"}},
        {"name": "c4", "path": str(d / "web/c4_300.jsonl"), "format": "text"},
        {"name": "wiki", "path": str(d / "web/wikipedia_30.txt"), "format": "text"},
    ]
    cfg = make_config(tmp_path_factory.mktemp("shared"), sources, max_reject_rate=1.0)
    result = ingest.run(spark, cfg, "shared")
    docs = spark.read.format("delta").load(cfg.table("bronze/docs"))
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects"))
    return result, docs, rejects


def written(result, source):
    return result.by_source()[source][1]


def test_alpaca_cot_counts_match_plain_json(shared_run, shared_data):
    result, docs, _ = shared_run
    rows = [r for f in sorted((shared_data / "alpaca_cot").glob("*.json")) for r in json.loads(f.read_text())]
    assert len(rows) == 6915 + 7112 + 1084
    assert written(result, "alpaca_cot") == sum(non_empty(r["instruction"], r["output"]) for r in rows)
    assert result.by_source()["alpaca_cot"][0] == len(rows)
    cot = docs.where("source = 'alpaca_cot'")  # one-line JSON arrays: every record on line 1
    assert cot.select("doc_id").distinct().count() == cot.count() == written(result, "alpaca_cot")


def test_malformed_alpaca_zh_keeps_its_records_and_flags_the_fault(shared_run, shared_data):
    result, docs, rejects = shared_run
    bad_file = shared_data / "alpaca_zh/alpaca_zh_09407-12345.json"
    lines = bad_file.read_text(encoding="utf-8").splitlines()
    comma_line = max(i for i, line in enumerate(lines, 1) if line.strip() == "},")
    fault = rejects.where(f"source_file = '{bad_file}' AND reason LIKE '%trailing comma%'").collect()
    assert [r.source_line for r in fault] == [comma_line]
    good = json.loads((shared_data / "alpaca_zh/alpaca_zh_00000-03252.json").read_text(encoding="utf-8"))
    stored = docs.where("source = 'alpaca_zh'").select("prompt", "response", "lang").collect()
    assert {r.lang for r in stored} == {"zh"}
    first = next(r for r in good if non_empty(r["instruction"], r["output"]) and not r["input"])
    assert (first["instruction"], first["output"]) in {(r.prompt, r.response) for r in stored}


def test_chinese_mapped_layouts(shared_run, shared_data):
    result, docs, _ = shared_run
    belle = [json.loads(line) for line in (shared_data / "belle/eval_set.json").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert written(result, "belle_eval") == sum(non_empty(r["question"], r["std_answer"]) for r in belle)
    row = docs.where("source = 'belle_eval' AND source_line = 1").first()
    assert (row.prompt, row.response, row.kind) == (belle[0]["question"], belle[0]["std_answer"], "sft")
    assert json.loads(row.meta) == {"class": belle[0]["class"]}
    assert written(result, "belle_seed") == 175 and written(result, "self_instruct") == 175


def test_hh_pairs_split_into_prompt_and_answers(shared_run, shared_data):
    result, docs, rejects = shared_run
    pairs = [json.loads(line) for line in gzip.open(shared_data / "hh_rlhf/harmless_base_part_a.jsonl.gz", "rt")]
    assert result.by_source()["hh"][0] == len(pairs) == 1387
    row = docs.where("source = 'hh' AND source_line = 1").first()
    assert pairs[0]["chosen"].endswith(row.chosen) and pairs[0]["rejected"].endswith(row.rejected)
    assert row.messages[-1].role == "user" and row.messages[-1].content == row.prompt
    reasons = {r.reason for r in rejects.where("source = 'hh'").collect()}
    assert reasons <= {"empty field 'chosen' answer", "empty field 'rejected' answer"}


def test_preference_and_messages_files(shared_run):
    result, docs, _ = shared_run
    assert result.by_source()["dpo"] == (600, 600, 0)
    assert result.by_source()["kto"] == (300, 300, 0)
    kto = docs.where("source = 'kto'").select("meta").collect()
    assert {json.loads(r.meta)["label"] for r in kto} == {True, False}


def test_web_documents(shared_run, shared_data):
    result, docs, _ = shared_run
    assert result.by_source()["c4"] == (300, 300, 0) and result.by_source()["wiki"] == (30, 30, 0)
    dolma = docs.where("source = 'dolma'").collect()
    assert len(dolma) == 10 and {r.lang for r in dolma} == {"en"}
    source = json.loads((shared_data / "web/cc_en_head-0091.jsonl").read_text().splitlines()[0])
    first = next(r for r in dolma if r.source_line == 1)
    assert first.text == source["text"] and json.loads(first.meta)["id"] == source["id"]
