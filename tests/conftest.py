"""Shared fixtures: one real local SparkSession per test run, temporary lakes, ../shared data."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from refinery.config import Config, SparkSection, load_config
from refinery.session import build_session

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
TEST_SPARK = SparkSection(
    master="local[2]",
    app_name="refinery-tests",
    shuffle_partitions=2,
    conf={"spark.ui.enabled": "false", "spark.driver.memory": "2g"},
)


@pytest.fixture(scope="session")
def spark():
    session = build_session(TEST_SPARK)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip cleanly without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> Path:
    """The sample corpus ``make run`` ingests, generated fresh by its own script."""
    out = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample.py"), "--out", str(out)], check=True,
                   capture_output=True)
    return out


def write_config(path: Path, lake: Path, sources: list[dict], **ingest) -> Path:
    """A YAML config file as a user would write it."""
    data = {
        "lake": str(lake),
        "spark": TEST_SPARK.model_dump(),
        "ingest": {"sources": sources, **ingest},
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def make_config(tmp_path: Path, sources: list[dict], **ingest) -> Config:
    return load_config(write_config(tmp_path / "refinery.yaml", tmp_path / "lake", sources, **ingest), environ={})


def sample_sources(sample: Path) -> list[dict]:
    """The bundled local config's sources, pointed at a generated sample folder."""
    sources = load_config(environ={}).ingest.sources
    return [{**s.model_dump(exclude_none=True), "path": s.path.replace("data/sample", str(sample))} for s in sources]


def pipeline_config(tmp_path: Path, lake: Path, sources: list[dict], *overrides: str) -> tuple[Path, Config]:
    path = write_config(tmp_path / f"{lake.name}.yaml", lake, sources)
    # Incremental state costs a few Delta writes per stage: only the tests about it turn it on.
    return path, load_config(path, ["pipeline.progress_seconds=0", "pipeline.incremental=false", *overrides], environ={})


@pytest.fixture(scope="session")
def pipeline_sources(sample_corpus, tmp_path_factory) -> list[dict]:
    """The sample corpus's sources, the web folder copied where a test can drop a new shard."""
    import shutil

    web = tmp_path_factory.mktemp("raw") / "web"
    shutil.copytree(sample_corpus / "web", web)
    return [{**s, "path": str(web)} if s["name"] == "web" else s for s in sample_sources(sample_corpus)]


@pytest.fixture(scope="session")
def clean_lake(spark, pipeline_sources, tmp_path_factory) -> Config:
    """One uninterrupted ``refinery run`` (ingest, dedup, quality) of the sample corpus, with its
    incremental state; copy it before changing it."""
    from jobs import pipeline

    tmp = tmp_path_factory.mktemp("clean")
    _, cfg = pipeline_config(tmp, tmp / "lake", pipeline_sources, "pipeline.incremental=true")
    assert pipeline.run(spark, cfg, "clean").ran() == ["ingest", "dedup", "quality"]
    return cfg
