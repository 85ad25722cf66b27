"""The paper's rule filters on a generated instruction, each with its own drop reason.

Word counts use the ROUGE tokens (a Chinese character counts as a word), so one length bound
works for both seed languages.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Rules:
    min_words: int = 4  # the paper drops instructions of 3 words or fewer
    max_words: int = 150
    blacklist: tuple[str, ...] = ()  # tasks a text-only model cannot do (images, files, ...)
    banned_prefixes: tuple[str, ...] = ()  # e.g. "Write a program": the model tacks it onto everything
    start: str = r"[A-Za-z0-9]"  # what the first character must be (the paper: ASCII, not punctuation)

    def __post_init__(self) -> None:
        words = [rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w) for w in self.blacklist]
        object.__setattr__(self, "_blacklist", re.compile("|".join(words), re.I) if words else None)
        object.__setattr__(self, "_start", re.compile(self.start))

    def failure(self, instruction: str, words: int) -> tuple[str, float | None] | None:
        """(reason, value) of the first rule the instruction breaks, or None."""
        if words < self.min_words:
            return "too_short", float(words)
        if words > self.max_words:
            return "too_long", float(words)
        if self._blacklist is not None and self._blacklist.search(instruction):
            return "blacklisted_keyword", None
        if any(instruction.lower().startswith(p.lower()) for p in self.banned_prefixes):
            return "banned_prefix", None
        first = instruction[0]
        if unicodedata.category(first)[0] in "PS":
            return "starts_with_punctuation", None
        if not self._start.match(first):
            return "starts_outside_language", None
        return None


DEFAULT_RULES = {
    "en": Rules(blacklist=("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
                           "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram"),
                banned_prefixes=("Write a program",), start=r"[A-Za-z0-9]"),
    "zh": Rules(blacklist=("图片", "图像", "照片", "文件", "地图", "绘制", "画出", "视频", "音频", "音乐", "流程图", "图表"),
                start=r"[\u4e00-\u9fffA-Za-z0-9]"),
}


def clean_instances(pairs: list[tuple[str, str]], max_chars: int) -> tuple[list[tuple[str, str]], str | None]:
    """The paper's instance filters: empty or over-long outputs and outputs that repeat the input
    go, repeats collapse; an input seen with two different outputs makes the whole task ambiguous.
    Returns the instances kept and, when none is, why."""
    if not pairs:
        return [], "no_instances"
    outputs: dict[str, str] = {}
    for inp, out in pairs:
        if outputs.setdefault(inp, out) != out and inp:
            return [], "conflicting_instances"
    kept = list(dict.fromkeys((i, o) for i, o in pairs if o and o != i and len(i) + len(o) <= max_chars))
    return kept, None if kept else "invalid_instances"
