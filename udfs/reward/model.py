"""An encoder with a scalar head, trained pairwise (Bradley-Terry: P(chosen > rejected) =
sigmoid(r_c - r_r)) or pointwise (binary cross-entropy: P(good) = sigmoid(r)).

Any ``AutoModel`` encoder works (DeBERTa-v3 on a cluster, the bundled MiniLM offline). The head is
one linear layer on the mask-weighted mean of the last hidden states, not the [CLS] pooler of
``AutoModelForSequenceClassification``: sentence-transformers backbones are trained to be read by
mean pooling, and their pooler is not, so the mean learns from far fewer pairs. The new head trains
at its own, higher learning rate. Training is a plain torch loop on the driver or one GPU (AdamW,
linear warm-up and decay, seeded), which is all a reward model of this size needs. The saved folder
holds the encoder, ``scalar_head.pt``, the tokenizer and ``refinery_reward.json`` (objective, max
length, backbone, metrics), which is what scoring reads back.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

META = "refinery_reward.json"
HEAD = "scalar_head.pt"
Objective = Literal["pairwise", "pointwise"]


class ModelError(ValueError):
    """A model path that cannot be used (missing, no weights, a hub id while downloads are off)."""


@dataclass(frozen=True)
class Training:
    epochs: int = 2
    learning_rate: float = 3e-5
    batch_size: int = 16
    max_length: int = 256
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 1
    head_learning_rate: float = 1e-3  # the freshly initialised head


def resolve_backbone(name_or_path: str | None, allow_download: bool = False) -> str:
    """A local folder (default: the bundled MiniLM) or, only when downloads are allowed, a hub id."""
    if name_or_path is None:
        from udfs.models.loading import default_embedding_model

        return default_embedding_model()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
            raise ModelError(f"model folder {path} has no weights (*.safetensors or *.bin)")
        return str(path)
    if not allow_download:
        raise ModelError(f"model {name_or_path!r} is not a local folder, and downloads are off "
                         "(reward.allow_download: true fetches hub ids)")
    return name_or_path


def scalar_model(encoder, hidden: int):
    """The encoder with a linear head on its mean-pooled last hidden states; ``model(**batch)``
    returns one score per row."""
    import torch

    class ScalarHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(hidden, 1)

        @property
        def device(self):
            return self.head.weight.device

        def forward(self, input_ids, attention_mask, **rest):
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **rest).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1)).squeeze(-1)

    return ScalarHead()


def load(name_or_path: str | None, allow_download: bool = False, device: str | None = None):
    """(model, tokenizer); the head is new unless the folder holds a trained one."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from udfs.models.loading import device as default_device

    path = resolve_backbone(name_or_path, allow_download)
    local = not allow_download
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    encoder = AutoModel.from_pretrained(path, local_files_only=local)
    model = scalar_model(encoder, encoder.config.hidden_size)
    head = Path(path) / HEAD
    if head.is_file():
        model.head.load_state_dict(torch.load(head, map_location="cpu", weights_only=True))
    return model.to(device or default_device()).float(), tokenizer


@lru_cache(maxsize=4)
def load_scorer(folder: str, device: str | None = None):
    """A trained folder, once per Python worker: (model in eval mode, tokenizer, its metadata);
    ``device`` None: the GPU when there is one (bf16 there), else the CPU."""
    import torch

    meta_path = Path(folder) / META
    if not meta_path.is_file():
        raise ModelError(f"{folder} is not a trained reward / quality model (no {META}); run train_reward first")
    model, tokenizer = load(folder, device=device)
    if model.device.type == "cuda":
        model = model.to(torch.bfloat16)
    return model.eval(), tokenizer, json.loads(meta_path.read_text())


def encode(tokenizer, prompts: Sequence[str], responses: Sequence[str], max_length: int, device):
    """Prompt and response as a sentence pair of at most ``max_length`` tokens: the response keeps
    its start and the prompt its end (the last turns), the prompt keeping at least a quarter. Cut
    at token offsets in the text, so it works for any fast tokenizer."""
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    p_enc = tokenizer(list(prompts), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    r_enc = tokenizer(list(responses), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    cut_prompts, cut_responses = [], []
    for prompt, response, p, r in zip(prompts, responses, p_enc, r_enc):
        keep_r = min(len(r), budget - min(len(p), budget // 4))
        keep_p = min(len(p), budget - keep_r)
        cut_responses.append(response[:r[keep_r - 1][1]] if keep_r else "")
        cut_prompts.append(prompt[p[len(p) - keep_p][0]:] if keep_p else "")
    return tokenizer(cut_prompts, cut_responses, truncation="longest_first", max_length=max_length, padding=True,
                     return_tensors="pt").to(device)


def rewards(model, tokenizer, prompts: Sequence[str], responses: Sequence[str], max_length: int,
            batch_size: int = 64) -> np.ndarray:
    """The scalar head's output per (prompt, response), in order; batches are length-sorted."""
    import torch

    order = np.argsort([len(p) + len(r) for p, r in zip(prompts, responses)], kind="stable")
    out = np.empty(len(prompts), np.float32)
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            batch = encode(tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx], max_length, model.device)
            out[idx] = model(**batch).float().cpu().numpy()
    return out


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _loop(model, steps_per_epoch: int, settings: Training, step: Callable[[int, int], "object"],
          log: Callable[[str], None]) -> list[float]:
    """AdamW with linear warm-up and decay; ``step(epoch, i)`` returns the batch loss."""
    import torch

    optimizer = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": settings.learning_rate},
                                   {"params": model.head.parameters(), "lr": settings.head_learning_rate}],
                                  weight_decay=settings.weight_decay)
    total = max(1, steps_per_epoch * settings.epochs)
    warmup = int(total * settings.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    losses = []
    model.train()
    for epoch in range(settings.epochs):
        running = []
        for i in range(steps_per_epoch):
            loss = step(epoch, i)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            running.append(loss.item())
        losses.append(float(np.mean(running)) if running else math.nan)
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.4f}")
    model.eval()
    return losses


def _train(backbone: str | None, n: int, settings: Training, allow_download: bool,
           loss: Callable[[object, object, np.ndarray], "object"], log: Callable[[str], None]):
    """Seeded epochs over shuffled batches of ``n`` examples; ``loss(model, tokenizer, indices)``."""
    _seed(settings.seed)
    model, tokenizer = load(backbone, allow_download)
    rng = np.random.default_rng(settings.seed)
    perms = [rng.permutation(n) for _ in range(settings.epochs)]
    b = settings.batch_size

    def step(epoch: int, i: int):
        return loss(model, tokenizer, perms[epoch][i * b:(i + 1) * b])

    return model, tokenizer, _loop(model, math.ceil(n / b), settings, step, log)


def train_pairwise(backbone: str | None, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str],
                   settings: Training, allow_download: bool = False, log: Callable[[str], None] = print):
    """Bradley-Terry: minimise -log sigmoid(r(prompt, chosen) - r(prompt, rejected))."""
    import torch

    def loss(model, tokenizer, idx: np.ndarray):
        ps = [prompts[j] for j in idx]
        batch = encode(tokenizer, ps + ps, [chosen[j] for j in idx] + [rejected[j] for j in idx],
                       settings.max_length, model.device)
        r = model(**batch)
        return -torch.nn.functional.logsigmoid(r[:len(idx)] - r[len(idx):]).mean()

    return _train(backbone, len(prompts), settings, allow_download, loss, log)


def train_pointwise(backbone: str | None, prompts: Sequence[str], responses: Sequence[str], labels: Sequence[int],
                    settings: Training, allow_download: bool = False, log: Callable[[str], None] = print):
    """Binary cross-entropy on the scalar head: P(good | prompt, response) = sigmoid(r)."""
    import torch

    target = torch.tensor(np.asarray(labels, np.float32))

    def loss(model, tokenizer, idx: np.ndarray):
        batch = encode(tokenizer, [prompts[j] for j in idx], [responses[j] for j in idx], settings.max_length,
                       model.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(model(**batch),
                                                                    target[idx].to(model.device))

    return _train(backbone, len(prompts), settings, allow_download, loss, log)


def save(model, tokenizer, folder: str | Path, objective: Objective, backbone: str, settings: Training,
         metrics: dict) -> Path:
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    import torch

    model.encoder.save_pretrained(folder)
    torch.save(model.head.state_dict(), folder / HEAD)
    tokenizer.save_pretrained(folder)
    meta = {"objective": objective, "backbone": backbone, "max_length": settings.max_length,
            "training": asdict(settings), "metrics": metrics}
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    return folder
