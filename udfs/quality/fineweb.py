"""FineWeb's own heuristics (Penedo et al. 2024), measured as datatrove's ``FineWebQualityFilter``
does: over the non-blank lines, the share ending in terminal punctuation, the share of short lines,
the characters in repeated lines, and newlines per word (list-like pages)."""
from __future__ import annotations

from udfs.quality.gopher import duplicates
from udfs.quality.words import terminal_punctuation

SHORT_LINE_CHARS = 30


def signals(text: str, tokens: list[str]) -> dict[str, float | None]:
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return dict.fromkeys(("fineweb_line_punct_ratio", "fineweb_short_line_ratio",
                              "fineweb_dup_line_char_ratio", "fineweb_list_ratio"))
    chars = len(text) - text.count("\n")
    return {
        "fineweb_line_punct_ratio": sum(line.endswith(terminal_punctuation()) for line in lines) / len(lines),
        "fineweb_short_line_ratio": sum(len(line) <= SHORT_LINE_CHARS for line in lines) / len(lines),
        "fineweb_dup_line_char_ratio": duplicates(lines)[1] / chars if chars else None,
        "fineweb_list_ratio": text.count("\n") / len(tokens) if tokens else None,
    }
