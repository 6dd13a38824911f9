"""aibus query: publish a user.query, stream the agent's answer as it is generated, exit when it is done."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import TYPE_CHECKING, Any

import typer

from aiventbus.cli.client import CliError, DaemonClient, client, friendly_errors, not_running
from aiventbus.cli.groups import command_group
from aiventbus.cli.query_report import (
    WaitReason,
    accepted_summary,
    action_line,
    rejection_line,
    rejections,
    wait_reason,
)
from aiventbus.cli.waiting import WaitDisplay

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

app = command_group()
SUMMARY_START = re.compile(r'"summary"\s*:\s*"')
DEFAULT_TIMEOUT = 120.0
POLL_SECONDS = 2.0
# After the assignment says `expired`, how long to wait for system.assignment_expired (it carries the waited time).
EXPIRY_EVENT_GRACE = 5.0
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
    from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    try:
        socket = connect(ws_url(daemon), additional_headers=daemon.headers(), proxy=None, open_timeout=10)
    except InvalidStatus as error:
        # A refused handshake carries no reason; an authenticated request tells a bad token apart (and says so).
        daemon.get("/api/v1/events", limit=1)
        raise CliError(f"the daemon refused the live connection (HTTP {error.response.status_code})") from None
    except (OSError, InvalidHandshake, TimeoutError):
        raise not_running(daemon.base_url) from None
    try:
        hello = json.loads(socket.recv(timeout=10))
    except (TimeoutError, WebSocketException, ValueError):
        socket.close()
        raise CliError("the daemon did not open the live stream (/ws)") from None
    if hello.get("channel") != "hello":
        socket.close()
        raise CliError(f"unexpected first message from /ws: {str(hello)[:100]}")
    return socket


class QuestionExpired(CliError):
    """The daemon expired the queued question; the fix, when known, is added by the caller."""


class QueryWatch:
    """Follows the live messages about one published event until its answer (or a failure) arrives.

    The answer is complete once the answering agent's assignment is `completed`: the daemon handles the proposed
    actions between publishing the response and completing the assignment.
    """

    def __init__(self, event_id: str, stream_tokens: bool) -> None:
        self.event_id = event_id
        self.stream_tokens = stream_tokens
        self.summary = SummaryStream()
        self.attempt = 1
        self.streamed = False
        self.response: dict[str, Any] | None = None
        self.completed = False
        self.expired_reason: str | None = None
        self.expired_at: float | None = None

    @property
    def done(self) -> bool:
        return self.response is not None and (self.completed or not self.proposals)

    @property
    def proposals(self) -> list[Any]:
        payload = (self.response or {}).get("payload") or {}
        return list(payload.get("proposed_actions") or [])

    def handle(self, message: dict[str, Any]) -> bool:
        """True once the answer is in; raises CliError when the event cannot be answered."""
        channel, data = message.get("channel"), message.get("data") or {}
        if channel == "token" and data.get("event_id") == self.event_id:
            self._token(data)
        elif channel == "assignment" and data.get("event_id") == self.event_id:
            self._assignment(data)
        elif channel == "event" and data.get("parent_event") == self.event_id:
            self._event(data)
        return self.done

    def check_expiry(self) -> None:
        """End on an `expired` assignment whose system.assignment_expired event did not come."""
        if self.expired_at is not None and time.monotonic() - self.expired_at >= EXPIRY_EVENT_GRACE:
            raise QuestionExpired(f"your question expired in the queue: {self.expired_reason}")

    def _event(self, data: dict[str, Any]) -> None:
        topic, payload = data.get("topic"), data.get("payload") or {}
        if topic == "system.parse_failure":
            error = payload.get("error", "")
            raise CliError(f"the agent's answer was not valid JSON even after a repair attempt: {error}")
        if topic == "system.assignment_expired":
            waited = float(payload.get("waited_seconds") or 0)
            raise QuestionExpired(f"your question expired after {waited:.0f} s in the queue: {payload.get('reason')}")
        if self.response is None and str(data.get("source", "")).startswith("agent:"):
            self.response = data

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
                "(aibus agents add, aibus rules add)"
            )
        if state == "failed":
            raise CliError(f"the agent failed: {data.get('error') or 'unknown error'}")
        if state == "expired" and self.expired_at is None:
            self.expired_reason = data.get("error") or "no model could take it in time"
            self.expired_at = time.monotonic()
        if state == "completed" and self.response is not None:
            self.completed = data.get("agent_id") == (self.response.get("payload") or {}).get("agent_id")


class Waiter:
    """Asks the daemon why the question has no answer yet, at most every POLL_SECONDS, and shows it."""

    def __init__(self, daemon: DaemonClient, event_id: str, display: WaitDisplay) -> None:
        self.daemon = daemon
        self.event_id = event_id
        self.display = display
        self.agents: dict[str, dict[str, Any]] = {}
        self.next_poll = time.monotonic() + min(POLL_SECONDS, 1.0)
        self.reason: WaitReason | None = None

    def tick(self, watch: QueryWatch) -> None:
        if watch.streamed or watch.response is not None:
            self.display.stop()
            return
        if time.monotonic() >= self.next_poll:
            self.next_poll = time.monotonic() + POLL_SECONDS
            self.reason = self._reason()
            self.display.show(str(self.reason), self.reason.stalled)
        else:
            self.display.refresh()

    def _reason(self) -> WaitReason:
        assignments = self.daemon.get(f"/api/v1/events/{self.event_id}/assignments")["assignments"]
        problems = self.daemon.get("/api/v1/system/status")["problems"]
        for assignment in assignments:
            agent_id = str(assignment["agent_id"])
            if agent_id not in self.agents:
                try:
                    self.agents[agent_id] = self.daemon.get(f"/api/v1/agents/{agent_id}")
                except CliError:
                    self.agents[agent_id] = {}  # deleted meanwhile: its problems cannot be told apart
        return wait_reason(assignments, problems, self.agents)


@app.command()
def query(
    text: str = typer.Argument(..., help="what to ask"),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT, "--timeout", min=1, help="give up after this many seconds (the reason is shown while waiting)"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print the response event's payload as JSON, with the accepted and rejected actions"
    ),
) -> None:
    """Ask the agents (publishes user.query) and print the answer as it streams, then what became of its actions."""
    with friendly_errors():
        if not text.strip():
            raise CliError("the question is empty")
        daemon = client(timeout=30)
        with open_live(daemon) as live:
            event = daemon.post("/api/v1/events", {"topic": "user.query", "payload": {"text": text}, "source": "user"})
            watch = QueryWatch(event["id"], stream_tokens=not as_json)
            display = WaitDisplay("an answer", timeout)
            waiter = Waiter(daemon, event["id"], display)
            try:
                _follow(live, watch, waiter, timeout)
            except QuestionExpired as expired:
                fix = f" -> {waiter.reason.fix}" if waiter.reason and waiter.reason.fix else ""
                raise CliError(f"{expired}{fix}") from None
            except CliError:
                if watch.streamed:
                    typer.echo("")
                raise
            finally:
                display.stop()
        _print_answer(daemon, watch, as_json)


def _follow(live: ClientConnection, watch: QueryWatch, waiter: Waiter, timeout: float) -> None:
    from websockets.exceptions import WebSocketException

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CliError(gave_up(timeout, watch.event_id, waiter.display.reason))
        waiter.tick(watch)
        watch.check_expiry()
        try:
            message = json.loads(live.recv(timeout=min(remaining, 0.5)))
        except TimeoutError:
            continue
        except WebSocketException:
            raise CliError("the daemon closed the live connection before the answer arrived") from None
        if message.get("channel") == "token" and (message.get("data") or {}).get("event_id") == watch.event_id:
            waiter.display.stop()  # the answer streams to stdout from here on
        if watch.handle(message):
            return


def gave_up(timeout: float, event_id: str, reason: str) -> str:
    why = f": {reason}" if reason else ""
    return f"no answer within {timeout:g} s{why} (event {event_id}; wait longer with --timeout)"


def _print_answer(daemon: DaemonClient, watch: QueryWatch, as_json: bool) -> None:
    assert watch.response is not None
    payload = watch.response.get("payload", {})
    accepted, rejected = _fates(daemon, watch) if watch.proposals else ([], [])
    if as_json:
        shown = {
            **payload,
            "event_id": watch.response.get("id"),
            "actions": [accepted_summary(action) for action in accepted],
            "rejected": rejected,
        }
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    if watch.streamed:
        typer.echo("")
    else:
        typer.echo(str(payload.get("summary", "")))
    for action in accepted:
        typer.echo(action_line(action))
    for rejection in rejected:
        typer.echo(rejection_line(rejection))


def _fates(daemon: DaemonClient, watch: QueryWatch) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The actions the daemon accepted from this response (oldest first), and the proposals it rejected."""
    assert watch.response is not None
    response_id, trace_id = watch.response["id"], watch.response["trace_id"]
    history = daemon.get("/api/v1/actions/history", trace_id=trace_id, limit=1000)["actions"]
    accepted = sorted((a for a in history if a.get("response_event_id") == response_id), key=lambda a: a["created_at"])
    trace = daemon.get(f"/api/v1/events/trace/{trace_id}")["events"]
    return accepted, rejections(trace, response_id)
