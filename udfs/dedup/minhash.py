"""MinHash signatures, LSH band keys and exact Jaccard over whole Arrow batches.

Signatures equal ``datasketch.MinHash(num_perm, seed, hashfunc=...)`` (default ``affine32``
scheme) fed with the same shingles: the permutations are taken from datasketch itself, and the
tests compare the values. Shingles of a document are the UTF-8 bytes of its word (or character)
n-grams after ``text.shingle_text``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Literal

import numpy as np
import pyarrow as pa
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from udfs.dedup import kernels
from udfs.dedup.text import shingle_text, utf8_buffers

# Text bytes hashed per kernel call: bounds the span arrays (<= 20 bytes per shingle) to ~100 MB.
CHUNK_BYTES = 4 << 20


def lsh_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
              false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted false positive + negative probability mass around
    ``threshold``: datasketch's own ``MinHashLSH`` optimizer, so both pick the same banding."""
    return _optimal_param(threshold, num_perm, false_positive_weight, false_negative_weight)


@dataclass(frozen=True)
class Shingler:
    """How a text becomes a set of hashed shingles."""

    ngram: int = 5
    unit: Literal["word", "char"] = "word"
    hash: Literal["xxh32", "sha1"] = "xxh32"

    def hashes(self, texts: pa.Array) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Per chunk of documents: (first document index, 32-bit shingle hashes, per-document
        offsets into them)."""
        data, offsets = utf8_buffers(shingle_text(texts, self.unit == "word"))
        for lo, hi in _chunks(offsets):
            starts, ends, doc_ptr = kernels.shingle_spans(data, offsets[lo:hi + 1], self.unit == "word", self.ngram)
            yield lo, self._hash_spans(data, starts, ends), doc_ptr

    def _hash_spans(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        if self.hash == "xxh32":
            return kernels.xxh32_spans(data, starts, ends)
        # datasketch's default sha1_hash32: one hashlib call per shingle, kept for compatibility.
        view = memoryview(data)
        return np.fromiter((int.from_bytes(hashlib.sha1(view[s:e]).digest()[:4], "little")
                            for s, e in zip(starts.tolist(), ends.tolist())), np.uint32, len(starts))

    def all_hashes(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Every document's shingle hashes in one array, with per-document offsets."""
        hashes, doc_ptr, total = [np.zeros(0, np.uint32)], [np.zeros(1, np.int64)], 0
        for _, chunk, ptr in self.hashes(texts):
            doc_ptr.append(ptr[1:] + total)
            hashes.append(chunk)
            total += len(chunk)
        return np.concatenate(hashes), np.concatenate(doc_ptr)

    def spans(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, per-document offsets, bytes): every shingle as a span of the normalized bytes."""
        data, offsets = utf8_buffers(shingle_text(texts, self.unit == "word"))
        starts, ends, doc_ptr = kernels.shingle_spans(data, offsets, self.unit == "word", self.ngram)
        return starts, ends, doc_ptr, data

    def shingles(self, text: str) -> list[bytes]:
        """One document's shingles as bytes (tests; the job never builds these)."""
        starts, ends, _, data = self.spans(pa.array([text]))
        return [bytes(data[s:e]) for s, e in zip(starts, ends)]


@dataclass(frozen=True)
class MinHasher:
    shingler: Shingler = field(default_factory=Shingler)
    num_perm: int = 128
    seed: int = 1

    @cached_property
    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = MinHash(num_perm=self.num_perm, seed=self.seed).permutations
        return np.ascontiguousarray(a, np.uint32), np.ascontiguousarray(b, np.uint32)

    def signatures(self, texts: pa.Array) -> np.ndarray:
        """(documents, num_perm) uint32; a text without shingles gets datasketch's empty value."""
        a, b = self.permutations
        out = np.empty((len(texts), self.num_perm), np.uint32)
        for lo, hashes, doc_ptr in self.shingler.hashes(texts):
            out[lo:lo + len(doc_ptr) - 1] = kernels.minhash_affine32(hashes, doc_ptr, a, b)
        return out

    def band_keys(self, signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
        """(documents, bands) int64 bucket keys; two documents share a bucket in band ``j`` when
        their signature rows ``j*rows .. (j+1)*rows - 1`` are equal (up to 2^-64 collisions)."""
        if bands * rows > self.num_perm:
            raise ValueError(f"bands * rows = {bands * rows} > num_perm {self.num_perm}")
        return kernels.band_keys(signatures, bands, rows)


def pair_jaccard(shingler: Shingler, left: pa.Array, right: pa.Array) -> np.ndarray:
    """Exact Jaccard of the shingle sets of ``left[i]`` and ``right[i]`` (sets of 32-bit shingle
    hashes: for a 10k-shingle document a collision changes J by < 1e-4)."""
    n = len(left)
    hashes, doc_ptr = shingler.all_hashes(pa.concat_arrays([left.cast(pa.large_string()), right.cast(pa.large_string())]))
    index = np.arange(n, dtype=np.int64)
    return kernels.set_jaccard(hashes, doc_ptr, index, index + n)


def _chunks(offsets: np.ndarray) -> Iterator[tuple[int, int]]:
    """Document ranges [lo, hi) of about CHUNK_BYTES of text each (at least one document)."""
    n, lo = len(offsets) - 1, 0
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + CHUNK_BYTES, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi
