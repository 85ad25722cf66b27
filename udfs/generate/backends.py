"""The one interface every generation back-end implements."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

OnDone = Callable[[int, str], None]  # (index of the request, its text), called as each one finishes


@dataclass(frozen=True)
class Sampling:
    """How one request is decoded; part of the journal key, so a changed setting is a new request."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Request:
    """One completion to make: ``key`` names it in the journal (stable across re-runs)."""

    key: str
    prompt: str
    sampling: Sampling = field(default_factory=Sampling)


class Backend(Protocol):
    """Completes prompts; a request that still fails after the back-end's own retries is ``None``,
    never an exception, so one bad request cannot sink a round. ``on_done`` hears of each finished
    request as soon as it finishes (the journal writes it then, not at the end of the batch)."""

    identity: str  # model + endpoint: a journal entry is reused only for the same identity

    def complete(self, requests: Sequence[Request], on_done: OnDone | None = None) -> list[str | None]: ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to the first stop sequence (servers do this themselves; local models do not)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]
