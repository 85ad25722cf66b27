"""Crash-safe record of finished generation requests.

Append-only JSON lines, one per finished request, flushed and fsynced as each arrives: after a
crash (or ``kill -9``) a re-run reads the journal and sends only what is missing. A torn last line
(the process died mid-write) is ignored. The journal lives on the driver's file system, where the
loop runs; put it on a persistent disk or mount when the driver is ephemeral.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from udfs.generate.backends import Backend, Request


def journal_key(identity: str, request: Request) -> str:
    payload = json.dumps([identity, request.key, request.prompt, asdict(request.sampling)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class Journal:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn write from a crash
                self.done[entry["id"]] = entry["text"]
        self._lock = threading.Lock()

    def record(self, key: str, text: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"id": key, "text": text}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
            self.done[key] = text

    def complete(self, backend: Backend, requests: Sequence[Request]) -> tuple[list[str | None], int]:
        """Every request's text, sending only those not journaled; returns (texts, requests sent).
        Failed requests (``None``) are not journaled: a re-run tries them again."""
        keys = [journal_key(backend.identity, r) for r in requests]
        missing = [i for i, k in enumerate(keys) if k not in self.done]
        if missing:
            backend.complete([requests[i] for i in missing], lambda j, text: self.record(keys[missing[j]], text))
        return [self.done.get(k) for k in keys], len(missing)
