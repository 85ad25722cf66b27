"""The export stage's ``mapInPandas`` body: each canonical record becomes one row per export
target it maps to (with its split, prompt key and token count), or one reject row with the reason."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import pandas as pd

from udfs.export.formats import (ExportError, Message, prompt_key, reward_pair, rl_prompt, sft_messages,
                                 sft_prompt_completion, split_key)
from udfs.export.splits import split_of

MESSAGES = "array<struct<role: string, content: string>>"
ROWS = (f"doc_id string, source string, target string, split string, key string, messages {MESSAGES}, "
        f"prompt_turns {MESSAGES}, prompt string, completion string, chosen {MESSAGES}, rejected {MESSAGES}, "
        "tokens long, problem string, reject boolean")
NAMES = ["doc_id", "source", "target", "split", "key", "messages", "prompt_turns", "prompt", "completion",
         "chosen", "rejected", "tokens", "problem", "reject"]
TARGETS = ("sft_messages", "sft_prompt_completion", "reward", "rl")


@lru_cache(maxsize=4)
def tokenizer(name_or_path: str):
    """Loaded once per Python worker."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)


@dataclass(frozen=True)
class ExportPlan:
    targets: tuple[str, ...]  # which of TARGETS are written
    splits: Mapping[str, float]
    system_prompt: str | None = None
    chat_template: str | None = None  # tokenizer whose template renders prompt strings
    counter: str | None = None  # tokenizer for token counts; None: no counts
    rl_max_prompt_tokens: int = 1024

    def render(self, turns: list[Message]) -> str:
        return tokenizer(self.chat_template).apply_chat_template(turns, tokenize=False, add_generation_prompt=True)

    def tokens(self, turns: list[Message], generation_prompt: bool = False) -> int | None:
        if self.counter is None:
            return None
        tok = tokenizer(self.counter)
        if tok.chat_template:
            try:
                ids = tok.apply_chat_template(turns, tokenize=True, add_generation_prompt=generation_prompt)
                return len(ids["input_ids"] if isinstance(ids, Mapping) else ids)
            except Exception:  # noqa: BLE001 - a strict template (roles must alternate, no system role): count the text
                pass
        return len(tok("\n".join(t["content"] for t in turns))["input_ids"])


def record_rows(record: dict[str, Any], plan: ExportPlan) -> list[dict[str, Any]]:
    base = {"doc_id": record["doc_id"], "source": record["source"]}
    try:
        if record["kind"] == "sft":
            conversation = sft_messages(record, plan.system_prompt)
        elif record["kind"] == "preference":
            prompt, chosen, rejected = reward_pair(record, plan.system_prompt)
        else:
            return []
    except ExportError as exc:
        return [{**base, "target": record["kind"], "problem": f"export: {exc}", "reject": True}]
    rows: list[dict[str, Any]] = []
    if record["kind"] == "preference":
        if "reward" in plan.targets:
            rows.append({**base, "target": "reward", "key": prompt_key(prompt),
                         "split": split_of(split_key(prompt), plan.splits),
                         "prompt_turns": prompt, "chosen": chosen, "rejected": rejected,
                         "tokens": _sum(plan.tokens(prompt + chosen), plan.tokens(prompt + rejected))})
        return rows or [{**base, "target": "reward", "problem": "reward export off", "reject": False}]
    common = {**base, "key": prompt_key(conversation[:-1]),
              "split": split_of(split_key(conversation[:-1]), plan.splits)}
    full = plan.tokens(conversation)
    rows.append({**common, "target": "sft_messages", "messages": conversation, "tokens": full,
                 "problem": None if "sft_messages" in plan.targets else "messages export off"})
    if "sft_prompt_completion" in plan.targets:
        try:
            prompt_text, completion = sft_prompt_completion(record, plan.system_prompt,
                                                            plan.render if plan.chat_template else None)
            rows.append({**common, "target": "sft_prompt_completion", "prompt": prompt_text, "completion": completion,
                         "tokens": full})
        except ExportError as exc:
            rows.append({**common, "target": "sft_prompt_completion", "problem": str(exc)})
    if "rl" in plan.targets:
        prompt = rl_prompt(record, plan.system_prompt)
        length = plan.tokens(prompt, generation_prompt=True)
        too_long = length is not None and length > plan.rl_max_prompt_tokens
        rows.append({**common, "target": "rl", "prompt_turns": prompt, "tokens": length,
                     "problem": f"prompt longer than {plan.rl_max_prompt_tokens} tokens" if too_long else None})
    return rows


def _sum(*values: int | None) -> int | None:
    return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


def export_rows(plan: ExportPlan):
    """``mapInPandas`` function over canonical records (doc_id, source, kind, prompt, response,
    messages, chosen, rejected)."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = [{n: row.get(n) for n in NAMES}
                    for record in batch.to_dict("records") for row in record_rows(_plain(record), plan)]
            frame = pd.DataFrame(rows, columns=NAMES)
            frame["reject"] = frame["reject"].astype("boolean").fillna(False).astype(bool)
            frame["tokens"] = frame["tokens"].astype("Int64")
            yield frame
    return run


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Arrow list-of-struct cells arrive as numpy arrays of dicts: make them lists."""
    messages = record.get("messages")
    return {**record, "messages": list(messages) if messages is not None else None}
