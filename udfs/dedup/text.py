"""Text normalization for dedup, vectorized with Arrow compute (RE2, Unicode-aware).

Two normalizations with different jobs: the exact one decides what counts as "the same text" and
is configurable; the shingle one makes word boundaries explicit so that n-grams can be read as byte
spans (see ``kernels.shingle_spans``).
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.dedup import kernels

# Scripts written without spaces between words: each character is one token, so word n-grams
# become character n-grams there (Chinese, Japanese, Thai, ...) instead of one giant "word".
UNSPACED_RANGES = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x2FDF), (0x3005, 0x3007),
                   (0x3021, 0x3029), (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                   (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x3FFFF))
EXACT_HASH_BYTES = 16


@dataclass(frozen=True)
class ExactNormalization:
    """What exact dedup ignores when it compares two texts."""

    nfkc: bool = True
    lowercase: bool = True
    whitespace: bool = True
    punctuation: bool = False

    def apply(self, texts: pa.Array) -> pa.Array:
        """The normalized texts; ignored characters (whitespace runs, and with ``punctuation``
        punctuation and symbols too) become one space, none at either end."""
        out = pc.fill_null(texts, "")
        if self.nfkc:
            out = nfkc(out)
        if self.lowercase:
            out = pc.utf8_lower(out)
        if self.whitespace or self.punctuation:
            out = separate(out, exact_classes(self.whitespace, self.punctuation))
        return out


def exact_hashes(texts: pa.Array, normalization: ExactNormalization) -> pa.Array:
    """128-bit BLAKE2b of each normalized text: collisions stay negligible at 10^12 documents,
    where 64 bits would already give even odds of one false "duplicate"."""
    data, offsets = utf8_buffers(normalization.apply(texts))
    view = memoryview(data)
    digests = [hashlib.blake2b(view[offsets[i]:offsets[i + 1]], digest_size=EXACT_HASH_BYTES).digest()
               for i in range(len(offsets) - 1)]
    return pa.array(digests, pa.binary())


def shingle_text(texts: pa.Array, split_unspaced: bool = True) -> pa.Array:
    """NFKC, lower case, every run of non-word characters (not a letter, number or mark) one
    space and (``split_unspaced``, for word shingles) unspaced scripts split into characters:
    words end up separated by exactly one space, with none at either end."""
    return separate(pc.utf8_lower(nfkc(pc.fill_null(texts, ""))), char_classes(split_unspaced))


def separate(texts: pa.Array, classes: np.ndarray) -> pa.Array:
    """Runs of SEPARATOR-class code points -> one space, trimmed (one compiled pass; Arrow's
    Unicode regex replacement runs at ~40 MB/s)."""
    data, offsets = utf8_buffers(texts)
    out, new_offsets = kernels.separate_words(data, offsets, classes)
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(new_offsets), pa.py_buffer(out))


def nfkc(texts: pa.Array) -> pa.Array:
    """Unicode NFKC, skipping the (identity) work on pure-ASCII texts, most of an English corpus."""
    other = pc.invert(pc.string_is_ascii(texts))
    if not pc.any(other).as_py():
        return texts
    return pc.replace_with_mask(texts, other, pc.utf8_normalize(pc.filter(texts, other), "NFKC"))


@lru_cache(maxsize=1)
def categories() -> tuple[np.ndarray, np.ndarray]:
    """First letter of every code point's Unicode category, and which are whitespace (~0.3 s, once
    per Python worker)."""
    category = unicodedata.category
    first = np.fromiter((ord(category(chr(c))[0]) for c in range(0x110000)), np.uint8, 0x110000)
    space = np.fromiter((chr(c).isspace() for c in range(0x110000)), np.bool_, 0x110000)
    return first, space


@lru_cache(maxsize=2)
def char_classes(split_unspaced: bool) -> np.ndarray:
    """Shingling: a letter, number or mark is part of a word, anything else separates words;
    unspaced-script characters are words of their own."""
    first, _ = categories()
    classes = np.isin(first, [ord("L"), ord("N"), ord("M")]).astype(np.uint8)
    if split_unspaced:
        for low, high in UNSPACED_RANGES:
            classes[low:high + 1] = np.where(classes[low:high + 1] == kernels.WORD, kernels.UNSPACED, kernels.SEPARATOR)
    return classes


@lru_cache(maxsize=4)
def exact_classes(whitespace: bool, punctuation: bool) -> np.ndarray:
    """Exact dedup: whitespace and/or punctuation and symbols separate, everything else is kept."""
    first, space = categories()
    separator = (space if whitespace else np.zeros_like(space))
    if punctuation:
        separator = separator | np.isin(first, [ord("P"), ord("S")])
    return np.where(separator, kernels.SEPARATOR, kernels.WORD).astype(np.uint8)


def utf8_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes and int64 offsets of a (non-null) string array, without copying the bytes."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if strings.null_count:
        strings = pc.fill_null(strings, "")
    offset_type = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    _, offsets_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offsets_buf, offset_type)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)
