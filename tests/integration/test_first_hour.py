"""The first hour, daemon side: queued interactive work expires while no model answers, and nothing else does."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.daemon import (
    RunningDaemon,
    free_port,
    running_daemon,
    start_daemon_process,
    stop_process,
    write_config,
)
from tests.support.ollama_server import OLLAMA_MODEL, OllamaServer
from tests.support.waiting import eventually

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port: every LLM call is refused


async def make_agent(d: RunningDaemon, name: str, pattern: str) -> str:
    response = await d.client.post("/api/v1/agents", json={"name": name, "model": "m1"})
    assert response.status_code == 201, response.text
    agent_id = str(response.json()["id"])
    rule = {"name": f"{name} rule", "topic_pattern": pattern, "consumer_id": agent_id}
    assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return agent_id


async def publish(d: RunningDaemon, topic: str) -> dict[str, Any]:
    response = await d.client.post("/api/v1/events", json={"topic": topic, "payload": {"text": "hello"}})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def assignments_of(d: RunningDaemon, event_id: str) -> list[dict[str, Any]]:
    return list((await d.client.get(f"/api/v1/events/{event_id}/assignments")).json()["assignments"])


async def events_on(d: RunningDaemon, topic: str) -> list[dict[str, Any]]:
    return list((await d.client.get("/api/v1/events", params={"topic": topic})).json()["events"])


async def test_a_user_query_expires_while_the_llm_is_unreachable_and_other_work_stays(tmp_path: Path) -> None:
    overrides = {"lanes": {"interactive_expiry_seconds": 1.0}, "ollama": {"base_url": UNREACHABLE}}
    async with running_daemon(tmp_path, overrides) as d:
        asker = await make_agent(d, "asker", "user.*")
        await make_agent(d, "watcher", "notes.*")
        await make_agent(d, "guard", "security.*")
        query = await publish(d, "user.query")
        note = await publish(d, "notes.saved")
        alert = await publish(d, "security.alert")

        async def expired() -> list[dict[str, Any]]:
            return await events_on(d, "system.assignment_expired")

        [report] = await eventually(expired)
        [assignment] = await assignments_of(d, query["id"])
        assert assignment["status"] == "expired" and assignment["lane"] == "interactive"
        assert "127.0.0.1:9" in assignment["last_error"]
        payload = report["payload"]
        assert set(payload) == {"assignment_id", "event_id", "agent_id", "waited_seconds", "reason"}
        assert payload["assignment_id"] == assignment["id"]
        assert payload["event_id"] == query["id"] and payload["agent_id"] == asker
        assert payload["waited_seconds"] >= 1.0
        assert payload["reason"] == assignment["last_error"]
        assert report["parent_event"] == query["id"]
        assert (await d.client.get(f"/api/v1/events/{query['id']}")).json()["status"] == "failed"

        # Ambient and critical work is older than the expiry too, yet stays queued for the model.
        others = [a for event in (note, alert) for a in await assignments_of(d, event["id"])]
        assert sorted(a["lane"] for a in others) == ["ambient", "critical"]

        async def older_than_the_expiry() -> bool:
            return all(d.daemon.clock() - a["created_at"] > 1.0 for a in others)

        await eventually(older_than_the_expiry)
        assert await d.daemon.scheduler.expire_overdue() == []
        for event in (note, alert):
            [still] = await assignments_of(d, event["id"])
            assert still["status"] in {"pending", "claimed"}  # waiting, or probing the server
            assert (await d.client.get(f"/api/v1/events/{event['id']}")).json()["status"] != "failed"

        # A later question expires as well instead of piling up behind the first one.
        second = await publish(d, "user.query")

        async def second_expired() -> bool:
            return [a["status"] for a in await assignments_of(d, second["id"])] == ["expired"]

        await eventually(second_expired)
        status = (await d.anonymous.get("/api/v1/system/status")).json()
        scheduler = status["components"]["scheduler"]
        assert scheduler["expired"] == 2 and scheduler["interactive_expiry_seconds"] == 1.0
        metrics = (await d.anonymous.get("/metrics")).text
        assert f'aiventbus_assignment_state_transitions_total{{agent_id="{asker}",state="expired"}} 2.0' in metrics


async def test_expiry_zero_never_expires(tmp_path: Path) -> None:
    overrides = {"lanes": {"interactive_expiry_seconds": 0}, "ollama": {"base_url": UNREACHABLE}}
    async with running_daemon(tmp_path, overrides) as d:
        await make_agent(d, "asker", "user.*")
        query = await publish(d, "user.query")

        async def waited_for_the_model() -> bool:
            [assignment] = await assignments_of(d, query["id"])
            return bool(assignment["last_error"]) and d.daemon.clock() - assignment["created_at"] > 0.5

        await eventually(waited_for_the_model)
        assert await d.daemon.scheduler.expire_overdue() == []
        [assignment] = await assignments_of(d, query["id"])
        assert assignment["status"] in {"pending", "claimed"}  # claimed while it probes whether the server is back
        assert await events_on(d, "system.assignment_expired") == []


# -- the daemon process: one per data dir, bind before announcing --------------------------------------------------


def start_and_fail(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m aiventbus` that is expected to exit by itself."""
    return subprocess.run(
        [sys.executable, "-m", "aiventbus", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_taken_port_is_one_line_naming_the_port_and_how_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config_path = write_config(tmp_path, port=port)
        result = start_and_fail(config_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"aiventbus: cannot listen on 127.0.0.1:{port}: the port is already in use;"
        f" choose another port with --port N, or server.port in {config_path}"
    ]
    assert not (tmp_path / "data" / "aiventbus.db").exists()  # nothing was opened before the bind


def test_the_daemon_announces_the_port_it_bound(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, port=free_port())
    port = free_port()  # --port overrides the file's server.port
    running = start_daemon_process(config_path, extra_args=["--port", str(port)])
    try:
        lines = running.log_path.read_text().splitlines()
        [announced] = [line for line in lines if "listening on" in line]
        assert announced.endswith(f"listening on http://127.0.0.1:{port}")
    finally:
        assert stop_process(running.process) == 0


def test_a_second_daemon_on_the_same_data_dir_names_the_pid_holding_it(tmp_path: Path) -> None:
    first = start_daemon_process(write_config(tmp_path, port=free_port()))
    try:
        lock_file = tmp_path / "data" / "daemon.lock"
        assert lock_file.read_text().strip() == str(first.process.pid)
        second_config = tmp_path / "second" / "config.yaml"
        second_config.parent.mkdir()
        second_config.write_text(first.config_path.read_text().replace(str(first.port), str(free_port())))
        result = start_and_fail(second_config)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"aiventbus: another aiventbus daemon (pid {first.process.pid}) is already running on the data dir"
            f" {tmp_path / 'data'}; stop it first, or give this one another paths.data_dir"
        ]
        assert httpx.get(first.base_url + "/api/v1/system/status", timeout=5).status_code == 200  # untouched
    finally:
        assert stop_process(first.process) == 0
    assert lock_file.read_text() == ""  # released on a clean exit
    again = start_daemon_process(first.config_path)
    assert stop_process(again.process) == 0


def test_a_lock_file_left_by_kill_9_does_not_block_the_next_start(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, port=free_port())
    killed = start_daemon_process(config_path)
    os.killpg(killed.process.pid, signal.SIGKILL)
    killed.process.wait(15)
    lock_file = tmp_path / "data" / "daemon.lock"
    assert lock_file.read_text().strip() == str(killed.process.pid)  # stale, left behind
    restarted = start_daemon_process(config_path)
    try:
        assert lock_file.read_text().strip() == str(restarted.process.pid)
    finally:
        assert stop_process(restarted.process) == 0


# -- status follows agent changes at once ----------------------------------------------------------------------------


async def llm_status(d: RunningDaemon) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    body = (await d.anonymous.get("/api/v1/system/status")).json()
    return body["status"], body["components"]["llm"]["targets"], body["problems"]


async def test_status_follows_agent_changes_with_no_stale_target(tmp_path: Path, ollama_server: OllamaServer) -> None:
    # The default model is the one the agent ends up with: the status lists it once, in use or not.
    overrides = {"ollama": {"base_url": ollama_server.base_url, "default_model": OLLAMA_MODEL}}
    async with running_daemon(tmp_path, overrides) as d:
        created = await d.client.post("/api/v1/agents", json={"name": "helper", "model": "no-such-model"})
        agent_id = created.json()["id"]

        async def missing_reported() -> bool:
            state, _, problems = await llm_status(d)
            return state == "degraded" and any("no-such-model" in p["problem"] for p in problems)

        await eventually(missing_reported)

        patched = await d.client.patch(f"/api/v1/agents/{agent_id}", json={"model": OLLAMA_MODEL})
        assert patched.status_code == 200, patched.text
        state, targets, problems = await llm_status(d)  # the very next request
        assert [t["model"] for t in targets] == [OLLAMA_MODEL]
        assert not [p for p in problems if "no-such-model" in p["problem"]]

        async def new_model_checked() -> bool:
            state, targets, _ = await llm_status(d)
            return state == "ok" and [t["ok"] for t in targets] == [True]

        await eventually(new_model_checked)

        assert (await d.client.patch(f"/api/v1/agents/{agent_id}", json={"enabled": False})).status_code == 200
        assert [(t["model"], t["in_use"]) for t in (await llm_status(d))[1]] == [(OLLAMA_MODEL, False)]
        assert (await d.client.patch(f"/api/v1/agents/{agent_id}", json={"enabled": True})).status_code == 200
        assert [(t["model"], t["in_use"]) for t in (await llm_status(d))[1]] == [(OLLAMA_MODEL, True)]

        second = await d.client.post("/api/v1/agents", json={"name": "other", "model": "also-missing"})
        rule = {"name": "other rule", "topic_pattern": "notes.*", "consumer_id": second.json()["id"]}
        assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
        assert sorted(t["model"] for t in (await llm_status(d))[1]) == sorted([OLLAMA_MODEL, "also-missing"])

        async def second_reported() -> bool:
            _, _, problems = await llm_status(d)
            return any("also-missing" in p["problem"] for p in problems)

        await eventually(second_reported)
        assert (await d.client.delete(f"/api/v1/agents/{second.json()['id']}")).status_code in {200, 204}
        state, targets, problems = await llm_status(d)
        assert state == "ok" and [t["model"] for t in targets] == [OLLAMA_MODEL] and problems == []


# -- /docs and /redoc work offline ------------------------------------------------------------------------------------


def referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)


async def test_docs_and_redoc_load_only_same_origin_assets(daemon: RunningDaemon) -> None:
    for page in ("/docs", "/redoc"):
        response = await daemon.anonymous.get(page)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        assert not re.search(r"https?://", response.text), f"{page} names another origin"
        urls = referenced_urls(response.text)
        assert urls, page
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), f"{page} references {url}"
            asset = await daemon.anonymous.get(url)  # no token needed for the page's own files
            assert asset.status_code == 200, f"{page}: {url} -> {asset.status_code}"
            assert asset.content
        foreign = await daemon.anonymous.get(urls[0], headers={"Host": "evil.example"})
        assert foreign.status_code == 403


async def test_openapi_declares_the_bearer_token_where_it_is_needed(daemon: RunningDaemon) -> None:
    spec = (await daemon.anonymous.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The token in the daemon's token file (data dir/api-token, or server.token_file)",
    }
    paths = spec["paths"]
    assert paths["/api/v1/events"]["post"]["security"] == [{"bearerToken": []}]
    assert paths["/api/v1/agents/{agent_id}"]["patch"]["security"] == [{"bearerToken": []}]
    assert "security" not in paths["/api/v1/system/status"]["get"]  # public, as the guard treats it
    assert "security" not in paths["/api/v1/webhooks/{name}"]["post"]  # signed by HMAC instead


def test_scripts_run_installs_only_when_stale_and_prints_no_banner(tmp_path: Path) -> None:
    """The README's first command, run a second time: no pip, no setuptools banner, only the daemon's own output
    and (with ~/.local/bin off PATH) the one line that says how to put `aibus` on PATH."""
    root = Path(__file__).resolve().parents[2]
    venv = Path(sys.prefix)
    env = {
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(venv))),
        "AIVENTBUS_VENV": str(venv),
        "LANG": "C.UTF-8",
    }

    def run() -> subprocess.CompletedProcess[str]:
        script = root / "scripts" / "run"
        return subprocess.run(
            [str(script), "--version"], env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
        )

    first = run()  # installs if this venv's install is stale (a venv made by scripts/test is current)
    assert first.returncode == 0, first.stderr
    again = run()
    assert again.returncode == 0, again.stderr
    assert re.fullmatch(r"aiventbus \S+\n", again.stdout), again.stdout
    assert again.stderr.splitlines() == [
        f'to run aibus from any shell: export PATH="{venv}/bin:$PATH" (or put ~/.local/bin on PATH and run scripts/run'
        " again)"
    ]
