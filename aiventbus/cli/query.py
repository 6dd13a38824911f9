"""aibus query: publish a user.query, stream the agent's answer as it is generated, exit when it is done."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import typer
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from aiventbus.cli.client import CliError, DaemonClient, client, friendly_errors

app = typer.Typer()
SUMMARY_START = re.compile(r'"summary"\s*:\s*"')
ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class SummaryStream:
    """Pulls the text of the "summary" string out of a JSON answer that arrives a few characters at a time."""

    def __init__(self) -> None:
        self.raw = ""
        self.start: int | None = None
        self.position = 0
        self.done = False

    def feed(self, chunk: str) -> str:
        """The summary characters that `chunk` completes (escapes decoded)."""
        self.raw += chunk
        if self.start is None:
            match = SUMMARY_START.search(self.raw)
            if match is None:
                return ""
            self.start = self.position = match.end()
        out: list[str] = []
        while not self.done and self.position < len(self.raw):
            char = self.raw[self.position]
            if char == '"':
                self.done = True
                break
            if char != "\\":
                out.append(char)
                self.position += 1
                continue
            if self.position + 1 >= len(self.raw):
                break  # the escape is not complete yet
            code = self.raw[self.position + 1]
            if code == "u":
                digits = self.raw[self.position + 2 : self.position + 6]
                if len(digits) < 4:
                    break
                try:
                    out.append(chr(int(digits, 16)))
                except ValueError:
                    out.append("?")
                self.position += 6
                continue
            out.append(ESCAPES.get(code, code))
            self.position += 2
        return "".join(out)


def ws_url(daemon: DaemonClient) -> str:
    base = daemon.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}/ws?channels=event,token,assignment"


def open_live(daemon: DaemonClient) -> ClientConnection:
    try:
        socket = connect(ws_url(daemon), additional_headers=daemon.headers(), proxy=None, open_timeout=10)
    except InvalidStatus as error:
        raise CliError(f"the daemon refused the live connection (HTTP {error.response.status_code})") from None
    except (OSError, InvalidHandshake, TimeoutError):
        raise CliError(f"the daemon is not running at {daemon.base_url} (start it: python -m aiventbus)") from None
    try:
        hello = json.loads(socket.recv(timeout=10))
    except (TimeoutError, WebSocketException, ValueError):
        socket.close()
        raise CliError("the daemon did not open the live stream (/ws)") from None
    if hello.get("channel") != "hello":
        socket.close()
        raise CliError(f"unexpected first message from /ws: {str(hello)[:100]}")
    return socket


class QueryWatch:
    """Follows the live messages about one published event until its answer (or a failure) arrives."""

    def __init__(self, event_id: str, stream_tokens: bool) -> None:
        self.event_id = event_id
        self.stream_tokens = stream_tokens
        self.summary = SummaryStream()
        self.attempt = 1
        self.streamed = False
        self.response: dict[str, Any] | None = None
        self.waiting_noted = False

    def handle(self, message: dict[str, Any]) -> bool:
        """True once the answer is in; raises CliError when the event cannot be answered."""
        channel, data = message.get("channel"), message.get("data") or {}
        if channel == "token" and data.get("event_id") == self.event_id:
            self._token(data)
        elif channel == "assignment" and data.get("event_id") == self.event_id:
            self._assignment(data)
        elif channel == "event" and data.get("parent_event") == self.event_id:
            if data.get("topic") == "system.parse_failure":
                error = data.get("payload", {}).get("error", "")
                raise CliError(f"the agent's answer was not valid JSON even after a repair attempt: {error}")
            if str(data.get("source", "")).startswith("agent:"):
                self.response = data
                return True
        return False

    def _token(self, data: dict[str, Any]) -> None:
        if data.get("attempt", 1) != self.attempt:
            self.attempt = data.get("attempt", 1)
            self.summary = SummaryStream()
            if self.streamed and self.stream_tokens:
                typer.echo("\n(repairing the answer...)")
        text = self.summary.feed(str(data.get("text", "")))
        if text and self.stream_tokens:
            sys.stdout.write(text)
            sys.stdout.flush()
            self.streamed = True

    def _assignment(self, data: dict[str, Any]) -> None:
        state = data.get("state")
        if state == "unrouted":
            raise CliError(
                "no agent handles user.query: create an agent and a routing rule for user.* "
                "(POST /api/v1/agents, POST /api/v1/routing-rules)"
            )
        if state == "failed":
            raise CliError(f"the agent failed: {data.get('error') or 'unknown error'}")
        if state == "requeued" and data.get("error") and not self.waiting_noted:
            self.waiting_noted = True
            typer.echo(f"aibus: waiting: {data['error']}", err=True)


@app.command()
def query(
    text: str = typer.Argument(..., help="what to ask"),
    timeout: float = typer.Option(300.0, "--timeout", min=1, help="seconds to wait for the answer"),
    as_json: bool = typer.Option(False, "--json", help="print the response event's payload as JSON"),
) -> None:
    """Ask the agents (publishes user.query) and print the answer as it streams."""
    with friendly_errors():
        if not text.strip():
            raise CliError("the question is empty")
        daemon = client(timeout=30)
        with open_live(daemon) as live:
            event = daemon.post("/api/v1/events", {"topic": "user.query", "payload": {"text": text}, "source": "user"})
            watch = QueryWatch(event["id"], stream_tokens=not as_json)
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CliError(f"no answer within {timeout:g}s (event {event['id']}: aibus events --topic user.*)")
                try:
                    message = json.loads(live.recv(timeout=remaining))
                except TimeoutError:
                    continue
                except WebSocketException:
                    raise CliError("the daemon closed the live connection before the answer arrived") from None
                if watch.handle(message):
                    break
        _print_answer(watch, as_json)


def _print_answer(watch: QueryWatch, as_json: bool) -> None:
    assert watch.response is not None
    payload = watch.response.get("payload", {})
    if as_json:
        typer.echo(json.dumps({**payload, "event_id": watch.response.get("id")}, indent=2, ensure_ascii=False))
        return
    if watch.streamed:
        typer.echo("")
    else:
        typer.echo(str(payload.get("summary", "")))
    for action in payload.get("proposed_actions") or []:
        typer.echo(f"proposed action: {action.get('action_type')}")
