"""Text normalization for dedup, vectorized with Arrow compute (RE2, Unicode-aware).

Two normalizations with different jobs: the exact one decides what counts as "the same text" and
is configurable; the shingle one makes word boundaries explicit so that n-grams can be read as byte
spans (see ``kernels.shingle_spans``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Scripts written without spaces between words: each character is one token, so word n-grams
# become character n-grams there (Chinese, Japanese, Thai, ...) instead of one giant "word".
UNSPACED_SCRIPT = r"([\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}])"
NOT_WORD = r"[^\p{L}\p{N}\p{M}]+"
EXACT_HASH_BYTES = 16


@dataclass(frozen=True)
class ExactNormalization:
    """What exact dedup ignores when it compares two texts."""

    nfkc: bool = True
    lowercase: bool = True
    whitespace: bool = True
    punctuation: bool = False

    def apply(self, texts: pa.Array) -> pa.Array:
        out = pc.fill_null(texts, "")
        if self.nfkc:
            out = pc.utf8_normalize(out, "NFKC")
        if self.lowercase:
            out = pc.utf8_lower(out)
        if self.punctuation:
            out = pc.replace_substring_regex(out, r"[\p{P}\p{S}]+", " " if self.whitespace else "")
        if self.whitespace:
            out = pc.utf8_trim_whitespace(pc.replace_substring_regex(out, r"\s+", " "))
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
    """NFKC, lower case, every run of non-word characters one space and (``split_unspaced``, for
    word shingles) unspaced scripts split into characters: words end up separated by exactly one
    space, with none at either end."""
    out = pc.utf8_lower(pc.utf8_normalize(pc.fill_null(texts, ""), "NFKC"))
    out = pc.replace_substring_regex(out, NOT_WORD, " ")
    if split_unspaced:
        out = pc.replace_substring_regex(out, UNSPACED_SCRIPT, r" \1 ")
    return pc.utf8_trim(pc.replace_substring_regex(out, "  +", " "), " ")


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
