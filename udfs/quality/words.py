"""Words, lines and character classes the heuristics count.

Words are spaCy's rule-based English tokenizer (``spacy.blank("en")``, no model, no download):
punctuation becomes its own token and contractions split ("do", "n't"), which is what datatrove
and FineWeb count, so the published thresholds mean what they meant there. Scripts written without
spaces between words (Han, Kana, Thai, Lao, Khmer, Myanmar) have no such tokenizer rules, so each
of their characters counts as one word, as in the dedup shingles.
"""
from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

from udfs.dedup.text import UNSPACED_RANGES

_UNSPACED = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in UNSPACED_RANGES)
_HAS_UNSPACED = re.compile(f"[{_UNSPACED}]")
_SPLIT_UNSPACED = re.compile(f"[{_UNSPACED}]|[^{_UNSPACED}]+")


@lru_cache(maxsize=1)
def nlp():
    """One blank English pipeline with spaCy's rule-based sentencizer, per Python worker."""
    import spacy

    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    return pipeline


def words(text: str) -> list[str]:
    """Tokens without whitespace; runs of unspaced-script characters split into characters."""
    out: list[str] = []
    for token in nlp().tokenizer(text):
        word = token.text.strip()
        if not word:
            continue
        if word.isascii() or not _HAS_UNSPACED.search(word):
            out.append(word)
        else:
            out.extend(_SPLIT_UNSPACED.findall(word))
    return out


MAX_LEXEMES = 500_000  # ~100 MB of spaCy vocabulary per Python worker


def bound_memory() -> None:
    """spaCy keeps every token string it has seen (which is what makes it fast: a known token is
    a cache hit). Over a web corpus that grows without end, so past MAX_LEXEMES the pipeline is
    rebuilt (~0.3 s). spaCy's ``memory_zone`` would bound it too, but costs half the speed."""
    if len(nlp().vocab) > MAX_LEXEMES:
        nlp.cache_clear()


def is_unspaced(word: str) -> bool:
    """A word that is one character of a script written without spaces."""
    return len(word) == 1 and _HAS_UNSPACED.match(word) is not None



def sentence_count(line: str, spaced: bool = True) -> int:
    """Sentences spaCy's sentencizer finds in one line (at least one). Without spaces its English
    tokenizer sees one token per clause, so there a sentence is a run ending in terminators."""
    if not spaced:
        return max(1, sum(1 for piece in _terminators().split(line) if piece.strip()))
    pipeline = nlp()  # the tokenizer itself has no max_length: a 5 MB line is one call, not an error
    doc = pipeline.get_pipe("sentencizer")(pipeline.tokenizer(line))
    return max(1, sum(1 for _ in doc.sents))


@lru_cache(maxsize=1)
def punctuation() -> frozenset[str]:
    """What makes a token a symbol rather than a word: Unicode punctuation (P*), ASCII symbols
    (``$+<=>^`|~``) and control characters other than tab and newline. Other symbols (€, ©, °, →,
    emoji) are words, as datatrove counts them."""
    return frozenset(c for c in map(chr, range(0x110000)) if unicodedata.category(c)[0] == "P"
                     or c in string.punctuation or (unicodedata.category(c) == "Cc" and c not in "\t\n"))


@lru_cache(maxsize=1)
def _terminators() -> re.Pattern:
    return re.compile("[" + re.escape("".join(terminal_punctuation())) + "]+")


@lru_cache(maxsize=1)
def terminal_punctuation() -> tuple[str, ...]:
    """Unicode's Sentence_Terminal characters (., !, ?, 。, ！, ？, ।, ...): a line ending in one ends a sentence."""
    import regex

    pattern = regex.compile(r"\p{Sentence_Terminal}")
    return tuple(c for c in map(chr, range(0x110000)) if pattern.match(c))
