"""Automatic negatives for a pointwise quality classifier trained from a trusted set: each is a
trusted response spoiled in one known way, and its kind is kept so errors can be broken down."""
from __future__ import annotations

import random
import re
from typing import Sequence

KINDS = ("swapped", "truncated", "repeated", "wrong_language", "refusal", "empty")
REFUSALS = (
    "I'm sorry, but as an AI language model, I cannot help with that request.",
    "As an AI language model, I do not have personal opinions or the ability to do that.",
    "I apologize, but I am unable to provide an answer to this question.",
    "Sorry, I can't assist with that.",
)


def spoil(kind: str, i: int, responses: Sequence[str], rng: random.Random, other_language: Sequence[str]) -> str:
    """Response ``i`` spoiled as ``kind``."""
    text = responses[i]
    if kind == "swapped":  # a fine answer to another prompt
        j = rng.randrange(len(responses) - 1)
        return responses[j + (j >= i)]
    if kind == "truncated":  # cut off in the first half
        words = text.split()
        return " ".join(words[:max(1, int(len(words) * rng.uniform(0.1, 0.5)))])
    if kind == "repeated":  # a degenerate loop: one sentence over and over
        first = re.split(r"(?<=[.!?。！？])\s*", text.strip())[0] or text
        return " ".join([first] * rng.randint(4, 8))
    if kind == "wrong_language":
        return rng.choice(other_language)
    if kind == "refusal":
        return rng.choice(REFUSALS)
    if kind == "empty":
        return ""
    raise ValueError(f"unknown negative kind {kind!r}; known: {KINDS}")


def make_negatives(responses: Sequence[str], kinds: Sequence[str], seed: int,
                   other_language: Sequence[str] = ()) -> list[tuple[int, str, str]]:
    """One negative per trusted record, kinds taken in turn: (record index, kind, response).
    ``wrong_language`` needs texts in another language and is skipped without them."""
    usable = [k for k in kinds if k != "wrong_language" or other_language]
    if not usable or len(responses) < 2:
        return []
    rng = random.Random(seed)
    return [(i, kind, spoil(kind, i, responses, rng, other_language))
            for i, kind in ((i, usable[i % len(usable)]) for i in range(len(responses)))]
