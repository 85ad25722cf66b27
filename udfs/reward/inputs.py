"""What a reward or quality model reads: the prompt turns and one response, as an encoder pair."""
from __future__ import annotations

from typing import Sequence

from udfs.export.formats import split_key
from udfs.export.splits import split_of

Turns = Sequence[dict]


def prompt_text(turns: Turns) -> str:
    """The conversation before the response, one ``role: content`` paragraph per turn."""
    return "\n\n".join(f"{t['role']}: {t['content']}" for t in turns if t["role"] != "system")


def is_heldout(turns: Turns, fraction: float) -> bool:
    """Held out by a hash of the opening user turn: every pair of a prompt on one side."""
    return split_of(split_key(turns), {"train": 1 - fraction, "heldout": fraction}) == "heldout"


def pair_problem(turns: Turns | None, chosen: str | None, rejected: str | None) -> str | None:
    """Why a preference pair cannot train or evaluate a reward model, or None."""
    if not turns or not any(t["role"] == "user" and (t["content"] or "").strip() for t in turns):
        return "pair has no user prompt"
    if not (chosen or "").strip() or not (rejected or "").strip():
        return "pair has an empty response"
    if chosen.strip() == rejected.strip():
        return "chosen equals rejected"
    return None


def record_inputs(kind: str, messages: Turns, chosen: str | None, rejected: str | None) -> tuple[str, str, str | None]:
    """(prompt text, response, rejected response or None) of a canonical SFT or preference record:
    an SFT record's response is its last turn; a preference record's is the chosen answer."""
    if kind == "preference":
        return prompt_text(messages), chosen or "", rejected
    return prompt_text(messages[:-1]), messages[-1]["content"] if messages else "", None
