"""Deterministic train / validation / test splits by a hash of the prompt: the same prompt always
lands in the same split, in every format and every run, so no prompt crosses splits."""
from __future__ import annotations

import hashlib
from typing import Mapping


def split_of(key: str, fractions: Mapping[str, float]) -> str:
    """The split whose cumulative fraction band holds the key's hash (a uniform number in [0, 1))."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64
    total = 0.0
    for name, fraction in fractions.items():
        total += fraction
        if point < total:
            return name
    return next(reversed(list(fractions)))  # rounding at the top end
