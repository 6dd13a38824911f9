"""The first hour with `aibus` (issue 13), against a real daemon: waits say why and end, only accepted actions are
printed, hints are true, `status` exits non-zero when something is wrong, one wording for a refused token."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.test_agents_runs import ScriptedProvider, use_provider
from tests.support.cli import aibus, aibus_async
from tests.support.daemon import DaemonProcess, RunningDaemon, free_port, running_daemon, write_config
from tests.support.waiting import eventually

CHECKOUT_RUN = Path(__file__).resolve().parents[2] / "scripts" / "run"
# Nothing listens on port 9 (discard) on loopback: a real, immediate "connection refused".
UNREACHABLE_LLM = {"ollama": {"base_url": "http://127.0.0.1:9"}}


async def make_agent(d: RunningDaemon, name: str = "general assistant", model: str = "m1") -> str:
    created = await d.client.post("/api/v1/agents", json={"name": name, "model": model})
    assert created.status_code == 201, created.text
    agent_id = str(created.json()["id"])
    rule = {"name": f"{name} rule", "topic_pattern": "user.*", "consumer_id": agent_id}
    assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return agent_id


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, Path]]:
    async with running_daemon(tmp_path, UNREACHABLE_LLM) as d:
        yield d, write_config(tmp_path, UNREACHABLE_LLM, port=d.daemon.config.server.port)


def stderr_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# -- 1. a query with no reachable model says why it waits, for how long, and gives up -------------------------


async def test_query_without_a_model_says_why_it_waits_and_gives_up(unreachable: tuple) -> None:
    d, config = unreachable
    agent_id = await make_agent(d)
    for question in ("first question", "second question"):  # the second used to print nothing at all
        code, out, err = await aibus_async(config, "query", question, "--timeout", "5", timeout=60)
        lines = stderr_lines(err)
        assert code == 1 and out == "", err
        waiting = [line for line in lines if line.startswith("aibus: waiting for an answer (")]
        assert waiting, err
        assert re.fullmatch(
            rf"aibus: waiting for an answer \(\d+ s of at most 5 s\): {agent_id} is queued: .*127\.0\.0\.1:9.*",
            waiting[-1],
        ), waiting
        reason = waiting[-1].split("): ", 1)[1]
        assert re.fullmatch(
            rf"aibus: no answer within 5 s: {re.escape(reason)} \(event evt_\w+; wait longer with --timeout\)",
            lines[-1],
        ), lines[-1]
        assert "Traceback" not in err


async def test_query_ends_when_the_daemon_expires_the_question(tmp_path: Path) -> None:
    overrides = {**UNREACHABLE_LLM, "lanes": {"interactive_expiry_seconds": 2}}
    async with running_daemon(tmp_path, overrides) as d:
        config = write_config(tmp_path, overrides, port=d.daemon.config.server.port)
        await make_agent(d)
        code, out, err = await aibus_async(config, "query", "anyone there?", "--timeout", "60", timeout=90)
    last = stderr_lines(err)[-1]
    assert code == 1 and out == "", err
    assert re.fullmatch(r"aibus: your question expired after \d+ s in the queue: .*127\.0\.0\.1:9.*", last), last
    waited = int(last.split("after ")[1].split(" s")[0])
    assert 2 <= waited < 60


async def test_query_ends_on_an_expiry_event_published_through_the_api(unreachable: tuple) -> None:
    """The contract with the daemon: system.assignment_expired for the question's event ends the wait."""
    d, config = unreachable
    await make_agent(d)
    waiting = asyncio.create_task(aibus_async(config, "query", "will expire", "--timeout", "60", timeout=90))
    event_id = await _question_event(d)
    expired = {
        "assignment_id": "asg_test",
        "event_id": event_id,
        "agent_id": "agent_general-assistant",
        "waited_seconds": 7.4,
        "reason": "the model m1 is not reachable",
    }
    published = await d.client.post(
        "/api/v1/events",
        json={"topic": "system.assignment_expired", "payload": expired, "parent_event": event_id},
    )
    assert published.status_code == 201, published.text
    code, out, err = await waiting
    assert code == 1 and out == ""
    assert stderr_lines(err)[-1] == "aibus: your question expired after 7 s in the queue: the model m1 is not reachable"


async def _question_event(d: RunningDaemon) -> str:
    async def published() -> str | None:
        events = (await d.client.get("/api/v1/events", params={"topic": "user.query"})).json()["events"]
        return str(events[0]["id"]) if events else None

    return str(await eventually(published))


# -- 2. only accepted actions are printed as actions; rejected proposals say why --------------------------------


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, ScriptedProvider, Path]]:
    async with running_daemon(tmp_path) as d:
        provider = ScriptedProvider()
        use_provider(d, provider)
        yield d, provider, write_config(tmp_path, port=d.daemon.config.server.port)


PROPOSING = {
    "type": "answer",
    "summary": "Looked it up.",
    "confidence": 0.9,
    "proposed_actions": [
        {"action_type": "get_knowledge", "key": "user.name"},
        {"action_type": "set_knowledge", "value": "Ada"},
    ],
}


async def test_query_prints_accepted_actions_and_rejected_proposals(scripted: tuple) -> None:
    d, provider, config = scripted
    await make_agent(d)
    provider.replies.append(json.dumps(PROPOSING))
    code, out, err = await aibus_async(config, "query", "who am I?", timeout=60)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Looked it up."
    assert re.fullmatch(r"action get_knowledge \(act_\w+\): executed", lines[1]), lines
    assert lines[2].startswith("rejected: set_knowledge: ") and "key" in lines[2] and "required" in lines[2], lines
    assert len(lines) == 3 and "proposed action" not in out

    code, history, _ = await aibus_async(config, "actions", "history", timeout=60)
    assert code == 0 and "get_knowledge" in history and "set_knowledge" not in history


async def test_query_json_separates_accepted_and_rejected(scripted: tuple) -> None:
    d, provider, config = scripted
    await make_agent(d)
    provider.replies.append(json.dumps(PROPOSING))
    code, out, err = await aibus_async(config, "query", "who am I?", "--json", timeout=60)
    assert code == 0, err
    printed = json.loads(out)
    [accepted] = printed["actions"]
    assert accepted["action_type"] == "get_knowledge" and accepted["status"] == "executed"
    assert accepted["id"].startswith("act_")
    [rejected] = printed["rejected"]
    assert rejected["action_type"] == "set_knowledge" and "key" in rejected["reason"]
    assert printed["summary"] == "Looked it up." and printed["event_id"].startswith("evt_")


# -- 7. hints that work, status exit codes and one wording for a refused token ----------------------------------


def test_not_running_names_a_start_command_that_works_from_here(tmp_path: Path) -> None:
    config = write_config(tmp_path, port=free_port())
    token = tmp_path / "data" / "api-token"
    token.parent.mkdir(parents=True)
    token.write_text("x")
    port = yaml.safe_load(config.read_text())["server"]["port"]
    for args in (["status"], ["events"], ["query", "hello", "--timeout", "5"]):
        result = aibus(config, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr == (
            f"aibus: the daemon is not running at http://127.0.0.1:{port} (start it: {CHECKOUT_RUN})\n"
        ), result.stderr
    assert CHECKOUT_RUN.is_file()


def test_wrong_token_reads_the_same_everywhere(daemon_process: DaemonProcess, tmp_path: Path) -> None:
    real = daemon_process.token
    daemon_process.token_path.write_text("not-the-token")
    try:
        for args in (["status"], ["events"], ["query", "hello", "--timeout", "5"], ["actions", "pending"]):
            result = aibus(daemon_process.config_path, *args)
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            assert result.stderr == (
                f"aibus: the daemon refused the API token in {daemon_process.token_path} (it changed or belongs to "
                "another data dir): missing or wrong API token (Authorization: Bearer ...)\n"
            ), (args, result.stderr)
    finally:
        daemon_process.token_path.write_text(real)


def test_status_exit_code_follows_the_daemon_health(daemon_process: DaemonProcess) -> None:
    config = daemon_process.config_path
    healthy = aibus(config, "status")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.splitlines()[0].startswith("aiventbus ") and ": ok (up " in healthy.stdout

    agent = {"name": "unreachable", "model": "m1", "provider": "ollama", "base_url": "http://127.0.0.1:9"}
    created = httpx.post(daemon_process.base_url + "/api/v1/agents", json=agent, headers=daemon_process.headers())
    assert created.status_code == 201, created.text

    wait_for(lambda: aibus(config, "status").returncode == 2, timeout=30)
    result = aibus(config, "status")
    assert result.returncode == 2
    assert ": degraded (up " in result.stdout.splitlines()[0]
    assert any(line.startswith("problem [llm]: ") and "127.0.0.1:9" in line for line in result.stdout.splitlines())
    as_json = aibus(config, "status", "--json")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["status"] == "degraded"


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    """For a daemon in another process, which a blocking loop does not hold up."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not reached within {timeout:g} s"
        time.sleep(0.5)
