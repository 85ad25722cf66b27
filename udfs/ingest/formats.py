"""Record formats: how one parsed source record becomes canonical fields.

Each format is an adapter plus default field paths; a source's ``fields`` in the config override
the defaults, which is how any other layout (BELLE's ``question``/``std_answer``, self-instruct's
``instances.0.output``) is read without code. A path is dotted, with integer steps into lists.
For instruction records a field may list several paths: the first must be present and non-empty,
the others are appended when present (Alpaca's optional ``input``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from udfs.ingest.conversations import RecordError, parse_turns, split_hh_pair, turn_text

Fields = Mapping[str, "str | list[str]"]


@dataclass(frozen=True)
class Format:
    """A layout: the kind it yields, its adapter, default field paths and the targets it accepts.

    ``optional`` targets may be mapped but need not be present; only ``joined`` targets take a
    list of paths.
    """

    kind: str
    adapter: Callable[[dict, Fields], dict]
    defaults: dict[str, str | list[str]]
    optional: frozenset[str] = frozenset({"lang"})
    joined: frozenset[str] = frozenset()


def lookup(record: Any, path: str) -> Any:
    """Value at a dotted path (``metadata.language``, ``instances.0.input``), or None."""
    value = record
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def required(record: dict, path: str) -> Any:
    value = lookup(record, path)
    if value is None:
        raise RecordError(f"missing field '{path}'")
    if isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value):
        raise RecordError(f"empty field '{path}'")
    return value


def required_text(record: dict, path: str) -> str:
    value = required(record, path)
    if not isinstance(value, str):
        raise RecordError(f"field '{path}' is {type(value).__name__}, not a string")
    return value


def optional_text(record: dict, path: str | None) -> str | None:
    value = lookup(record, path) if path else None
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"field '{path}' is {type(value).__name__}, not a string")
    return value


def joined_text(record: dict, paths: str | list[str]) -> str:
    """First path required, later paths appended (blank-line separated) when non-empty."""
    paths = [paths] if isinstance(paths, str) else paths
    parts = [required_text(record, paths[0])]
    parts += [t for p in paths[1:] if (t := optional_text(record, p)) and t.strip()]
    return "\n\n".join(parts)


def text_record(record: dict, fields: Fields) -> dict:
    """Pretraining text (RedPajama ``text``+``meta``, Dolma ``id``/``text``/``metadata``, C4, Parquet)."""
    text = required_text(record, fields["text"])
    return {"text": text}


def instruction_record(record: dict, fields: Fields) -> dict:
    """Single-turn instruction data (Alpaca, Alpaca-CoT, or any layout mapped in ``fields``)."""
    prompt = joined_text(record, fields["prompt"])
    response = joined_text(record, fields["response"])
    system = optional_text(record, fields.get("system"))
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": response},
    ]
    return {"prompt": prompt, "response": response, "messages": messages}


def chat_record(record: dict, fields: Fields) -> dict:
    """Multi-turn chat (ShareGPT ``conversations`` or OpenAI ``messages``), kept whole."""
    path = fields["messages"]
    messages = parse_turns(required(record, path), path)
    system = optional_text(record, fields.get("system"))
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    if messages[-1]["role"] != "assistant":
        raise RecordError(f"field '{path}' does not end with an assistant turn")
    users = [m for m in messages[:-1] if m["role"] == "user"]
    if not users:
        raise RecordError(f"field '{path}' has no user turn")
    return {"prompt": users[-1]["content"], "response": messages[-1]["content"], "messages": messages}


def preference_record(record: dict, fields: Fields) -> dict:
    """A prompt with a chosen and a rejected answer, in the layouts TRL and LLaMA-Factory use.

    The prompt is a string or a list of turns; each answer is a string, one turn, or a list of
    turns whose last one is the answer.
    """
    prompt_path = fields["prompt"]
    prompt_value = required(record, prompt_path)
    if isinstance(prompt_value, str):
        turns = [{"role": "user", "content": prompt_value}]
    else:
        turns = parse_turns(prompt_value, prompt_path)
    if turns[-1]["role"] != "user":
        raise RecordError(f"field '{prompt_path}' does not end with a user turn")
    chosen = _answer(record, fields["chosen"])
    rejected = _answer(record, fields["rejected"])
    return {"prompt": turns[-1]["content"], "messages": turns, "chosen": chosen, "rejected": rejected}


def _answer(record: dict, path: str) -> str:
    value = required(record, path)
    if isinstance(value, list):
        value = parse_turns(value, path)[-1]["content"]
    elif isinstance(value, dict):
        value = turn_text(value.get("content", value.get("value")), path)
    if not isinstance(value, str):
        raise RecordError(f"field '{path}' is {type(value).__name__}, not an answer")
    if not value.strip():
        raise RecordError(f"empty field '{path}'")
    return value


def hh_record(record: dict, fields: Fields) -> dict:
    """Anthropic HH: chosen and rejected are whole transcripts sharing the prompt turns."""
    turns, chosen, rejected = split_hh_pair(
        required_text(record, fields["chosen"]), required_text(record, fields["rejected"])
    )
    return {"prompt": turns[-1]["content"], "messages": turns, "chosen": chosen, "rejected": rejected}


WITH_SYSTEM = frozenset({"lang", "system"})
INSTRUCTION = Format("sft", instruction_record, {"prompt": ["instruction", "input"], "response": "output"},
                     WITH_SYSTEM, frozenset({"prompt", "response"}))
PREFERENCE_FIELDS = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}

FORMATS: dict[str, Format] = {
    "text": Format("pretrain", text_record, {"text": "text"}),
    "instruction": INSTRUCTION,
    "alpaca": INSTRUCTION,
    "sharegpt": Format("sft", chat_record, {"messages": "conversations", "system": "system"}, WITH_SYSTEM),
    "messages": Format("sft", chat_record, {"messages": "messages", "system": "system"}, WITH_SYSTEM),
    "preference": Format("preference", preference_record, PREFERENCE_FIELDS),
    "sharegpt_preference": Format("preference", preference_record, {**PREFERENCE_FIELDS, "prompt": "conversations"}),
    "hh": Format("preference", hh_record, {"chosen": "chosen", "rejected": "rejected"}),
}


def resolve_fields(fmt: str, overrides: Fields) -> dict[str, str | list[str]]:
    """The format's default field paths with the source's overrides applied.

    Checked here, at config time, so a mapping that cannot work fails before any record is read:
    unknown targets, lists where one path is expected, empty paths.
    """
    spec = FORMATS[fmt]
    targets = set(spec.defaults) | spec.optional
    unknown = set(overrides) - targets
    if unknown:
        raise ValueError(f"format '{fmt}' has no field(s) {sorted(unknown)}; it maps {sorted(targets)}")
    for target, paths in overrides.items():
        if isinstance(paths, list) and target not in spec.joined:
            raise ValueError(f"field '{target}' of format '{fmt}' takes one path, not a list")
        if not paths or any(not isinstance(p, str) or not p.strip() for p in ([paths] if isinstance(paths, str) else paths)):
            raise ValueError(f"field '{target}' needs non-empty path(s), got {paths!r}")
    return {**spec.defaults, **overrides}


def canonical_fields(record: Any, fmt: str, fields: Fields) -> dict:
    """Canonical fields of one record: kind, text, the kind's own columns, meta and lang."""
    if not isinstance(record, dict):
        raise RecordError(f"record is a JSON {type(record).__name__}, not an object")
    spec = FORMATS[fmt]
    out = spec.adapter(record, fields)
    out["kind"] = spec.kind
    out["text"] = out.get("text") or record_text(out)
    out["lang"] = optional_text(record, fields.get("lang"))
    out["meta"] = leftover_meta(record, fields)
    return out


def record_text(fields: dict) -> str:
    """The whole text of an SFT or preference record: its turns, then the (chosen) answer."""
    turns = [m["content"] for m in fields["messages"] if m["role"] != "system"]
    if "chosen" in fields:
        turns.append(fields["chosen"])
    return "\n\n".join(turns)


def leftover_meta(record: dict, fields: Fields) -> str | None:
    """Source fields the mapping did not take whole, as JSON, so nothing a source carried is lost.

    A nested path (``metadata.language``) leaves its parent in meta: the rest of it still matters.
    """
    used = {p for v in fields.values() for p in ([v] if isinstance(v, str) else v) if "." not in p}
    rest = {k: v for k, v in record.items() if k not in used}
    # default=str: Parquet rows carry timestamps, decimals and bytes that JSON has no type for.
    return json.dumps(rest, ensure_ascii=False, sort_keys=True, default=str) if rest else None
