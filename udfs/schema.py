"""The canonical record and rejects schemas, defined once in Arrow.

Spark jobs derive their Spark schemas from these (``pyspark.sql.pandas.types.from_arrow_schema``)
so the batch functions in ``udfs/`` and the Delta tables can never drift apart.
"""
from __future__ import annotations

import pyarrow as pa

KINDS = ("pretrain", "sft", "preference")

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

# Bronze record: every kind in one table. ``text`` is the record's whole text (for SFT and
# preference records the prompt turns and the (chosen) response joined), which is what dedup and
# quality read; the kind-specific columns keep the structure training needs.
RECORD_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("kind", pa.string()),
        ("text", pa.string()),
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("messages", pa.list_(MESSAGE)),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("meta", pa.string()),
        ("lang", pa.string()),
    ]
)

# One rejects schema for every stage: ingest fills the file locator, later stages the doc_id.
REJECT_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("source", pa.string()),
        ("doc_id", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("reason", pa.string()),
        ("raw_snippet", pa.string()),
    ]
)

# What the ingest reader emits: a record, or (``reject_reason`` set) a rejected input.
INGEST_OUTPUT_SCHEMA = RECORD_SCHEMA.append(pa.field("reject_reason", pa.string())).append(
    pa.field("raw_snippet", pa.string())
)

# The ingest stage's second pass: its rejects, and per file one tally row (``reject_reason`` null)
# with the number of records the reader saw, which the counts must reconcile with.
INGEST_TALLY_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("reject_reason", pa.string()),
        ("raw_snippet", pa.string()),
        ("records_seen", pa.int64()),
    ]
)

# One dropped schema for every stage: the record, why it went (``reason``: the first failing rule;
# ``reasons``: every one that failed), the signal ``value`` and the ``threshold`` that decided it,
# and for a duplicate the record it duplicates.
DROPPED_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("source", pa.string()),
        ("doc_id", pa.string()),
        ("reason", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("value", pa.float64()),
        ("threshold", pa.float64()),
        ("duplicate_of", pa.string()),
    ]
)
