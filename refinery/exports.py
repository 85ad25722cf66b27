"""Files outside the lake, written through Hadoop's FileSystem (local, HDFS, S3A, GCS, ABFS alike):
text files, the swap of a finished staging folder into place, and the dataset card."""
from __future__ import annotations

from typing import Any, Sequence

from pyspark.sql import SparkSession


def _fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    return target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), target


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, target = _fs(spark, path)
    stream = fs.create(target, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def replace_folder(spark: SparkSession, staging: str, folder: str) -> None:
    """Move a fully written ``staging`` folder to ``folder``; a previous export there is moved
    aside first and deleted after, so readers find the old export or the new one, never a mix.
    (On HDFS and local disks a rename is atomic; object stores copy file by file, so there a reader
    should wait for the job to finish.)"""
    fs, target = _fs(spark, folder)
    _, source = _fs(spark, staging)
    aside = None
    if fs.exists(target):
        _, aside = _fs(spark, staging + ".previous")
        if not fs.rename(target, aside):
            raise OSError(f"cannot move the previous export {folder} aside")
    if not fs.rename(source, target):
        if aside is not None:
            fs.rename(aside, target)  # put the previous export back
        raise OSError(f"cannot move {staging} to {folder}")
    if aside is not None:
        fs.delete(aside, True)


def card_markdown(card: dict[str, Any], targets: Sequence[str]) -> str:
    """A Hugging Face dataset card: YAML ``configs`` naming each format's files per split, so
    ``datasets.load_dataset(folder, name)`` finds them, then the counts, sources and settings."""
    file_format = card["file_formats"][0]
    pattern = "*.parquet" if file_format == "parquet" else "*.json"
    yaml_lines = ["---", "configs:"]
    for target in targets:  # only splits with rows: a listed path that matches no file fails to load
        splits = [s for s in card["splits"] if any(c["format"] == target and c["split"] == s for c in card["counts"])]
        if splits:
            yaml_lines += [f"- config_name: {target}", "  data_files:"]
            yaml_lines += [f"  - split: {s}\n    path: {file_format}/{target}/split={s}/{pattern}" for s in splits]
    yaml_lines.append("---")
    rows = "\n".join(f"| {c['format']} | {c['split']} | {c['rows']} | {c['tokens'] if c['tokens'] is not None else '-'} |"
                     for c in card["counts"])
    left = "\n".join(f"| {r['format']} | {r['why']} | {r['rows']} |" for r in card["left_out"]) or "| - | - | 0 |"
    rejected = "\n".join(f"| {r['reason']} | {r['rows']} |" for r in card["rejected"]) or "| - | 0 |"
    sources = "\n".join(f"| {s['name']} | {s['format']} | {s['license'] or 'not given'} |" for s in card["sources"])
    only = f" restricted to the doc_ids of `{card['only']['table']}` (Delta version {card['only']['delta_version']})" if card["only"] else ""
    return "\n".join(yaml_lines) + f"""

# {card['name']}

Exported by Refinery run `{card['run_id']}` from `{card['input']['table']}` (Delta version
{card['input']['delta_version']}){only}. Files: {', '.join(card['file_formats'])}, one folder per format
and split. Splits by a hash of the prompt ({', '.join(f'{k} {v:g}' for k, v in card['splits'].items())}):
no prompt is in two splits. Token counts: {card['tokenizer'] or 'not computed'}.

| format | split | rows | tokens |
|---|---|---|---|
{rows}

Left out of a format (the record is in the others):

| format | why | rows |
|---|---|---|
{left}

Rejected (in the lake's `bronze/rejects`, stage `export`):

| reason | rows |
|---|---|
{rejected}

Sources and licences (from the ingest config):

| source | format | licence |
|---|---|---|
{sources}

The dedup and quality settings that made the input are in `card.json` (`filters`).
"""
