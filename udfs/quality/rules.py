"""The filtering rules: which signal each reads, which way it fails, and its published default.

A rule fails when its signal is below its threshold (``min``) or above it (``max``); a null signal
(the rule does not apply, e.g. stop words on non-English text) or a null threshold (disabled) never
fails. Order is the order of the published filters, so ``reason`` (the first failing rule) reads
as datatrove would report it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np



TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)


@dataclass(frozen=True)
class Rule:
    name: str
    signal: str
    bound: Literal["min", "max"]
    default: float | None
    source: str  # where the threshold was published

    def fails(self, values: np.ndarray, threshold: float | None) -> np.ndarray:
        """Vectorized decision over a float array (NaN = no signal)."""
        if threshold is None:
            return np.zeros(len(values), bool)
        with np.errstate(invalid="ignore"):
            return values < threshold if self.bound == "min" else values > threshold


GOPHER, C4, FINEWEB = "Gopher (Rae et al. 2021)", "C4 (Raffel et al. 2020)", "FineWeb (Penedo et al. 2024)"
RULES: tuple[Rule, ...] = (
    Rule("lang_min_score", "lang_score", "min", 0.65, "FineWeb (fastText lid.176 score)"),
    Rule("gopher_min_words", "gopher_words", "min", 50, GOPHER),
    Rule("gopher_max_words", "gopher_words", "max", 100_000, GOPHER),
    Rule("gopher_min_mean_word_length", "gopher_mean_word_length", "min", 3, GOPHER),
    Rule("gopher_max_mean_word_length", "gopher_mean_word_length", "max", 10, GOPHER),
    Rule("gopher_max_hash_ratio", "gopher_hash_ratio", "max", 0.1, GOPHER),
    Rule("gopher_max_ellipsis_ratio", "gopher_ellipsis_ratio", "max", 0.1, GOPHER),
    Rule("gopher_max_bullet_lines", "gopher_bullet_lines", "max", 0.9, GOPHER),
    Rule("gopher_max_ellipsis_lines", "gopher_ellipsis_lines", "max", 0.3, GOPHER),
    Rule("gopher_min_alpha_words", "gopher_alpha_words", "min", 0.8, GOPHER),
    Rule("gopher_min_stop_words", "gopher_stop_words", "min", 2, GOPHER),
    Rule("gopher_max_dup_para_frac", "gopher_dup_para_frac", "max", 0.3, GOPHER),
    Rule("gopher_max_dup_para_char_frac", "gopher_dup_para_char_frac", "max", 0.2, GOPHER),
    Rule("gopher_max_dup_line_frac", "gopher_dup_line_frac", "max", 0.3, GOPHER),
    Rule("gopher_max_dup_line_char_frac", "gopher_dup_line_char_frac", "max", 0.2, GOPHER),
    *(Rule(f"gopher_max_top_{n}gram", f"gopher_top_{n}gram_char_frac", "max", t, GOPHER)
      for n, t in zip(TOP_NGRAMS, (0.2, 0.18, 0.16))),
    *(Rule(f"gopher_max_dup_{n}gram", f"gopher_dup_{n}gram_char_frac", "max", t, GOPHER)
      for n, t in zip(DUP_NGRAMS, (0.15, 0.14, 0.13, 0.12, 0.11, 0.10))),
    Rule("c4_lorem_ipsum", "c4_lorem_ipsum", "max", 0, C4),
    Rule("c4_curly_bracket", "c4_curly_bracket", "max", 0, C4),
    Rule("c4_min_sentences", "c4_sentences", "min", 5, C4),
    Rule("fineweb_min_line_punct", "fineweb_line_punct_ratio", "min", 0.12, FINEWEB),
    Rule("fineweb_max_short_lines", "fineweb_short_line_ratio", "max", 0.67, FINEWEB),
    Rule("fineweb_max_dup_line_chars", "fineweb_dup_line_char_ratio", "max", 0.01, FINEWEB),
    Rule("fineweb_max_list_ratio", "fineweb_list_ratio", "max", 0.3, FINEWEB),
)
BY_NAME: Mapping[str, Rule] = {r.name: r for r in RULES}
SIGNALS: tuple[str, ...] = tuple(dict.fromkeys(r.signal for r in RULES))
LANGUAGE_RULE = "lang_not_allowed"  # the allowed-language list is a set, not a threshold: checked first


def defaults() -> dict[str, float | None]:
    return {r.name: r.default for r in RULES}


def failing(signals: Mapping[str, np.ndarray], thresholds: Mapping[str, float | None],
            languages: frozenset[str] | None = None, detected: list[str | None] | None = None) -> list[list[str]]:
    """Per document, the names of the rules it fails, in rule order (the first is the drop reason)."""
    n = len(next(iter(signals.values())))
    failed: list[list[str]] = [[] for _ in range(n)]
    if languages is not None and detected is not None:
        for i, lang in enumerate(detected):
            if lang not in languages:
                failed[i].append(LANGUAGE_RULE)
    for rule in RULES:
        values = np.asarray(signals[rule.signal], np.float64)
        for i in np.flatnonzero(rule.fails(values, thresholds.get(rule.name, rule.default))):
            failed[i].append(rule.name)
    return failed
