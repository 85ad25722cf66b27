"""Gopher quality and repetition signals (Rae et al. 2021, appendix A), measured the way datatrove's
``GopherQualityFilter`` / ``GopherRepetitionFilter`` measure them so the published thresholds keep
their meaning. Each function returns the raw quantities; thresholds live in ``rules.py``.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from udfs.quality.rules import DUP_NGRAMS, TOP_NGRAMS
from udfs.quality.words import is_unspaced, punctuation

MOSTLY_UNSPACED = 0.5  # a document whose words are mostly single Han/Kana/Thai/... characters

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_PARAGRAPH = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


def quality(text: str, tokens: list[str], english: bool) -> dict[str, float | None]:
    """Word count, mean word length, symbol ratios, bullet / ellipsis lines, alphabetic words, stop words.

    Word count and mean length are over words with a character that is not punctuation; the
    ratios are over all tokens (punctuation tokens included), as in datatrove. The stop-word count
    is English-only, and the mean word length is over words of spaced scripts only, and null (the
    rule does not apply) on documents written mostly in scripts without spaces."""
    marks = punctuation()
    counted = [w for w in tokens if not all(c in marks for c in w)]  # words, not pure punctuation
    unspaced = sum(map(is_unspaced, tokens))
    spaced = [len(w) for w in counted if not is_unspaced(w)]
    n = len(tokens)
    lines = text.splitlines()
    return {
        "gopher_words": len(counted),
        "gopher_mean_word_length": float(np.mean(spaced))
        if spaced and unspaced < MOSTLY_UNSPACED * n else None,
        "gopher_hash_ratio": text.count("#") / n if n else None,
        "gopher_ellipsis_ratio": (text.count("...") + text.count("…")) / n if n else None,
        "gopher_bullet_lines": sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines) if lines else None,
        "gopher_ellipsis_lines": sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines) if lines else None,
        "gopher_alpha_words": sum(map(has_letter, tokens)) / n if n else None,
        "gopher_stop_words": len(STOP_WORDS.intersection(tokens)) if english else None,
        "unspaced_share": unspaced / n if n else 0.0,
    }


def repetition(text: str, tokens: list[str]) -> dict[str, float | None]:
    """Duplicate paragraph / line fractions (by count and by characters), the character share of
    the most frequent 2-4-gram, and of all repeated 5-10-grams. Denominators are the whole text."""
    size = len(text)
    paragraphs = _PARAGRAPH.split(text.strip())
    para_dups, para_chars = duplicates(paragraphs)
    lines = _LINES.split(text)
    line_dups, line_chars = duplicates(lines)
    out: dict[str, float | None] = {
        "gopher_dup_para_frac": para_dups / len(paragraphs),
        "gopher_dup_para_char_frac": para_chars / size if size else None,
        "gopher_dup_line_frac": line_dups / len(lines),
        "gopher_dup_line_char_frac": line_chars / size if size else None,
    }
    ids = token_ids(tokens)
    lengths = np.fromiter((len(w) for w in tokens), np.int64, len(tokens))
    for n in TOP_NGRAMS:
        top = top_ngram_chars(ids, lengths, n)
        out[f"gopher_top_{n}gram_char_frac"] = top / size if size and top is not None else None
    for n in DUP_NGRAMS:
        out[f"gopher_dup_{n}gram_char_frac"] = repeated_ngram_chars(ids, lengths, n) / size if size else None
    return out


def has_letter(word: str) -> bool:
    """``str.isalpha`` on any character (Unicode letters: Lu, Ll, Lt, Lm, Lo); a regex on ASCII."""
    return _ASCII_LETTER.search(word) is not None if word.isascii() else any(c.isalpha() for c in word)


def duplicates(parts: list[str]) -> tuple[int, int]:
    """(elements seen before, their characters): every repeat counts, the first occurrence does not."""
    counts = Counter(parts)
    repeats = [(c - 1, len(p) * (c - 1)) for p, c in counts.items() if c > 1]
    return sum(r for r, _ in repeats), sum(chars for _, chars in repeats)


def token_ids(tokens: list[str]) -> np.ndarray:
    """Exact integer ids (equal tokens, equal ids), so n-grams are compared as numbers."""
    vocabulary: dict[str, int] = {}
    return np.fromiter((vocabulary.setdefault(w, len(vocabulary)) for w in tokens), np.int64, len(tokens))


def ngram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit key per n-gram: a polynomial hash of the ids (a collision needs ~2^32 n-grams)."""
    keys = np.zeros(len(ids) - n + 1, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            keys = keys * np.uint64(1_000_003) + (ids[k:len(ids) - n + 1 + k].astype(np.uint64) + np.uint64(1))
    return keys


def top_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int) -> int | None:
    """Characters covered by the most frequent n-gram (joined with spaces) times its count; among
    equally frequent ones, the first to occur. None when the text has fewer than n words."""
    if len(ids) < n:
        return None
    keys = ngram_keys(ids, n)
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    best = np.flatnonzero(counts == counts.max())
    start = int(first[best].min())
    return (int(lengths[start:start + n].sum()) + n - 1) * int(counts.max())


def repeated_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int) -> int:
    """Characters (without spaces) of n-grams that repeat an earlier one, scanning left to right and
    skipping past each repeat, so overlapping repeats are not counted twice."""
    if len(ids) < n:
        return 0
    keys = ngram_keys(ids, n).tolist()
    chars = np.convolve(lengths, np.ones(n, np.int64), "valid").tolist()
    seen: set[int] = set()
    total, i, last = 0, 0, len(keys)
    while i < last:
        if keys[i] in seen:
            total += chars[i]
            i += n
        else:
            seen.add(keys[i])
            i += 1
    return total
