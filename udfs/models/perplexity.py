"""Per-document perplexity under a causal LM: token-level negative log-likelihood with the attention
mask, a sliding window with stride for documents longer than the context, and batches of windows
packed by a token budget (so a batch of short documents and one of long ones cost the same memory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    doc: int
    ids: list[int]
    scored_from: int  # positions before this were scored by the previous window (context only)


def windows(doc: int, ids: list[int], max_length: int, stride: int) -> list[Window]:
    """Windows of at most ``max_length`` tokens, each starting ``stride`` after the previous; every
    token after the first is scored exactly once, with as much left context as the window allows."""
    out: list[Window] = []
    scored_until = 1  # the first token has no context to be predicted from
    begin = 0
    while scored_until < len(ids):
        end = min(begin + max_length, len(ids))
        out.append(Window(doc, ids[begin:end], scored_until - begin))
        scored_until = end
        begin += stride
    return out


def token_budget_batches(items: list[Window], budget: int) -> list[list[Window]]:
    """Windows sorted by length, packed while (windows x longest) stays within ``budget`` tokens."""
    batches: list[list[Window]] = []
    current: list[Window] = []
    for w in sorted(items, key=lambda w: len(w.ids)):
        if current and (len(current) + 1) * len(w.ids) > budget:
            batches.append(current)
            current = []
        current.append(w)
    if current:
        batches.append(current)
    return batches


def perplexities(texts: list[str], model, tokenizer, max_length: int = 1024, stride: int = 512,
                 token_budget: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """(perplexity, scored tokens) per text; NaN perplexity for a text with fewer than two tokens."""
    import torch

    if not 0 < stride <= max_length:
        raise ValueError(f"stride {stride} must be in (0, max_length {max_length}]")
    encoded = tokenizer([t or "" for t in texts], add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    items = [w for i, ids in enumerate(encoded) for w in windows(i, bos + ids, max_length, stride)]
    nll = np.zeros(len(texts), np.float64)
    count = np.zeros(len(texts), np.int64)
    where = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for batch in token_budget_batches(items, token_budget):
        width = max(len(w.ids) for w in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        scored = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, w in enumerate(batch):  # right padding: positions are the same as unpadded
            ids[row, :len(w.ids)] = torch.tensor(w.ids)
            mask[row, :len(w.ids)] = 1
            scored[row, w.scored_from:len(w.ids)] = True
        with torch.inference_mode():
            logits = model(input_ids=ids.to(where), attention_mask=mask.to(where)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:].to(where)
        token_nll = -logprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        keep = scored[:, 1:].to(where)
        sums = (token_nll * keep).sum(dim=1).cpu().numpy()
        counts = keep.sum(dim=1).cpu().numpy()
        for row, w in enumerate(batch):
            nll[w.doc] += sums[row]
            count[w.doc] += counts[row]
    with np.errstate(invalid="ignore", divide="ignore"):
        ppl = np.where(count > 0, np.exp(nll / np.maximum(count, 1)), np.nan)
    return ppl, count
