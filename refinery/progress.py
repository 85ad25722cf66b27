"""Progress lines a person can follow while a stage runs: every few seconds, the running Spark
stages' finished / total tasks and the rows they have read, against the stage's input size.

It reads the driver's own status store (what the Spark UI shows), so it costs no extra job and
works with the UI turned off. Task metrics arrive as tasks finish (and with executor
heartbeats), so the row counts move in steps.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from pyspark.sql import SparkSession


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class Progress:
    """``with Progress(spark, "dedup", total, every=10):`` prints a line every ``every`` seconds."""

    def __init__(self, spark: SparkSession, stage: str, total: int | None, every: float,
                 out: Callable[[str], None] = print) -> None:
        self._store = spark.sparkContext._jsc.sc().statusStore()
        self._stage, self._total, self._every, self._out = stage, total, every, out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{stage}", daemon=True)
        self._started = 0.0

    def __enter__(self) -> "Progress":
        self._started = time.monotonic()
        if self._every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._out(self.line())
            except Exception:  # the JVM may be going away with the stage; progress is best effort
                return

    def line(self) -> str:
        active = self._store.activeStages()
        parts = []
        for i in range(active.size()):
            s = active.apply(i)
            rows = s.inputRecords() + s.shuffleReadRecords()
            parts.append(f"Spark stage {s.stageId()}: tasks {s.numCompleteTasks()}/{s.numTasks()}, {rows:,} rows read")
        total = f"; stage input {self._total:,} records" if self._total is not None else ""
        what = "; ".join(parts) if parts else "driver work (no Spark stage running)"
        return f"  [{self._stage} {elapsed(time.monotonic() - self._started)}] {what}{total}"
