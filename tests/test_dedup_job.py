"""The dedup stage on real Spark and Delta: accuracy against exact Jaccard, the verification step,
survivor policies, rejects, reconciliation and re-runs."""
from __future__ import annotations

import json
import random

import pytest
from delta.tables import DeltaTable
from pyspark.sql.pandas.types import from_arrow_schema

import jobs.dedup as dedup
import jobs.ingest as ingest
from refinery.config import load_config
from tests.conftest import SHARED_DATA, write_config
from udfs.dedup.evaluate import accuracy, cluster_pairs, plant_near_duplicates, true_pairs
from udfs.dedup.minhash import Shingler
from udfs.schema import RECORD_SCHEMA


def base_texts() -> list[str]:
    """Real C4 documents when ../shared is present, else synthetic ones with a Zipf-like vocabulary."""
    c4 = SHARED_DATA / "web" / "c4_300.jsonl"
    if c4.is_file():
        return [json.loads(line)["text"] for line in c4.read_text().splitlines()]
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(3000)]
    weights = [1 / (i + 1) for i in range(3000)]
    return [" ".join(rng.choices(vocab, weights, k=rng.randint(120, 400))) for _ in range(300)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A corpus of documents, edited copies at known edit rates and exact copies differing only in
    case and spacing, ingested once; returns the texts in line order and the config."""
    root = tmp_path_factory.mktemp("dedup")
    base = base_texts()
    texts = plant_near_duplicates(base, 150, seed=2)
    texts += [base[i].upper().replace(" ", "  ") for i in range(0, 40, 4)]
    corpus = root / "web.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    config = write_config(root / "refinery.yaml", root / "lake", [{"name": "web", "path": str(corpus), "format": "text"}])
    return texts, config


def index_of(spark, cfg) -> dict[str, int]:
    """doc_id -> line index of the planted corpus."""
    docs = spark.read.format("delta").load(cfg.table("bronze/docs"))
    return {r.doc_id: r.source_line - 1 for r in docs.select("doc_id", "source_line").collect()}


def predicted(spark, cfg, ids: dict[str, int]) -> tuple[set, set]:
    """Pairs in the same cluster, and (dropped, survivor) pairs, as corpus indices."""
    rows = spark.read.format("delta").load(cfg.table("dedup/clusters")).collect()
    members: dict[str, list[int]] = {}
    for r in rows:
        members.setdefault(r.cluster_id, []).append(ids[r.doc_id])
    dropped = spark.read.format("delta").load(cfg.table("dedup/dropped")).collect()
    survivors = {tuple(sorted((ids[r.doc_id], ids[r.duplicate_of]))) for r in dropped}
    return cluster_pairs(members.values()), survivors


def test_accuracy_against_exact_jaccard(spark, planted):
    texts, config = planted
    cfg = load_config(config, environ={})
    ingest.run(spark, cfg, "r1")
    result = dedup.run(spark, cfg, "r1")
    ids = index_of(spark, cfg)
    truth = true_pairs(texts, Shingler())
    same_cluster, survivor_pairs = predicted(spark, cfg, ids)
    acc = accuracy(truth, same_cluster, 0.8)
    assert acc.recall_at_least(0.85) >= 0.95, acc.rows()
    assert accuracy(truth, survivor_pairs, 0.8).precision >= 0.99
    assert acc.precision >= 0.99, acc.rows()
    # an exact copy (differs only in case and spacing) shares its original's cluster; when one of
    # the two survives, the other is dropped as its exact duplicate
    clusters = {ids[r.doc_id]: r.cluster_id for r in spark.read.format("delta").load(cfg.table("dedup/clusters")).collect()}
    dropped = {ids[r.doc_id]: r for r in spark.read.format("delta").load(cfg.table("dedup/dropped")).collect()}
    for k, i in enumerate(range(0, 40, 4)):
        copy = len(texts) - 10 + k
        assert clusters[i] == clusters[copy]
        gone = [dropped[x] for x in (i, copy) if x in dropped]
        if len(gone) == 1:
            assert gone[0].reason == "exact_duplicate" and ids[gone[0].duplicate_of] in (i, copy)
    assert result.records_in == len(texts) == result.kept.rows + result.dropped.rows + result.rejects.rows
    assert spark.read.format("delta").load(cfg.table("dedup/kept")).count() == result.kept.rows
    commit = DeltaTable.forPath(spark, cfg.table("dedup/kept")).history(1).first()
    assert json.loads(commit.userMetadata)["inputs"] == {"bronze/docs": 0}


def test_verification_removes_lsh_false_positives(spark, planted):
    """Loose banding (many candidates under the threshold): verification is what keeps precision."""
    texts, config = planted
    loose = ["dedup.near.bands=32", "dedup.near.rows=4"]
    cfg = load_config(config, loose, environ={})
    ingest.run(spark, cfg, "r1")
    ids, truth = index_of(spark, cfg), true_pairs(texts, Shingler())
    checked = dedup.run(spark, cfg, "r2")
    with_check = accuracy(truth, predicted(spark, cfg, ids)[0], 0.8)
    unchecked = dedup.run(spark, load_config(config, loose + ["dedup.near.verify=false"], environ={}), "r3")
    without_check = accuracy(truth, predicted(spark, cfg, ids)[0], 0.8)
    assert checked.verified_pairs < checked.candidate_pairs == unchecked.candidate_pairs
    assert with_check.precision >= 0.99 and without_check.false_positives > with_check.false_positives
    assert with_check.recall_at_least(0.85) >= 0.95


T1 = " ".join(f"word{i % 97} token{i % 13}" for i in range(150))


@pytest.fixture()
def custom_table(spark, tmp_path):
    """A hand-made input table with a score column: exact and near duplicates, a record of another
    (or no) kind with the same text, a record without text, a doc_id used twice."""
    def record(doc_id, text, kind="pretrain", score=None):
        return {"doc_id": doc_id, "kind": kind, "text": text, "source": "hand", "score": score}
    rows = [
        record("a1", T1, score=0.1),
        record("a2", T1.upper().replace(" ", "  ", 1), score=0.9),  # exact duplicate of a1
        record("a3", T1 + " and three more", score=0.5),  # near duplicate, the longest
        record("b1", T1, kind="sft", score=1.0),  # same text, other kind: never compared
        record("c1", None),  # no text: rejected
        record("d1", "something else entirely, nothing like the others"),
        record("n1", T1, kind=None),  # a null kind is a group of its own
        record("r1", "one of two records"), record("r1", "sharing one doc_id"),  # ambiguous: both rejected
    ]
    schema = from_arrow_schema(RECORD_SCHEMA).add("score", "double")
    full = [{**{f: None for f in schema.fieldNames()}, **r} for r in rows]
    config = write_config(tmp_path / "refinery.yaml", tmp_path / "lake",
                          [{"name": "hand", "path": str(tmp_path), "format": "text"}])
    spark.createDataFrame(full, schema).write.format("delta").save(str(tmp_path / "lake" / "custom" / "docs"))
    return config


def outcome(spark, cfg) -> dict[str, tuple]:
    """doc_id -> (reason, duplicate_of) for dropped documents, ('kept', dup_count) for kept ones."""
    kept = spark.read.format("delta").load(cfg.table("dedup/kept")).collect()
    dropped = spark.read.format("delta").load(cfg.table("dedup/dropped")).collect()
    return {**{r.doc_id: ("kept", r.dup_count) for r in kept}, **{r.doc_id: (r.reason, r.duplicate_of) for r in dropped}}


@pytest.mark.parametrize("policy,survivor", [("score", "a2"), ("longest", "a3"), ("lowest_id", "a1")])
def test_survivor_policies_rejects_and_within(spark, custom_table, policy, survivor):
    overrides = ["dedup.input=custom/docs", f"dedup.survivor.policy={policy}"]
    if policy == "score":
        overrides.append("dedup.survivor.score_column=score")
    cfg = load_config(custom_table, overrides, environ={})
    result = dedup.run(spark, cfg, "r1")
    got = outcome(spark, cfg)
    assert got[survivor] == ("kept", 3) and got["b1"] == got["d1"] == got["n1"] == ("kept", 1)
    others = {"a1", "a2", "a3"} - {survivor}
    exact = {"score": {"a1"}, "lowest_id": {"a2"}, "longest": set()}[policy]
    assert {d: got[d] for d in others} == {
        d: ("exact_duplicate" if d in exact else "near_duplicate", survivor) for d in others}
    rejects = spark.read.format("delta").load(cfg.table("bronze/rejects")).where("stage = 'dedup'").collect()
    assert sorted((r.doc_id, r.reason) for r in rejects) == [
        ("c1", "dedup: record has no text"), *[("r1", "dedup: doc_id appears 2 times in the input")] * 2]
    assert (result.records_in, result.kept.rows, result.dropped.rows, result.rejects.rows) == (9, 4, 2, 3)
    if policy == "lowest_id":  # a re-run replaces every output with the same content
        again = dedup.run(spark, cfg, "r2")
        assert outcome(spark, cfg) == got and again.kept.version == result.kept.version + 1


def test_missing_input_and_columns_are_clear_errors(spark, custom_table, tmp_path):
    with pytest.raises(dedup.DedupError, match="run the ingest stage first"):
        dedup.run(spark, load_config(custom_table, environ={}), "r1")
    cfg = load_config(custom_table, ["dedup.input=custom/docs", "dedup.survivor.policy=score",
                                     "dedup.survivor.score_column=quality"], environ={})
    with pytest.raises(dedup.DedupError, match=r"no column\(s\) \['quality'\]"):
        dedup.run(spark, cfg, "r1")
