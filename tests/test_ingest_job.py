"""The ingest job on a real local SparkSession, read back from real Delta tables."""
from __future__ import annotations

import gzip
import json

import pytest
from delta.tables import DeltaTable

from jobs import ingest
from refinery import cli
from tests.conftest import make_config, sample_sources, write_config


def read(spark, path):
    return spark.read.format("delta").load(path)


def commits(spark, path):
    return DeltaTable.forPath(spark, path).history().orderBy("version").collect()


@pytest.fixture(scope="module")
def sample_run(spark, sample_corpus, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("sample_run"), sample_sources(sample_corpus))
    return cfg, ingest.run(spark, cfg, run_id="run-1")


def test_sample_corpus_lands_in_bronze(spark, sample_run, sample_corpus):
    cfg, result = sample_run
    docs = read(spark, cfg.table("bronze/docs"))
    manifest = json.loads((sample_corpus / "manifest.json").read_text())
    by_source = {r.source: r["count"] for r in docs.groupBy("source").count().collect()}
    assert by_source == {"web": 384, "alpaca": 62, "chat": 24, "pairs": 24, "hh": 12}
    assert {r.kind for r in docs.select("kind").distinct().collect()} == {"pretrain", "sft", "preference"}
    assert docs.select("doc_id").distinct().count() == docs.count()
    assert result.rejects.rows == manifest["web_bad_lines"] + 2  # the alpaca empty output, the unanswered chat
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{cfg.table('bronze/docs')}`").first()
    assert detail.partitionColumns == ["source"] and detail.format == "delta"
    assert detail.properties["delta.dataSkippingStatsColumns"].startswith("doc_id,")
    rejects_detail = spark.sql(f"DESCRIBE DETAIL delta.`{cfg.table('bronze/rejects')}`").first()
    assert rejects_detail.partitionColumns == ["stage", "source"]


def test_reconcile_stops_a_file_read_differently_by_the_two_passes():
    from refinery.tables import Commit

    lost = ingest.IngestResult([ingest.FileCount("web", "s3://b/f.jsonl", 11, 4, 1)],
                               Commit("docs", 1, 4), Commit("rejects", 1, 1), 0.05, 0)
    with pytest.raises(ingest.IngestError, match=r"s3://b/f.jsonl: seen 11, written 4 \+ rejected 1"):
        ingest.reconcile(lost)
    miscommitted = ingest.IngestResult([ingest.FileCount("web", "f", 5, 4, 1)], Commit("docs", 1, 3), Commit("r", 1, 1), 0.05, 0)
    with pytest.raises(ingest.IngestError, match="Delta committed 3 \\+ 1"):
        ingest.reconcile(miscommitted)


def test_every_file_reconciles(sample_run):
    _, result = sample_run
    per_file = {f.uri.rsplit("/", 1)[-1]: (f.records_in, f.written, f.rejected) for f in result.files}
    assert per_file == {
        "part-0000.jsonl.gz": (128, 128, 0), "part-0001.jsonl.zst": (128, 128, 0),
        "part-0002.parquet": (64, 64, 0), "part-0003.jsonl": (68, 64, 4), "alpaca.json": (63, 62, 1),
        "sharegpt.jsonl": (25, 24, 1), "pairs.jsonl": (24, 24, 0), "hh.jsonl": (12, 12, 0),
    }
    assert sum(f.written for f in result.files) == result.docs.rows == 506
    assert result.summary(1.0).records_in == result.docs.rows + result.rejects.rows
    assert result.problems() == []


def test_chinese_text_passes_unharmed(spark, sample_run, sample_corpus):
    cfg, _ = sample_run
    source = [json.loads(line) for line in (sample_corpus / "web/part-0003.jsonl").read_bytes().splitlines()[:64]]
    chinese = [r["text"] for r in source if r["meta"].get("language") == "zh"]
    stored = {r.text for r in read(spark, cfg.table("bronze/docs")).where("source = 'web'").select("text").collect()}
    assert chinese and set(chinese) <= stored


def test_commits_carry_run_metadata(spark, sample_run):
    cfg, _ = sample_run
    for table in ("bronze/docs", "bronze/rejects"):
        meta = json.loads(commits(spark, cfg.table(table))[-1].userMetadata)
        assert meta["run_id"] == "run-1" and meta["stage"] == "ingest"
        assert meta["config_hash"] == cfg.section_hash("ingest") and meta["code_version"]
        assert "git_rev" in meta


def test_rerun_is_idempotent_and_leaves_other_sources_alone(spark, sample_corpus, tmp_path):
    cfg = make_config(tmp_path, sample_sources(sample_corpus))
    ingest.run(spark, cfg, "first")
    before = read(spark, cfg.table("bronze/docs")).orderBy("doc_id").collect()
    rejects_before = read(spark, cfg.table("bronze/rejects")).count()
    ingest.run(spark, cfg, "second")
    assert read(spark, cfg.table("bronze/docs")).orderBy("doc_id").collect() == before
    assert read(spark, cfg.table("bronze/rejects")).count() == rejects_before
    only_hh = make_config(tmp_path, [s for s in sample_sources(sample_corpus) if s["name"] == "hh"])
    result = ingest.run(spark, only_hh, "third")
    assert result.docs.rows == 12 and read(spark, cfg.table("bronze/docs")).count() == len(before)
    assert [json.loads(c.userMetadata)["run_id"] for c in commits(spark, cfg.table("bronze/docs"))] == ["first", "second", "third"]


def test_rerun_mirrors_the_source_files(spark, tmp_path):
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "from a"}\n')
    (folder / "b.jsonl").write_text('{"text": "from b"}\n')
    cfg = make_config(tmp_path, [{"name": "web", "path": str(folder), "format": "text"}])
    ingest.run(spark, cfg, "both")
    (folder / "b.jsonl").unlink()  # a shard withdrawn upstream leaves the source's partition
    ingest.run(spark, cfg, "only-a")
    assert [r.text for r in read(spark, cfg.table("bronze/docs")).collect()] == ["from a"]


def test_rerun_replaces_what_a_changed_file_held(spark, tmp_path):
    shard = tmp_path / "shard.jsonl"
    shard.write_text('{"text": "first version"}\n')
    cfg = make_config(tmp_path, [{"name": "web", "path": str(shard), "format": "text"}], max_reject_rate=1.0)
    ingest.run(spark, cfg, "a")
    shard.write_text('{"text": ""}\n')  # the same line is now bad: its old row must go, its reject appear
    result = ingest.run(spark, cfg, "b")
    assert (result.docs.rows, result.rejects.rows) == (0, 1)
    assert read(spark, cfg.table("bronze/docs")).count() == 0
    assert [r.reason for r in read(spark, cfg.table("bronze/rejects")).collect()] == ["empty field 'text'"]


@pytest.fixture()
def bad_inputs(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "lines.jsonl").write_bytes(
        b'{"text": "a good document"}\n'
        b'{"text": "broken\n'
        b'{"text": "\xff\xfe not utf-8"}\n'
        b'{"meta": {}}\n'
        b'{"text": ""}\n'
        b'{"text": "' + b"long " * 60 + b'"}\n'
    )
    (folder / "array.json").write_text('[\n{"text": "fine"},\n]\n')
    (folder / "corrupt.jsonl.gz").write_bytes(gzip.compress(b'{"text": "cut"}\n' * 50)[:40])
    return folder


def test_every_kind_of_bad_input_goes_to_rejects(spark, tmp_path, bad_inputs):
    cfg = make_config(tmp_path, [{"name": "bad", "path": str(bad_inputs), "format": "text"}],
                      max_record_bytes=200, max_reject_rate=1.0)
    result = ingest.run(spark, cfg, "bad-run")
    rejects = {(r.source_file.rsplit("/", 1)[-1], r.source_line): r.reason
               for r in read(spark, cfg.table("bronze/rejects")).collect()}
    assert rejects[("lines.jsonl", 2)].startswith("malformed JSON")
    assert rejects[("lines.jsonl", 3)] == "invalid UTF-8 at byte 10"
    assert rejects[("lines.jsonl", 4)] == "missing field 'text'"
    assert rejects[("lines.jsonl", 5)] == "empty field 'text'"
    assert rejects[("lines.jsonl", 6)].startswith("record too large: 312 bytes > max_record_bytes 200")
    assert rejects[("array.json", 2)] == "malformed JSON: trailing comma before ']'"
    assert rejects[("corrupt.jsonl.gz", 0)].startswith("unreadable file")
    assert [f.uri.rsplit("/", 1)[-1] for f in result.files if f.unreadable] == ["corrupt.jsonl.gz"]
    assert any("1 unreadable file(s) > ingest.max_unreadable_files 0" in p for p in result.problems())
    texts = sorted(r.text for r in read(spark, cfg.table("bronze/docs")).collect())
    assert texts[:2] == ["a good document", "fine"]
    snippets = read(spark, cfg.table("bronze/rejects")).where("source_line = 3").first().raw_snippet
    assert snippets.startswith('{"text": "\\xff\\xfe')
    per_file = {f.uri.rsplit("/", 1)[-1]: (f.records_in, f.written, f.rejected) for f in result.files}
    assert per_file == {"array.json": (2, 1, 1), "corrupt.jsonl.gz": (1, 0, 1), "lines.jsonl": (6, 1, 5)}


def test_cli_exit_code_follows_reject_rate(spark, tmp_path, bad_inputs, capsys, monkeypatch):
    config = write_config(tmp_path / "c.yaml", tmp_path / "lake", [{"name": "bad", "path": str(bad_inputs), "format": "text"}],
                          max_record_bytes=200)
    assert cli.main(["ingest", "--config", str(config), "--run-id", "strict"]) == cli.EXIT_REJECT_RATE
    err = capsys.readouterr().err
    assert "source 'bad' reject rate" in err and "> ingest.max_reject_rate 5.0%" in err
    monkeypatch.setenv("REFINERY_INGEST__MAX_REJECT_RATE", "0.9")
    monkeypatch.setenv("REFINERY_INGEST__MAX_UNREADABLE_FILES", "1")
    assert cli.main(["run", "--config", str(config), "--run-id", "lenient", "--set", "pipeline.stages=[ingest]"]) == 0
    out = capsys.readouterr().out
    assert "in = written + rejected, per file" in out and "bronze/docs@v1" in out


def test_cli_reports_config_and_input_errors(tmp_path, capsys):
    assert cli.main(["ingest", "--config", str(tmp_path / "nope.yaml")]) == cli.EXIT_BAD_INPUT
    assert "cannot read config" in capsys.readouterr().err
    config = write_config(tmp_path / "c.yaml", tmp_path / "lake", [{"name": "gone", "path": str(tmp_path / "none"), "format": "text"}])
    assert cli.main(["ingest", "--config", str(config)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"ingest reads {tmp_path / 'none'}, which no stage of this run writes and which does not exist" in err
