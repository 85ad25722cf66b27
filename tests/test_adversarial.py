"""Adversarial semi-supervised filtering on real Spark and Delta: planted junk against real C4
documents, Wikipedia as the trusted set."""
from __future__ import annotations

import json
import sys

import pyarrow as pa
import pytest
import yaml

from tests.conftest import ROOT, write_config

sys.path.insert(0, str(ROOT / "scripts"))
from junk import planted_junk  # noqa: E402


def test_adversarial_filter_drops_planted_junk_in_rounds(spark, tmp_path, shared_data):
    import jobs.adversarial_filter as job
    from refinery.config import ConfigError, load_config
    from udfs.schema import RECORD_SCHEMA

    c4 = [json.loads(line)["text"] for line in (shared_data / "web" / "c4_300.jsonl").read_text().splitlines()][:120]
    junk = [(k, t) for k, t in planted_junk(c4, 10, seed=3) if k != "shuffled_words"]
    rows = ([{"doc_id": f"c4-{i}", "kind": "pretrain", "text": t, "source": "c4"} for i, t in enumerate(c4)]
            + [{"doc_id": f"junk-{k}-{i}", "kind": "pretrain", "text": t, "source": "junk"} for i, (k, t) in enumerate(junk)]
            + [{"doc_id": "sft-0", "kind": "sft", "text": "Q? A.", "source": "sft"}])
    spark.createDataFrame(pa.Table.from_pylist(rows, RECORD_SCHEMA)).write.format("delta").save(
        str(tmp_path / "lake" / "quality" / "kept"))
    path = write_config(tmp_path / "refinery.yaml", tmp_path / "lake", [{"name": "x", "path": "x", "format": "text"}])
    data = yaml.safe_load(path.read_text())
    data["adversarial"] = {"trusted": str(shared_data / "web" / "wikipedia_30.txt"), "kinds": ["pretrain"], "rounds": 2,
                           "folds": 2, "features": 1 << 14, "out": str(tmp_path / "models")}
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path, environ={})
    result = job.run(spark, cfg, "adv")
    assert result.records_in == len(rows) and result.rejects.rows == 1  # the sft record is out of scope
    dropped = spark.read.format("delta").load(cfg.table("adversarial/dropped"))
    got = {r.doc_id: r for r in dropped.collect()}
    assert all(f"junk-{k}-{i}" in got and got[f"junk-{k}-{i}"].round == 0 for i, (k, _) in enumerate(junk))
    assert all(r.value < r.threshold and r.reason == "unlike_trusted" for r in got.values())
    rounds = spark.read.format("delta").load(cfg.table("adversarial/rounds")).orderBy("round").collect()
    assert [r.dropped for r in rounds] == [r["dropped"] for r in result.rounds] and sum(r.dropped for r in rounds) == len(got)
    assert (tmp_path / "models" / "adv" / "round=0" / "fold=1").is_dir()
    kept = spark.read.format("delta").load(cfg.table("adversarial/kept"))
    assert kept.count() + len(got) == len(rows) - 1 and kept.join(dropped, "doc_id").count() == 0
    cfg.adversarial.trusted = None
    with pytest.raises(ConfigError, match="adversarial.trusted is required"):
        job.run(spark, cfg, "no-trusted")
