"""Any OpenAI-compatible endpoint (vLLM, TGI, llama.cpp server, hosted APIs) as a back-end.

Requests run ``concurrency`` at a time under a client-side rate limit (requests per minute), each
with a timeout; connection errors, timeouts, 408/409/429 and 5xx are retried with exponential
backoff and jitter (``Retry-After`` honoured), other 4xx fail at once: a malformed request does not
get better by repeating it. The ``openai`` client is not used because retries, pacing and the
journal have to agree on one notion of "finished request".
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import httpx

from udfs.generate.backends import OnDone, Request

log = logging.getLogger(__name__)
RETRYABLE = {408, 409, 429}


class RateLimiter:
    """At most ``per_minute`` request starts in any minute, spaced evenly (a token bucket of one)."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


@dataclass
class OpenAICompatible:
    base_url: str
    model: str
    chat: bool = False  # /v1/chat/completions with the prompt as one user turn; else /v1/completions
    api_key_env: str | None = None  # name of the env var holding the key: keys never sit in configs
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    concurrency: int = 8
    requests_per_minute: float | None = None

    def __post_init__(self) -> None:
        self.identity = f"openai:{self.base_url.rstrip('/')}:{self.model}:{'chat' if self.chat else 'completions'}"
        self.limiter = RateLimiter(self.requests_per_minute)
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        self.client = httpx.Client(base_url=self.base_url.rstrip("/"), timeout=self.timeout_s,
                                   headers={"Authorization": f"Bearer {key}"} if key else {},
                                   limits=httpx.Limits(max_connections=self.concurrency))

    def complete(self, requests: Sequence[Request], on_done: OnDone | None = None) -> list[str | None]:
        def one(i: int) -> str | None:
            text = self.request(requests[i])
            if text is not None and on_done:
                on_done(i, text)
            return text

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, range(len(requests))))

    def body(self, request: Request) -> tuple[str, dict]:
        s = request.sampling
        body = {"model": self.model, "max_tokens": s.max_new_tokens, "temperature": s.temperature,
                "top_p": s.top_p, "seed": s.seed}
        if s.stop:
            body["stop"] = list(s.stop[:4])  # the OpenAI API takes at most four
        if self.chat:
            return "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": request.prompt}]}
        return "/v1/completions", {**body, "prompt": request.prompt}

    def request(self, request: Request) -> str | None:
        path, body = self.body(request)
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            retry_after = None
            try:
                response = self.client.post(path, json=body)
                if response.status_code == 200:
                    choice = response.json()["choices"][0]
                    return choice["message"]["content"] if self.chat else choice["text"]
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE and response.status_code < 500:
                    log.warning("request %s failed, not retried: %s", request.key, problem)
                    return None
                retry_after = _seconds(response.headers.get("retry-after"))
            except (httpx.TransportError, ValueError, KeyError, IndexError) as exc:  # network, timeout, bad JSON
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.max_retries:
                delay = retry_after if retry_after is not None else min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
                log.info("request %s: %s; retry %d in %.1fs", request.key, problem, attempt + 1, delay)
                time.sleep(delay * (1 + 0.25 * random.random()))
        log.warning("request %s failed after %d retries: %s", request.key, self.max_retries, problem)
        return None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff
