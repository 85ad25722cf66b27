"""``mapInArrow`` bodies of the quality stage: signals and decisions per batch, and PII scrubbing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np
import pyarrow as pa

from udfs.quality import c4, fineweb, gopher
from udfs.quality.langid import identify
from udfs.quality.pii import KINDS, PiiScrubber
from udfs.quality.rules import SIGNALS, defaults, failing
from udfs.quality.words import bound_memory, words

COUNT_SIGNALS = frozenset({"gopher_words", "gopher_stop_words", "c4_sentences", "c4_lorem_ipsum", "c4_curly_bracket"})
SIGNAL_FIELDS = [
    pa.field("lang_detected", pa.string()),
    *(pa.field(s, pa.int64() if s in COUNT_SIGNALS else pa.float64()) for s in SIGNALS),
    pa.field("unspaced_share", pa.float64()),
    pa.field("failed", pa.list_(pa.string())),
]
PII_FIELDS = [pa.field(f"pii_{kind}", pa.int32()) for kind in KINDS]
SCRUBBED_STRINGS = ("text", "prompt", "response", "chosen", "rejected")


@dataclass(frozen=True)
class QualityPlan:
    """Thresholds (defaults, overridden per source), allowed languages, and the kinds rules apply to."""

    thresholds: Mapping[str, float | None] = field(default_factory=defaults)
    source_thresholds: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    languages: frozenset[str] | None = None
    source_languages: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    kinds: frozenset[str] = frozenset({"pretrain"})
    lang_max_chars: int | None = None

    def thresholds_for(self, source: str) -> dict[str, float | None]:
        return {**self.thresholds, **self.source_thresholds.get(source, {})}

    def languages_for(self, source: str) -> frozenset[str] | None:
        return self.source_languages.get(source, self.languages)


def document_signals(text: str, lang: str | None) -> dict[str, float | None]:
    """Every heuristic signal of one document, from one tokenization."""
    tokens = words(text)
    measured = gopher.quality(text, tokens, english=lang == "en")
    return {
        **measured,
        **gopher.repetition(text, tokens),
        **c4.signals(text, spaced=measured["unspaced_share"] < gopher.MOSTLY_UNSPACED),
        **fineweb.signals(text, tokens),
    }


def signal_table(texts: pa.Array, lang_max_chars: int | None = None) -> dict[str, pa.Array]:
    """Columns of signals for a batch of texts (no decisions)."""
    langs, scores = identify(texts, lang_max_chars)
    detected = langs.to_pylist()
    rows = [document_signals(t or "", lang) for t, lang in zip(texts.to_pylist(), detected)]
    bound_memory()
    columns: dict[str, pa.Array] = {"lang_detected": langs}
    for f in SIGNAL_FIELDS[1:-1]:
        values = scores if f.name == "lang_score" else [r[f.name] for r in rows]
        columns[f.name] = pa.array(values, f.type)
    return columns


def decisions(columns: Mapping[str, pa.Array], sources: list[str], kinds: list[str | None],
              plan: QualityPlan) -> pa.Array:
    """Failed rules per document under its source's thresholds; kinds the rules skip (and a null
    kind) fail nothing."""
    failed: list[list[str]] = [[] for _ in sources]
    detected = columns["lang_detected"].to_pylist()
    signals = {name: np.asarray(columns[name].to_numpy(zero_copy_only=False), np.float64) for name in SIGNALS}
    filtered = np.fromiter((k in plan.kinds for k in kinds), bool, len(kinds))
    names, group = np.unique(np.array(sources, dtype=object).astype(str), return_inverse=True)
    for g, source in enumerate(names):
        rows = np.flatnonzero((group == g) & filtered)
        if len(rows) == 0:
            continue
        outcome = failing({n: v[rows] for n, v in signals.items()}, plan.thresholds_for(source),
                          plan.languages_for(source), [detected[i] for i in rows])
        for row, reasons in zip(rows, outcome):
            failed[row] = reasons
    return pa.array(failed, pa.list_(pa.string()))


def quality_signals(batches: Iterator[pa.RecordBatch], plan: QualityPlan) -> Iterator[pa.RecordBatch]:
    """(input columns except text) + signals + ``failed``: the body of the signals pass."""
    for batch in batches:
        columns = signal_table(batch.column("text"), plan.lang_max_chars)
        columns["failed"] = decisions(columns, batch.column("source").to_pylist(), batch.column("kind").to_pylist(), plan)
        keep = [n for n in batch.schema.names if n != "text"]
        yield pa.RecordBatch.from_arrays([batch.column(n) for n in keep] + [columns[f.name] for f in SIGNAL_FIELDS],
                                         names=keep + [f.name for f in SIGNAL_FIELDS])


def scrub_pii(batches: Iterator[pa.RecordBatch], scrubber: PiiScrubber) -> Iterator[pa.RecordBatch]:
    """Every text field (and each message's content) with PII replaced; counts summed per kind."""
    for batch in batches:
        totals = {kind: np.zeros(batch.num_rows, np.int32) for kind in KINDS}
        arrays = []
        for name, column in zip(batch.schema.names, batch.columns):
            if name in SCRUBBED_STRINGS and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = _scrub(column, scrubber, totals)
            elif name == "messages" and (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
                column = _scrub_messages(column, scrubber, totals)
            arrays.append(column)
        arrays += [pa.array(totals[kind], pa.int32()) for kind in KINDS]
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names + [f.name for f in PII_FIELDS])


def _scrub(column: pa.Array, scrubber: PiiScrubber, totals: dict[str, np.ndarray]) -> pa.Array:
    scrubbed, counts = scrubber.scrub(column)
    for kind, c in counts.items():
        totals[kind] += c
    return scrubbed


def _scrub_messages(column: pa.ListArray, scrubber: PiiScrubber, totals: dict[str, np.ndarray]) -> pa.Array:
    """Scrub the ``content`` of every message; counts go to the message's document. Null lists,
    null messages and null contents stay null."""
    offsets = column.offsets.to_numpy()
    turns = column.values.slice(offsets[0], offsets[-1] - offsets[0])  # every value the offsets span
    relative = offsets - offsets[0]
    children = dict(zip([f.name for f in turns.type], turns.flatten()))
    scrubbed, counts = scrubber.scrub(children["content"])
    owner = np.repeat(np.arange(len(column)), np.diff(relative))
    for kind, c in counts.items():
        np.add.at(totals[kind], owner, np.where(column.is_null().to_numpy(zero_copy_only=False)[owner], 0, c))
    fields = [scrubbed if f.name == "content" else children[f.name] for f in turns.type]
    rebuilt = pa.StructArray.from_arrays(fields, fields=list(turns.type), mask=turns.is_null())
    return type(column).from_arrays(pa.array(relative, column.offsets.type), rebuilt, mask=column.is_null())
