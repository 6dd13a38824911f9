"""Session fixtures for the real model: llama.cpp's server on SmolLM2-135M and an Ollama-protocol server on top.

`llama_server`: `.base_url` (http://127.0.0.1:P, the OpenAI provider's base_url), `.model` ("smollm2-135m").
`ollama_server`: `.base_url`, `.model` ("smollm2:135m"), `.queue_reply(text)`, `.requests`.
`embedding_server`: the same llama.cpp server (it is started with embeddings on).
`make_ollama_server()`: a private Ollama-protocol server for one test, which it may stop and start again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.ollama_server import OllamaServer


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_llama_server(Path(tmp_path_factory.mktemp("llama-server")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def embedding_server(llama_server: LlamaServer) -> LlamaServer:
    return llama_server


@pytest.fixture(scope="session")
def ollama_server(llama_server: LlamaServer) -> Iterator[OllamaServer]:
    server = OllamaServer(llama_server.base_url, llama_server.model, context_tokens=llama_server.context_tokens)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_ollama_script(request: pytest.FixtureRequest) -> Iterator[None]:
    """Canned replies one test queued must not leak into the next (only when the session server exists)."""
    server: OllamaServer | None = None
    if "ollama_server" in request.fixturenames:
        server = request.getfixturevalue("ollama_server")
    yield
    if server is not None:
        server.scripted.clear()


@pytest.fixture
def make_ollama_server(llama_server: LlamaServer) -> Iterator[Callable[..., OllamaServer]]:
    created: list[OllamaServer] = []

    def make(port: int | None = None, model: str = "smollm2:135m") -> OllamaServer:
        server = OllamaServer(
            llama_server.base_url,
            llama_server.model,
            model=model,
            context_tokens=llama_server.context_tokens,
            port=port,
        )
        server.start()
        created.append(server)
        return server

    yield make
    for server in created:
        server.stop()
