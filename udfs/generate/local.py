"""A local Hugging Face causal LM as a back-end (offline default: the bundled SmolLM2-135M-Instruct).

Batched sampling with left padding on whatever device torch sees; each batch is seeded from its
requests' seeds, so a re-run of the same requests samples the same texts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from udfs.generate.backends import OnDone, Request, Sampling, truncate_at_stop


@dataclass
class LocalModel:
    model: str | None = None  # folder or hub id; None: the bundled SmolLM2-135M-Instruct
    cache_dir: str = "~/.cache/refinery/models"
    batch_size: int = 8
    max_prompt_tokens: int = 1536

    def __post_init__(self) -> None:
        self.identity = f"local:{self.model or 'SmolLM2-135M-Instruct'}"

    def complete(self, requests: Sequence[Request], on_done: OnDone | None = None) -> list[str | None]:
        groups: dict[Sampling, list[int]] = {}  # requests with the same sampling settings share batches
        for i, r in enumerate(requests):
            groups.setdefault(r.sampling, []).append(i)
        texts: dict[int, str] = {}
        for sampling, members in groups.items():
            for lo in range(0, len(members), self.batch_size):
                chunk = members[lo:lo + self.batch_size]
                for i, text in zip(chunk, self.generate([requests[i].prompt for i in chunk], sampling)):
                    texts[i] = text
                    if on_done:
                        on_done(i, text)
        return [texts[i] for i in range(len(requests))]

    def generate(self, prompts: list[str], s: Sampling) -> list[str]:
        import torch

        from udfs.models.loading import causal_lm

        model, tokenizer = causal_lm(self.model, self.cache_dir)
        tokenizer.padding_side = "left"
        batch = tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                          max_length=self.max_prompt_tokens).to(model.device)
        torch.manual_seed(s.seed)
        with torch.inference_mode():
            ids = model.generate(**batch, max_new_tokens=s.max_new_tokens, do_sample=s.temperature > 0,
                                 temperature=s.temperature or None, top_p=s.top_p if s.temperature > 0 else None,
                                 pad_token_id=tokenizer.pad_token_id)
        new = ids[:, batch["input_ids"].shape[1]:]
        return [truncate_at_stop(t, s.stop) for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
