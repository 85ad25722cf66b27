"""The one session builder: Delta configured, and local mode starting offline from cached JARs."""
from __future__ import annotations

from importlib.metadata import version

from refinery.session import cached_delta_jars, delta_package
from tests.conftest import TEST_SPARK


def test_local_session_uses_cached_delta_jars_without_ivy(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.jars.packages", None) is None  # no Maven resolution on start
    jars = conf.get("spark.jars").split(",")
    assert jars == cached_delta_jars(TEST_SPARK.jars_cache)
    assert any(f"delta-spark_4.2_2.13-{version('delta-spark')}.jar" in j for j in jars)
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


def test_delta_package_matches_pinned_pair():
    assert delta_package() == f"io.delta:delta-spark_4.2_2.13:{version('delta-spark')}"


def test_delta_sql_round_trip(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.range(3).write.format("delta").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 1")
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == [0, 2]
    assert spark.read.format("delta").option("versionAsOf", 0).load(path).count() == 3
