"""Write the small deterministic sample corpus that ``make run`` ingests (same seed, same bytes).

Web shards come as gzip and zstd JSON lines, plain JSON lines and Parquet. The corpus plants what
later stages must find: exact duplicates, near duplicates at known edit rates, boilerplate junk,
Chinese documents, and bad input (malformed JSON, invalid UTF-8, missing and empty fields) that
ingest must send to the rejects table. ``manifest.json`` lists what was planted.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TOPICS = {
    "astronomy": "star planet orbit telescope galaxy comet nebula light gravity moon solar eclipse".split(),
    "cooking": "flour butter oven recipe garlic simmer sauce pepper dough salt roast onion".split(),
    "finance": "market interest loan bond inflation budget equity tax credit savings price bank".split(),
    "biology": "cell protein gene enzyme species membrane tissue organism evolution virus dna plant".split(),
    "history": "empire treaty war dynasty revolution archive century king colony trade city ruler".split(),
}
GLUE = "the a of and to in is that for with as on by from this it was are which can be".split()
ZH_SENTENCES = [
    "今天的天气非常好，我们一起去公园散步吧。", "机器学习是人工智能的一个重要分支。", "这本书讲述了一个关于友谊和勇气的故事。",
    "长城是中国古代伟大的防御工程。", "请把这段文字翻译成英文。", "数据清洗是训练大语言模型之前必不可少的一步。",
    "他每天早上六点起床跑步。", "这家餐厅的饺子味道很好。", "科学家们发现了一种新的细菌。", "学习一门新的语言需要耐心和坚持。",
]
JUNK = [
    "lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6,
    "Please enable javascript to view this page. This site uses cookies. Accept all cookies.",
    "click here click here click here click here",
    "{{ template }} {% block content %} {% endblock %}",
]


def sentence(rng: random.Random, topic: str) -> str:
    words = [rng.choice(TOPICS[topic] if rng.random() < 0.5 else GLUE) for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def document(rng: random.Random, topic: str, sentences: int) -> str:
    paragraphs = []
    for _ in range(max(1, sentences // 4)):
        paragraphs.append(" ".join(sentence(rng, topic) for _ in range(4)))
    return "\n\n".join(paragraphs)


def mutate(rng: random.Random, text: str, rate: float) -> str:
    """Replace about ``rate`` of the words: a near duplicate at a known edit rate."""
    words = text.split(" ")
    for i in range(len(words)):
        if rng.random() < rate:
            words[i] = rng.choice(GLUE + TOPICS["astronomy"])
    return " ".join(words)


def web_records(rng: random.Random) -> tuple[list[dict], dict]:
    docs, planted = [], {"exact_duplicates": [], "near_duplicates": [], "junk": [], "chinese": []}
    for i in range(300):
        topic = rng.choice(list(TOPICS))
        docs.append({"text": document(rng, topic, rng.randint(8, 24)),
                     "meta": {"url": f"https://example.org/{topic}/{i}", "topic": topic, "timestamp": 1700000000 + i}})
    for i in range(20):
        src = rng.randrange(300)
        docs.append({"text": docs[src]["text"], "meta": {"url": f"https://mirror.example.net/{i}", "copy_of": src}})
        planted["exact_duplicates"].append([src, len(docs) - 1])
    for rate in (0.02, 0.05, 0.1, 0.2):
        for _ in range(8):
            src = rng.randrange(300)
            docs.append({"text": mutate(rng, docs[src]["text"], rate), "meta": {"near_copy_of": src, "edit_rate": rate}})
            planted["near_duplicates"].append([src, len(docs) - 1, rate])
    for i in range(20):
        body = "".join(rng.sample(ZH_SENTENCES, rng.randint(4, len(ZH_SENTENCES))))
        docs.append({"text": body, "meta": {"url": f"https://example.cn/{i}", "language": "zh"}})
        planted["chinese"].append(len(docs) - 1)
    for i, junk in enumerate(JUNK * 3):
        docs.append({"text": junk, "meta": {"url": f"https://spam.example.com/{i}"}})
        planted["junk"].append(len(docs) - 1)
    return docs, planted


def instruction_records(rng: random.Random) -> list[dict]:
    records = []
    for i in range(60):
        topic = rng.choice(list(TOPICS))
        records.append({
            "instruction": f"Explain the role of {rng.choice(TOPICS[topic])} in {topic}.",
            "input": sentence(rng, topic) if i % 3 == 0 else "",
            "output": document(rng, topic, 4),
        })
    records.append({"instruction": "用一句话介绍长城。", "input": "", "output": "长城是中国古代伟大的防御工程。"})
    records.append(dict(records[3]))  # an exact duplicate instruction
    records.append({"instruction": "Summarise the text.", "input": "", "output": ""})  # empty output: reject
    return records


def chat_records(rng: random.Random) -> list[dict]:
    records = []
    for i in range(24):
        topic = rng.choice(list(TOPICS))
        turns = []
        for _ in range(rng.randint(1, 3)):
            turns += [{"from": "human", "value": f"Tell me about {rng.choice(TOPICS[topic])}."},
                      {"from": "gpt", "value": document(rng, topic, 4)}]
        records.append({"id": f"chat-{i}", "conversations": turns})
    records.append({"id": "chat-bad", "conversations": [{"from": "human", "value": "Hello?"}]})  # no reply: reject
    return records


def preference_records(rng: random.Random) -> tuple[list[dict], list[dict]]:
    pairs, hh = [], []
    for _ in range(24):
        topic = rng.choice(list(TOPICS))
        prompt = f"What is a {rng.choice(TOPICS[topic])}?"
        pairs.append({"prompt": prompt, "chosen": document(rng, topic, 4), "rejected": "I don't know."})
    for _ in range(12):
        topic = rng.choice(list(TOPICS))
        prefix = f"\n\nHuman: Can you help me with {topic}?\n\nAssistant: Of course.\n\nHuman: What is a {rng.choice(TOPICS[topic])}?\n\nAssistant:"
        hh.append({"chosen": prefix + " " + sentence(rng, topic), "rejected": prefix + " No."})
    return pairs, hh


def write_jsonl(path: Path, records: list[dict], compress: str | None = None) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress == "gzip":
        data = gzip.compress(data, mtime=0)
    elif compress == "zstd":
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(data)
        return
    path.write_bytes(data)


def write_parquet(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/sample", help="output folder (default: data/sample)")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    rng, out = random.Random(args.seed), Path(args.out)
    if (out / "manifest.json").exists():  # a previous sample: replace it whole, never leave stale shards
        shutil.rmtree(out)

    web, planted = web_records(rng)
    third = len(web) // 3
    write_jsonl(out / "web/part-0000.jsonl.gz", web[:third], "gzip")
    write_jsonl(out / "web/part-0001.jsonl.zst", web[third:2 * third], "zstd")
    write_parquet(out / "web/part-0002.parquet", web[2 * third:2 * third + 64])
    write_jsonl(out / "web/part-0003.jsonl", web[2 * third + 64:])
    bad_lines = [
        b'{"text": "truncated record\n',                       # malformed JSON
        b'{"text": "caf\xe9 latin-1 bytes", "meta": {}}\n',     # invalid UTF-8
        b'{"meta": {"url": "https://example.org/no-text"}}\n',  # missing text
        b'{"text": "   ", "meta": {}}\n',                       # empty text
    ]
    with open(out / "web/part-0003.jsonl", "ab") as handle:
        handle.writelines(bad_lines)

    (out / "instruct").mkdir(parents=True, exist_ok=True)
    (out / "instruct/alpaca.json").write_text(json.dumps(instruction_records(rng), ensure_ascii=False, indent=2))
    write_jsonl(out / "chat/sharegpt.jsonl", chat_records(rng))
    pairs, hh = preference_records(rng)
    write_jsonl(out / "preference/pairs.jsonl", pairs)
    write_jsonl(out / "preference/hh.jsonl", hh)
    planted["web_bad_lines"] = len(bad_lines)
    (out / "manifest.json").write_text(json.dumps(planted, indent=1))
    print(f"sample corpus written to {out}/ ({len(web) + len(bad_lines)} web lines, seed {args.seed})")


if __name__ == "__main__":
    main()
