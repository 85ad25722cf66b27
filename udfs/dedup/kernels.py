"""Compiled inner loops of near-dedup: shingle spans, xxh32, MinHash, band keys, Jaccard.

Hand-written with numba because no library computes datasketch-equal MinHash over a whole Arrow
buffer: datasketch hashes each shingle in Python and permutes one document at a time, which is what
makes it slow. These kernels read the UTF-8 bytes of a batch in place (Arrow ``data`` + ``offsets``),
so a batch of documents costs no Python object per document or per shingle.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit

# Numba caches compiled code beside the module; a module imported from a zip (the wheel that
# spark-submit ships with --py-files) has no such place, and asking for a cache there fails.
CACHE = os.path.isfile(__file__)

MASK32 = np.uint64(0xFFFFFFFF)
P1, P2, P3, P4, P5 = (np.uint64(x) for x in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1))
SPACE = 0x20


@njit(cache=CACHE, inline="always")
def _rotl32(x: np.uint64, r: int) -> np.uint64:
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & MASK32


@njit(cache=CACHE, inline="always")
def _read32(data: np.ndarray, i: int) -> np.uint64:
    return (np.uint64(data[i]) | (np.uint64(data[i + 1]) << np.uint64(8))
            | (np.uint64(data[i + 2]) << np.uint64(16)) | (np.uint64(data[i + 3]) << np.uint64(24)))


@njit(cache=CACHE)
def xxh32(data: np.ndarray, start: int, end: int) -> np.uint64:
    """XXH32 (seed 0) of ``data[start:end]``; equals ``xxhash.xxh32_intdigest``."""
    i, length = start, end - start
    if length >= 16:
        v1 = (P1 + P2) & MASK32
        v2 = P2
        v3 = np.uint64(0)
        v4 = (np.uint64(1 << 32) - P1) & MASK32
        while i + 16 <= end:
            v1 = (_rotl32((v1 + _read32(data, i) * P2) & MASK32, 13) * P1) & MASK32
            v2 = (_rotl32((v2 + _read32(data, i + 4) * P2) & MASK32, 13) * P1) & MASK32
            v3 = (_rotl32((v3 + _read32(data, i + 8) * P2) & MASK32, 13) * P1) & MASK32
            v4 = (_rotl32((v4 + _read32(data, i + 12) * P2) & MASK32, 13) * P1) & MASK32
            i += 16
        h = (_rotl32(v1, 1) + _rotl32(v2, 7) + _rotl32(v3, 12) + _rotl32(v4, 18)) & MASK32
    else:
        h = P5
    h = (h + np.uint64(length)) & MASK32
    while i + 4 <= end:
        h = (_rotl32((h + _read32(data, i) * P3) & MASK32, 17) * P4) & MASK32
        i += 4
    while i < end:
        h = (_rotl32((h + np.uint64(data[i]) * P5) & MASK32, 11) * P1) & MASK32
        i += 1
    h ^= h >> np.uint64(15)
    h = (h * P2) & MASK32
    h ^= h >> np.uint64(13)
    h = (h * P3) & MASK32
    h ^= h >> np.uint64(16)
    return h


@njit(cache=CACHE)
def shingle_spans(data: np.ndarray, offsets: np.ndarray, words: bool, n: int):
    """Byte spans of every shingle of every document, and each document's first span.

    Texts are normalized so that words are separated by exactly one space, which makes a word
    n-gram the contiguous bytes from its first word's start to its last word's end (the same
    bytes as ``" ".join(words[i:i + n]).encode()``). Character n-grams are ``n`` code points.
    A non-empty text shorter than one shingle is one shingle (the whole text); an empty text has none.
    """
    docs = len(offsets) - 1
    doc_ptr = np.zeros(docs + 1, np.int64)
    total = 0
    for d in range(docs):  # pass 1: count, to allocate once
        units = _unit_count(data, offsets[d], offsets[d + 1], words)
        total += max(units - n + 1, 1) if units > 0 else 0
        doc_ptr[d + 1] = total
    starts = np.empty(total, np.int64)
    ends = np.empty(total, np.int64)
    unit_starts = np.empty(0, np.int64)
    for d in range(docs):
        lo, hi = offsets[d], offsets[d + 1]
        if doc_ptr[d + 1] == doc_ptr[d]:
            continue
        count = _unit_count(data, lo, hi, words)
        if count < n:
            starts[doc_ptr[d]], ends[doc_ptr[d]] = lo, hi
            continue
        if len(unit_starts) < count + 1:
            unit_starts = np.empty(2 * count + 1, np.int64)
        k = 0
        for i in range(lo, hi):  # unit boundaries; a word ends one byte before the next starts
            if (words and (i == lo or data[i - 1] == SPACE)) or (not words and (data[i] & 0xC0) != 0x80):
                unit_starts[k] = i
                k += 1
        unit_starts[k] = hi + 1 if words else hi
        for s in range(count - n + 1):
            starts[doc_ptr[d] + s] = unit_starts[s]
            ends[doc_ptr[d] + s] = unit_starts[s + n] - (1 if words else 0)
    return starts, ends, doc_ptr


@njit(cache=CACHE, inline="always")
def _unit_count(data: np.ndarray, lo: int, hi: int, words: bool) -> int:
    if hi <= lo:
        return 0
    count = 0
    for i in range(lo, hi):
        if words:
            count += data[i] == SPACE
        else:
            count += (data[i] & 0xC0) != 0x80
    return count + 1 if words else count


@njit(cache=CACHE)
def xxh32_spans(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    out = np.empty(len(starts), np.uint32)
    for i in range(len(starts)):
        out[i] = xxh32(data, starts[i], ends[i])
    return out


@njit(cache=CACHE, inline="always")
def _fmix32(h: np.uint64) -> np.uint64:
    """MurmurHash3's 32-bit finalizer: datasketch's pre-mix for the ``affine32`` scheme."""
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & MASK32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & MASK32
    return h ^ (h >> np.uint64(16))


@njit(cache=CACHE)
def minhash_affine32(hashes: np.ndarray, doc_ptr: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """datasketch's ``affine32`` MinHash: per document, min over shingles of ``a*fmix32(h)+b mod 2^32``.

    A document without shingles keeps the empty value (all ``2^32-1``), as datasketch does.
    """
    perms = len(a)
    a64, b64 = a.astype(np.uint64), b.astype(np.uint64)
    sig = np.full((len(doc_ptr) - 1, perms), np.uint32(0xFFFFFFFF), np.uint32)
    row = np.empty(perms, np.uint64)
    for d in range(len(doc_ptr) - 1):
        row[:] = MASK32
        for s in range(doc_ptr[d], doc_ptr[d + 1]):
            h = _fmix32(np.uint64(hashes[s]))
            for j in range(perms):
                v = (a64[j] * h + b64[j]) & MASK32
                if v < row[j]:
                    row[j] = v
        for j in range(perms):
            sig[d, j] = row[j]
    return sig


@njit(cache=CACHE)
def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band: a splitmix64 chain over the band's ``rows`` values."""
    out = np.empty((sig.shape[0], bands), np.int64)
    for d in range(sig.shape[0]):
        for j in range(bands):
            h = np.uint64(0x9E3779B97F4A7C15) * np.uint64(j + 1)
            for k in range(j * rows, (j + 1) * rows):
                h = _splitmix64(h ^ np.uint64(sig[d, k]))
            out[d, j] = np.int64(h)
    return out


@njit(cache=CACHE, inline="always")
def _splitmix64(x: np.uint64) -> np.uint64:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=CACHE)
def set_jaccard(hashes: np.ndarray, doc_ptr: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle-hash sets of documents ``left[i]`` and ``right[i]``."""
    out = np.empty(len(left), np.float64)
    for i in range(len(left)):
        x = np.unique(hashes[doc_ptr[left[i]]:doc_ptr[left[i] + 1]])
        y = np.unique(hashes[doc_ptr[right[i]]:doc_ptr[right[i] + 1]])
        p = q = common = 0
        while p < len(x) and q < len(y):
            if x[p] == y[q]:
                common += 1
                p += 1
                q += 1
            elif x[p] < y[q]:
                p += 1
            else:
                q += 1
        union = len(x) + len(y) - common
        out[i] = common / union if union else 1.0
    return out


SEPARATOR, WORD, UNSPACED = 0, 1, 2


@njit(cache=CACHE)
def separate_words(data: np.ndarray, offsets: np.ndarray, classes: np.ndarray):
    """Rewrite UTF-8 texts so that words are separated by exactly one space and nothing else:
    code points of class SEPARATOR become separators, UNSPACED ones are words of their own.
    Returns the new bytes and offsets (the same job as a chain of Unicode regex replacements,
    in one pass)."""
    out = np.empty(2 * len(data) + 1, np.uint8)
    new_offsets = np.empty(len(offsets), np.int64)
    w = 0
    new_offsets[0] = 0
    for d in range(len(offsets) - 1):
        doc_start, pending = w, False
        i, end = offsets[d], offsets[d + 1]
        while i < end:
            lead = data[i]
            if lead < 0x80:
                cp, size = np.int64(lead), 1
            elif lead < 0xE0:
                cp, size = (np.int64(lead & 0x1F) << 6) | (data[i + 1] & 0x3F), 2
            elif lead < 0xF0:
                cp, size = (np.int64(lead & 0x0F) << 12) | (np.int64(data[i + 1] & 0x3F) << 6) | (data[i + 2] & 0x3F), 3
            else:
                cp = ((np.int64(lead & 0x07) << 18) | (np.int64(data[i + 1] & 0x3F) << 12)
                      | (np.int64(data[i + 2] & 0x3F) << 6) | (data[i + 3] & 0x3F))
                size = 4
            kind = classes[cp] if cp < len(classes) else SEPARATOR
            if kind == SEPARATOR:
                pending = w > doc_start
            else:
                if pending or (kind == UNSPACED and w > doc_start):
                    out[w] = SPACE
                    w += 1
                for k in range(size):
                    out[w + k] = data[i + k]
                w += size
                pending = kind == UNSPACED
            i += size
        new_offsets[d + 1] = w
    return out[:w], new_offsets
