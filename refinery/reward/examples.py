"""Training examples from a lake table, checked: pairs for the reward model, labelled (prompt,
response) examples for the quality classifier. Unusable rows come back with the reason."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from udfs.reward.inputs import is_heldout, pair_problem, prompt_text, record_inputs
from udfs.reward.negatives import make_negatives

TRUE, FALSE = {True, 1, "1", "true", "True", "yes"}, {False, 0, "0", "false", "False", "no"}


@dataclass
class Examples:
    """Parallel lists; ``group`` is the pair (pairwise) or what made the example (pointwise:
    ``trusted``, ``labelled`` or a negative kind)."""

    prompts: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # pairwise: the rejected answers
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    heldout: list[bool] = field(default_factory=list)

    def add(self, prompt: str, response: str, heldout: bool, other: str = "", label: int = 1, group: str = "") -> None:
        self.prompts.append(prompt)
        self.responses.append(response)
        self.others.append(other)
        self.labels.append(label)
        self.groups.append(group)
        self.heldout.append(heldout)

    def split(self, heldout: bool) -> "Examples":
        keep = [i for i, h in enumerate(self.heldout) if h == heldout]
        return Examples(*([getattr(self, f.name)[i] for i in keep] for f in fields(self)))

    def __len__(self) -> int:
        return len(self.prompts)


def collect(rows: DataFrame, kind: str, limit: int, seed: int) -> tuple[list, int]:
    """Rows of ``kind`` (a seeded sample of ``limit`` when there are more), and how many were left out."""
    usable = rows.where(F.col("kind") == kind).select("doc_id", "source", "kind", "messages", "chosen", "rejected", "meta")
    picked = usable.orderBy(F.xxhash64(F.lit(seed), "doc_id")).limit(limit).collect()
    return picked, usable.count() - len(picked)


def as_turns(messages) -> list[dict]:
    return [{"role": m["role"], "content": m["content"] or ""} for m in messages or []]


def pairs(rows: list, heldout: float) -> tuple[Examples, list[tuple]]:
    """Preference pairs, and (row, reason) for those that cannot be used."""
    out, bad = Examples(), []
    for row in rows:
        turns = as_turns(row.messages)
        problem = pair_problem(turns, row.chosen, row.rejected)
        if problem:
            bad.append((row, problem))
        else:
            out.add(prompt_text(turns), row.chosen, is_heldout(turns, heldout), other=row.rejected, group=row.doc_id)
    return out, bad


def labelled(rows: list, heldout: float, label_field: str | None, negatives: list[str], seed: int,
             other_language: list[str]) -> tuple[Examples, list[tuple]]:
    """Pointwise examples: the records' own labels (``label_field`` in meta), or every record as a
    trusted positive plus one automatic negative of each, its kind as the group."""
    out, bad, trusted = Examples(), [], []
    for row in rows:
        turns = as_turns(row.messages)
        prompt, response, _ = record_inputs(row.kind, turns, row.chosen, row.rejected)
        if not prompt.strip() or not response.strip():
            bad.append((row, "record has no prompt or an empty response"))
            continue
        if label_field is None:
            trusted.append((prompt, response, is_heldout(turns[:-1], heldout)))
            continue
        value = json.loads(row.meta or "{}").get(label_field)
        if value in TRUE or value in FALSE:
            out.add(prompt, response, is_heldout(turns[:-1], heldout), label=int(value in TRUE), group="labelled")
        else:
            bad.append((row, f"label {value!r} outside the allowed set (true / false)"))
    for prompt, response, held in trusted:
        out.add(prompt, response, held, label=1, group="trusted")
    for i, kind, spoiled in make_negatives([r for _, r, _ in trusted], negatives, seed, other_language):
        out.add(trusted[i][0], spoiled, trusted[i][2], label=0, group=kind)
    return out, bad

