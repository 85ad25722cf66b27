"""spark-submit of the pipeline job (ingest, dedup, quality, selection, export) to a real Spark
standalone master with two workers on 127.0.0.1, one of which dies mid-job.

This is the cluster path of the README: the code shipped as a wheel with --py-files, Delta with
--packages (resolved from the set-up's Ivy cache), master and resources owned by spark-submit.
"""
from __future__ import annotations

import os
import signal
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
    """Start a Spark daemon class in the foreground (its PID is ours, in a process group of its
    own with the executors it launches) and wait for its ready line."""
    handle = log.open("wb")
    proc = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=handle, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
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


def cluster(tmp_path: Path, cores: list[int]):
    """A master and one worker per entry of ``cores`` on 127.0.0.1: (url, env, workers)."""
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    port = free_port()
    master = start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(free_port())], tmp_path / "master.log", "I have been elected leader", env)
    url = f"spark://127.0.0.1:{port}"
    workers = []
    try:
        for i, n in enumerate(cores):
            log = tmp_path / ("worker.log" if i == 0 else f"worker{i}.log")
            workers.append(start(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(n),
                                  "--memory", "2g", "--webui-port", str(free_port()), "--work-dir", str(tmp_path / f"work{i}"),
                                  url], log, "Successfully registered with master", env))
        yield url, env, workers
    finally:
        for worker in workers:
            stop(worker)
        stop(master)
    assert master.poll() is not None and all(w.poll() is not None for w in workers)


@pytest.fixture()
def two_workers(tmp_path):
    yield from cluster(tmp_path, [1, 1])


def submit_command(url: str, wheel: Path, job: str, config: Path, *overrides: str) -> list[str]:
    ivy = str(Path(load_config(environ={}).spark.jars_cache).expanduser())
    return [str(SPARK_HOME / "bin" / "spark-submit"), "--master", url,
            "--packages", delta_package(), "--conf", f"spark.jars.ivy={ivy}",
            "--py-files", str(wheel), "--conf", "spark.executor.memory=1g", "--conf", "spark.sql.shuffle.partitions=2",
            str(ROOT / "jobs" / f"{job}.py"), "--config", str(config), "--run-id", "standalone",
            *[arg for o in overrides for arg in ("--set", o)]]


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("refinery-*.whl"))


def test_spark_submit_to_standalone_cluster_survives_a_lost_worker(two_workers, tmp_path, sample_corpus, spark):
    """The pipeline job (ingest, dedup, quality, select, export) submitted to a master with two workers; one worker
    is killed with its executor while dedup runs. Spark reschedules the lost tasks, and where lost
    executor-local blocks fail the stage, the pipeline re-runs it (``pipeline.stage_retries``) on
    the worker that is left. The tables hold what a clean run writes."""
    url, env, workers = two_workers
    wheel = build_wheel(tmp_path / "dist")
    lake = tmp_path / "lake"
    config = write_config(tmp_path / "cluster.yaml", lake, sample_sources(sample_corpus))

    # selection (a method without vectors) and export ride along in the same application
    proc = subprocess.Popen(submit_command(url, wheel, "pipeline", config, "pipeline.progress_seconds=0",
                                           "pipeline.stages=[ingest, dedup, quality, select, export]",
                                           "select.balance.enabled=true", "select.balance.cap=10",
                                           f"export.out={tmp_path / 'exports'}", "export.tokenizer=none",
                                           "export.file_formats=[parquet]"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("dedup: running"):
            time.sleep(3)
            os.killpg(workers[1].pid, signal.SIGKILL)  # the worker and the executor it launched
            break
    lines += proc.stdout.readlines()
    output = "".join(lines)
    assert proc.wait(timeout=600) == 0, output[-5000:]
    assert workers[1].poll() is not None and workers[0].poll() is None
    assert "Lost executor" in output or "running it again" in output, output[-5000:]
    # dedup's compiled kernels and quality's spaCy / fastText / phonenumbers load from the zipped wheel
    kept = spark.read.format("delta").load(str(lake / "dedup/kept"))
    dropped = spark.read.format("delta").load(str(lake / "dedup/dropped")).count()
    assert (kept.count(), dropped) == (472, 34) and kept.select("doc_id").distinct().count() == 472
    passed = spark.read.format("delta").load(str(lake / "quality/kept")).count()
    failed = spark.read.format("delta").load(str(lake / "quality/dropped")).count()
    assert passed + failed == 472 and failed > 0
    logs = tmp_path
    assert "Registering app refinery-tests" in (logs / "master.log").read_text()  # ran on the cluster,
    assert "Asked to launch executor" in (logs / "worker.log").read_text()  # not in local mode
    docs = spark.read.format("delta").load(str(lake / "bronze/docs"))
    assert docs.count() == 506 and docs.select("doc_id").distinct().count() == 506
    assert spark.read.format("delta").load(str(lake / "bronze/rejects")).count() == 6
    history = spark.sql(f"DESCRIBE HISTORY delta.`{lake / 'bronze/docs'}`").first()
    assert '"run_id": "standalone"' in history.userMetadata
    assert spark.read.format("delta").load(str(lake / "select/balance")).count() > 0
    assert (tmp_path / "exports" / "refinery" / "card.json").is_file()
