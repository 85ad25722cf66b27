"""Export mapping and splits as pure functions (no Spark, no model)."""
from __future__ import annotations

from collections import Counter

import pytest

from udfs.export.formats import (ExportError, prompt_key, reward_pair, rl_prompt, sft_messages, sft_prompt_completion,
                                 split_key)
from udfs.export.splits import split_of

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_split_is_a_function_of_the_prompt_with_the_asked_fractions():
    counts = Counter(split_of(f"prompt {i}", FRACTIONS) for i in range(20_000))
    assert all(abs(counts[s] / 20_000 - f) < 0.01 for s, f in FRACTIONS.items())
    assert split_of("same prompt", FRACTIONS) == split_of("same prompt", dict(FRACTIONS))


def test_single_turn_from_prompt_and_response_columns():
    record = {"prompt": "Add 2 and 2.", "response": "4", "messages": None}
    assert sft_messages(record, "Be exact.") == [{"role": "system", "content": "Be exact."},
                                                 {"role": "user", "content": "Add 2 and 2."},
                                                 {"role": "assistant", "content": "4"}]
    assert sft_prompt_completion(record) == ("Add 2 and 2.", "4")
    assert rl_prompt(record) == [{"role": "user", "content": "Add 2 and 2."}]
    assert prompt_key(rl_prompt({"prompt": "Add  2 and\n2.", "response": "x"})) == prompt_key(rl_prompt(record))


@pytest.mark.parametrize("messages, reason", [
    ([{"role": "assistant", "content": "hi"}], "no prompt"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}], "broken turn order"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": " "}], "empty answer"),
    ([{"role": "user", "content": "a"}], "no answer"),
    ([{"role": "user", "content": " "}, {"role": "assistant", "content": "b"}], "no prompt"),
])
def test_unmappable_conversations_name_the_reason(messages, reason):
    with pytest.raises(ExportError, match=reason):
        sft_messages({"messages": messages})


def test_reward_pair_checks():
    prompt = [{"role": "user", "content": "Q"}]
    assert reward_pair({"messages": prompt, "chosen": "good", "rejected": "bad"})[1] == [{"role": "assistant", "content": "good"}]
    with pytest.raises(ExportError, match="chosen equals rejected"):
        reward_pair({"messages": prompt, "chosen": "same", "rejected": "same"})
    with pytest.raises(ExportError, match="empty answer"):
        reward_pair({"messages": prompt, "chosen": "good", "rejected": ""})
    with pytest.raises(ExportError, match="must end with a user turn"):
        reward_pair({"messages": prompt + [{"role": "assistant", "content": "A"}], "chosen": "x", "rejected": "y"})


def test_conversations_opening_with_one_question_share_a_split():
    a = sft_messages({"messages": [{"role": "user", "content": "Plan a trip to Rome"}, {"role": "assistant", "content": "Day 1"}]})
    b = sft_messages({"messages": [{"role": "user", "content": "Plan a  trip to Rome"}, {"role": "assistant", "content": "Sure"},
                                   {"role": "user", "content": "Cheaper?"}, {"role": "assistant", "content": "Hostels"}]})
    assert split_key(a[:-1]) == split_key(b[:-1]) and prompt_key(a[:-1]) != prompt_key(b[:-1])
