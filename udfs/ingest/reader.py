"""Read whole files into canonical Arrow batches: records and rejects, each with its locator.

This is the body of the ingest stage's ``mapInArrow``: Spark hands it batches of file rows
(``source``, ``path``, ``uri``, ``relpath``) and it streams every file, so a file is read by exactly
one task and never passes through the driver.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.fs as pafs

from udfs.ingest.containers import RawRecord, read_records
from udfs.ingest.conversations import RecordError
from udfs.ingest.formats import canonical_fields
from udfs.schema import INGEST_OUTPUT_SCHEMA, INGEST_TALLY_SCHEMA

BATCH_ROWS = 2048
BATCH_BYTES = 256 << 20  # well under Arrow's 2 GiB per string column, whatever the record sizes
UNREADABLE = "unreadable file"
STRING_COLUMNS = ("text", "prompt", "response", "chosen", "rejected", "meta", "lang", "raw_snippet")


@dataclass(frozen=True)
class SourceSpec:
    """What the reader needs to know about one configured source (picklable, Spark-free)."""

    name: str
    format: str
    fields: dict = field(default_factory=dict)
    lang: str | None = None
    max_record_bytes: int = 1_000_000
    snippet_chars: int = 200
    filesystem: pafs.FileSystem = field(default_factory=pafs.LocalFileSystem)


def doc_id(source: str, relpath: str, ordinal: int) -> str:
    """Stable id from the source name and the record's place in it (not the lake or raw-data root).

    128 bits: at 10^10 documents the chance of any collision is about 10^-19.
    """
    key = f"{source}\x1f{relpath}\x1f{ordinal}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def snippet(raw: bytes, chars: int) -> str:
    """A truncated, always-printable view of the raw input, for a person reading rejects."""
    return raw[: chars * 4].decode("utf-8", errors="backslashreplace")[:chars]


Listed = tuple[int, "int | None"]  # (size, mtime_ns) of a file when it was listed


def file_rows(spec: SourceSpec, path: str, uri: str, relpath: str) -> Iterator[dict]:
    """One output row per record of the file: canonical fields, or a reject reason and snippet.

    Records fail one by one; only a file that cannot be opened or decompressed ends early, with an
    ``unreadable file`` reject after whatever it yielded.
    """
    try:
        for raw in read_records(spec.filesystem, path, spec.max_record_bytes):
            yield _row(spec, uri, relpath, raw)
    except (OSError, ValueError) as exc:  # bad gzip stream, truncated zstd, not a Parquet file
        yield _reject(spec, uri, 0, f"{UNREADABLE}: {type(exc).__name__}: {exc}", b"")


def _changed_since(fs: pafs.FileSystem, path: str, listed: Listed) -> str | None:
    """Why the file is no longer the one listed (size or modification time moved), or None."""
    info = fs.get_file_info(path)
    size, mtime_ns = listed
    if info.size != size:
        return f"listed {size} bytes, now {info.size}"
    if mtime_ns is not None and info.mtime_ns != mtime_ns:
        return "modification time moved since listing"
    return None


def _row(spec: SourceSpec, uri: str, relpath: str, raw: RawRecord) -> dict:
    if raw.error:
        return _reject(spec, uri, raw.line, raw.error, _raw_bytes(raw))
    try:
        fields = canonical_fields(raw.value, spec.format, spec.fields)
        _check_encodable(fields)
    except RecordError as exc:
        return _reject(spec, uri, raw.line, str(exc), _raw_bytes(raw))
    except Exception as exc:  # noqa: BLE001 - one odd record must never kill the task
        return _reject(spec, uri, raw.line, f"unexpected {type(exc).__name__}: {exc}", _raw_bytes(raw))
    fields["lang"] = fields["lang"] or spec.lang
    return {
        **fields,
        "doc_id": doc_id(spec.name, relpath, raw.ordinal),
        "source": spec.name,
        "source_file": uri,
        "source_line": raw.line,
    }


def _raw_bytes(raw: RawRecord) -> bytes:
    """The record's bytes for a snippet; Parquet rows are encoded only now, when rejected."""
    if raw.raw or raw.value is None:
        return raw.raw
    return json.dumps(raw.value, ensure_ascii=False, default=str).encode()


def _reject(spec: SourceSpec, uri: str, line: int, reason: str, raw: bytes) -> dict:
    return {
        "source": spec.name,
        "source_file": uri,
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


def row_chars(row: dict) -> int:
    """Characters a row puts in its string columns (at most 4 UTF-8 bytes each)."""
    size = sum(len(row.get(name) or "") for name in STRING_COLUMNS)
    return size + sum(len(m["content"]) for m in row.get("messages") or ())


def batches_of(rows: Iterable[dict], schema: pa.Schema, batch_rows: int, batch_bytes: int) -> Iterator[pa.RecordBatch]:
    """Arrow batches cut by row count or by string size, whichever comes first."""
    buffered: list[dict] = []
    size = 0
    for row in rows:
        buffered.append(row)
        size += row_chars(row) * 4
        if len(buffered) >= batch_rows or size >= batch_bytes:
            yield pa.RecordBatch.from_pylist(buffered, schema=schema)
            buffered, size = [], 0
    if buffered:
        yield pa.RecordBatch.from_pylist(buffered, schema=schema)


def read_file_batches(
    spec: SourceSpec, path: str, uri: str, relpath: str, batch_rows: int = BATCH_ROWS, batch_bytes: int = BATCH_BYTES
) -> Iterator[pa.RecordBatch]:
    """Arrow batches (``INGEST_OUTPUT_SCHEMA``) of one file: its records and its rejects."""
    yield from batches_of(file_rows(spec, path, uri, relpath), INGEST_OUTPUT_SCHEMA, batch_rows, batch_bytes)


def tally_file(spec: SourceSpec, path: str, uri: str, relpath: str, listed: Listed) -> Iterator[pa.RecordBatch]:
    """Arrow batches (``INGEST_TALLY_SCHEMA``) of one file: its rejects, then one tally row.

    This pass parses the file again but ships only rejects and a count, and that count is an
    independent check on the record pass: a read that failed in between shows up in the counts.
    It runs after the record pass, so a file whose size or modification time no longer match its
    listing changed while being ingested: what was read may mix two versions of it, and it gets an
    ``unreadable file`` reject.
    """
    seen = 0

    def rejects() -> Iterator[dict]:
        nonlocal seen
        for row in file_rows(spec, path, uri, relpath):
            seen += 1
            if row.get("reject_reason") is not None:
                yield row
        changed = _changed_since(spec.filesystem, path, listed)
        if changed:
            seen += 1
            yield _reject(spec, uri, 0, f"{UNREADABLE}: changed during ingest ({changed}); re-run", b"")

    yield from batches_of(rejects(), INGEST_TALLY_SCHEMA, BATCH_ROWS, BATCH_BYTES)
    tally = {"source": spec.name, "source_file": uri, "records_seen": seen}
    yield pa.RecordBatch.from_pylist([tally], schema=INGEST_TALLY_SCHEMA)


def _listed_files(batches: Iterable[pa.RecordBatch], specs: dict[str, SourceSpec]) -> Iterator[tuple[SourceSpec, dict]]:
    """The files Spark hands a task (``source``, ``path``, ``uri``, ``relpath``, ``size``, ``mtime_ns``)."""
    for batch in batches:
        for file in batch.to_pylist():
            yield specs[file["source"]], file


def records_of_files(batches: Iterable[pa.RecordBatch], specs: dict[str, SourceSpec]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body of the record pass."""
    for spec, f in _listed_files(batches, specs):
        yield from read_file_batches(spec, f["path"], f["uri"], f["relpath"])


def tallies_of_files(batches: Iterable[pa.RecordBatch], specs: dict[str, SourceSpec]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body of the tally pass."""
    for spec, f in _listed_files(batches, specs):
        yield from tally_file(spec, f["path"], f["uri"], f["relpath"], (f["size"], f["mtime_ns"]))
