"""Agent quality on the small local model: a seeded set of varied events through a real daemon and a default agent
(created through the API as the README shows) against SmolLM2-135M, via the OpenAI-compatible llama.cpp server
and via the Ollama-protocol stand-in.

Run: .venv/bin/python scripts/bench/agent_quality.py [--events 200] [--provider openai|ollama|both] [--seed 12]
     [--json] [--resume] [--out-dir DIR] [--event-timeout 900] [--from-results FILE...]
Targets: >= 99% schema-valid, >= 95% valid actions, 0 lost, 0 runaways past the cap; the correct share on the
known-answer subset is reported as it is.

Events are published one at a time and each is followed to its end before the next, so every model call seen on
the wire (a recording proxy sits between the daemon and the model server) belongs to that event. What is scored
comes from the daemon's API: assignments, stored responses, the trace's `system.*` events, and the live token
stream (its `attempt` marks repairs). Results are appended per event to a JSONL file; `--resume` skips the cases
already there (the daemon is fresh, so resumed runs lack the earlier transcript).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# This folder holds other benches (e.g. http.py) that would shadow the standard library.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx
from websockets.asyncio.client import connect

from scripts.bench._model_proxy import RecordingProxy
from scripts.bench._quality_events import (
    KNOWLEDGE_FACTS,
    TARGETS,
    BenchEvent,
    Case,
    EventResult,
    answer_is_correct,
    generate_cases,
    summarize,
    target_verdicts,
)
from tests.support.daemon import DaemonProcess, free_port, start_daemon_process, stop_process, write_config
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.ollama_server import OllamaServer

# The README's agent, and rules sending every producer's topics (not the daemon's own reports) to it.
README_AGENT = {
    "name": "general assistant",
    "description": "General-purpose AI assistant",
    "system_prompt": "You are a helpful AI assistant. Answer concisely.",
}
ROUTED_TOPICS = ["user.*", "clipboard.*", "file.*", "log.*", "notification.*", "webhook.*"]
INVALID_ACTION_TOPICS = ("system.invalid_action", "system.unknown_action")
SETTLE_SECONDS = 0.5
POLL_SECONDS = 0.05


@dataclass
class TokenWatch:
    """Which attempts (1 = first call, 2 = repair) streamed tokens for each event, from the daemon's /ws."""

    attempts: dict[str, set[tuple[str, int]]] = field(default_factory=dict)

    async def follow(self, ws_url: str, token: str) -> None:
        async with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None) as ws:
            async for raw in ws:
                message = json.loads(raw)
                data = message.get("data") or {}
                if message.get("channel") == "token" and isinstance(data.get("event_id"), str):
                    key = (str(data.get("assignment_id")), int(data.get("attempt", 1)))
                    self.attempts.setdefault(data["event_id"], set()).add(key)

    def repairs(self, event_id: str) -> int:
        return sum(1 for _, attempt in self.attempts.get(event_id, set()) if attempt >= 2)


@dataclass
class ProviderRun:
    provider: str
    client: httpx.AsyncClient
    proxy: RecordingProxy
    tokens: TokenWatch
    event_timeout: float


async def follow_event(run: ProviderRun, case: Case, position: int, event: BenchEvent) -> EventResult:
    """Publish one event, wait for its assignments to end and the trace to settle, and score what the API shows."""
    client, proxy = run.client, run.proxy
    first_call = len(proxy.calls)
    started = time.perf_counter()
    answer = await client.post("/api/v1/events", json=event.publish_body())
    answer.raise_for_status()
    published = answer.json()
    event_id, trace_id = published["id"], published["trace_id"]
    assignments: list[dict[str, Any]] = []
    timed_out = False
    while True:
        state = (await client.get(f"/api/v1/events/{event_id}/assignments")).json()
        assignments = state["assignments"]
        if assignments and all(a["status"] in ("completed", "failed") for a in assignments):
            break
        if not assignments and state["event_status"] == "unrouted":
            break
        if time.perf_counter() - started > run.event_timeout:
            timed_out = True
            break
        await asyncio.sleep(POLL_SECONDS)
    wall = time.perf_counter() - started
    await settle(run, trace_id)
    responses = (await client.get(f"/api/v1/events/{event_id}/responses")).json()["responses"]
    trace = (await client.get(f"/api/v1/events/trace/{trace_id}")).json()["events"]
    calls = proxy.calls[first_call:]
    result = EventResult(
        case=case.index,
        position=position,
        kind=event.kind,
        topic=event.topic,
        event_id=event_id,
        outcome="answered",
        wall_seconds=wall,
        model_calls=len(calls),
        repairs=run.tokens.repairs(event_id),
        runaways=sum(call.hit_cap for call in calls),
        past_cap=sum(call.past_cap for call in calls),
        retries=sum(max(0, int(a["attempts"]) - 1) for a in assignments),
        prompt_tokens=sum(call.prompt_tokens or 0 for call in calls),
        completion_tokens=sum(call.answer_tokens for call in calls),
        model_seconds=sum((call.ended or call.started) - call.started for call in calls),
        system_events=sorted(e["topic"] for e in trace if e["topic"].startswith("system.")),
    )
    final = responses[-1] if responses else None
    parsed = final.get("response") if final else None
    result.schema_valid = parsed is not None and is_answer_object(final["raw_text"] if final else "")
    result.summary = parsed.get("summary") if parsed else None
    if parsed is not None:
        parents = {event_id} | {r["response_event_id"] for r in responses if r.get("response_event_id")}
        result.proposed_actions = len(parsed.get("proposed_actions") or [])
        result.invalid_actions = sum(
            1 for e in trace if e["topic"] in INVALID_ACTION_TOPICS and e.get("parent_event") in parents
        )
    if event.expect is not None:
        result.correct = answer_is_correct(result.summary, event.expect)
    result.outcome = outcome_of(assignments, final, parsed, result.system_events, timed_out)
    return result


def outcome_of(
    assignments: list[dict[str, Any]],
    final: dict[str, Any] | None,
    parsed: dict[str, Any] | None,
    system_events: list[str],
    timed_out: bool,
) -> str:
    """answered, dead_lettered (failed with a record of why), unrouted, timed_out (still queued or running at the
    deadline: slow, not lost), or lost (accepted, then ended or stuck with nothing recorded)."""
    if not assignments and not timed_out:
        return "unrouted"
    if timed_out and any(a["status"] == "claimed" for a in assignments):
        return "timed_out"
    if parsed is not None and all(a["status"] == "completed" for a in assignments):
        return "answered"
    failed_with_record = any(a["status"] == "failed" and (a.get("last_error") or final) for a in assignments)
    if failed_with_record or (final is None and system_events and not timed_out):
        return "dead_lettered"
    return "lost"


def is_answer_object(raw: str) -> bool:
    """The final text itself is one JSON object with the answer's required keys (no lenient extraction)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and {"type", "summary", "proposed_actions"} <= value.keys()


async def settle(run: ProviderRun, trace_id: str) -> None:
    """Until no model call is in flight and the trace has stopped growing (actions and chained runs are done)."""
    seen, stable_since = -1, time.perf_counter()
    deadline = time.perf_counter() + run.event_timeout
    while time.perf_counter() < deadline:
        answer = await run.client.get(f"/api/v1/events/trace/{trace_id}")
        count = len(answer.json().get("events", [])) if answer.status_code == 200 else 0
        busy = run.proxy.in_flight > 0
        if count != seen or busy:
            seen, stable_since = count, time.perf_counter()
        elif time.perf_counter() - stable_since >= SETTLE_SECONDS:
            return
        await asyncio.sleep(POLL_SECONDS)


async def prepare_daemon(daemon: DaemonProcess, provider: str, model: str, model_url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.headers(), timeout=60)
    created = await client.post(
        "/api/v1/agents", json={**README_AGENT, "provider": provider, "model": model, "base_url": model_url}
    )
    if created.status_code != 201:
        raise RuntimeError(f"agent create answered {created.status_code}: {created.text}")
    agent_id = created.json()["id"]
    for pattern in ROUTED_TOPICS:
        rule = {"name": f"bench {pattern}", "topic_pattern": pattern, "consumer_id": agent_id}
        (await client.post("/api/v1/routing-rules", json=rule)).raise_for_status()
    for key, (value, _question) in KNOWLEDGE_FACTS.items():
        (await client.put(f"/api/v1/knowledge/{key}", json={"value": value})).raise_for_status()
    return client


def load_done(path: Path, cases: list[Case]) -> list[EventResult]:
    """Results of the cases already complete in `path` (a partly written case is run again)."""
    if not path.exists():
        return []
    rows = [EventResult(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    sizes = {case.index: len(case.events) for case in cases}
    counts: dict[int, int] = {}
    for row in rows:
        counts[row.case] = counts.get(row.case, 0) + 1
    return [row for row in rows if counts[row.case] == sizes.get(row.case)]


def write_results(path: Path, results: list[EventResult], mode: str = "w") -> None:
    with path.open(mode) as sink:
        sink.writelines(json.dumps(r.to_json()) + "\n" for r in results)


async def run_provider(
    provider: str, llama: LlamaServer, cases: list[Case], out: Path, resume: bool, event_timeout: float
) -> tuple[list[EventResult], float]:
    done = load_done(out, cases) if resume else []
    write_results(out, done)
    finished = {r.case for r in done}
    stand_in = None
    if provider == "ollama":
        stand_in = OllamaServer(llama.base_url, llama.model, context_tokens=llama.context_tokens)
        stand_in.start()
        upstream, model = stand_in.base_url, stand_in.model
    else:
        upstream, model = llama.base_url, llama.model
    proxy = RecordingProxy(upstream).start()
    results = list(done)
    with tempfile.TemporaryDirectory(prefix=f"agent-quality-{provider}-") as tmp:
        base = Path(tmp)
        (base / "home").mkdir()
        daemon = start_daemon_process(write_config(base, port=free_port()), env={"HOME": str(base / "home")})
        watcher: asyncio.Task[None] | None = None
        started = time.perf_counter()
        try:
            client = await prepare_daemon(daemon, provider, model, proxy.base_url)
            tokens = TokenWatch()
            ws_url = daemon.base_url.replace("http://", "ws://") + "/ws?channels=token"
            watcher = asyncio.create_task(tokens.follow(ws_url, daemon.token))
            run = ProviderRun(provider, client, proxy, tokens, event_timeout)
            todo = [case for case in cases if case.index not in finished]
            for number, case in enumerate(todo, 1):
                for position, event in enumerate(case.events):
                    result = await follow_event(run, case, position, event)
                    results.append(result)
                    write_results(out, [result], "a")
                print(
                    f"\r  {provider}: case {number}/{len(todo)}, {len(results)} events, "
                    f"{time.perf_counter() - started:6.0f} s",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            print(file=sys.stderr)
            await client.aclose()
        finally:
            if watcher is not None:
                watcher.cancel()
            stop_process(daemon.process)
            proxy.stop()
            if stand_in is not None:
                stand_in.stop()
    return results, time.perf_counter() - started


def pct(value: float) -> str:
    return f"{value * 100:5.1f}%"


def show(provider: str, summary: dict[str, Any], seconds: float) -> None:
    verdicts = target_verdicts(summary)
    mark = {True: "met", False: "NOT MET"}
    print(
        f"{provider}: {summary['events']} events in {seconds:.0f} s ({seconds / max(1, summary['events']):.1f} s/event)"
    )
    print(
        f"  schema-valid      {summary['schema_valid']:4d}  {pct(summary['schema_valid_share'])}"
        f"   target >= {TARGETS['schema_valid']:.0%}: {mark[verdicts['schema_valid >= 99%']]}"
    )
    print(
        f"  valid actions     {summary['valid_actions']:4d}/{summary['proposed_actions']:<4d}"
        f" {pct(summary['valid_action_share'])}   target >= {TARGETS['valid_actions']:.0%}: "
        f"{mark[verdicts['valid actions >= 95%']]}"
    )
    print(
        f"  correct (known)   {summary['correct']:4d}/{summary['known_answers']:<4d}"
        f" {pct(summary['correct_share'])}   {summary['correct_by_kind']}"
    )
    print(
        f"  runaways (at cap) {summary['runaways']:4d}   past the cap {summary['past_cap']}"
        f"   target 0 past the cap: {mark[verdicts['0 runaways past the cap']]}"
    )
    print(
        f"  repairs           {summary['repairs']:4d}   retries {summary['retries']}"
        f"   model calls {summary['model_calls']}"
    )
    print(
        f"  lost              {summary['lost']:4d}   unrouted {summary['unrouted']}"
        f"   timed out (still running) {summary.get('timed_out', 0)}"
        f"   target 0: {mark[verdicts['0 lost']]}"
    )
    print(f"  dead-lettered     {summary['dead_lettered']:4d}")
    print(
        f"  per event         model {summary['model_seconds_mean']:.2f} s, "
        f"{summary['prompt_tokens_mean']:.0f} prompt + {summary['completion_tokens_mean']:.0f} answer tokens"
    )
    print(
        f"  wall per event    p50 {summary['wall_p50_s']:.2f} s   p90 {summary['wall_p90_s']:.2f} s"
        f"   mean {summary['wall_mean_s']:.2f} s"
    )


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cases = generate_cases(args.events, args.seed)
    providers = ["openai", "ollama"] if args.provider == "both" else [args.provider]
    out_dir = Path(args.out_dir)
    report: dict[str, Any] = {"events": args.events, "seed": args.seed, "providers": {}}
    with tempfile.TemporaryDirectory(prefix="agent-quality-llama-") as tmp:
        llama = start_llama_server(Path(tmp))
        try:
            for provider in providers:
                out = out_dir / f"agent_quality-{provider}-seed{args.seed}-n{args.events}.jsonl"
                results, seconds = await run_provider(provider, llama, cases, out, args.resume, args.event_timeout)
                summary = summarize(results)
                report["providers"][provider] = {
                    "summary": summary,
                    "targets": target_verdicts(summary),
                    "seconds": seconds,
                    "results_file": str(out),
                }
                if not args.json:
                    show(provider, summary, seconds)
        finally:
            llama.stop()
    return report


def report_files(paths: list[Path], as_json: bool) -> None:
    """Figures from results already written (the file name says the provider); the wall clock is not known."""
    report: dict[str, Any] = {}
    for path in paths:
        if not path.exists():
            raise SystemExit(f"agent_quality: no results file {path}")
        results = [EventResult(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
        summary = summarize(results)
        report[path.name] = {"summary": summary, "targets": target_verdicts(summary)}
        if not as_json:
            show(path.name, summary, sum(r.wall_seconds for r in results))
    if as_json:
        print(json.dumps(report, indent=2))


def interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM ends the bench as Ctrl-C does: the daemon and the model server it started are stopped on the way out."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--provider", choices=["openai", "ollama", "both"], default="both")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--resume", action="store_true", help="skip the cases already in the results file")
    parser.add_argument("--out-dir", default=str(Path(tempfile.gettempdir()) / "aiventbus-bench"))
    parser.add_argument("--event-timeout", type=float, default=900.0, help="seconds before an event counts as lost")
    parser.add_argument(
        "--from-results", nargs="+", metavar="JSONL", help="only report figures from results files (a partial run too)"
    )
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.from_results:
        report_files([Path(name) for name in args.from_results], args.json)
        return
    os.environ.setdefault("NO_PROXY", "*")
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        report = asyncio.run(main_async(args))
    except KeyboardInterrupt:
        print(f"\ninterrupted: the results so far are in {args.out_dir}; --resume continues", file=sys.stderr)
        raise SystemExit(130) from None
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
