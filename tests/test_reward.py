"""Reward model and quality classifier: inputs and negatives, truncation, Bradley-Terry training
on the bundled MiniLM and on a tiny DeBERTa-v2 built from a config, clear errors for unusable model
paths, and the train / score jobs on real Spark and Delta tables."""
from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest

from udfs.reward.inputs import pair_problem, record_inputs
from udfs.reward.metrics import auc_by_group, length_accuracy
from udfs.reward.negatives import KINDS, make_negatives

torch = pytest.importorskip("torch", reason="reward models need the ml extra")


def test_pair_problems_and_record_inputs():
    turns = [{"role": "user", "content": "Hi?"}]
    assert pair_problem(turns, "a", "a ") == "chosen equals rejected"
    assert pair_problem(turns, "", "b") == "pair has an empty response"
    assert pair_problem([], "a", "b") == "pair has no user prompt"
    assert pair_problem(turns, "a", "b") is None
    sft = [{"role": "system", "content": "Be brief."}, *turns, {"role": "assistant", "content": "Hello."}]
    assert record_inputs("sft", sft, None, None) == ("user: Hi?", "Hello.", None)
    assert record_inputs("preference", turns, "yes", "no") == ("user: Hi?", "yes", "no")


def test_negatives_cover_every_kind_and_spoil_the_response():
    responses = [f"Answer number {i}. It has two sentences." for i in range(12)]
    made = make_negatives(responses, KINDS, seed=0, other_language=["这是中文的回答。"])
    assert {k for _, k, _ in made} == set(KINDS) and len(made) == 12
    for i, kind, text in made:
        assert text != responses[i]
        if kind == "empty":
            assert text == ""
        if kind == "wrong_language":
            assert text == "这是中文的回答。"
    assert "wrong_language" not in {k for _, k, _ in make_negatives(responses, KINDS, seed=0)}


def test_metrics():
    assert length_accuracy(["long answer", "x"], ["short", "longer"]) == 0.5
    auc = auc_by_group(np.array([0.9, 0.8, 0.1, 0.85]), [1, 1, 0, 0], ["trusted", "trusted", "empty", "swapped"])
    assert auc["empty"] == 1.0 and auc["swapped"] == 0.5 and auc["all"] == 0.75


def test_encode_keeps_the_response_start_and_the_prompt_end():
    from udfs.reward.model import encode, load

    model, tokenizer = load(None)
    prompt = " ".join(f"p{i}" for i in range(300)) + " LASTWORD"
    response = "FIRSTWORD " + " ".join(f"r{i}" for i in range(300))
    batch = encode(tokenizer, [prompt, "short"], [response, "reply"], 64, "cpu")
    assert batch["input_ids"].shape[1] <= 64
    text = tokenizer.decode(batch["input_ids"][0])
    assert "lastword" in text and "firstword" in text and "p0 " not in text


def arithmetic_pairs(n: int, seed: int):
    """A learnable preference: the right sum is preferred to a refusal-like non-answer."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        out.append((f"user: What is {a} plus {b}?", f"{a} plus {b} is {a + b}.",
                    rng.choice(["I don't know.", "No idea, sorry.", "I cannot answer that."])))
    return out


def train_small(backbone, pairs, **kw):
    from udfs.reward.model import Training, train_pairwise

    settings = Training(**{"epochs": 2, "learning_rate": 1e-4, "batch_size": 8, "max_length": 48, **kw})
    return train_pairwise(backbone, [p for p, _, _ in pairs], [c for _, c, _ in pairs], [r for _, _, r in pairs],
                          settings, log=lambda _: None)


def test_bradley_terry_training_learns_and_is_reproducible(tmp_path):
    from udfs.reward.model import Training, load_scorer, rewards, save

    train, test = arithmetic_pairs(48, 0), arithmetic_pairs(16, 1)
    model, tokenizer, losses = train_small(None, train)
    again = train_small(None, train)[2]
    assert losses == again  # same seed, same data: the same run
    assert losses[-1] < losses[0]
    chosen = rewards(model, tokenizer, [p for p, _, _ in test], [c for _, c, _ in test], 48)
    rejected = rewards(model, tokenizer, [p for p, _, _ in test], [r for _, _, r in test], 48)
    assert np.mean(chosen > rejected) >= 0.9
    folder = save(model, tokenizer, tmp_path / "rm", "pairwise", "minilm", Training(max_length=48), {"x": 1})
    loaded, tok, meta = load_scorer(str(folder))
    assert meta["objective"] == "pairwise" and meta["metrics"] == {"x": 1}
    np.testing.assert_allclose(rewards(loaded, tok, [p for p, _, _ in test], [c for _, c, _ in test], 48), chosen, atol=1e-4)


def test_tiny_deberta_v2_backbone_trains(tmp_path):
    """The DeBERTa code path for real: a 2-layer DeBERTa-v2 built from a config (no weights exist
    offline), with the MiniLM WordPiece tokenizer."""
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

    from udfs.models.loading import default_embedding_model

    folder = tmp_path / "tiny-deberta"
    config = DebertaV2Config(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=128, pad_token_id=0)
    torch.manual_seed(0)
    DebertaV2Model(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_embedding_model()).save_pretrained(folder)
    model, _, losses = train_small(str(folder), arithmetic_pairs(16, 2), epochs=1)
    assert type(model.encoder).__name__ == "DebertaV2Model" and np.isfinite(losses).all()


def test_unusable_model_paths_fail_clearly_without_downloading(tmp_path):
    from udfs.reward.model import ModelError, load_scorer, resolve_backbone

    with pytest.raises(ModelError, match="not a local folder, and downloads are off"):
        resolve_backbone("microsoft/deberta-v3-base")
    (tmp_path / "config-only").mkdir()
    (tmp_path / "config-only" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="has no weights"):
        resolve_backbone(str(tmp_path / "config-only"))
    with pytest.raises(ModelError, match="run train_reward first"):
        load_scorer(str(tmp_path))


def preference_lake(spark, tmp_path, shared_data):
    """Real pairs (LLaMA-Factory DPO demo, mapped by ingest's own adapter), a few broken ones, an
    SFT record and a pretraining document, as a quality/kept table."""
    from udfs.ingest.formats import canonical_fields, resolve_fields
    from udfs.schema import RECORD_SCHEMA

    raw = json.loads((shared_data / "preference" / "dpo_en_sharegpt.json").read_text())[:80]
    rows = [{**canonical_fields(r, "sharegpt_preference", resolve_fields("sharegpt_preference", {})),
             "doc_id": f"p{i}", "source": "dpo"} for i, r in enumerate(raw)]
    prompt = [{"role": "user", "content": "Say hi."}]
    rows += [{"doc_id": "same", "kind": "preference", "text": "x", "messages": prompt, "chosen": "Hi", "rejected": "Hi",
              "source": "bad"},
             {"doc_id": "empty", "kind": "preference", "text": "x", "messages": prompt, "chosen": "", "rejected": "Hi",
              "source": "bad"},
             {"doc_id": "sft", "kind": "sft", "text": "x", "messages": prompt + [{"role": "assistant", "content": "Hi!"}],
              "source": "sft"},
             {"doc_id": "web", "kind": "pretrain", "text": "A web page.", "source": "web"}]
    path = tmp_path / "lake" / "quality" / "kept"
    spark.createDataFrame(pa.Table.from_pylist(rows, RECORD_SCHEMA)).write.format("delta").save(str(path))


def reward_config(tmp_path, **reward):
    import yaml

    from refinery.config import load_config
    from tests.conftest import write_config

    path = write_config(tmp_path / "refinery.yaml", tmp_path / "lake", [{"name": "x", "path": "x", "format": "text"}])
    data = yaml.safe_load(path.read_text())
    data["reward"] = {"out": str(tmp_path / "models"), "epochs": 1, "max_length": 64, "batch_size": 8,
                      "baseline_features": 4096, **reward}
    path.write_text(yaml.safe_dump(data))
    return load_config(path, environ={})


def test_train_and_score_jobs(spark, tmp_path, shared_data):
    import jobs.score_reward as score_job
    import jobs.train_reward as train_job

    preference_lake(spark, tmp_path, shared_data)
    cfg = reward_config(tmp_path)
    trained = train_job.run(spark, cfg, "rm")
    m = trained.metrics
    assert trained.used == 80 and trained.rejects.rows == 2 and m["train"] + m["heldout"] == 80
    assert {"heldout_accuracy", "length_accuracy", "tfidf_accuracy"} <= set(m)
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).where("stage = 'train_reward'")
    assert sorted(r.reason for r in rejects.collect()) == ["train_reward: chosen equals rejected",
                                                           "train_reward: pair has an empty response"]
    meta = json.loads((tmp_path / "models" / "pairwise" / "refinery_reward.json").read_text())
    assert meta["objective"] == "pairwise" and meta["metrics"]["train"] == m["train"]

    scored = score_job.run(spark, cfg, "score")
    table = spark.read.format("delta").load(cfg.table("scored/reward"))
    assert scored.scores.rows == 83 and scored.rejects.rows == 1  # the pretraining document
    assert table.where("reward_score is null").count() == 0
    assert table.where("kind = 'preference' and reward_margin is null").count() == 0
    assert table.where("kind = 'sft'").first().reward_margin is None

    with pytest.raises(Exception, match="not a local folder"):
        train_job.run(spark, reward_config(tmp_path, backbone="org/some-model"), "x")


def test_pointwise_classifier_from_labels_and_from_negatives(spark, tmp_path, shared_data):
    import jobs.train_reward as train_job
    from udfs.ingest.formats import canonical_fields, resolve_fields
    from udfs.schema import RECORD_SCHEMA

    raw = json.loads((shared_data / "preference" / "kto_en_messages.json").read_text())[:60]
    rows = [{**canonical_fields(r, "messages", resolve_fields("messages", {})), "doc_id": f"k{i}", "source": "kto"}
            for i, r in enumerate(raw)]
    rows.append({**rows[0], "doc_id": "odd", "meta": json.dumps({"label": "maybe"})})
    spark.createDataFrame(pa.Table.from_pylist(rows, RECORD_SCHEMA)).write.format("delta").save(
        str(tmp_path / "lake" / "quality" / "kept"))
    labelled = train_job.run(spark, reward_config(tmp_path, objective="pointwise", pointwise={"labels": "meta"}), "kto")
    assert labelled.rejects.rows == 1 and set(labelled.metrics["auc"]) == {"all"}
    auto = train_job.run(spark, reward_config(tmp_path, objective="pointwise",
                                              pointwise={"negatives": ["swapped", "empty", "refusal"]}), "auto")
    assert set(auto.metrics["auc"]) == {"all", "swapped", "empty", "refusal"}
    assert all(0 <= v <= 1 for v in [*auto.metrics["auc"].values(), *auto.metrics["tfidf_auc"].values()])
    assert auto.used == 61 and auto.metrics["train"] + auto.metrics["heldout"] == 122  # one negative per record
