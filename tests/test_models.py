"""Model scoring on real models (bundled MiniLM and SmolLM2, a tiny Llama built from a config) and
real Spark: the UDFs equal direct computation; perplexity orders clean text before shuffled or junk."""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model scoring needs the ml extra")

from pyspark.sql.pandas.types import from_arrow_schema  # noqa: E402

import jobs.embed as embed_job  # noqa: E402
import jobs.perplexity as perplexity_job  # noqa: E402
from refinery.config import load_config  # noqa: E402
from tests.conftest import SHARED_DATA, write_config  # noqa: E402
from udfs.models.loading import causal_lm, embedding_model  # noqa: E402
from udfs.models.perplexity import perplexities, windows  # noqa: E402
from udfs.schema import RECORD_SCHEMA  # noqa: E402

SENTENCES = ["A man is playing a guitar.", "Someone is playing an instrument.",
             "The central bank raised interest rates again.", "Heavy rain flooded the valley overnight."]
CLEAN = ("The history of the city goes back more than two thousand years. It was founded as a small trading "
         "post on the river, and grew into an important centre of commerce during the Middle Ages.")
JUNK = "asdf qwer zxcv 1234 !!!! lkjh poiu mnbv ;;;; 9876 qazx wsxc edcv rfvb tgbn yhnm ujmk"
REFERENCE = [
    "The library was built in the nineteenth century with money raised by the citizens. Its reading room, "
    "lit by tall windows, still holds the original oak tables and a collection of local newspapers.",
    "Farmers in the region grow wheat, barley and sugar beet. In recent years many have turned to organic "
    "methods, which require more labour but fetch higher prices at the market.",
    "The railway reached the town in 1862 and changed it quickly. New factories opened near the station, "
    "and the population doubled within twenty years as workers arrived from the countryside.",
]


@pytest.fixture(scope="module")
def smollm2():
    return causal_lm()


@pytest.fixture(scope="module")
def tiny_llama(smollm2):
    """A 2-layer Llama built from a config (random weights), with SmolLM2's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tokenizer = smollm2
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval(), tokenizer


def reference_perplexity(model, tokenizer, text: str, max_length: int, stride: int) -> float:
    """The sliding-window recipe of the Hugging Face perplexity guide, one document at a time."""
    ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]])
    nll, count, previous_end = 0.0, 0, 0
    for begin in range(0, ids.size(1), stride):
        end = min(begin + max_length, ids.size(1))
        target = end - previous_end
        window = ids[:, begin:end]
        labels = window.clone()
        labels[:, :-target] = -100
        with torch.no_grad():
            loss = model(window, labels=labels).loss
        scored = int((labels[:, 1:] != -100).sum())
        nll += float(loss) * scored
        count += scored
        previous_end = end
        if end == ids.size(1):
            break
    return float(np.exp(nll / count))


def test_windows_score_every_token_once():
    for n, length, stride in [(10, 4, 2), (10, 4, 4), (3, 8, 4), (100, 16, 5)]:
        scored = [p for w in windows(0, list(range(n)), length, stride)
                  for p in range(w.ids[0] + w.scored_from, w.ids[0] + len(w.ids))]
        assert scored == list(range(1, n))


def test_perplexity_equals_the_reference_recipe(tiny_llama):
    model, tokenizer = tiny_llama
    texts = [CLEAN, CLEAN * 3, "Short text.", JUNK, CLEAN[:40]]
    ppl, tokens = perplexities(texts, model, tokenizer, max_length=16, stride=8, token_budget=40)  # many padded batches
    for text, got in zip(texts, ppl):
        assert got == pytest.approx(reference_perplexity(model, tokenizer, text, 16, 8), rel=1e-4)
    assert tokens[0] == len(tokenizer(CLEAN, add_special_tokens=False)["input_ids"])
    empty, none = perplexities(["", "x"], model, tokenizer)[0]
    assert np.isnan(empty) and np.isfinite(none)


def clean_texts() -> list[str]:
    """Wikipedia openings (../shared) when present, else hand-written clean paragraphs."""
    wiki = SHARED_DATA / "web" / "wikipedia_30.txt"
    if wiki.is_file():
        return [line[:1500] for line in wiki.read_text(encoding="utf-8").splitlines()[:5] if line.strip()]
    return REFERENCE


def shuffled(text: str, seed: int = 0) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def test_smollm2_prefers_clean_text_to_shuffled_words_and_junk(smollm2):
    model, tokenizer = smollm2
    texts = clean_texts()
    clean_ppl = perplexities(texts, model, tokenizer, max_length=256, stride=128)[0]
    shuffled_ppl = perplexities([shuffled(t, i) for i, t in enumerate(texts)], model, tokenizer, max_length=256, stride=128)[0]
    junk_ppl = perplexities([JUNK], model, tokenizer)[0]
    assert (clean_ppl * 3 < shuffled_ppl).all() and clean_ppl.max() < junk_ppl[0]


@pytest.fixture()
def scoring_input(spark, tmp_path):
    texts = [*SENTENCES[:3], JUNK, shuffled(CLEAN), CLEAN]  # (junk repeated would be easy to predict)
    rows = [{"doc_id": f"d{i}", "kind": "pretrain", "text": t, "source": "junk" if i in (3, 4) else "web"}
            for i, t in enumerate(texts)]
    rows.append({"doc_id": "n1", "kind": "pretrain", "text": None, "source": "web"})
    schema = from_arrow_schema(RECORD_SCHEMA)
    spark.createDataFrame([{**{f: None for f in schema.fieldNames()}, **r} for r in rows], schema) \
        .write.format("delta").save(str(tmp_path / "lake" / "quality" / "kept"))
    reference = tmp_path / "reference.txt"
    reference.write_text("\n".join(clean_texts()) + "\n")
    config = write_config(tmp_path / "refinery.yaml", tmp_path / "lake", [{"name": "web", "path": str(tmp_path), "format": "text"}])
    return config, reference


def test_embed_job_equals_direct_encode(spark, scoring_input):
    config, _ = scoring_input
    cfg = load_config(config, ["embed.rows_per_call=2", "embed.batch_size=2"], environ={})
    result = embed_job.run(spark, cfg, "e1")
    rows = {r.doc_id: np.array(r.embedding) for r in spark.read.format("delta").load(cfg.table("scored/embeddings")).collect()}
    assert (result.records_in, result.embeddings.rows, result.rejects.rows, result.dimension) == (7, 6, 1, 384)
    direct = embedding_model().encode(SENTENCES[:3], normalize_embeddings=True)
    assert max(np.abs(rows[f"d{i}"] - direct[i]).max() for i in range(3)) <= 1e-5
    assert rows["d0"] @ rows["d1"] > rows["d0"] @ rows["d2"] + 0.3  # paraphrases are closer than unrelated text


def test_perplexity_job_buckets_against_the_reference(spark, scoring_input):
    config, reference = scoring_input
    cfg = load_config(config, [f"perplexity.reference={reference}", "perplexity.max_length=128",
                               "perplexity.stride=64"], environ={})
    result = perplexity_job.run(spark, cfg, "p1")
    rows = {r.doc_id: r for r in spark.read.format("delta").load(cfg.table("scored/perplexity")).collect()}
    assert (result.records_in, result.scores.rows, result.rejects.rows) == (7, 6, 1)
    assert rows["d3"].bucket == rows["d4"].bucket == "tail" and rows["d5"].bucket in ("head", "middle")
    assert rows["d5"].perplexity * 3 < min(rows["d3"].perplexity, rows["d4"].perplexity)
    assert all(rows[d].tokens > 0 for d in rows) and result.cutoffs[0] < result.cutoffs[1]
    assert [r[0] for r in result.distribution] == ["reference", "junk", "web"]
