"""What the daemon adds to a question: `aibus query "..."` (the real CLI, a subprocess, against a real daemon and
the real llama.cpp server on SmolLM2-135M) against a direct streamed call to the same server with the exact
request the daemon sent, captured by a recording proxy between daemon and server.

Run: .venv/bin/python scripts/bench/overhead.py [--runs 5] [--max-tokens 120] [--json]
Targets: aibus query <= +5% wall, first token <= +30 ms; CLI start-up (`aibus --help`) under 150 ms.

First token is compared where the user sees it: the CLI's first byte of answer on stdout, and the first character
of the summary in the direct stream (the CLI prints the summary as it streams; both pull it out of the JSON the
same way). The direct call is made twice: straight to the server (the figure the target is about) and through the
proxy (so the proxy's own share of the daemon's path is visible). Before every measured call a short unrelated
request clears the server's prompt cache, so no call gains from the previous one having the same prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# This folder holds other benches (e.g. http.py) that would shadow the standard library.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx

from aiventbus.cli.query import SummaryStream
from scripts.bench._model_proxy import ChatCall, RecordingProxy
from tests.support.daemon import free_port, start_daemon_process, stop_process, write_config
from tests.support.llama_server import LlamaServer, start_llama_server

AIBUS = str(Path(sys.executable).parent / "aibus")
STARTUP_RUNS = 10


@dataclass
class Timing:
    wall: float
    first_visible: float | None  # first summary character seen by the user (CLI stdout / summary in the stream)
    first_token: float | None = None  # first content token off the server (direct calls)
    text: str = ""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def clear_prompt_cache(llama: LlamaServer, client: httpx.Client) -> None:
    """One token for an unrelated prompt: the next request shares no cached prefix with the previous one."""
    body = {"model": llama.model, "messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 1}
    client.post(f"{llama.base_url}/v1/chat/completions", json=body).raise_for_status()


def run_cli(config_path: Path, question: str) -> Timing:
    """`aibus query` as a user runs it; first_visible is its first byte on stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [AIBUS, "--config", str(config_path), "query", "--timeout", "900", question],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first: float | None = None
    chunks: list[bytes] = []
    while chunk := os.read(process.stdout.fileno(), 4096):
        if first is None:
            first = time.perf_counter()
        chunks.append(chunk)
    stderr = process.stderr.read() if process.stderr else b""
    code = process.wait()
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"aibus query exited {code}: {stderr.decode(errors='replace')[-500:]}")
    return Timing(wall, None if first is None else first - started, text=b"".join(chunks).decode(errors="replace"))


def run_direct(base_url: str, body: dict[str, Any], client: httpx.Client) -> Timing:
    """The captured request, streamed straight from `base_url`."""
    call = ChatCall("/v1/chat/completions", body, time.perf_counter())
    summary = SummaryStream()
    first_visible: float | None = None
    started = time.perf_counter()
    with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as answer:
        answer.raise_for_status()
        for line in answer.iter_lines():
            before = len(call.text)
            call.note_line(line, time.perf_counter())
            if first_visible is None and summary.feed(call.text[before:]):
                first_visible = time.perf_counter() - started
    wall = time.perf_counter() - started
    first_token = None if call.first_token is None else call.first_token - started
    return Timing(wall, first_visible, first_token, call.text)


def startup_figures(runs: int) -> dict[str, float]:
    def timed(command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started

    baseline = median([timed([sys.executable, "-c", "pass"]) for _ in range(runs)])
    cli = median([timed([AIBUS, "--help"]) for _ in range(runs)])
    return {"python_pass_ms": baseline * 1000, "aibus_help_ms": cli * 1000, "cli_own_ms": (cli - baseline) * 1000}


def bench(runs: int, max_tokens: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        base = Path(tmp)
        llama = start_llama_server(base / "llama")
        proxy = RecordingProxy(llama.base_url).start()
        (base / "home").mkdir()
        config_path = write_config(base, port=free_port())
        daemon = start_daemon_process(config_path, env={"HOME": str(base / "home")})
        try:
            with httpx.Client(timeout=600, headers=daemon.headers()) as api, httpx.Client(timeout=600) as plain:
                agent = {
                    "name": "general assistant",
                    "description": "General-purpose AI assistant",
                    "system_prompt": "You are a helpful AI assistant. Answer concisely.",
                    "provider": "openai",
                    "base_url": proxy.base_url,
                    "model": llama.model,
                    "temperature": 0.0,
                    "max_tokens": max_tokens,
                }
                created = api.post(f"{daemon.base_url}/api/v1/agents", json=agent)
                created.raise_for_status()
                rule = {"name": "user queries", "topic_pattern": "user.*", "consumer_id": created.json()["id"]}
                api.post(f"{daemon.base_url}/api/v1/routing-rules", json=rule).raise_for_status()
                run_cli(config_path, "What is 2 plus 2?")  # warm-up: server probing, first imports, caches
                rows = [one_round(n, config_path, llama, proxy, plain) for n in range(runs)]
        finally:
            stop_process(daemon.process)
            proxy.stop()
            llama.stop()
    return summarize_rounds(rows)


def one_round(
    n: int, config_path: Path, llama: LlamaServer, proxy: RecordingProxy, plain: httpx.Client
) -> dict[str, Any]:
    question = f"What is {n + 7} times {n + 3}?"
    clear_prompt_cache(llama, plain)
    first_call = len(proxy.calls)
    cli = run_cli(config_path, question)
    calls = [call for call in proxy.calls[first_call:] if call.path.endswith("/chat/completions")]
    if not calls:
        raise RuntimeError("the daemon made no chat call through the proxy")
    captured = calls[0]
    clear_prompt_cache(llama, plain)
    direct = run_direct(llama.base_url, captured.body, plain)
    clear_prompt_cache(llama, plain)
    via_proxy = run_direct(proxy.base_url, captured.body, plain)
    daemon_model_seconds = sum((call.ended or call.started) - call.started for call in calls)
    return {
        "cli": cli,
        "direct": direct,
        "via_proxy": via_proxy,
        "daemon_calls": len(calls),
        "daemon_model_seconds": daemon_model_seconds,
        "same_answer": captured.text == direct.text,
        "seed_sent": "seed" in captured.body,
        "temperature": captured.body.get("temperature"),
        "max_tokens": captured.body.get("max_tokens"),
        "answer_tokens": captured.completion_tokens,
    }


def summarize_rounds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def med(kind: str, attribute: str) -> float:
        return median([value for row in rows if (value := getattr(row[kind], attribute)) is not None])

    cli_wall, direct_wall, proxy_wall = med("cli", "wall"), med("direct", "wall"), med("via_proxy", "wall")
    cli_first, direct_first = med("cli", "first_visible"), med("direct", "first_visible")
    return {
        "runs": len(rows),
        "cli_wall_s": cli_wall,
        "direct_wall_s": direct_wall,
        "direct_via_proxy_wall_s": proxy_wall,
        "wall_overhead_pct": (cli_wall / direct_wall - 1) * 100,
        "cli_first_visible_ms": cli_first * 1000,
        "direct_first_visible_ms": direct_first * 1000,
        "first_visible_overhead_ms": (cli_first - direct_first) * 1000,
        "direct_first_token_ms": med("direct", "first_token") * 1000,
        "daemon_model_seconds": median([row["daemon_model_seconds"] for row in rows]),
        "daemon_calls_per_query": median([row["daemon_calls"] for row in rows]),
        "same_answer_as_direct": f"{sum(row['same_answer'] for row in rows)}/{len(rows)}",
        "request": {key: sorted({str(row[key]) for row in rows}) for key in ("seed_sent", "temperature", "max_tokens")},
        "answer_tokens": [row["answer_tokens"] for row in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    os.environ.setdefault("NO_PROXY", "*")
    report = {"startup": startup_figures(STARTUP_RUNS), "query": bench(args.runs, args.max_tokens)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    start = report["startup"]
    print(f"CLI start-up (median of {STARTUP_RUNS}):")
    print(f"  python -c pass            {start['python_pass_ms']:8.1f} ms")
    print(f"  aibus --help              {start['aibus_help_ms']:8.1f} ms   target < 150 ms")
    print(f"  the CLI's own share       {start['cli_own_ms']:8.1f} ms")
    query = report["query"]
    print(f"aibus query vs a direct call with the captured request (median of {query['runs']}):")
    print(
        f"  wall: aibus {query['cli_wall_s']:.3f} s, direct {query['direct_wall_s']:.3f} s"
        f" (via proxy {query['direct_via_proxy_wall_s']:.3f} s): {query['wall_overhead_pct']:+.1f}%"
        "   target <= +5%"
    )
    print(
        f"  first visible: aibus {query['cli_first_visible_ms']:.0f} ms, direct {query['direct_first_visible_ms']:.0f}"
        f" ms: {query['first_visible_overhead_ms']:+.0f} ms   target <= +30 ms"
        f"   (direct first token {query['direct_first_token_ms']:.0f} ms)"
    )
    print(
        f"  daemon's model time {query['daemon_model_seconds']:.3f} s in {query['daemon_calls_per_query']:g} call(s);"
        f" same answer as direct {query['same_answer_as_direct']}; request {query['request']};"
        f" answer tokens {query['answer_tokens']}"
    )


if __name__ == "__main__":
    main()
