"""Planted junk for the adversarial filter's benchmark and tests: the three kinds web crawls are full
of, made from real documents so only their junkiness tells them apart."""
from __future__ import annotations

import random

BOILERPLATE = ("Home | About us | Contact | Privacy policy | Terms of use. We use cookies to improve your "
               "experience. By continuing to browse you agree to our cookie policy. Subscribe to our newsletter. "
               "Follow us on Facebook, Twitter and Instagram. Copyright 2019 All rights reserved.")
SPAM = ("cheap", "best", "price", "buy", "now", "discount", "free", "shipping", "casino", "bonus", "loans",
        "online", "deal", "sale", "offer", "replica", "watches", "pills")


def shuffled_words(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def boilerplate(rng: random.Random) -> str:
    parts = BOILERPLATE.split(". ")
    return ". ".join(rng.sample(parts, len(parts))) + " " + BOILERPLATE


def keyword_spam(rng: random.Random) -> str:
    return " ".join(rng.choice(SPAM) for _ in range(rng.randint(60, 200)))


def planted_junk(texts: list[str], per_kind: int, seed: int = 0) -> list[tuple[str, str]]:
    """(kind, text) for ``per_kind`` documents of each kind."""
    rng = random.Random(seed)
    return ([("shuffled_words", shuffled_words(t, rng)) for t in rng.sample(texts, per_kind)]
            + [("boilerplate", boilerplate(rng)) for _ in range(per_kind)]
            + [("keyword_spam", keyword_spam(rng)) for _ in range(per_kind)])
