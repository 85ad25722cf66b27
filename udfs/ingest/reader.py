"""Read whole files into canonical Arrow batches: records and rejects, each with its locator.

This is the body of the ingest stage's ``mapInArrow``: Spark hands it batches of file rows
(``source``, ``path``, ``relpath``) and it streams every file, so a file is read by exactly one
task and never passes through the driver.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import pyarrow as pa

from udfs.ingest.containers import RawRecord, read_records
from udfs.ingest.conversations import RecordError
from udfs.ingest.formats import canonical_fields
from udfs.schema import INGEST_OUTPUT_SCHEMA

BATCH_ROWS = 2048
STRING_COLUMNS = ("text", "prompt", "response", "chosen", "rejected", "meta", "lang")


@dataclass(frozen=True)
class SourceSpec:
    """What the reader needs to know about one configured source (picklable, Spark-free)."""

    name: str
    format: str
    fields: dict = field(default_factory=dict)
    lang: str | None = None
    max_record_bytes: int = 1_000_000
    snippet_chars: int = 200


def doc_id(source: str, relpath: str, line: int) -> str:
    """Stable id from the source name and the record's place in it, independent of the lake root."""
    key = f"{source}\x1f{relpath}\x1f{line}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def snippet(raw: bytes, chars: int) -> str:
    """A truncated, always-printable view of the raw input, for a person reading rejects."""
    return raw[: chars * 4].decode("utf-8", errors="backslashreplace")[:chars]


def file_rows(spec: SourceSpec, path: str, relpath: str) -> Iterator[dict]:
    """One output row per record of the file: canonical fields, or a reject reason and snippet."""
    try:
        records: Iterable[RawRecord] = read_records(path, spec.max_record_bytes)
        for raw in records:
            yield _row(spec, path, relpath, raw)
    except (OSError, ValueError) as exc:  # unreadable or corrupt file (bad gzip stream, not Parquet)
        yield _reject(spec, path, 0, f"unreadable file: {type(exc).__name__}: {exc}", b"")


def _row(spec: SourceSpec, path: str, relpath: str, raw: RawRecord) -> dict:
    if raw.error:
        return _reject(spec, path, raw.line, raw.error, raw.raw)
    try:
        fields = canonical_fields(raw.value, spec.format, spec.fields)
        _check_encodable(fields)
    except RecordError as exc:
        return _reject(spec, path, raw.line, str(exc), raw.raw)
    fields["lang"] = fields["lang"] or spec.lang
    return {
        **fields,
        "doc_id": doc_id(spec.name, relpath, raw.line),
        "source": spec.name,
        "source_file": path,
        "source_line": raw.line,
    }


def _reject(spec: SourceSpec, path: str, line: int, reason: str, raw: bytes) -> dict:
    return {
        "source": spec.name,
        "source_file": path,
        "source_line": line,
        "reject_reason": reason,
        "raw_snippet": snippet(raw, spec.snippet_chars),
    }


def _check_encodable(fields: dict) -> None:
    """JSON escapes can carry lone surrogates (``\\ud800``) that no UTF-8 column can store."""
    values = [(name, fields.get(name)) for name in STRING_COLUMNS]
    values += [("messages", m["content"]) for m in fields.get("messages") or ()]
    for name, value in values:
        try:
            if value:
                value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordError(f"invalid Unicode in field '{name}': lone surrogate {exc.object[exc.start]!r}") from None


def read_file_batches(spec: SourceSpec, path: str, relpath: str, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Arrow batches (``INGEST_OUTPUT_SCHEMA``) of one file."""
    rows: list[dict] = []
    for row in file_rows(spec, path, relpath):
        rows.append(row)
        if len(rows) >= batch_rows:
            yield pa.RecordBatch.from_pylist(rows, schema=INGEST_OUTPUT_SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=INGEST_OUTPUT_SCHEMA)


def read_file_table_batches(batches: Iterable[pa.RecordBatch], specs: dict[str, SourceSpec]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: input batches list files (``source``, ``path``, ``relpath``)."""
    for batch in batches:
        for file in batch.to_pylist():
            yield from read_file_batches(specs[file["source"]], file["path"], file["relpath"])
