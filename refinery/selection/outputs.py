"""Writing a selection method's tables: its chosen records (replaced whole) and its share of the
shared ``select/dropped`` table (the rows of its method, replaced by predicate), with the count check."""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from refinery.config import Config
from refinery.frames import reconcile
from refinery.tables import Commit, RunInfo, replace_rows, sql_string

DROPPED_TABLE = "select/dropped"


@dataclass(frozen=True)
class MethodResult:
    method: str
    table: Commit
    dropped: Commit | None  # None: the method keeps every record (it scores or clusters them)
    note: str  # what a person should know: radius, clusters, cut-off...

    def row(self, pool_rows: int) -> list[object]:
        dropped = self.dropped.rows if self.dropped else 0
        return [self.method, pool_rows, self.table.rows, dropped, f"{self.table.path}@v{self.table.version}", self.note]


def write_method(cfg: Config, run: RunInfo, method: str, chosen: DataFrame, dropped: DataFrame | None,
                 pool_rows: int, note: str, per_record: bool = True) -> MethodResult:
    """Write the method's tables; for a method with one output row per record (``per_record``),
    pool = written + dropped, else the run fails."""
    table = replace_rows(chosen, cfg.table(f"select/{method}"), None, run, [])
    gone = None
    if dropped is not None:
        gone = replace_rows(dropped, cfg.table(DROPPED_TABLE), f"stage = {sql_string('select.' + method)}", run, ["stage"])
    if per_record:
        reconcile(pool_rows, {f"select/{method}": table.rows, "dropped": gone.rows if gone else 0})
    return MethodResult(method, table, gone, note)
