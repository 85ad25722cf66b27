"""The pipeline's stage graph, checked before anything runs.

``pipeline.stages`` lists the stages in the order they run; the edges come from the data (a stage
depends on the stages that write what it reads, ``refinery.stages``). The plan is refused when a
stage is listed before one it depends on, when two stages write the same table, or when a stage
reads something that no stage of the run writes and that does not exist yet: a typo in a
week-long run's config fails in the first second, not on day three.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from refinery.stages import FILE, STAGES

if TYPE_CHECKING:
    from refinery.config import Config


class PlanError(ValueError):
    """The stage list cannot run as configured; the message says which stage and why."""


@dataclass(frozen=True)
class Plan:
    stages: list[str]  # the stages this invocation considers, in order
    forced: frozenset[str]  # run even when their output is current
    depends_on: dict[str, list[str]]  # stage -> the listed stages it reads from


def resolve(name: str, writers: dict[str, str]) -> str:
    """The key a read matches a write by: a name some stage writes as a lake table or a folder."""
    if name in writers or name.startswith(FILE):
        return name
    return FILE + name if FILE + name in writers else name


def plan(cfg: "Config", exists: Callable[[str], bool], start: str | None = None,
         only: Sequence[str] = ()) -> Plan:
    """Stages to run: all of ``pipeline.stages`` (skipping current ones), or from ``start`` on
    (those forced), or just ``only`` (forced; a stage need not be listed to run alone).
    ``exists(name)`` says whether a lake table or ``file:`` location is already there."""
    listed = list(cfg.pipeline.stages)
    unknown = [s for s in [*([start] if start else []), *only] if s not in STAGES]
    if unknown:
        raise PlanError(f"unknown stage(s) {unknown}; pipeline stages are {sorted(STAGES)}")
    if start and start not in listed:
        raise PlanError(f"--from {start}: not in pipeline.stages {listed}")
    writers: dict[str, str] = {}
    for stage in listed:
        for name in STAGES[stage].writes(cfg):
            if name in writers:
                raise PlanError(f"pipeline.stages: {writers[name]} and {stage} both write {name.removeprefix(FILE)}")
            writers[name] = stage
    stray = sorted(set(cfg.pipeline.zorder) - set(writers))
    if stray:
        raise PlanError(f"pipeline.zorder: no stage in pipeline.stages writes {', '.join(stray)}")
    depends_on: dict[str, list[str]] = {}
    for i, stage in enumerate(listed):
        deps = []
        for name in STAGES[stage].reads(cfg):
            writer = writers.get(resolve(name, writers))
            if writer is None:
                continue
            if writer == stage or listed.index(writer) > i:
                raise PlanError(f"pipeline.stages: {stage} reads {name.removeprefix(FILE)}, which {writer} writes; "
                                f"list {writer} before {stage}")
            deps.append(writer)
        depends_on[stage] = sorted(set(deps), key=listed.index)
    if only:
        chosen, forced = list(dict.fromkeys(only)), set(only)
    elif start:
        chosen = listed[listed.index(start):]
        forced = set(chosen)
    else:
        chosen, forced = listed, set()
    produced = {name for stage in chosen for name in STAGES[stage].writes(cfg)}
    for stage in chosen:
        keys = [resolve(name, writers) for name in STAGES[stage].reads(cfg)]
        missing = [key.removeprefix(FILE) for key in keys if key not in produced and not exists(key)]
        if missing:
            raise PlanError(f"{stage} reads {', '.join(missing)}, which no stage of this run writes and which does "
                            f"not exist (run the stages before {stage}, or fix its config)")
    return Plan(chosen, frozenset(forced), depends_on)
