"""One canonical record -> one row of an export format, or the reason it cannot be one.

- SFT ``messages``: the whole conversation (multi-turn kept whole), a system prompt prepended when
  configured and the record has none. TRL's conversational language-modeling format.
- SFT ``prompt_completion``: strings. The prompt is the conversation up to the final answer,
  rendered with the tokenizer's chat template (generation prompt added) when one is given; without
  a template only single-turn records have a plain-string prompt (the user turn).
- Reward model: TRL's conversational preference format with an explicit prompt: ``prompt`` (the
  shared turns), ``chosen`` / ``rejected`` (one assistant message each).
- PPO / RL: prompt only, the SFT record's turns before its final answer (the RL stage reuses SFT
  questions).
"""
from __future__ import annotations

from typing import Any, Callable

Message = dict[str, str]
Renderer = Callable[[list[Message]], str]  # a chat template with the generation prompt


class ExportError(ValueError):
    """A record that cannot be mapped to a format; the message is the reject reason."""


def turns(record: dict[str, Any]) -> list[Message]:
    """The record's conversation: ``messages`` when present, else ``prompt`` then ``response``."""
    messages = [m for m in (record.get("messages") or []) if m is not None]
    if messages:
        return [{"role": m.get("role") or "", "content": m.get("content") or ""} for m in messages]
    out = []
    if record.get("prompt"):
        out.append({"role": "user", "content": record["prompt"]})
    if record.get("response"):
        out.append({"role": "assistant", "content": record["response"]})
    return out


def check_order(conversation: list[Message], needs_answer: bool) -> None:
    """System turns first, then user and assistant alternating from a user turn; the final turn is
    an assistant answer (``needs_answer``) or a user turn (a prompt)."""
    body = conversation
    while body and body[0]["role"] == "system":
        body = body[1:]
    if not body or body[0]["role"] != "user":
        raise ExportError("no prompt: the conversation has no user turn before the answer")
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn["role"] != expected:
            raise ExportError(f"broken turn order: turn {i + 1} is {turn['role'] or 'missing'}, expected {expected}")
    if needs_answer and body[-1]["role"] != "assistant":
        raise ExportError("no answer: the conversation does not end with an assistant turn")
    if needs_answer and not body[-1]["content"].strip():
        raise ExportError("empty answer")
    if not needs_answer and body[-1]["role"] != "user":
        raise ExportError("broken turn order: a prompt must end with a user turn")
    if any(not t["content"].strip() for t in body if t["role"] == "user"):
        raise ExportError("no prompt: a user turn is empty")


def with_system(conversation: list[Message], system_prompt: str | None) -> list[Message]:
    if system_prompt and not (conversation and conversation[0]["role"] == "system"):
        return [{"role": "system", "content": system_prompt}, *conversation]
    return conversation


def sft_messages(record: dict[str, Any], system_prompt: str | None = None) -> list[Message]:
    conversation = with_system(turns(record), system_prompt)
    check_order(conversation, needs_answer=True)
    return conversation


def sft_prompt_completion(record: dict[str, Any], system_prompt: str | None = None,
                          render: Renderer | None = None) -> tuple[str, str]:
    conversation = sft_messages(record, system_prompt)
    prompt_turns, answer = conversation[:-1], conversation[-1]["content"]
    if render is not None:
        return render(prompt_turns), answer
    users = [t for t in prompt_turns if t["role"] != "system"]
    if len(users) != 1 or len(prompt_turns) != len(users):
        raise ExportError("multi-turn or system-prompted record: prompt/completion strings need export.chat_template "
                          "(the record is exported whole in the messages format)")
    return users[0]["content"], answer


def reward_pair(record: dict[str, Any], system_prompt: str | None = None) -> tuple[list[Message], list[Message], list[Message]]:
    """(prompt turns, [chosen answer], [rejected answer])."""
    prompt = with_system(turns({"messages": record.get("messages"), "prompt": record.get("prompt")}), system_prompt)
    check_order(prompt, needs_answer=False)
    chosen, rejected = (record.get("chosen") or "").strip(), (record.get("rejected") or "").strip()
    if not chosen or not rejected:
        raise ExportError("empty answer: chosen or rejected is empty")
    if chosen == rejected:
        raise ExportError("chosen equals rejected")
    return prompt, [{"role": "assistant", "content": record["chosen"]}], [{"role": "assistant", "content": record["rejected"]}]


def rl_prompt(record: dict[str, Any], system_prompt: str | None = None) -> list[Message]:
    return sft_messages(record, system_prompt)[:-1]


def prompt_key(prompt_turns: list[Message]) -> str:
    """The text RL prompt dedup is decided on: the prompt turns, whitespace-normalised."""
    return "\n".join(f"{t['role']}: {' '.join(t['content'].split())}" for t in prompt_turns)


def split_key(prompt_turns: list[Message]) -> str:
    """The text a split is decided on: the opening user turn, whitespace-normalised, so that
    conversations which start with the same question (and differ later) stay in one split."""
    first = next((t for t in prompt_turns if t["role"] == "user"), {"content": ""})
    return " ".join(first["content"].split())
