"""Training-side readers (no Spark: delta-rs + pyarrow) on tables the pipeline wrote: every row
read once across ranks and DataLoader workers, a pinned version and a timestamp travel back in
time, and the Hugging Face ``datasets`` view equals the table."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch reader needs the ml extra")
pytest.importorskip("deltalake")

import jobs.ingest as ingest_job  # noqa: E402
from refinery.config import load_config  # noqa: E402
from refinery.read import DeltaIterableDataset, open_table, to_hf_dataset  # noqa: E402
from tests.conftest import sample_sources, write_config  # noqa: E402


@pytest.fixture(scope="module")
def two_versions(spark, sample_corpus, tmp_path_factory):
    """bronze/docs written by the ingest job twice: v0 holds the web source, v1 every source."""
    root = tmp_path_factory.mktemp("read")
    sources = sample_sources(sample_corpus)
    web_only = load_config(write_config(root / "web.yaml", root / "lake", [s for s in sources if s["name"] == "web"]), environ={})
    ingest_job.run(spark, web_only, "r0")
    everything = load_config(write_config(root / "all.yaml", root / "lake", sources), environ={})
    ingest_job.run(spark, everything, "r1")
    path = everything.table("bronze/docs")
    rows = {v: {(r.doc_id, r.source) for r in spark.read.format("delta").option("versionAsOf", v).load(path).collect()}
            for v in (0, 1)}
    return path, rows


def test_versions_and_timestamps_pin_what_was_written(two_versions):
    path, rows = two_versions
    assert {s for _, s in rows[0]} == {"web"} and len(rows[1]) > len(rows[0])
    assert {(r["doc_id"], r["source"]) for r in DeltaIterableDataset(path, version=0, columns=["doc_id", "source"])} == rows[0]
    assert {(r["doc_id"], r["source"]) for r in DeltaIterableDataset(path, columns=["doc_id", "source"])} == rows[1]
    first_commit = open_table(path).history()[-1]["timestamp"]  # epoch ms of version 0
    from datetime import datetime, timezone

    at = datetime.fromtimestamp(first_commit / 1000, tz=timezone.utc).isoformat()
    assert open_table(path, timestamp=at).version() == 0
    assert {(r["doc_id"], r["source"]) for r in DeltaIterableDataset(path, timestamp=at, columns=["doc_id", "source"])} == rows[0]


def test_ranks_and_workers_each_read_their_own_share(two_versions, monkeypatch):
    path, rows = two_versions
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        loader = torch.utils.data.DataLoader(DeltaIterableDataset(path, version=1, columns=["doc_id", "source"]),
                                             batch_size=None, num_workers=2)
        seen += [(r["doc_id"], r["source"]) for r in loader]
    assert len(seen) == len(set(seen)) == len(rows[1]) and set(seen) == rows[1]


def test_hugging_face_dataset_equals_the_table(two_versions):
    path, rows = two_versions
    data = to_hf_dataset(path, version=0, columns=["doc_id", "source", "text"])
    assert {(d, s) for d, s in zip(data["doc_id"], data["source"])} == rows[0]
    assert all(isinstance(t, str) for t in data["text"])
