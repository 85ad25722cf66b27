"""Active learning on real Spark and Delta: rejection sampling (uncertain AND good enough) spread
with K-Center-Greedy, the annotation files, the label round trip with rejects, and retraining."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import yaml

from udfs.active.sampling import accepted, bar, binary_entropy, margin, parse_label, rank_uncertainty, spread


def test_sampling_core():
    p = np.array([0.5, 0.9, 0.45, 0.05, 0.6])
    assert binary_entropy(p)[0] == pytest.approx(1.0) and binary_entropy(np.array([0.0]))[0] == pytest.approx(0, abs=1e-9)
    assert np.argsort(-binary_entropy(p)).tolist() == np.argsort(-margin(p)).tolist()
    quality = np.array([0.9, 0.9, 0.1, 0.9, 0.8])
    assert accepted(binary_entropy(p), quality, 0.9, 0.5).tolist() == [0, 4]  # 2 is uncertain but bad
    assert bar(np.arange(11.0), 0.5, "quantile") == 5.0 and bar(np.arange(11.0), 0.5, "absolute") == 0.5
    assert rank_uncertainty(np.array([30.0, 10.0, 20.0])).tolist() == [1.0, 0.0, 0.5]
    vectors = np.array([[0, 0], [0, 0.01], [5, 5], [0, 0.02]], float)
    assert sorted(spread(vectors, np.array([0, 1, 3, 2]), 2).tolist()) == [0, 2]  # not the near-copies
    assert [parse_label(v) for v in (True, "good", "0", "bad", "maybe")] == [1, 1, 0, 0, None]


def test_active_learning_rounds(spark, tmp_path, shared_data):
    import jobs.active_learning as job
    from refinery.config import load_config
    from tests.conftest import write_config
    from udfs.ingest.formats import canonical_fields, resolve_fields
    from udfs.schema import RECORD_SCHEMA

    raw = json.loads((shared_data / "preference" / "kto_en_messages.json").read_text())[:120]
    rows = [{**canonical_fields(r, "messages", resolve_fields("messages", {})), "doc_id": f"k{i}", "source": "kto"}
            for i, r in enumerate(raw)]
    oracle = {r["doc_id"]: json.loads(r["meta"])["label"] for r in rows}
    lake = tmp_path / "lake"
    spark.createDataFrame(pa.Table.from_pylist(rows, RECORD_SCHEMA)).write.format("delta").save(str(lake / "quality" / "kept"))
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=len(rows))
    spark.createDataFrame([(r["doc_id"], float(p), float(p)) for r, p in zip(rows, prob)],
                          "doc_id string, quality_prob float, reward_score float").write.format("delta").save(str(lake / "scored" / "reward"))
    vectors = rng.normal(size=(len(rows), 8))
    spark.createDataFrame([(r["doc_id"], v.tolist()) for r, v in zip(rows, vectors)],
                          "doc_id string, embedding array<float>").write.format("delta").save(str(lake / "scored" / "embeddings"))
    path = write_config(tmp_path / "refinery.yaml", lake, [{"name": "x", "path": "x", "format": "text"}])
    data = yaml.safe_load(path.read_text())
    data["active"] = {"batch_size": 40, "min_uncertainty": 0.3, "min_quality": 0.1, "out": str(tmp_path / "annotation")}
    data["reward"] = {"out": str(tmp_path / "models"), "epochs": 1, "max_length": 64, "batch_size": 8}
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path, environ={})

    first = job.run(spark, cfg, "r0")
    batch = [json.loads(line) for line in (tmp_path / "annotation" / "round=0" / "batch.jsonl").read_text().splitlines()]
    tasks = json.loads((tmp_path / "annotation" / "round=0" / "label_studio_tasks.json").read_text())
    assert first.batch == len(batch) == len(tasks) == 40 and first.candidates == len(rows)
    assert tasks[0]["data"]["doc_id"] == batch[0]["doc_id"] and "<Choices" in (tmp_path / "annotation" / "round=0" / "label_config.xml").read_text()
    entropy = binary_entropy(prob)
    u_bar, q_bar = np.quantile(entropy, 0.3), np.quantile(prob, 0.1)
    index = {r["doc_id"]: i for i, r in enumerate(rows)}
    assert all(entropy[index[b["doc_id"]]] >= u_bar and prob[index[b["doc_id"]]] >= q_bar for b in batch)

    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"doc_id": b["doc_id"], "label": "good" if oracle[b["doc_id"]] else "bad"}) + "\n"
                              for b in batch) + '{"doc_id": "nope", "label": "good"}\n{"doc_id": "k0", "label": "maybe"}\nnot json\n')
    cfg.active.labels = str(labels)
    second = job.run(spark, cfg, "r1")
    assert second.round == 1 and second.imported == 40 and second.rejected == 3 and second.labels == 40
    assert second.metric is None or 0 <= second.metric <= 1
    assert (tmp_path / "models" / "active" / "round=1" / "refinery_reward.json").is_file()
    sent = spark.read.format("delta").load(cfg.table("active/batches"))
    assert sent.count() == 80 and sent.select("doc_id").distinct().count() == 80  # the second batch is new records
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).where("stage = 'active_learning'")
    assert sorted(r.reason.split(": ", 1)[1] for r in rejects.collect()) == ["label 'maybe' outside good/bad", "not JSON",
                                                                              "unknown doc_id"]
    rounds = spark.read.format("delta").load(cfg.table("active/rounds")).orderBy("round").collect()
    assert [r.batch for r in rounds] == [40, 40] and rounds[1].labels == 40

    cfg.active.labels, cfg.active.oracle = None, "label"  # simulation: the records' KTO labels answer
    third = job.run(spark, cfg, "r2")
    labels = spark.read.format("delta").load(cfg.table("active/labels"))
    assert third.round == 2 and third.candidates == 40 and 0 < third.batch <= 40  # what was never sent
    assert labels.count() == 40 + third.batch and labels.where("round = 2").count() == third.batch
    assert all(r.label == int(oracle[r.doc_id]) for r in labels.where("round = 2").collect())
