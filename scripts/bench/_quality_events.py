"""The agent-quality bench's pure parts: a seeded, varied event set with known answers, and the scoring.

No I/O here: `generate_cases` is deterministic for a seed, `answer_is_correct` and `summarize` only read values.
"""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

# Placed in the daemon's knowledge before the run; the "knowledge" questions ask for these values.
KNOWLEDGE_FACTS: dict[str, tuple[str, str]] = {
    "user.wifi_network": ("BlueHeron-42", "What is the name of my wifi network?"),
    "user.dentist": ("Dr. Okonkwo", "What is the name of my dentist?"),
    "user.backup_drive": ("Vault-7", "What is the name of my backup drive?"),
    "user.car_plate": ("KX-4417", "What is my car's licence plate?"),
    "user.cat_name": ("Pistachio", "What is my cat called?"),
    "home.router_ip": ("192.168.7.1", "What is the IP address of my home router?"),
}

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Canada": "Ottawa",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Portugal": "Lisbon",
    "Greece": "Athens",
    "Russia": "Moscow",
    "China": "Beijing",
    "Ireland": "Dublin",
}

MONTH_DAYS = {
    "January": 31,
    "March": 31,
    "April": 30,
    "May": 31,
    "June": 30,
    "July": 31,
    "August": 31,
    "September": 30,
    "October": 31,
    "November": 30,
    "December": 31,
}

SECURITY_LINES = [
    ("sshd", "Failed password for root from 203.0.113.{n} port {port} ssh2", ("failed password", "ssh", "root")),
    ("sshd", "Invalid user admin from 198.51.100.{n} port {port}", ("invalid user", "ssh", "admin")),
    ("sudo", "pam_unix(sudo:auth): authentication failure; logname=guest uid=10{n} user=root", ("sudo", "auth")),
]
BENIGN_LINES = [
    ("cron", "(alex) CMD (/usr/bin/backup --incremental) finished in {n} s", ("backup", "cron")),
    ("systemd", "Started Daily apt upgrade and clean activities (run {n}).", ("apt", "upgrade")),
    ("NetworkManager", "wlan0: DHCP lease renewed for 192.168.7.{n}", ("dhcp", "lease")),
]
LOG_LINES = [
    ("log.error", "kernel", "Out of memory: Killed process {pid} (chrome) total-vm:{n}kB"),
    ("log.error", "smartd", "Device: /dev/sda, {n} Currently unreadable (pending) sectors"),
    ("log.warning", "systemd", "Disk usage on / is at {pct}%"),
    ("log.info", "systemd", "Started Session {n} of user alex."),
    ("log.info", "cron", "(alex) CMD (/home/alex/bin/sync-photos) pid {pid}"),
    ("log.error", "nginx", "connect() failed (111: Connection refused) while connecting to upstream, port {port}"),
    ("log.warning", "sshd", "Failed password for invalid user test from 203.0.113.{n} port {port} ssh2"),
    ("log.warning", "sshd", "Failed password for root from 198.51.100.{n} port {port} ssh2"),
    ("log.warning", "sudo", "alex : 3 incorrect password attempts ; TTY=pts/{n} ; USER=root ; COMMAND=/bin/bash"),
    ("log.critical", "kernel", "EXT4-fs error (device sda{n}): ext4_find_entry: reading directory lblock 0"),
]
CLIPBOARD_TEXTS = [
    "https://github.com/example/project/pull/{n}",
    "def area(r):\n    return 3.14159 * r * r  # v{n}",
    "Meeting moved to Thursday {n}:30, room B",
    "Traceback (most recent call last):\n  File \"app.py\", line {n}, in <module>\nKeyError: 'user_id'",
    "42 Wallaby Way, Sydney ({n})",
    "TODO: renew passport before {n} March",
    "SELECT * FROM orders WHERE total > {n};",
    "ssh-keygen -t ed25519 -C alex@laptop-{n}",
]
FILE_NAMES = [
    ("Documents", "q{n}-budget.ods"),
    ("Downloads", "invoice-{n}.pdf"),
    ("Pictures", "IMG_{n}.jpg"),
    ("projects/site", "index-{n}.html"),
    ("Documents", "notes-{n}.md"),
    ("Downloads", "setup-{n}.sh"),
    ("Music", "track-{n}.flac"),
]
NOTIFICATIONS = [
    ("Thunderbird", "New mail from Dana", "Re: contract draft v{n}"),
    ("Slack", "#ops", "Deploy {n} finished with 2 warnings"),
    ("Calendar", "Standup in 5 minutes", "Daily standup #{n}"),
    ("Battery", "Battery low", "{n}% remaining"),
    ("Firefox", "Download complete", "report-{n}.pdf"),
]
WEBHOOKS = [
    ("github", {"action": "push", "repository": "alex/site", "commits": "{n}", "branch": "main"}),
    ("ci", {"pipeline": "build-{n}", "status": "failed", "stage": "test"}),
    ("stripe", {"type": "payment_intent.succeeded", "amount": "{n}00", "currency": "eur"}),
    ("uptime", {"monitor": "api.example.com", "status": "down", "for_seconds": "{n}"}),
]


@dataclass(frozen=True)
class Expectation:
    """A known answer: correct when the summary names one of `any_of` and none of `none_of` (case-insensitive)."""

    any_of: tuple[str, ...]
    none_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class BenchEvent:
    topic: str
    payload: dict[str, Any]
    source: str
    kind: str
    expect: Expectation | None = None

    def publish_body(self) -> dict[str, Any]:
        return {"topic": self.topic, "payload": self.payload, "source": self.source}


@dataclass(frozen=True)
class Case:
    """Events published in order and judged together (e.g. a file event, then a question about it)."""

    index: int
    events: tuple[BenchEvent, ...]


def generate_cases(total_events: int, seed: int) -> list[Case]:
    """Cases whose events add up to exactly `total_events`; the same seed gives the same set."""
    rng = random.Random(seed)
    kinds = [
        ("clipboard", 14),
        ("file", 12),
        ("log", 18),
        ("notification", 9),
        ("webhook", 8),
        ("arithmetic", 9),
        ("capital", 7),
        ("month", 6),
        ("knowledge", 7),
        ("file_question", 6),
        ("security_pick", 4),
    ]
    names = [name for name, _ in kinds]
    weights = [weight for _, weight in kinds]
    cases: list[Case] = []
    remaining = total_events
    while remaining > 0:
        kind = rng.choices(names, weights)[0]
        if kind == "file_question" and remaining < 2:
            continue
        events = _CASE_MAKERS[kind](rng)
        cases.append(Case(len(cases), events))
        remaining -= len(events)
    return cases


def _query(text: str, kind: str, expect: Expectation) -> BenchEvent:
    return BenchEvent("user.query", {"text": text}, "user", kind, expect)


def _clipboard(rng: random.Random) -> tuple[BenchEvent, ...]:
    text = rng.choice(CLIPBOARD_TEXTS).format(n=rng.randint(2, 98))
    return (
        BenchEvent("clipboard.text", {"text": text, "length": len(text), "truncated": False}, "clipboard", "clipboard"),
    )


def _file_event(rng: random.Random) -> BenchEvent:
    folder, pattern = rng.choice(FILE_NAMES)
    name = pattern.format(n=rng.randint(2, 9999))
    topic = rng.choice(["file.created", "file.created", "file.modified"])
    path = f"/home/alex/{folder}/{name}"
    payload = {"path": path, "name": name, "size": rng.randint(200, 9_000_000), "type": "file"}
    return BenchEvent(topic, payload, "files", "file")


def _file(rng: random.Random) -> tuple[BenchEvent, ...]:
    return (_file_event(rng),)


def _log(rng: random.Random) -> tuple[BenchEvent, ...]:
    topic, unit, pattern = rng.choice(LOG_LINES)
    message = pattern.format(
        n=rng.randint(2, 250), pid=rng.randint(300, 65000), port=rng.randint(1024, 65000), pct=rng.randint(91, 99)
    )
    priority = {"log.critical": 2, "log.error": 3, "log.warning": 4, "log.info": 6}[topic]
    payload = {
        "unit": unit,
        "identifier": unit,
        "message": message,
        "pid": rng.randint(300, 65000),
        "priority": priority,
    }
    kind = "security_log" if unit in ("sshd", "sudo") else "log"
    return (BenchEvent(topic, payload, "system_log", kind),)


def _notification(rng: random.Random) -> tuple[BenchEvent, ...]:
    app, summary, body = rng.choice(NOTIFICATIONS)
    payload = {"app": app, "summary": summary, "body": body.format(n=rng.randint(2, 99)), "urgency": "normal"}
    return (BenchEvent("notification.received", payload, "notification", "notification"),)


def _webhook(rng: random.Random) -> tuple[BenchEvent, ...]:
    name, template = rng.choice(WEBHOOKS)
    n = str(rng.randint(2, 999))
    body = {key: value.replace("{n}", n) for key, value in template.items()}
    return (BenchEvent(f"webhook.{name}", {"hook": name, "body": body}, "webhook", "webhook"),)


def _arithmetic(rng: random.Random) -> tuple[BenchEvent, ...]:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    operation = rng.choice(["plus", "times", "minus"])
    if operation == "minus" and b > a:
        a, b = b, a
    result = {"plus": a + b, "times": a * b, "minus": a - b}[operation]
    return (_query(f"What is {a} {operation} {b}?", "arithmetic", Expectation((str(result),))),)


def _capital(rng: random.Random) -> tuple[BenchEvent, ...]:
    country = rng.choice(sorted(CAPITALS))
    return (_query(f"What is the capital of {country}?", "capital", Expectation((CAPITALS[country],))),)


def _month(rng: random.Random) -> tuple[BenchEvent, ...]:
    month = rng.choice(sorted(MONTH_DAYS))
    return (_query(f"How many days are there in {month}?", "month", Expectation((str(MONTH_DAYS[month]),))),)


def _knowledge(rng: random.Random) -> tuple[BenchEvent, ...]:
    key = rng.choice(sorted(KNOWLEDGE_FACTS))
    value, question = KNOWLEDGE_FACTS[key]
    return (_query(question, "knowledge", Expectation((value,))),)


def _file_question(rng: random.Random) -> tuple[BenchEvent, ...]:
    reported = _file_event(rng)
    reported = BenchEvent("file.created", reported.payload, reported.source, reported.kind)
    question = _query(
        "What is the name of the file that was just created?", "file_question", Expectation((reported.payload["name"],))
    )
    return (reported, question)


def _security_pick(rng: random.Random) -> tuple[BenchEvent, ...]:
    n, port = rng.randint(2, 250), rng.randint(1024, 65000)
    unit, pattern, security_words = rng.choice(SECURITY_LINES)
    benign_unit, benign_pattern, benign_words = rng.choice(BENIGN_LINES)
    security = f"{unit}: {pattern.format(n=n, port=port)}"
    benign = f"{benign_unit}: {benign_pattern.format(n=n)}"
    first_is_security = rng.random() < 0.5
    lines = (security, benign) if first_is_security else (benign, security)
    right, wrong = ("line 1", "line 2") if first_is_security else ("line 2", "line 1")
    text = f"Which of these two log lines is a security problem? line 1: {lines[0]} | line 2: {lines[1]}"
    # Right when it names the security line (by number or by its words) and never the harmless one.
    return (_query(text, "security_pick", Expectation((right, *security_words), (wrong, *benign_words))),)


_CASE_MAKERS = {
    "clipboard": _clipboard,
    "file": _file,
    "log": _log,
    "notification": _notification,
    "webhook": _webhook,
    "arithmetic": _arithmetic,
    "capital": _capital,
    "month": _month,
    "knowledge": _knowledge,
    "file_question": _file_question,
    "security_pick": _security_pick,
}


def _mentions(text: str, phrase: str) -> bool:
    """`phrase` as whole words; a number does not match inside a longer number (12 in 120 or 12.5)."""
    pattern = rf"(?<![\w.]){re.escape(phrase.lower())}(?![\w]|\.\d)"
    return re.search(pattern, text) is not None


def answer_is_correct(summary: str | None, expect: Expectation) -> bool:
    if not summary:
        return False
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", summary.lower())  # 1,024 -> 1024
    return any(_mentions(text, p) for p in expect.any_of) and not any(_mentions(text, p) for p in expect.none_of)


# -- per-event results and the summary ------------------------------------------------------------


@dataclass
class EventResult:
    """What the daemon's API/DB and the wire said about one published event."""

    case: int
    position: int
    kind: str
    topic: str
    event_id: str
    outcome: str  # answered | dead_lettered | lost | unrouted | timed_out
    wall_seconds: float
    schema_valid: bool = False
    proposed_actions: int = 0
    invalid_actions: int = 0
    correct: bool | None = None  # None: no known answer
    model_calls: int = 0
    repairs: int = 0
    runaways: int = 0  # calls that ended at the output cap (finish/done reason "length")
    past_cap: int = 0  # calls that produced more tokens than the cap they were sent with
    retries: int = 0
    prompt_tokens: int = 0  # as the server reported them, over all of the event's model calls
    completion_tokens: int = 0
    model_seconds: float = 0.0  # time the model server spent answering (the rest of wall is the daemon and queues)
    system_events: list[str] = field(default_factory=list)
    summary: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


TARGETS = {"schema_valid": 0.99, "valid_actions": 0.95, "lost": 0, "past_cap": 0}


def summarize(results: list[EventResult]) -> dict[str, Any]:
    """The figures the issue asks for, per provider run."""
    answered = [r for r in results if r.outcome == "answered"]
    # A lost event counts as not valid; an unrouted or timed-out one was never judged.
    runs = [r for r in results if r.outcome not in ("unrouted", "timed_out")]
    known = [r for r in results if r.correct is not None]
    proposed = sum(r.proposed_actions for r in answered)
    invalid = sum(r.invalid_actions for r in answered)
    walls = [r.wall_seconds for r in results]
    by_kind: dict[str, list[int]] = {}
    for r in known:
        right, total = by_kind.setdefault(r.kind, [0, 0])
        by_kind[r.kind] = [right + int(bool(r.correct)), total + 1]
    return {
        "events": len(results),
        "answered": len(answered),
        "schema_valid": sum(r.schema_valid for r in runs),
        "schema_valid_share": share(sum(r.schema_valid for r in runs), len(runs)),
        "proposed_actions": proposed,
        "valid_actions": proposed - invalid,
        "valid_action_share": share(proposed - invalid, proposed),
        "known_answers": len(known),
        "correct": sum(bool(r.correct) for r in known),
        "correct_share": share(sum(bool(r.correct) for r in known), len(known)),
        "correct_by_kind": {kind: f"{right}/{total}" for kind, (right, total) in sorted(by_kind.items())},
        "model_calls": sum(r.model_calls for r in results),
        "runaways": sum(r.runaways for r in results),
        "past_cap": sum(r.past_cap for r in results),
        "repairs": sum(r.repairs for r in results),
        "retries": sum(r.retries for r in results),
        "lost": sum(r.outcome == "lost" for r in results),
        "unrouted": sum(r.outcome == "unrouted" for r in results),
        "timed_out": sum(r.outcome == "timed_out" for r in results),
        "dead_lettered": sum(r.outcome == "dead_lettered" for r in results),
        "wall_p50_s": percentile(walls, 0.5),
        "wall_p90_s": percentile(walls, 0.9),
        "wall_mean_s": statistics.fmean(walls) if walls else float("nan"),
        "model_seconds_mean": statistics.fmean(r.model_seconds for r in results) if results else float("nan"),
        "completion_tokens_mean": statistics.fmean(r.completion_tokens for r in results) if results else float("nan"),
        "prompt_tokens_mean": statistics.fmean(r.prompt_tokens for r in results) if results else float("nan"),
    }


def target_verdicts(summary: dict[str, Any]) -> dict[str, bool]:
    """Each target met or not (NaN shares, i.e. nothing to judge, count as met only for actions)."""
    valid_actions = summary["valid_action_share"]
    return {
        "schema_valid >= 99%": summary["schema_valid_share"] >= TARGETS["schema_valid"],
        "valid actions >= 95%": valid_actions != valid_actions or valid_actions >= TARGETS["valid_actions"],
        "0 lost": summary["lost"] == TARGETS["lost"] and summary["unrouted"] == 0,
        "0 runaways past the cap": summary["past_cap"] == TARGETS["past_cap"],
    }
