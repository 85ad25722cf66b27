"""Shift statistics on known distributions, and the shift report job on real Spark (bundled
models, small samples): a shifted pair reads as shifted, a sample against itself does not."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql.pandas.types import from_arrow_schema

from udfs.shift.reading import reading, shift_band
from udfs.shift.statistics import classifier_auc, mmd_test

pytest.importorskip("sklearn", reason="the classifier two-sample test needs scikit-learn (ml extra)")


def test_mmd_and_auc_separate_shifted_samples_only():
    rng = np.random.default_rng(0)
    x, same, shifted = rng.normal(size=(200, 16)), rng.normal(size=(200, 16)), rng.normal(size=(200, 16)) + 0.5
    mmd_same, p_same = mmd_test(x, same, permutations=200)
    mmd_shift, p_shift = mmd_test(x, shifted, permutations=200)
    assert p_same > 0.05 and p_shift < 0.01 and mmd_shift > 10 * abs(mmd_same)
    assert abs(classifier_auc(x, same) - 0.5) < 0.1 and classifier_auc(x, shifted) > 0.9


def test_reading_names_the_band_and_says_it_is_a_heuristic():
    assert shift_band(0.55)[0] == "small" and shift_band(0.8)[0] == "moderate" and shift_band(0.97)[0] == "large"
    text = reading(0.95, 0.002, 2.5)
    assert "large" in text and "heuristics" in text and "significant" in text


def test_shift_report_job(spark, tmp_path):
    pytest.importorskip("torch", reason="embeddings and perplexity need the ml extra")
    import jobs.shift_report as shift_job
    from refinery.config import load_config
    from tests.conftest import write_config
    from udfs.schema import RECORD_SCHEMA

    questions = [f"How do I {verb} a {thing}? Please explain step by step." for verb in ("fix", "paint", "clean", "build")
                 for thing in ("bicycle", "fence", "kitchen sink", "bookshelf", "window", "garden bed")]
    web = [f"The {place} council met on {day} to discuss the budget for {thing} repairs and new parking rules."
           for place in ("town", "city", "county") for day in ("Monday", "Friday") for thing in ("road", "school", "bridge", "park")]
    schema = from_arrow_schema(RECORD_SCHEMA)
    rows = [{**{f: None for f in schema.fieldNames()}, "doc_id": f"q{i}", "kind": "sft", "source": "x", "text": t}
            for i, t in enumerate(questions)]
    spark.createDataFrame(rows, schema).write.format("delta").save(str(tmp_path / "lake" / "quality" / "kept"))
    (tmp_path / "web.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in web) + "\n")
    config = write_config(tmp_path / "refinery.yaml", tmp_path / "lake", [{"name": "x", "path": str(tmp_path), "format": "text"}])
    cfg = load_config(config, [f"shift.reference={tmp_path / 'web.jsonl'}", f"shift.out={tmp_path / 'reports'}",
                               "shift.ppl_sample=3", "shift.max_length=64", "shift.permutations=100"], environ={})
    result = shift_job.run(spark, cfg, "sh1")
    assert result.report["finetune"]["rows"] == 24 and result.report["reference"]["rows"] == 24
    assert result.report["auc"] > 0.9 and result.report["mmd_p"] < 0.05 and result.report["ppl_ratio"] > 0
    saved = json.loads(Path(result.path.replace(".md", ".json")).read_text())
    assert saved["auc"] == result.report["auc"] and "heuristics" in Path(result.path).read_text()
