"""Turn one input file into a stream of located raw records.

A container knows how records are laid out in a file (JSON lines, one JSON array, plain text
lines, Parquet) and nothing about what a record means. Every record comes out with the 1-based
line (Parquet: row) where it starts, so a reject can point a person at the exact place, and with
its ordinal in the file, which identifies it even when many records share a line (a one-line JSON
array). A record that cannot be parsed comes out with the reason instead of a value: one bad
record never costs the records around it.

Files are opened through a ``pyarrow.fs`` filesystem, so the same code reads local paths, S3, GCS
and HDFS on executors, and gzip / zstd / bz2 are decompressed as a stream.
"""
from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

import pyarrow.fs as pafs
import pyarrow.parquet as pq

COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
READ_BUFFER = 1 << 20
BOM = b"\xef\xbb\xbf"
JSON_WS = " \t\r\n"
STRUCTURE = re.compile(r'["{}\[\]]')
STRING_BODY = re.compile(r'"(?:[^"\\\n]|\\.)*"')  # JSON strings never hold a raw newline
CLOSERS = {"}": "{", "]": "["}
SCALAR_END = re.compile(r"[,\] \t\r\n]")  # JSON whitespace only: NBSP or U+2028 are not separators


@dataclass(frozen=True)
class RawRecord:
    """One record as found in a file: parsed ``value``, or ``error`` saying why it could not be.

    ``raw`` is the record's bytes where the container has them; Parquet rows have none (they
    are re-encoded only if the record is rejected).
    """

    line: int
    ordinal: int
    raw: bytes
    value: Any = None
    error: str | None = None


def filesystem_for(location: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path of a local path or URI.

    Hadoop's ``s3a://`` is plain S3 to pyarrow; credentials come from the standard AWS chain
    (environment, instance profile), not from ``spark.hadoop.fs.s3a.*`` settings.
    """
    if "://" not in location:
        return pafs.LocalFileSystem(), os.path.abspath(location)
    if location.startswith("s3a://"):
        location = "s3://" + location[len("s3a://"):]
    return pafs.FileSystem.from_uri(location)


def split_suffixes(path: str) -> tuple[str, str | None]:
    """Return (container suffix, compression) of a file name, e.g. ``.jsonl``, ``zstd``."""
    name = path.rsplit("/", 1)[-1].lower()
    compression = None
    for suffix, codec in COMPRESSION_BY_SUFFIX.items():
        if name.endswith(suffix):
            compression, name = codec, name[: -len(suffix)]
            break
    dot = name.rfind(".")
    return (name[dot:] if dot >= 0 else ""), compression


def read_records(fs: pafs.FileSystem, path: str, max_record_bytes: int) -> Iterator[RawRecord]:
    """Yield every record of a file, choosing the container from the file name."""
    suffix, compression = split_suffixes(path)
    if suffix == ".parquet":
        with fs.open_input_file(path) as handle:
            yield from parquet_records(handle, max_record_bytes)
        return
    with fs.open_input_stream(path, compression=compression) as stream:
        reader = io.BufferedReader(stream, READ_BUFFER)
        if suffix == ".json" and _starts_with_array(reader):
            yield from json_array_records(reader.read(), max_record_bytes)
        else:
            yield from line_records(reader, max_record_bytes, as_json=suffix != ".txt")


def _starts_with_array(reader: io.BufferedReader) -> bool:
    """A ``.json`` file is either one JSON array or JSON lines; peek at its first real byte."""
    head = reader.peek(4096).removeprefix(BOM).lstrip(JSON_WS.encode())
    return head[:1] == b"["


def bounded_lines(reader: io.BufferedReader, limit: int) -> Iterator[tuple[int, bytes, int]]:
    """(line number, content, content length) per line, never holding more than ``limit + 1`` bytes.

    A line over the limit is drained in chunks and its content comes back truncated, with its true
    length, so one runaway line (a file without newlines) cannot exhaust an executor's memory.
    Content excludes the line ending (LF or CRLF) and a leading byte-order mark.
    """
    if reader.peek(len(BOM))[:len(BOM)] == BOM:
        reader.read(len(BOM))
    number = 0
    while True:
        raw = reader.readline(limit + 1)
        if not raw:
            return
        number += 1
        length, tail, last2 = len(raw), raw, raw[-2:]
        while not tail.endswith(b"\n") and length > limit:
            tail = reader.readline(READ_BUFFER)
            if not tail:
                break
            length += len(tail)
            last2 = (last2 + tail)[-2:]  # a CRLF may straddle two reads
        ending = 2 if last2 == b"\r\n" else 1 if last2.endswith(b"\n") else 0
        yield number, raw.rstrip(b"\r\n"), length - ending


def line_records(reader: io.BufferedReader, max_record_bytes: int, as_json: bool) -> Iterator[RawRecord]:
    """JSON lines (one object per line), or plain text (one document per line).

    Blank lines carry no record and are skipped; every other line is a record or a reject. A line
    longer than the limit is a reject even if it is all whitespace (it was never held to look).
    """
    for number, raw, length in bounded_lines(reader, max_record_bytes):
        if length > max_record_bytes:
            yield RawRecord(number, number, raw, error=_too_large(length, max_record_bytes))
            continue
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRecord(number, number, raw, error=f"invalid UTF-8 at byte {exc.start}")
            continue
        if not as_json:
            yield RawRecord(number, number, raw, value={"text": text})
            continue
        value, error = parse_json(text)
        yield RawRecord(number, number, raw, value=value, error=error)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


# Python's json accepts NaN / Infinity; no other JSON reader does, so they make a record a reject.
DECODER = json.JSONDecoder(parse_constant=_not_json)


def parse_json(text: str) -> tuple[Any, str | None]:
    """Parse one JSON value; any failure (syntax, 1000-deep nesting, huge integers) is a reason."""
    try:
        return DECODER.decode(text), None
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON: {exc.msg} at column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, f"malformed JSON: {type(exc).__name__}: {str(exc)[:120]}"


def json_array_records(data: bytes, max_record_bytes: int) -> Iterator[RawRecord]:
    """One JSON array of records (Alpaca style), parsed element by element.

    Parsing each element on its own gives every record its line, and a fault costs only what it
    touches: a broken element is skipped to its matching close bracket (string- and depth-aware),
    a missing comma or a trailing comma is one reject, and parsing resumes at the next element.
    Bytes that are not UTF-8 ride along as surrogate escapes so only the records holding them fail.
    Ordinals count elements only, so fixing a stray comma does not change any record's id.
    """
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    lines = _LineIndex(text)
    pos = _skip_ws(text, text.index("[") + 1)
    ordinal = 0
    while pos < len(text) and text[pos] != "]":
        if text[pos] == ",":  # a stray comma ([1,,2] or [,1]) is a separator fault, not an element
            yield RawRecord(lines.line_of(pos), ordinal, b",", error="malformed JSON: stray ',' in array")
            pos = _skip_ws(text, pos + 1)
            continue
        ordinal += 1
        record, end = _array_element(text, pos, lines.line_of(pos), ordinal, max_record_bytes)
        yield record
        pos = _skip_ws(text, end)
        if pos >= len(text) or text[pos] == "]":
            break
        if text[pos] == ",":
            after = _skip_ws(text, pos + 1)
            if after < len(text) and text[after] == "]":
                yield RawRecord(lines.line_of(pos), ordinal, b",", error="malformed JSON: trailing comma before ']'")
            pos = after
        else:  # separator faults take no ordinal: repairing the file must not shift later ids
            yield RawRecord(lines.line_of(pos), ordinal, _encode(text[pos:pos + 80]),
                            error="malformed JSON: expected ',' or ']' between array elements")
    if pos >= len(text):
        yield RawRecord(lines.line_of(len(text) - 1), ordinal + 1, b"", error="malformed JSON: array is not closed")
    elif text[pos + 1:].strip(JSON_WS):
        tail = _skip_ws(text, pos + 1)
        yield RawRecord(lines.line_of(tail), ordinal + 1, _encode(text[tail:tail + 80]),
                        error="malformed JSON: data after the closing ']' of the array")


def _array_element(text: str, pos: int, line: int, ordinal: int, limit: int) -> tuple[RawRecord, int]:
    """The element starting at ``pos`` as a record, and where it ends."""
    try:
        value, end = DECODER.raw_decode(text, pos)
        error = None
    except (ValueError, RecursionError):
        end = max(_element_end(text, pos), pos + 1)  # always move on, whatever the text holds
        value, error = parse_json(text[pos:end])
    span = text[pos:end]
    try:
        raw = span.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes stand for bytes that were not UTF-8
        return RawRecord(line, ordinal, _encode(span), error="invalid UTF-8 inside record"), end
    if len(raw) > limit:
        return RawRecord(line, ordinal, raw, error=_too_large(len(raw), limit)), end
    return RawRecord(line, ordinal, raw, value=value, error=error), end


def _element_end(text: str, pos: int) -> int:
    """End (exclusive) of the array element starting at ``pos``, found without parsing it.

    Objects and arrays end where the bracket that opened them closes: a stack of open brackets
    skips strings, lets a closer end every bracket left open inside its match (``{"a": [1, 2}``
    ends at ``}``), and a closer that matches nothing ends the element where it stands. A string missing its closing quote ends the
    element at that line's end, since JSON strings cannot span lines. Scalars end before the next
    ``,``, ``]`` or whitespace. An element that never closes runs to the end of the text.
    """
    if text[pos] not in "{[":
        if text[pos] == '"':
            match = STRING_BODY.match(text, pos)
            return match.end() if match else _line_end(text, pos)
        match = SCALAR_END.search(text, pos)
        return match.start() if match else len(text)
    stack: list[str] = []
    open_count = {"{": 0, "[": 0}  # lets an unmatched closer be found without scanning the stack
    i = pos
    while True:
        match = STRUCTURE.search(text, i)
        if match is None:
            return len(text)
        ch, i = match.group(), match.start()
        if ch == '"':
            string = STRING_BODY.match(text, i)
            if string is None:  # its closing quote (and maybe its brackets' closers) are lost
                return _line_end(text, i)
            i = string.end()
            continue
        i += 1
        if ch in open_count:
            stack.append(ch)
            open_count[ch] += 1
            continue
        if open_count[CLOSERS[ch]] == 0:  # closes nothing that is open: the element is broken here
            return i
        while True:
            top = stack.pop()
            open_count[top] -= 1
            if top == CLOSERS[ch]:
                break
        if not stack:
            return i


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def parquet_records(handle: Any, max_record_bytes: int) -> Iterator[RawRecord]:
    """Parquet rows as dicts; the 1-based row number is both line and ordinal.

    A row's size is the UTF-8 size of every string and binary value in it, nested ones included,
    so the limit means what it means for JSON without re-encoding every row. A row Python cannot
    represent (a timestamp past year 9999) is a reject of its own.
    """
    number = 0
    for batch in pq.ParquetFile(handle).iter_batches(batch_size=4096):
        for row in _batch_rows(batch):
            number += 1
            if isinstance(row, Exception):
                yield RawRecord(number, number, b"", error=f"unreadable Parquet row: {type(row).__name__}: {row}")
                continue
            size = value_bytes(row)
            error = _too_large(size, max_record_bytes) if size > max_record_bytes else None
            yield RawRecord(number, number, b"", value=row, error=error)


def _batch_rows(batch: Any) -> Iterator[dict | Exception]:
    """Rows of a record batch; if the batch will not convert, row by row with the failures in place."""
    try:
        yield from batch.to_pylist()
        return
    except Exception:  # noqa: BLE001 - find the rows at fault instead of losing the batch
        pass
    for i in range(batch.num_rows):
        try:
            yield batch.slice(i, 1).to_pylist()[0]
        except Exception as exc:  # noqa: BLE001
            yield exc


def value_bytes(value: Any) -> int:
    """UTF-8 bytes of the strings and binaries in a (nested) value."""
    if isinstance(value, str):
        return len(value.encode("utf-8", errors="surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(value_bytes(v) for v in value)
    return 0


class _LineIndex:
    """Maps character offsets to 1-based line numbers, moving forward through the text."""

    def __init__(self, text: str) -> None:
        self._text, self._pos, self._line = text, 0, 1

    def line_of(self, pos: int) -> int:
        if pos < self._pos:
            return self._text.count("\n", 0, pos) + 1
        self._line += self._text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line


def _too_large(size: int, limit: int) -> str:
    return f"record too large: {size} bytes > max_record_bytes {limit}"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in JSON_WS:
        pos += 1
    return pos


def _encode(span: str) -> bytes:
    return span.encode("utf-8", errors="surrogateescape")
