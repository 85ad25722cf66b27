"""Config: strict schema, errors that name the key, env and --set overrides, both shipped configs valid."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from refinery.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, data) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"lake": "/tmp/lake", "ingest": {"sources": [{"name": "web", "path": "/data/web", "format": "text"}]}}


def test_bundled_default_is_local_mode():
    cfg = load_config(environ={})
    assert cfg.spark.master.startswith("local")
    assert cfg.lake == "lake" and [s.name for s in cfg.ingest.sources] == ["web", "alpaca", "chat", "pairs", "hh"]


def test_cluster_template_is_valid_and_leaves_master_to_submit():
    cfg = load_config(ROOT / "conf" / "cluster.yaml", environ={})
    assert cfg.spark.master is None and cfg.lake.startswith("s3a://")
    assert cfg.table("bronze/docs") == "s3a://my-bucket/refinery/lake/bronze/docs"


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(lakes="/x"), "config key 'lakes': unknown key"),
    (lambda d: d["ingest"].update(max_reject_rate="lots"), "config key 'ingest.max_reject_rate': Input should be a valid number"),
    (lambda d: d["ingest"].update(max_record_bytes=0), "config key 'ingest.max_record_bytes': Input should be greater than 0"),
    (lambda d: d["ingest"]["sources"][0].update(format="csv"), "config key 'ingest.sources.0.format'"),
    (lambda d: d["ingest"]["sources"][0].update(colour="red"), "config key 'ingest.sources.0.colour': unknown key"),
    (lambda d: d["ingest"]["sources"][0].update(fields={"response": "x"}), "format 'text' has no field"),
    (lambda d: d["ingest"]["sources"].append(dict(d["ingest"]["sources"][0])), "source names must be unique"),
    (lambda d: d.pop("lake"), "config key 'lake': Field required"),
])
def test_invalid_configs_name_the_key(tmp_path, change, message):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    change(data)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data), environ={})
    assert message in str(err.value)


def test_env_then_cli_overrides(tmp_path):
    path = write(tmp_path, BASE)
    env = {"REFINERY_INGEST__MAX_REJECT_RATE": "0.2", "REFINERY_SPARK__SHUFFLE_PARTITIONS": "8", "OTHER": "x"}
    cfg = load_config(path, environ=env)
    assert (cfg.ingest.max_reject_rate, cfg.spark.shuffle_partitions) == (0.2, 8)
    cfg = load_config(path, ["ingest.max_reject_rate=0.3", "ingest.sources.0.path=s3a://b/web/", "lake=/other"], environ=env)
    assert (cfg.ingest.max_reject_rate, cfg.ingest.sources[0].path, cfg.lake) == (0.3, "s3a://b/web/", "/other")
    assert cfg.spark.shuffle_partitions == 8


def test_override_values_globs_and_spark_conf(tmp_path):
    path = write(tmp_path, BASE)
    cfg = load_config(path, ["ingest.sources.0.path=*.jsonl", "spark.conf.spark.executor.memory=8g",
                             "spark.conf.spark.sql.adaptive.enabled=true", "spark.conf.spark.x.version=1.10",
                             "ingest.sources.0.lang='no'", "lake=/data/run #2/lake"], environ={})
    assert cfg.ingest.sources[0].path == "*.jsonl"  # not YAML: kept as the string typed
    assert cfg.spark.conf == {"spark.executor.memory": "8g", "spark.sql.adaptive.enabled": "true", "spark.x.version": "1.10"}
    assert (cfg.ingest.sources[0].lang, cfg.lake) == ("no", "/data/run #2/lake")
    with pytest.raises(ConfigError, match="Spark settings are case-sensitive"):
        load_config(path, environ={"REFINERY_SPARK__CONF__SPARK__SQL__AUTOBROADCASTJOINTHRESHOLD": "-1"})
    with pytest.raises(ConfigError, match=r"ingest.sources.0' \(from env REFINERY_INGEST__SOURCES__0__FIELDS__TEXT\)"):
        load_config(path, environ={"REFINERY_INGEST__SOURCES__0__FIELDS__TEXT": "[a, b]"})


def test_override_errors_name_their_origin(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match="env REFINERY_INGEST__SOURCES__5__PATH: 'ingest.sources.5' is not an index"):
        load_config(path, environ={"REFINERY_INGEST__SOURCES__5__PATH": "/x"})
    with pytest.raises(ConfigError, match="config key 'ingest.snippet_chars'"):
        load_config(path, ["ingest.snippet_chars=many"], environ={})
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["ingest.snippet_chars"], environ={})
    with pytest.raises(ConfigError, match=r"config key 'home' \(from env REFINERY_HOME\): unknown key"):
        load_config(path, environ={"REFINERY_HOME": "/x"})
    with pytest.raises(ConfigError, match=r"config key 'ingest.sources.0.fields.text' \(from --set ingest.sources.0.fields\): "
                                          "Input should be a valid string"):
        load_config(path, ["ingest.sources.0.fields={text: 3}"], environ={})


@pytest.mark.parametrize("override,message", [
    ("ingest.sources.0.lang=2024-02-30", None),              # a date YAML cannot build: kept as text
    ("ingest.snippet_chars=0b_", "config key 'ingest.snippet_chars'"),
    ("ingest.max_record_bytes=1:30", "config key 'ingest.max_record_bytes'"),  # not silently 90
    ("ingest.sources.\u00b2.name=b", "is not an index"),
    ("lake=" + "[" * 3000, None),
])
def test_odd_override_values_never_crash_or_change(tmp_path, override, message):
    path = write(tmp_path, BASE)
    if message is None:
        load_config(path, [override], environ={})
    else:
        with pytest.raises(ConfigError, match=message):
            load_config(path, [override], environ={})


def test_leading_zero_is_decimal_not_octal(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["ingest.max_record_bytes=010"], environ={})
    assert cfg.ingest.max_record_bytes == 10  # YAML 1.1 alone would have made it 8


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(bad, environ={})


def test_section_hash_tracks_only_its_section(tmp_path):
    path = write(tmp_path, BASE)
    a = load_config(path, environ={})
    b = load_config(path, ["spark.shuffle_partitions=99"], environ={})
    c = load_config(path, ["ingest.snippet_chars=10"], environ={})
    assert a.section_hash("ingest") == b.section_hash("ingest") != c.section_hash("ingest")
