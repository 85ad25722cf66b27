"""Exports read back by their consumers' own loaders (``datasets``, TRL's format checks), splits
by prompt, rejects with reasons, token counts, the chat template, and a re-run replacing the
export whole; then the training-side readers on tables the pipeline wrote."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql.pandas.types import from_arrow_schema

pytest.importorskip("transformers", reason="token counts and chat templates need the ml extra")
datasets = pytest.importorskip("datasets")

import jobs.export as export_job  # noqa: E402
from refinery.config import load_config  # noqa: E402
from tests.conftest import write_config  # noqa: E402
from udfs.export.batches import tokenizer  # noqa: E402
from udfs.models.loading import default_causal_lm  # noqa: E402
from udfs.schema import RECORD_SCHEMA  # noqa: E402


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def sft(doc_id, *messages):
    users = [m for m in messages if m["role"] == "user"]
    answer = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else None
    return {"doc_id": doc_id, "kind": "sft", "source": "chat", "messages": list(messages),
            "prompt": users[-1]["content"] if users else None, "response": answer, "text": "x"}


def pair(doc_id, prompt, chosen, rejected):
    return {"doc_id": doc_id, "kind": "preference", "source": "pairs", "messages": prompt, "chosen": chosen,
            "rejected": rejected, "prompt": prompt[-1]["content"], "text": "x"}


RECORDS = [
    sft("s1", user("What is the capital of France?"), assistant("Paris.")),
    sft("s2", {"role": "system", "content": "Be brief."}, user("Hi"), assistant("Hello!"), user("Name a prime."), assistant("7")),
    sft("s3", user("What is the capital   of France?"), assistant("It is Paris.")),  # same prompt as s1
    sft("bad-order", user("a"), user("b"), assistant("c")),
    sft("bad-empty", user("Say something"), assistant("   ")),
    sft("bad-noprompt", assistant("An answer to nothing")),
    pair("p1", [user("Is the sky blue?")], "Yes, on a clear day.", "No."),
    pair("p2", [user("Tell me a joke")], "Same answer", "Same answer"),
    pair("p3", [user("Help me"), assistant("With what?"), user("My homework")], "Sure, which subject?", "No."),
    {"doc_id": "w1", "kind": "pretrain", "source": "web", "text": "A web page, not exported."},
    *[sft(f"q{i:03d}", user(f"Question number {i}: what is {i} plus {i}?"), assistant(str(2 * i))) for i in range(300)],
]
SFT_OK = 3 + 300
REJECTED = {"bad-order": "export: broken turn order: turn 2 is user, expected assistant",
            "bad-empty": "export: empty answer",
            "bad-noprompt": "export: no prompt: the conversation has no user turn before the answer",
            "p2": "export: chosen equals rejected"}


@pytest.fixture(scope="module")
def exported(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    schema = from_arrow_schema(RECORD_SCHEMA)
    spark.createDataFrame([{**{f: None for f in schema.fieldNames()}, **r} for r in RECORDS], schema) \
        .write.format("delta").save(str(root / "lake" / "quality" / "kept"))
    config = write_config(root / "refinery.yaml", root / "lake", [{"name": "chat", "path": str(root), "format": "sharegpt",
                                                                    "license": "CC0-1.0"}])
    cfg = load_config(config, [f"export.out={root / 'out'}", "export.splits={train: 0.8, validation: 0.1, test: 0.1}"],
                      environ={})
    return cfg, export_job.run(spark, cfg, "x1"), Path(cfg.export.out) / cfg.export.name


def load(folder: Path, fmt: str, target: str):
    suffix, builder = ("parquet", "parquet") if fmt == "parquet" else ("json", "json")
    files = {p.name.split("=")[1]: str(p / f"*.{suffix}") for p in (folder / fmt / target).glob("split=*")}
    return datasets.load_dataset(builder, data_files=files)


def test_every_format_reads_back_with_datasets_and_trl_checks(exported):
    from trl.data_utils import is_conversational

    _, result, folder = exported
    for fmt in ("parquet", "jsonl"):
        messages = load(folder, fmt, "sft_messages")
        rows = {r["doc_id"]: r for split in messages.values() for r in split}
        assert len(rows) == SFT_OK and all(is_conversational(r) for r in rows.values())
        assert [m["role"] for m in rows["s2"]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        completion = {r["doc_id"]: r for split in load(folder, fmt, "sft_prompt_completion").values() for r in split}
        assert completion["s1"]["prompt"] == "What is the capital of France?" and completion["s1"]["completion"] == "Paris."
        assert "s2" not in completion  # multi-turn needs a chat template for string prompts
        reward = {r["doc_id"]: r for split in load(folder, fmt, "reward").values() for r in split}
        assert set(reward) == {"p1", "p3"} and all(is_conversational(r) for r in reward.values())
        assert [m["content"] for m in reward["p3"]["prompt"]] == ["Help me", "With what?", "My homework"]
        assert reward["p3"]["chosen"] == [{"role": "assistant", "content": "Sure, which subject?"}]
        rl = {r["doc_id"]: r for split in load(folder, fmt, "rl").values() for r in split}
        assert "s3" not in rl and "s1" in rl and len(rl) == SFT_OK - 1  # s3 repeats s1's prompt
        assert rl["s2"]["prompt"][-1] == {"role": "user", "content": "Name a prime."}
    by_card = datasets.load_dataset(str(folder), "sft_messages")  # the card's configs find the files
    assert sum(len(s) for s in by_card.values()) == SFT_OK


def test_splits_follow_the_prompt_and_counts_reconcile(exported):
    cfg, result, folder = exported
    split_of = {}
    for target in ("sft_messages", "sft_prompt_completion", "rl"):
        for split, rows in load(folder, "parquet", target).items():
            for r in rows:
                assert split_of.setdefault(r["doc_id"], split) == split  # one split per record, every format
    assert split_of["s1"] == split_of["s3"]  # same prompt (whitespace aside), same split
    sizes = {s: sum(1 for v in split_of.values() if v == s) for s in ("train", "validation", "test")}
    assert sizes["train"] > 200 and sizes["validation"] > 10 and sizes["test"] > 10
    assert result.records_in == SFT_OK + 3 + 3 and result.rejects.rows == len(REJECTED)  # pretrain is not exported
    card = json.loads((folder / "card.json").read_text())
    assert card["input"]["delta_version"] == 0 and card["sources"][0]["license"] == "CC0-1.0"
    assert sum(c["rows"] for c in card["counts"] if c["format"] == "sft_messages") == SFT_OK


def test_rejects_carry_their_reason(spark, exported):
    cfg, _, _ = exported
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).where("stage = 'export'").collect()
    assert {r.doc_id: r.reason for r in rejects} == REJECTED


def test_token_counts_equal_the_tokenizer(exported):
    cfg, result, folder = exported
    tok = tokenizer(default_causal_lm(cfg.perplexity.cache_dir))
    rows = [r for split in load(folder, "parquet", "sft_messages").values() for r in split]
    direct = sum(len(tok.apply_chat_template(r["messages"], tokenize=True)["input_ids"]) for r in rows)
    assert sum(c[3] for c in result.counts if c[0] == "sft_messages") == direct


def test_chat_template_renders_prompts_and_a_rerun_replaces_the_export(spark, exported):
    cfg, _, folder = exported
    old_files = set(folder.rglob("*.parquet"))
    cfg = cfg.model_copy(deep=True)
    cfg.export.chat_template = default_causal_lm(cfg.perplexity.cache_dir)
    cfg.export.file_formats = ["parquet"]
    export_job.run(spark, cfg, "x2")
    completion = {r["doc_id"]: r for split in load(folder, "parquet", "sft_prompt_completion").values() for r in split}
    assert completion["s2"]["prompt"].startswith("<|im_start|>system\nBe brief.")
    assert completion["s2"]["prompt"].endswith("<|im_start|>assistant\n") and completion["s2"]["completion"] == "7"
    assert not (folder / "jsonl").exists() and not (set(folder.rglob("*.parquet")) & old_files)
    assert json.loads((folder / "card.json").read_text())["run_id"] == "x2"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left behind
