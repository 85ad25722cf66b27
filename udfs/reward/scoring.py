"""The scoring stage's batch body: canonical records in, reward / quality columns out."""
from __future__ import annotations

import json
from typing import Iterator

import numpy as np
import pandas as pd

from udfs.reward.inputs import record_inputs
from udfs.reward.model import load_scorer, rewards

OUTPUT = "doc_id string, source string, kind string, reward_score float, reward_margin float, quality_prob float"


def score_batches(frames: Iterator[pd.DataFrame], pairwise: str | None, pointwise: str | None,
                  batch_size: int, device: str | None = None) -> Iterator[pd.DataFrame]:
    """``reward_score`` (pairwise model, on the response or chosen answer), ``reward_margin``
    (chosen minus rejected, preference records), ``quality_prob`` (pointwise model); each model is
    loaded once per Python worker. Input columns: doc_id, source, kind, messages_json, chosen, rejected."""
    for pdf in frames:
        inputs = [record_inputs(k, json.loads(m or "[]"), c, r)
                  for k, m, c, r in zip(pdf["kind"], pdf["messages_json"], pdf["chosen"], pdf["rejected"])]
        prompts, responses = [p for p, _, _ in inputs], [r for _, r, _ in inputs]
        out = pdf[["doc_id", "source", "kind"]].copy()
        out["reward_score"] = out["reward_margin"] = out["quality_prob"] = np.nan
        if pairwise:
            model, tokenizer, meta = load_scorer(pairwise, device)
            out["reward_score"] = rewards(model, tokenizer, prompts, responses, meta["max_length"], batch_size)
            pref = [i for i, (_, _, rej) in enumerate(inputs) if rej is not None]
            if pref:
                other = rewards(model, tokenizer, [prompts[i] for i in pref], [inputs[i][2] for i in pref],
                                meta["max_length"], batch_size)
                out.loc[out.index[pref], "reward_margin"] = out["reward_score"].to_numpy()[pref] - other
        if pointwise:
            model, tokenizer, meta = load_scorer(pointwise, device)
            logits = rewards(model, tokenizer, prompts, responses, meta["max_length"], batch_size)
            out["quality_prob"] = 1 / (1 + np.exp(-logits.astype(np.float64)))
        yield out.astype({"reward_score": "float32", "reward_margin": "float32", "quality_prob": "float32"})
