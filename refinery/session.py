"""The one SparkSession builder every job uses.

- Always: Delta's SQL extension and catalog.
- Local mode (``spark.master: local[...]``, not under spark-submit): the Delta JARs come from a
  local Ivy cache. The first start resolves them from Maven Central (``configure_spark_with_delta_pip``);
  every later start passes the cached files as ``spark.jars`` and never touches the network. Small
  shuffle and Delta snapshot partition counts keep tiny writes fast.
- Under ``spark-submit`` (a cluster, or any submit): master, resources and JARs are left to the
  submit command (``--master``, ``--packages``), so one builder serves both.
"""
from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path

from pyspark.sql import SparkSession

from refinery.config import SparkSection

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
LOCAL_CONF = {
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "8",
}


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (it set up the JVM gateway)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def delta_package() -> str:
    """Maven coordinate of the Delta JAR matching the installed pyspark / delta-spark (for --packages)."""
    spark_minor = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"


def cached_delta_jars(jars_cache: str) -> list[str]:
    """The Delta JARs in the Ivy cache, if this delta-spark version's are there; else []."""
    jars_dir = Path(jars_cache).expanduser() / "jars"
    delta = version("delta-spark")
    if not list(jars_dir.glob(f"io.delta_delta-spark_*-{delta}.jar")):
        return []
    return sorted(str(p) for p in jars_dir.glob("*.jar"))


def build_session(spark_conf: SparkSection) -> SparkSession:
    """Create (or return the running) SparkSession configured for Delta."""
    builder = SparkSession.builder.appName(spark_conf.app_name)
    for key, value in DELTA_CONF.items():
        builder = builder.config(key, value)
    local = spark_conf.master is not None and not launched_by_spark_submit()
    if local:
        builder = builder.master(spark_conf.master)
        # Python workers must run the interpreter that has Refinery's dependencies; PySpark reads
        # the worker interpreter from this variable, not from spark.pyspark.python.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode needs no network interface
        for key, value in LOCAL_CONF.items():
            builder = builder.config(key, value)
    if spark_conf.shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(spark_conf.shuffle_partitions))
    for key, value in spark_conf.conf.items():
        builder = builder.config(key, value)
    if local:
        builder = _with_local_delta_jars(builder, spark_conf.jars_cache)
    return builder.getOrCreate()


def _with_local_delta_jars(builder: SparkSession.Builder, jars_cache: str) -> SparkSession.Builder:
    jars = cached_delta_jars(jars_cache)
    if jars:
        return builder.config("spark.jars", ",".join(jars))
    from delta import configure_spark_with_delta_pip

    ivy = str(Path(jars_cache).expanduser())
    return configure_spark_with_delta_pip(builder.config("spark.jars.ivy", ivy))


def main() -> None:
    """``python -m refinery.session``: make sure the Delta JARs are cached (the set-up step)."""
    from refinery.config import load_config

    spark_conf = load_config().spark
    jars = cached_delta_jars(spark_conf.jars_cache)
    if not jars:
        build_session(spark_conf).stop()
        jars = cached_delta_jars(spark_conf.jars_cache)
    if not jars:
        sys.exit("Delta JARs were not cached; check access to Maven Central")
    print(f"Delta JARs cached: {len(jars)} files under {Path(jars[0]).parent}")


if __name__ == "__main__":
    main()
