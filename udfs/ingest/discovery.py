"""Find a source's input files: a file, a directory (recursive) or a glob, on any pyarrow filesystem."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import pyarrow.fs as pafs

from udfs.ingest.containers import filesystem_for, split_suffixes

CONTAINERS = {".jsonl", ".json", ".txt", ".parquet"}
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class InputFile:
    """A file to ingest: ``path`` to open, ``relpath`` inside the source (what doc ids hash)."""

    path: str
    relpath: str
    size: int


def is_input_file(name: str) -> bool:
    """Known container after any compression suffix; hidden and marker files (``_SUCCESS``) are not."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith((".", "_")) and split_suffixes(base)[0] in CONTAINERS


def list_input_files(location: str) -> list[InputFile]:
    """Every input file under ``location``, sorted, so ids and task order do not depend on listing order."""
    scheme = location.split("://", 1)[0] + "://" if "://" in location else ""
    fs, path = filesystem_for(location)
    pattern = None
    if any(ch in path for ch in GLOB_CHARS):
        head = path.split("/")
        fixed = next(i for i, part in enumerate(head) if any(ch in part for ch in GLOB_CHARS))
        pattern, path = path, "/".join(head[:fixed]) or "/"
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File and pattern is None:
        return [InputFile(scheme + path, info.base_name, info.size)]
    if info.type != pafs.FileType.Directory:
        return []
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if entry.type != pafs.FileType.File or not is_input_file(entry.path):
            continue
        if pattern and not fnmatch.fnmatch(entry.path, pattern):
            continue
        found.append(InputFile(scheme + entry.path, entry.path[len(path):].lstrip("/"), entry.size))
    return sorted(found, key=lambda f: f.relpath)
