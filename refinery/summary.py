"""Plain-text tables for run summaries (no extra dependency: they are read in driver logs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # the tables need Spark; benchmarks print these tables on machines without it
    from refinery.tables import Commit


@dataclass(frozen=True)
class StageSummary:
    """One stage's line in a run summary; in = kept + dropped + rejected."""

    stage: str
    records_in: int
    kept: int
    dropped: int
    rejected: int
    outputs: list["Commit"] = field(default_factory=list)
    seconds: float = 0.0
    status: str = "ran"  # "incremental": built on its last run's output; "skipped": its output was current


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to width; numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def stage_table(stages: Sequence[StageSummary]) -> str:
    rows = [
        [s.stage, s.status, s.records_in, s.kept, s.dropped, s.rejected, s.seconds,
         ", ".join(f"{c.path}@v{c.version}" for c in s.outputs)]
        for s in stages
    ]
    return render_table(["stage", "status", "in", "kept", "dropped", "rejected", "seconds", "tables (path@version)"], rows)
