"""Self-instruct's pure parts: prompt parsing, the rule and instance filters, and the ROUGE-L
pool search, whose decisions must equal the exact all-pairs check (rouge-score's numbers)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from udfs.self_instruct.filters import DEFAULT_RULES, clean_instances
from udfs.self_instruct.prompts import (TEMPLATES, Seed, classification_prompt, instance_prompt, instruction_prompt,
                                        parse_instances, parse_instructions, parse_yes_no, sample_examples)
from udfs.self_instruct.rouge import InstructionPool, rouge_l, tokens

EN, ZH = TEMPLATES["en"], TEMPLATES["zh"]
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer", reason="rouge-score is in the test extra")


def test_instruction_prompt_continues_the_numbered_list_and_parses_back():
    prompt = instruction_prompt(["Write a poem about the sea:", "Give  three\ntips for sleep."], EN)
    assert prompt.endswith("1. Write a poem about the sea\n2. Give three tips for sleep.\n3.")
    assert parse_instructions(" Summarize the article.\n4. Translate it into French.\n5 . Name a color\n6.") == [
        "Summarize the article.", "Translate it into French.", "Name a color"]
    assert parse_instructions("将下面的句子翻译成英文。\n4、写一首关于秋天的诗。") == ["将下面的句子翻译成英文。", "写一首关于秋天的诗。"]


def test_examples_mix_human_and_machine_tasks_as_in_the_paper():
    rng = random.Random(0)
    seeds, machine = [f"seed {i}" for i in range(20)], [f"machine {i}" for i in range(5)]
    mixed = sample_examples(rng, seeds, machine, 6, 2)
    assert sum(x.startswith("seed") for x in mixed) == 6 and sum(x.startswith("machine") for x in mixed) == 2
    early = sample_examples(rng, seeds, machine[:1], 6, 2)  # a small machine pool: seeds fill in
    assert len(early) == 8 and sum(x.startswith("machine") for x in early) == 1


def test_classification_and_instance_prompts_round_trip():
    shots = [Seed("a", "Is this review positive?", True, (("Great food", "Positive"),)),
             Seed("b", "Write a haiku.", False, (("", "Old pond..."),))]
    prompt = classification_prompt("Is the sentence sarcastic?", shots, EN)
    assert "Is it classification? Yes" in prompt and prompt.endswith("Task: Is the sentence sarcastic?\nIs it classification?")
    assert parse_yes_no(" Yes\n", EN) is True and parse_yes_no("No.", EN) is False and parse_yes_no("maybe", EN) is None
    assert parse_yes_no("是", ZH) is True
    first = instance_prompt("Is the sentence sarcastic?", True, shots[:1], EN)
    assert "Class label: Positive\nInput: Great food" in first  # output first for classification
    assert parse_instances("Class label: Yes\nInput: Oh great, rain again.\nClass label: No\nInput: None\n\nTask: x",
                           True, EN) == [("Oh great, rain again.", "Yes"), ("", "No")]
    assert parse_instances("Input: None\nOutput: Autumn moon\nTask: next\nInput: a\nOutput: b", False, EN) == [("", "Autumn moon")]
    assert parse_instances("输入：无\n输出：秋月", False, ZH) == [("", "秋月")]


@pytest.mark.parametrize("text,reason", [
    ("Write a poem.", "too_short"),
    ("Describe the picture in one sentence please.", "blacklisted_keyword"),
    ("Write a program that sorts a list of numbers.", "banned_prefix"),
    ("- Give three tips for staying healthy.", "starts_with_punctuation"),
    ("Ünderstand the following passage and summarize it.", "starts_outside_language"),
    ("Give three tips for staying healthy.", None),
])
def test_rule_filters_name_the_rule(text, reason):
    words = int(np.diff(tokens([text])[1])[0])
    got = DEFAULT_RULES["en"].failure(text, words)
    assert (got[0] if got else None) == reason


def test_chinese_rules_count_characters_and_match_keywords_inside_words():
    rules = DEFAULT_RULES["zh"]
    text = "请描述这张图片里的内容"
    assert rules.failure(text, int(np.diff(tokens([text])[1])[0]))[0] == "blacklisted_keyword"
    assert rules.failure("写一首关于秋天的诗", 9) is None


def test_instance_filters():
    assert clean_instances([], 100) == ([], "no_instances")
    assert clean_instances([("a", "x"), ("a", "y")], 100) == ([], "conflicting_instances")
    assert clean_instances([("same", "same"), ("", "")], 100) == ([], "invalid_instances")
    assert clean_instances([("q", "a"), ("q", "a"), ("", "z" * 200)], 100) == ([("q", "a")], None)


class CharTokenizer:
    """rouge-score with one token per CJK character and rouge-score's own rules elsewhere."""

    def tokenize(self, text: str) -> list[str]:
        import re
        return re.findall(r"[\u4e00-\u9fff]|[a-z0-9]+", text.lower())


def test_compiled_rouge_l_equals_rouge_score():
    rng = random.Random(0)
    words = "the a cat dog sat on mat quickly write poem story about list three tips sea".split()
    pairs = [(" ".join(rng.choices(words, k=rng.randint(0, 12))), " ".join(rng.choices(words, k=rng.randint(1, 12))))
             for _ in range(300)] + [("Don't stop: it's 3 o'clock!", "dont stop its 3 o clock")]
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    ta, pa_ = tokens(left)
    tb, pb = tokens(right)
    idx = np.arange(len(pairs))
    ours = rouge_l(ta, pa_, tb, pb, idx, idx)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    want = [scorer.score(a, b)["rougeL"].fmeasure for a, b in pairs]
    np.testing.assert_allclose(ours, want, atol=1e-12)
    zh = [("写一首关于秋天的诗", "写一首关于夏天的诗歌"), ("给出下面词语的同义词", "给出下面词语的反义词")]
    tz, pz = tokens([a for a, _ in zh] + [b for _, b in zh])
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=CharTokenizer())
    np.testing.assert_allclose(rouge_l(tz, pz, tz, pz, np.arange(2), np.arange(2, 4)),
                               [scorer.score(a, b)["rougeL"].fmeasure for a, b in zh], atol=1e-12)


def instruction_corpus(shared: bool) -> list[str]:
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "alpaca" / "alpaca_data.json"
    if shared and path.is_file():
        return [r["instruction"] for r in json.loads(path.read_text(encoding="utf-8"))[:3000]]
    rng = random.Random(1)
    verbs, things = ["Write", "Describe", "List", "Explain", "Summarize", "Compare"], ["a poem", "the water cycle",
              "three tips for sleep", "how vaccines work", "the plot of Hamlet", "two programming languages", "a recipe"]
    return [f"{rng.choice(verbs)} {rng.choice(things)} for {rng.choice(['a child', 'an expert', 'a tourist'])} "
            f"in {rng.randint(2, 90)} words" for _ in range(1500)]


def perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    op = rng.random()
    if op < 0.4:
        words[i] = rng.choice(["simple", "brief", "new", "short"])
    elif op < 0.7 and len(words) > 3:
        del words[i]
    else:
        words.insert(i, rng.choice(["very", "quickly", "also"]))
    return " ".join(words)


@pytest.mark.parametrize("shared", [False, True])
def test_pool_screen_makes_the_all_pairs_decisions(shared):
    """LSH candidates + exact scoring decide like scoring every (new, pooled) pair, on planted near
    duplicates (one word changed, removed or added) and unrelated instructions alike."""
    corpus = instruction_corpus(shared)
    rng = random.Random(2)
    pooled, fresh = corpus[:-200], corpus[-200:]
    queries = fresh + [perturb(rng.choice(pooled), rng) for _ in range(200)]
    pool = InstructionPool()
    pool.add(pooled, [str(i) for i in range(len(pooled))])
    screen = pool.screen(queries, [f"q{i}" for i in range(len(queries))])
    tq, pq = tokens(queries)
    tp, pp = tokens(pooled)
    left, right = np.repeat(np.arange(len(queries)), len(pooled)), np.tile(np.arange(len(pooled)), len(queries))
    exact = rouge_l(tq, pq, tp, pp, left, right).reshape(len(queries), len(pooled)).max(axis=1)
    near_pool = np.array([r in ("rouge_l", "exact_duplicate") and not (n or "").startswith("q")
                          for r, n in zip(screen.reason, screen.nearest)])
    assert (exact >= 0.7).sum() > 100  # the planted ones, at least
    assert np.array_equal(near_pool, exact >= 0.7)
    np.testing.assert_allclose(screen.score[near_pool], exact[near_pool])


def test_screen_is_sequential_within_a_batch_and_exact_duplicates_come_first():
    pool = InstructionPool()
    pool.add(["Give three tips for staying healthy."], ["seed"])
    batch = ["give three tips for staying healthy!", "Explain quantum computing to a child.",
             "Explain quantum computing to a small child.", "Write a limerick about a cat who loves the sea."]
    s = pool.screen(batch, ["a", "b", "c", "d"])
    assert s.reason == ["exact_duplicate", None, "rouge_l", None]
    assert s.nearest[:3] == ["seed", None, "b"] and s.score[2] >= 0.7
