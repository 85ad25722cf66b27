"""``mapInArrow`` bodies of the dedup stage: Arrow batches in, Arrow batches out, no Spark here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa

from udfs.dedup.minhash import MinHasher, pair_jaccard
from udfs.dedup.text import ExactNormalization, exact_hashes

FINGERPRINT_FIELDS = [pa.field("exact_hash", pa.binary()), pa.field("bands", pa.list_(pa.int64()))]
PAIR_SCHEMA = pa.schema([("src", pa.int64()), ("dst", pa.int64()), ("jaccard", pa.float64())])


@dataclass(frozen=True)
class FingerprintPlan:
    """What to compute per document; ``None`` parts are skipped (their column stays null)."""

    exact: ExactNormalization | None
    hasher: MinHasher | None
    bands: int = 0
    rows: int = 0


def fingerprints(batches: Iterator[pa.RecordBatch], plan: FingerprintPlan) -> Iterator[pa.RecordBatch]:
    """Replace ``text`` by its exact hash and its LSH band keys; other columns pass through.

    A text without shingles (empty after normalization) gets no band keys: it can only be an
    exact duplicate, never a near one.
    """
    for batch in batches:
        texts = batch.column("text")
        n = batch.num_rows
        exact = exact_hashes(texts, plan.exact) if plan.exact else pa.nulls(n, FINGERPRINT_FIELDS[0].type)
        if plan.hasher is not None:
            signatures = plan.hasher.signatures(texts)
            keys = plan.hasher.band_keys(signatures, plan.bands, plan.rows)
            empty = (signatures == np.uint32(0xFFFFFFFF)).all(axis=1)
            offsets = pa.array(np.arange(n + 1, dtype=np.int32) * plan.bands, pa.int32())
            bands = pa.ListArray.from_arrays(offsets, pa.array(keys.reshape(-1)), mask=pa.array(empty))
        else:
            bands = pa.nulls(n, FINGERPRINT_FIELDS[1].type)
        rest = batch.drop_columns(["text"])
        yield pa.RecordBatch.from_arrays([*rest.columns, exact, bands], schema=rest.schema.append(
            FINGERPRINT_FIELDS[0]).append(FINGERPRINT_FIELDS[1]))


def pair_similarities(batches: Iterator[pa.RecordBatch], hasher: MinHasher) -> Iterator[pa.RecordBatch]:
    """(src, dst, text_src, text_dst) -> (src, dst, exact Jaccard of their shingle sets)."""
    for batch in batches:
        jaccard = pair_jaccard(hasher.shingler, batch.column("text_src"), batch.column("text_dst"))
        yield pa.RecordBatch.from_arrays([batch.column("src"), batch.column("dst"), pa.array(jaccard)],
                                         schema=PAIR_SCHEMA)
