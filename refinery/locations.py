"""Locations outside the lake that a stage reads (raw files, a reference text, a model folder):
whether they exist, and a digest of what is there, so a re-run notices new or changed files
without reading them."""
from __future__ import annotations

import hashlib
import json
import os

import pyarrow.fs as pafs

from udfs.ingest.containers import filesystem_for
from udfs.ingest.discovery import GLOB_CHARS, list_input_files


def _files(location: str) -> list[tuple[str, int, int | None]]:
    """(path, size, mtime_ns) of the file, of every file under the folder, or of the glob's matches."""
    location = os.path.expanduser(location)
    if any(c in location for c in GLOB_CHARS):  # (a URI's ?query too: list_input_files keeps it apart)
        return [(f.uri, f.size, f.mtime_ns) for f in list_input_files(location)[1]]
    fs, path = filesystem_for(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [(location, info.size, info.mtime_ns)]
    if info.type != pafs.FileType.Directory:
        return []
    entries = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted((e.path[len(path):], e.size, e.mtime_ns) for e in entries if e.type == pafs.FileType.File)


def exists(location: str) -> bool:
    return bool(_files(location))


def digest(location: str) -> str | None:
    """A hash of the names, sizes and modification times of the files there; None when there are none."""
    files = _files(location)
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:24] if files else None
