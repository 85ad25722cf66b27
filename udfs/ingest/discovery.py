"""Find a source's input files: a file, a directory (recursive) or a glob, on any pyarrow filesystem."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow.fs as pafs

from udfs.ingest.containers import filesystem_for, split_suffixes

CONTAINERS = {".jsonl", ".json", ".txt", ".parquet"}
GLOB_CHARS = "*?["
URI_QUERY = re.compile(r"\?[A-Za-z_]+=")


@dataclass(frozen=True)
class InputFile:
    """A file to ingest.

    ``path`` is what the filesystem opens, ``uri`` is how the user wrote it (what rejects and
    ``source_file`` show), and ``relpath`` is its place inside the source (what doc ids hash, so
    moving the raw data elsewhere keeps the ids).
    """

    path: str
    uri: str
    relpath: str
    size: int
    mtime_ns: int | None = None


def is_input_file(relpath: str) -> bool:
    """A known container (after any compression suffix), not inside a hidden or ``_``-prefixed folder.

    That skips ``_SUCCESS``, ``.crc`` files, ``_temporary/`` and ``_delta_log/`` left by writers.
    """
    parts = relpath.split("/")
    return not any(p.startswith((".", "_")) for p in parts) and split_suffixes(parts[-1])[0] in CONTAINERS


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Shell glob semantics: ``*`` and ``?`` stay inside one path segment, ``**/`` spans folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            close = pattern.index("]", i + 1)
            body = pattern[i + 1:close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def list_input_files(location: str) -> tuple[pafs.FileSystem, list[InputFile]]:
    """The source's filesystem and every input file under ``location``, sorted by relpath.

    Sorting makes task order and ids independent of the listing order of the store.
    """
    base_uri, pattern = _split_glob(location)
    fs, base = filesystem_for(base_uri)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.File and pattern is None:
        return fs, [InputFile(base, location, info.base_name, info.size, info.mtime_ns)]
    if info.type != pafs.FileType.Directory:
        return fs, []
    matcher = glob_regex(pattern) if pattern else None
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        relpath = entry.path[len(base):].lstrip("/")
        if entry.type != pafs.FileType.File or not is_input_file(relpath):
            continue
        if matcher and not matcher.match(relpath):
            continue
        found.append(InputFile(entry.path, f"{base_uri.rstrip('/')}/{relpath}", relpath, entry.size, entry.mtime_ns))
    return fs, sorted(found, key=lambda f: f.relpath)


def _split_glob(location: str) -> tuple[str, str | None]:
    """Split ``s3://b/raw/*/part-*.jsonl.zst`` into the folder to list and the glob below it.

    A URI's query (``?endpoint_override=…``) is not a glob: it stays with the folder.
    """
    query = ""
    if "://" in location and (match := URI_QUERY.search(location)):
        location, query = location[:match.start()], location[match.start():]
    parts = location.split("/")
    first = next((i for i, part in enumerate(parts) if any(ch in part for ch in GLOB_CHARS)), None)
    if first is None:
        return location + query, None
    base = "/".join(parts[:first]) or ("." if first == 0 else "/")
    return base + query, "/".join(parts[first:])
