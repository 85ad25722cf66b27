"""spark-submit of the ingest, dedup, quality, selection and export jobs to a real Spark standalone
master and worker on 127.0.0.1.

This is the cluster path of the README: the code shipped as a wheel with --py-files, Delta with
--packages (resolved from the set-up's Ivy cache), master and resources owned by spark-submit.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.find_spark_home import _find_spark_home

from refinery.config import load_config
from refinery.session import delta_package
from tests.conftest import ROOT, sample_sources, write_config

pytestmark = pytest.mark.cluster
SPARK_HOME = Path(_find_spark_home())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], log: Path, ready: str, env: dict, timeout: float = 60) -> subprocess.Popen:
    """Start a Spark daemon class in the foreground (its PID is ours) and wait for its ready line."""
    handle = log.open("wb")
    proc = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=handle, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"{args[0]} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def standalone(tmp_path):
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    port = free_port()
    master = start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(free_port())], tmp_path / "master.log", "I have been elected leader", env)
    url = f"spark://127.0.0.1:{port}"
    try:
        worker = start(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2", "--memory", "2g",
                        "--webui-port", str(free_port()), "--work-dir", str(tmp_path / "work"), url],
                       tmp_path / "worker.log", "Successfully registered with master", env)
        try:
            yield url, env, tmp_path
        finally:
            stop(worker)
    finally:
        stop(master)
    assert master.poll() is not None and worker.poll() is not None


def test_spark_submit_to_standalone_cluster(standalone, tmp_path, sample_corpus, spark):
    url, env, logs = standalone
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("refinery-*.whl"))
    lake = tmp_path / "lake"
    config = write_config(tmp_path / "cluster.yaml", lake, sample_sources(sample_corpus))
    ivy = str(Path(load_config(environ={}).spark.jars_cache).expanduser())

    def submit(job: str, *overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SPARK_HOME / "bin" / "spark-submit"), "--master", url,
             "--packages", delta_package(), "--conf", f"spark.jars.ivy={ivy}",
             "--py-files", str(wheel), "--conf", "spark.executor.memory=1g", "--conf", "spark.sql.shuffle.partitions=2",
             str(ROOT / "jobs" / f"{job}.py"), "--config", str(config), "--run-id", "standalone",
             *[arg for o in overrides for arg in ("--set", o)]],
            env=env, capture_output=True, text=True, timeout=600,
        )

    ingested = submit("ingest")
    assert ingested.returncode == 0, ingested.stdout[-3000:] + ingested.stderr[-5000:]
    assert "bronze/docs@v0" in ingested.stdout
    # dedup's compiled kernels load from the zipped wheel on the executors (no numba cache there)
    deduplicated = submit("dedup")
    assert deduplicated.returncode == 0, deduplicated.stdout[-3000:] + deduplicated.stderr[-5000:]
    kept = spark.read.format("delta").load(str(lake / "dedup/kept")).count()
    dropped = spark.read.format("delta").load(str(lake / "dedup/dropped")).count()
    assert kept + dropped == 506 and dropped >= 28  # at least the planted exact copies
    # quality (spaCy, fastText, phonenumbers) runs from the wheel on the executors too
    scored = submit("quality")
    assert scored.returncode == 0, scored.stdout[-3000:] + scored.stderr[-5000:]
    passed = spark.read.format("delta").load(str(lake / "quality/kept")).count()
    failed = spark.read.format("delta").load(str(lake / "quality/dropped")).count()
    assert passed + failed == kept and failed > 0
    assert "Registering app refinery-tests" in (logs / "master.log").read_text()  # ran on the cluster,
    assert "Asked to launch executor" in (logs / "worker.log").read_text()  # not in local mode
    docs = spark.read.format("delta").load(str(lake / "bronze/docs"))
    assert docs.count() == 506 and docs.select("doc_id").distinct().count() == 506
    assert spark.read.format("delta").load(str(lake / "bronze/rejects")).count() == 6
    history = spark.sql(f"DESCRIBE HISTORY delta.`{lake / 'bronze/docs'}`").first()
    assert '"run_id": "standalone"' in history.userMetadata
    # selection (a method without vectors) and export, submitted from the same jobs/ folder
    selected = submit("selection", "select.balance.enabled=true", "select.balance.cap=10")
    assert selected.returncode == 0, selected.stdout[-3000:] + selected.stderr[-5000:]
    assert spark.read.format("delta").load(str(lake / "select/balance")).count() > 0
    exported = submit("export", f"export.out={tmp_path / 'exports'}", "export.tokenizer=none", "export.file_formats=[parquet]")
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-5000:]
    assert (tmp_path / "exports" / "refinery" / "card.json").is_file()
