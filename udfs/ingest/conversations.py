"""Chat turns in one shape: ShareGPT ``from/value``, OpenAI ``role/content`` and HH transcripts."""
from __future__ import annotations

import re
from typing import Any

ROLES = {
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant", "function_call": "assistant",
    "system": "system",
    "tool": "tool", "function": "tool", "observation": "tool",
}

HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")  # copies that strip whitespace lose the first \n\n
HH_ROLES = {"Human": "user", "Assistant": "assistant"}
HH_ASSISTANT = "\n\nAssistant:"


class RecordError(ValueError):
    """A record that cannot become a canonical row; the message is the reject reason."""


def turn_text(content: Any, where: str) -> str:
    """Text of a turn's content: a string, or OpenAI-style parts whose text parts are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text") for p in content if p.get("type", "text") == "text"]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise RecordError(f"{where}: content is {type(content).__name__}, not text")


def parse_turns(turns: Any, where: str) -> list[dict[str, str]]:
    """Normalise a list of turns to ``[{role, content}]`` with roles user/assistant/system/tool."""
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"field '{where}' is not a non-empty list of turns")
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"{where}[{i}] is not an object")
        speaker = turn.get("role", turn.get("from"))
        role = ROLES.get(str(speaker).lower()) if speaker is not None else None
        if role is None:
            raise RecordError(f"{where}[{i}] has unknown role {speaker!r}")
        content = turn_text(turn.get("content", turn.get("value")), f"{where}[{i}]")
        if not content.strip():
            raise RecordError(f"{where}[{i}] has empty content")
        out.append({"role": role, "content": content})
    return out


def split_hh_pair(chosen: str, rejected: str) -> tuple[list[dict[str, str]], str, str]:
    """Split two HH transcripts into their shared prompt turns and the two final answers.

    The prompt ends at the last ``\\n\\nAssistant:`` inside the transcripts' common prefix, so a
    pair whose answers diverge at their first word still splits correctly.
    """
    common = _common_prefix(chosen, rejected)
    cut = common.rfind(HH_ASSISTANT)
    if cut < 0:
        raise RecordError("chosen and rejected share no prompt ending in 'Assistant:'")
    turns = hh_turns(chosen[:cut])
    if not turns or turns[-1]["role"] != "user":
        raise RecordError("HH prompt does not end with a Human turn")
    answers = [t[cut + len(HH_ASSISTANT):].strip() for t in (chosen, rejected)]
    for name, answer in zip(("chosen", "rejected"), answers):
        if not answer:
            raise RecordError(f"empty field '{name}' answer")
    return turns, answers[0], answers[1]


def hh_turns(transcript: str) -> list[dict[str, str]]:
    """``\\n\\nHuman: … \\n\\nAssistant: …`` text as turns (text before the first marker is dropped)."""
    parts = HH_TURN.split(transcript)
    turns = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        content = content.strip()
        if not content:
            raise RecordError(f"empty {speaker} turn in HH transcript")
        turns.append({"role": HH_ROLES[speaker], "content": content})
    return turns


def _common_prefix(a: str, b: str) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return a[:i]
