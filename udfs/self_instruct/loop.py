"""One round of the self-instruct loop over any back-end, without Spark.

instructions (prompts mixing human and machine tasks) -> rule filters -> exact and ROUGE-L
near-duplicate screen against the pool -> classification identification -> instances
(output-first for classification) -> instance filters. Every candidate instruction ends kept or
dropped with a reason; requests go through the journal, so re-running a round costs nothing.
"""
from __future__ import annotations

import random
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from udfs.generate.backends import Backend, Request, Sampling
from udfs.generate.journal import Journal
from udfs.self_instruct.filters import Rules, clean_instances
from udfs.self_instruct.prompts import (TEMPLATES, Seed, classification_prompt, instance_prompt,
                                        instruction_prompt, parse_instances, parse_instructions,
                                        parse_yes_no, sample_examples)
from udfs.self_instruct.rouge import InstructionPool, tokens


@dataclass(frozen=True)
class Settings:
    language: str = "en"
    prompts_per_round: int = 8
    human_examples: int = 6
    machine_examples: int = 2
    classification_shots: int = 12
    instance_shots: int = 3
    max_instance_chars: int = 4000
    seed: int = 1
    instructions: Sampling = Sampling(max_new_tokens=512, temperature=0.7, top_p=0.5, stop=("\n\n", "\n16", "16.", "16 ."))
    classification: Sampling = Sampling(max_new_tokens=3, temperature=0.0, top_p=1.0)
    instances: Sampling = Sampling(max_new_tokens=300, temperature=0.0, top_p=1.0)


@dataclass(frozen=True)
class Task:
    task_id: str
    round: int
    instruction: str
    is_classification: bool
    instances: tuple[tuple[str, str], ...]
    rouge_l: float  # highest ROUGE-L against the pool when it was screened
    nearest: str | None


@dataclass(frozen=True)
class Drop:
    task_id: str
    round: int
    instruction: str
    reason: str
    value: float | None = None
    nearest: str | None = None


@dataclass
class Round:
    round: int
    prompts: int
    requests: int = 0  # sent this time (journaled ones are not sent again)
    failed: int = 0
    kept: list[Task] = field(default_factory=list)
    dropped: list[Drop] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        return len(self.kept) + len(self.dropped)

    def drop_counts(self) -> dict[str, int]:
        return dict(Counter(d.reason for d in self.dropped))


@dataclass
class Loop:
    seeds: Sequence[Seed]
    pool: InstructionPool
    rules: Rules
    backend: Backend
    journal: Journal
    settings: Settings = field(default_factory=Settings)
    machine: list[Task] = field(default_factory=list)

    def complete(self, stats: Round, requests: list[Request]) -> list[str | None]:
        seeded = [replace(r, sampling=replace(r.sampling, seed=zlib.crc32(f"{self.settings.seed}/{r.key}".encode())))
                  for r in requests]
        texts, sent = self.journal.complete(self.backend, seeded)
        stats.requests += sent
        stats.failed += sum(t is None for t in texts)
        return texts

    def run_round(self, r: int) -> Round:
        s, t = self.settings, TEMPLATES[self.settings.language]
        rng = random.Random(f"{s.seed}/{r}")
        stats = Round(r, s.prompts_per_round)
        seed_texts = [x.instruction for x in self.seeds]
        machine_texts = [x.instruction for x in self.machine]
        prompts = [instruction_prompt(sample_examples(rng, seed_texts, machine_texts, s.human_examples, s.machine_examples), t)
                   for _ in range(s.prompts_per_round)]
        responses = self.complete(stats, [Request(f"r{r}/instructions/{k}", p, s.instructions) for k, p in enumerate(prompts)])
        found = [(f"r{r}-{k}-{m}", text) for k, response in enumerate(responses) if response
                 for m, text in enumerate(parse_instructions(response))]
        ids, texts = [i for i, _ in found], [x for _, x in found]
        words = np.diff(tokens(texts)[1]) if texts else np.zeros(0, np.int64)
        passing = []
        for i, (task_id, text) in enumerate(found):
            failure = self.rules.failure(text, int(words[i]))
            if failure:
                stats.dropped.append(Drop(task_id, r, text, failure[0], failure[1]))
            else:
                passing.append(i)
        screen = self.pool.screen([texts[i] for i in passing], [ids[i] for i in passing])
        fresh = []
        for j, i in enumerate(passing):
            if screen.reason[j]:
                stats.dropped.append(Drop(ids[i], r, texts[i], screen.reason[j], float(screen.score[j]), screen.nearest[j]))
            else:
                fresh.append((ids[i], texts[i], float(screen.score[j]), screen.nearest[j]))
        self.instances(r, fresh, stats, rng)
        self.pool.add([k.instruction for k in stats.kept], [k.task_id for k in stats.kept])
        self.machine += stats.kept
        return stats

    def instances(self, r: int, fresh: list[tuple[str, str, float, str | None]], stats: Round, rng: random.Random) -> None:
        s, t = self.settings, TEMPLATES[self.settings.language]
        shots = rng.sample(list(self.seeds), min(s.classification_shots, len(self.seeds)))
        verdicts = self.complete(stats, [Request(f"r{r}/classification/{task_id}", classification_prompt(text, shots, t),
                                                 s.classification) for task_id, text, _, _ in fresh])
        is_clf = [bool(v and parse_yes_no(v, t)) for v in verdicts]
        with_instances = [x for x in self.seeds if x.instances]
        requests = []
        for (task_id, text, _, _), clf in zip(fresh, is_clf):
            same_kind = [x for x in with_instances if x.is_classification == clf] or with_instances
            shots = rng.sample(same_kind, min(s.instance_shots, len(same_kind)))
            stop = (f"\n{t.task}:", f"\n{t.task}：")
            requests.append(Request(f"r{r}/instances/{task_id}", instance_prompt(text, clf, shots, t),
                                    replace(s.instances, stop=stop)))
        for (task_id, text, score, nearest), clf, response in zip(fresh, is_clf, self.complete(stats, requests)):
            if response is None:
                stats.dropped.append(Drop(task_id, r, text, "generation_failed", score, nearest))
                continue
            kept, problem = clean_instances(parse_instances(response, clf, t), s.max_instance_chars)
            if problem:
                stats.dropped.append(Drop(task_id, r, text, problem, score, nearest))
            else:
                stats.kept.append(Task(task_id, r, text, clf, tuple(kept), score, nearest))
