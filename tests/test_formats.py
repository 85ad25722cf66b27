"""Formats: each layout maps to canonical fields; each bad record fails with a reason."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from udfs.ingest.conversations import RecordError
from udfs.ingest.formats import canonical_fields, resolve_fields
from udfs.ingest.reader import SourceSpec, doc_id, file_rows


def adapt(record, fmt, **fields):
    return canonical_fields(record, fmt, resolve_fields(fmt, fields))


def test_redpajama_text_keeps_meta():
    out = adapt({"text": "Hello world.", "meta": {"url": "u", "language": "en"}}, "text")
    assert out["kind"] == "pretrain" and out["text"] == "Hello world."
    assert json.loads(out["meta"]) == {"meta": {"url": "u", "language": "en"}}
    assert set(out) == {"kind", "text", "lang", "meta"}  # no SFT / preference columns


def test_dolma_lang_from_nested_path_keeps_metadata():
    record = {"id": "d1", "text": "Bonjour.", "metadata": {"language": "fr", "perplexity": 12.5}}
    out = adapt(record, "text", lang="metadata.language")
    assert out["lang"] == "fr"
    assert json.loads(out["meta"]) == {"id": "d1", "metadata": {"language": "fr", "perplexity": 12.5}}


def test_alpaca_with_and_without_input():
    out = adapt({"instruction": "Translate.", "input": "Hola", "output": "Hello"}, "alpaca")
    assert (out["kind"], out["prompt"], out["response"]) == ("sft", "Translate.\n\nHola", "Hello")
    assert out["messages"] == [{"role": "user", "content": "Translate.\n\nHola"},
                               {"role": "assistant", "content": "Hello"}]
    assert out["text"] == "Translate.\n\nHola\n\nHello" and out["meta"] is None
    assert adapt({"instruction": "Say hi.", "input": "", "output": "Hi"}, "instruction")["prompt"] == "Say hi."


def test_field_mapping_for_other_layouts():
    belle = adapt({"question": "中国的首都是哪里？", "std_answer": "北京。", "class": "qa"}, "instruction",
                  prompt="question", response="std_answer")
    assert (belle["prompt"], belle["response"], json.loads(belle["meta"])) == ("中国的首都是哪里？", "北京。", {"class": "qa"})
    seed = {"instruction": "Add.", "instances": [{"input": "1+1", "output": "2"}], "is_classification": False}
    out = adapt(seed, "instruction", prompt=["instruction", "instances.0.input"], response="instances.0.output")
    assert (out["prompt"], out["response"]) == ("Add.\n\n1+1", "2")


@pytest.mark.parametrize("record,reason", [
    ({"output": "x"}, "missing field 'instruction'"),
    ({"instruction": "  ", "output": "x"}, "empty field 'instruction'"),
    ({"instruction": "a", "output": ""}, "empty field 'output'"),
    ({"instruction": "a", "output": 3}, "field 'output' is int, not a string"),
    (["not", "an", "object"], "record is a JSON list, not an object"),
])
def test_instruction_rejects(record, reason):
    with pytest.raises(RecordError, match=reason):
        adapt(record, "alpaca")


def test_sharegpt_multi_turn_kept_whole():
    record = {"system": "Be brief.", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
        {"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]}
    out = adapt(record, "sharegpt")
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert (out["prompt"], out["response"]) == ("2+2?", "4")
    assert out["text"] == "Hi\n\nHello!\n\n2+2?\n\n4"


def test_openai_messages_with_content_parts_and_label_meta():
    record = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "text", "text": "it."}]},
                           {"role": "assistant", "content": "A cat."}], "label": False}
    out = adapt(record, "messages")
    assert out["prompt"] == "Describe it." and json.loads(out["meta"]) == {"label": False}


@pytest.mark.parametrize("turns,reason", [
    ([{"from": "human", "value": "Hi"}], "does not end with an assistant turn"),
    ([{"from": "robot", "value": "Hi"}], "unknown role 'robot'"),
    ([{"from": "human", "value": ""}, {"from": "gpt", "value": "x"}], r"conversations\[0\] has empty content"),
    ([{"from": "gpt", "value": "x"}], "has no user turn"),
    ([], "not a non-empty list|empty field"),
])
def test_chat_rejects(turns, reason):
    with pytest.raises(RecordError, match=reason):
        adapt({"conversations": turns}, "sharegpt")


def test_preference_string_and_conversational():
    out = adapt({"prompt": "Q?", "chosen": "Good.", "rejected": "Bad."}, "preference")
    assert (out["kind"], out["prompt"], out["chosen"], out["rejected"]) == ("preference", "Q?", "Good.", "Bad.")
    trl = {"prompt": [{"role": "user", "content": "Q?"}],
           "chosen": [{"role": "assistant", "content": "Good."}], "rejected": [{"role": "assistant", "content": "Bad."}]}
    assert adapt(trl, "preference")["chosen"] == "Good."
    factory = {"conversations": [{"from": "human", "value": "问题？"}],
               "chosen": {"from": "gpt", "value": "好的回答。"}, "rejected": {"from": "gpt", "value": "坏的。"}}
    out = adapt(factory, "sharegpt_preference")
    assert (out["prompt"], out["chosen"], out["rejected"]) == ("问题？", "好的回答。", "坏的。")
    with pytest.raises(RecordError, match="empty field 'rejected'"):
        adapt({"prompt": "Q?", "chosen": "Good.", "rejected": " "}, "preference")


def test_hh_transcripts_split_into_shared_prompt():
    prompt = "\n\nHuman: Hi there\n\nAssistant: Hello.\n\nHuman: Tell me a joke"
    out = adapt({"chosen": prompt + "\n\nAssistant: Why did the chicken cross the road?",
                 "rejected": prompt + "\n\nAssistant: No."}, "hh")
    assert out["messages"] == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello."},
                               {"role": "user", "content": "Tell me a joke"}]
    assert (out["prompt"], out["chosen"], out["rejected"]) == ("Tell me a joke", "Why did the chicken cross the road?", "No.")
    with pytest.raises(RecordError, match="empty field 'chosen' answer"):
        adapt({"chosen": prompt + "\n\nAssistant: ", "rejected": prompt + "\n\nAssistant: No."}, "hh")
    with pytest.raises(RecordError, match="share no prompt"):
        adapt({"chosen": "no markers", "rejected": "none here"}, "hh")


def test_unknown_field_target_is_refused():
    with pytest.raises(ValueError, match="format 'text' has no field"):
        resolve_fields("text", {"response": "x"})


def test_reader_rows_locate_records_and_rejects(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"text": "ok 中文"}, ensure_ascii=False) + "\n" + '{"text": "\\ud800 lone"}\n{"nope": 1}\n')
    spec = SourceSpec("web", "text", resolve_fields("text", {}), lang="zh", snippet_chars=10)
    rows = list(file_rows(spec, str(path), str(path), "mixed.jsonl"))
    assert rows[0]["text"] == "ok 中文" and rows[0]["lang"] == "zh" and rows[0]["source_line"] == 1
    assert rows[0]["doc_id"] == doc_id("web", "mixed.jsonl", 1) != doc_id("web", "mixed.jsonl", 2)
    assert len(rows[0]["doc_id"]) == 32  # 128-bit
    assert rows[1]["reject_reason"].startswith("invalid Unicode in field 'text': lone surrogate")
    assert rows[2]["reject_reason"] == "missing field 'text'" and rows[2]["raw_snippet"] == '{"nope": 1'


def test_reader_reports_corrupt_compressed_file(tmp_path):
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    rows = list(file_rows(SourceSpec("web", "text", {"text": "text"}), str(path), str(path), "corrupt.jsonl.gz"))
    assert len(rows) == 1 and rows[0]["reject_reason"].startswith("unreadable file")


@pytest.mark.parametrize("fmt,record,reason", [
    ("messages", {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]},
                               {"role": "assistant", "content": "x"}]}, "content is list, not text"),
    ("messages", {"messages": [{"role": 3, "content": "x"}]}, "unknown role 3"),
    ("messages", {"messages": ["hi", "there"]}, r"messages\[0\] is not an object"),
    ("preference", {"prompt": "Q", "chosen": {"content": [{"text": 1}]}, "rejected": "r"}, "chosen: content is list"),
    ("preference", {"prompt": {"odd": 1}, "chosen": "c", "rejected": "r"}, "not a non-empty list of turns"),
    ("text", {"text": {"nested": None}}, "field 'text' is dict, not a string"),
])
def test_odd_shapes_are_record_errors_not_crashes(fmt, record, reason):
    with pytest.raises(RecordError, match=reason):
        adapt(record, fmt)


@pytest.mark.parametrize("fmt,fields,message", [
    ("text", {"text": ["text", "body"]}, "takes one path, not a list"),
    ("instruction", {"prompt": []}, "needs non-empty path"),
    ("sharegpt", {"messages": ["a", "b"]}, "takes one path"),
    ("text", {"system": "sys"}, "format 'text' has no field"),
    ("hh", {"system": "sys"}, "format 'hh' has no field"),
])
def test_field_mappings_that_cannot_work_fail_at_config_time(fmt, fields, message):
    with pytest.raises(ValueError, match=message):
        resolve_fields(fmt, fields)


def test_hh_transcript_without_leading_blank_line():
    out = adapt({"chosen": "Human: What is 2+2?\n\nAssistant: 4.", "rejected": "Human: What is 2+2?\n\nAssistant: 5."}, "hh")
    assert out["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert (out["chosen"], out["rejected"]) == ("4.", "5.")


def test_parquet_types_without_json_equivalent_land_in_meta(tmp_path):
    import datetime
    import decimal

    import pyarrow.parquet as pq

    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"text": ["doc"], "ts": [datetime.datetime(2024, 1, 2, 3, 4, 5)],
                             "price": [decimal.Decimal("1.50")], "blob": [b"\x00\x01"]}), path)
    rows = list(file_rows(SourceSpec("pq", "text", {"text": "text"}), str(path), str(path), "typed.parquet"))
    assert rows[0].get("reject_reason") is None
    assert json.loads(rows[0]["meta"]) == {"blob": "b'\\x00\\x01'", "price": "1.50", "ts": "2024-01-02 03:04:05"}


def test_file_changed_since_listing_is_unreadable(tmp_path):
    from udfs.ingest.discovery import list_input_files
    from udfs.ingest.reader import tally_file

    path = tmp_path / "live.jsonl"
    path.write_text('{"text": "one"}\n')
    _, [listed] = list_input_files(str(path))
    spec = SourceSpec("web", "text", {"text": "text"})
    stamp = (listed.size, listed.mtime_ns)

    def tally():
        return pa.Table.from_batches(list(tally_file(spec, str(path), str(path), "live.jsonl", stamp))).to_pylist()

    assert [(r["reject_reason"], r["records_seen"]) for r in tally()] == [(None, 1)]
    path.write_text('{"text": "one"}\n{"text": "two"}\n')  # appended after listing
    rows = tally()
    assert rows[0]["reject_reason"] == "unreadable file: changed during ingest (listed 16 bytes, now 32); re-run"
    assert rows[1]["records_seen"] == 3  # both records it read, and the reject


def test_batches_are_cut_by_size(tmp_path):
    from udfs.ingest.reader import read_file_batches

    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"text": "x" * 1000}) + "\n" for _ in range(50)))
    spec = SourceSpec("web", "text", {"text": "text"})
    sizes = [b.num_rows for b in read_file_batches(spec, str(path), str(path), "big.jsonl", batch_bytes=40_000)]
    assert sizes == [10] * 5
