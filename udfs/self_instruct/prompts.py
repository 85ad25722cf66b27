"""Prompts of the self-instruct paper and parsers for what a model writes back.

Instruction prompts list numbered example tasks (human seeds and machine-made ones mixed, as in the
paper) and end at the next number, so a completion model continues the list. The classification
and instance prompts are few-shot with seed tasks: the seeds carry ``is_classification`` and real
instances, which also makes the Chinese (BELLE) seeds usable with the same code.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Seed:
    task_id: str
    instruction: str
    is_classification: bool
    instances: tuple[tuple[str, str], ...]  # (input, output)


@dataclass(frozen=True)
class Template:
    """The words a prompt is made of, per language."""

    instructions: str
    classification: str
    question: str
    yes: str
    no: str
    input_first: str
    output_first: str
    task: str
    input: str
    output: str
    label: str
    empty: str  # what an instance without input shows in the Input line


TEMPLATES = {
    "en": Template(
        instructions="Come up with a series of tasks:\n",
        classification="Can the following task be regarded as a classification task with finite output labels?\n\n",
        question="Is it classification?", yes="Yes", no="No",
        input_first="Come up with examples for the following tasks. If the task doesn't require additional input, "
                    "you can generate the output directly.\n\n",
        output_first="Given the classification task definition and the class labels, generate an input that "
                     "corresponds to the class label. If the task doesn't require input, just generate the class label.\n\n",
        task="Task", input="Input", output="Output", label="Class label", empty="None"),
    "zh": Template(
        instructions="请想出一系列任务：\n",
        classification="下面的任务能否看作输出标签有限的分类任务？\n\n",
        question="是分类任务吗？", yes="是", no="否",
        input_first="为下面的任务写出例子。如果任务不需要额外的输入，可以直接写出输出。\n\n",
        output_first="给定分类任务的定义和类别标签，写出对应该标签的输入。如果任务不需要输入，只写出类别标签。\n\n",
        task="任务", input="输入", output="输出", label="类别标签", empty="无"),
}


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def instruction_prompt(examples: Sequence[str], t: Template) -> str:
    """Numbered example instructions, ending at the number the model should continue from."""
    lines = [f"{i + 1}. {one_line(e).rstrip(':')}" for i, e in enumerate(examples)]
    return t.instructions + "\n".join(lines) + f"\n{len(examples) + 1}."


def parse_instructions(response: str) -> list[str]:
    """The numbered items of a completion (its first item continues the prompt's last number)."""
    items = re.split(r"\n\s*\d+\s*[.、．]\s*", "\n1. " + response.lstrip(" ."))
    return [one_line(i) for i in items if one_line(i)]


def classification_prompt(instruction: str, shots: Sequence[Seed], t: Template) -> str:
    body = "".join(f"{t.task}: {one_line(s.instruction)}\n{t.question} {t.yes if s.is_classification else t.no}\n\n"
                   for s in shots)
    return t.classification + body + f"{t.task}: {one_line(instruction)}\n{t.question}"


def parse_yes_no(response: str, t: Template) -> bool | None:
    first = response.strip().split("\n", 1)[0].strip().lower()
    if first.startswith(t.yes.lower()):
        return True
    if first.startswith(t.no.lower()):
        return False
    return None


def instance_prompt(instruction: str, classification: bool, shots: Sequence[Seed], t: Template) -> str:
    """Input-first for generation tasks; output-first (label, then an input for it) for
    classification, which the paper found keeps the model from producing one label only."""
    def block(task: str, pairs: Sequence[tuple[str, str]]) -> str:
        out = f"{t.task}: {one_line(task)}\n"
        for inp, output in pairs:
            if classification:
                out += f"{t.label}: {output.strip()}\n{t.input}: {inp.strip() or t.empty}\n"
            else:
                out += f"{t.input}: {inp.strip() or t.empty}\n{t.output}: {output.strip()}\n"
        return out
    header = t.output_first if classification else t.input_first
    return header + "\n".join(block(s.instruction, s.instances) for s in shots) + "\n" + f"{t.task}: {one_line(instruction)}\n"


def parse_instances(response: str, classification: bool, t: Template) -> list[tuple[str, str]]:
    """(input, output) pairs of a completion, up to the next task; an input of ``t.empty`` is empty."""
    text = re.split(rf"(?:^|\n)\s*{re.escape(t.task)}\s*[:：]", response, maxsplit=1)[0]
    first, second = (t.label, t.input) if classification else (t.input, t.output)
    pattern = rf"{re.escape(first)}\s*[:：]\s*(.*?)\n\s*{re.escape(second)}\s*[:：]\s*(.*?)(?=\n\s*{re.escape(first)}\s*[:：]|\Z)"
    pairs = []
    for a, b in re.findall(pattern, text + "\n", flags=re.S):
        inp, out = (b, a) if classification else (a, b)
        inp, out = inp.strip(), out.strip()
        pairs.append(("" if inp == t.empty else inp, out))
    return pairs


def sample_examples(rng: random.Random, seeds: Sequence[str], machine: Sequence[str], human: int, made: int) -> list[str]:
    """``human`` seed instructions and ``made`` machine-made ones, shuffled; while the machine pool
    is smaller than ``made`` the seeds fill in."""
    from_machine = min(made, len(machine))
    examples = rng.sample(list(seeds), min(human + made - from_machine, len(seeds))) + rng.sample(list(machine), from_machine)
    rng.shuffle(examples)
    return examples
