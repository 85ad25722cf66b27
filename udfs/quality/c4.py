"""C4's heuristics (Raffel et al. 2020), as datatrove's ``C4QualityFilter`` applies them: lines are
kept only if they end in terminal punctuation (not an ellipsis), have at least 3 words, no word
over 1,000 characters, and mention neither javascript nor a cookie / terms policy; a document is
dropped for "lorem ipsum" or a curly bracket on such a line, or for too few sentences in them.

Refinery records these as signals and does not rewrite the text to the kept lines. Text in scripts
without spaces (``spaced=False``) has no whitespace words and ends sentences with 。！？, so there
a line's words are ``words()`` and any Unicode sentence terminator ends it; spaced text is measured
exactly as C4 did.
"""
from __future__ import annotations

import re

from udfs.quality.words import sentence_count, terminal_punctuation, words

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
MIN_WORDS_PER_LINE = 3
MAX_WORD_LENGTH = 1000


def signals(text: str, spaced: bool = True) -> dict[str, int]:
    """Sentences in C4-kept lines; whether a candidate line holds "lorem ipsum" or "{"."""
    ends = END_PUNCTUATION if spaced else END_PUNCTUATION + terminal_punctuation()
    lorem = curly = 0
    sentences = 0
    for raw in text.splitlines():
        line = raw.strip()
        tokens = line.split()
        if any(len(w) > MAX_WORD_LENGTH for w in tokens):
            continue
        line = CITATION.sub("", line)
        if not line.endswith(ends) or line.endswith("...") or len(tokens if spaced else words(line)) < MIN_WORDS_PER_LINE:
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            lorem = 1
        if "javascript" in lower:
            continue
        if "{" in line:
            curly = 1
        if any(p in lower for p in POLICY):
            continue
        sentences += sentence_count(line, spaced)
    return {"c4_sentences": sentences, "c4_lorem_ipsum": lorem, "c4_curly_bracket": curly}
