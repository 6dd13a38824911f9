"""POST /api/v1/webhooks/{name} on a real daemon: HMAC right, wrong and missing; unknown hook; cap; rate limit."""

from __future__ import annotations

import json
from pathlib import Path

from aiventbus.producers.webhook import sign
from tests.support.daemon import running_daemon

SECRET = "s3cret-for-tests"
CONFIG = {
    "producers": {
        "webhooks": {"ci": {"secret": SECRET}, "other": {"secret": "another-secret"}},
        "webhook_max_body_bytes": 1024,
        "rate_limit_per_second": 0.01,
        "rate_limit_burst": 3,
    }
}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "X-Aiventbus-Signature": sign(secret, body)}


async def test_signed_delivery_becomes_a_redacted_event_without_the_token(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG) as running:
        body = json.dumps({"build": 42, "log": "deploy with password=hunter2hunter2"}).encode()
        response = await running.anonymous.post("/api/v1/webhooks/ci", content=body, headers=signed(body))
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["topic"] == "webhook.ci"
        event = (await running.client.get(f"/api/v1/events/{accepted['event_id']}")).json()
        assert event["source"] == "webhook" and event["taint"] == ["webhook"]
        assert event["payload"]["body"]["build"] == 42
        assert event["payload"]["body"]["log"] == "deploy with password=[REDACTED:password]"
        assert "hunter2hunter2" not in json.dumps(event)
        report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
        assert report["webhook"]["state"] == "running" and report["webhook"]["events_emitted"] == 1


async def test_wrong_missing_and_foreign_signatures_are_refused(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG) as running:
        body = b'{"x": 1}'
        cases = {
            "wrong": {"content-type": "application/json", "X-Aiventbus-Signature": "sha256=" + "0" * 64},
            "missing": {"content-type": "application/json"},
            "other hook's secret": signed(body, "another-secret"),
            "tampered body": signed(b'{"x": 2}'),
            "no prefix": {"X-Aiventbus-Signature": sign(SECRET, body)[7:]},
        }
        for case, headers in cases.items():
            response = await running.anonymous.post("/api/v1/webhooks/ci", content=body, headers=headers)
            assert response.status_code == 401, case
            assert "X-Aiventbus-Signature" in response.json()["detail"], case
        assert (
            "missing signature"
            in (await running.anonymous.post("/api/v1/webhooks/ci", content=body, headers=cases["missing"])).json()[
                "detail"
            ]
        )
        stored = (await running.client.get("/api/v1/events", params={"topic": "webhook.*"})).json()["events"]
        assert stored == []


async def test_unknown_hook_oversized_body_and_rate_limit(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG) as running:
        body = b"{}"
        unknown = await running.anonymous.post("/api/v1/webhooks/nope", content=body, headers=signed(body))
        assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
        big = b'{"x": "' + b"a" * 2000 + b'"}'
        too_big = await running.anonymous.post("/api/v1/webhooks/ci", content=big, headers=signed(big))
        assert too_big.status_code == 413 and "webhook_max_body_bytes" in too_big.json()["detail"]
        codes = []
        for i in range(5):
            item = json.dumps({"i": i}).encode()
            codes.append(
                (await running.anonymous.post("/api/v1/webhooks/ci", content=item, headers=signed(item))).status_code
            )
        assert codes == [202, 202, 202, 429, 429]
        limited = await running.anonymous.post("/api/v1/webhooks/ci", content=body, headers=signed(body))
        assert "rate limit" in limited.json()["detail"]
        # Other API routes still need the token.
        assert (await running.anonymous.get("/api/v1/producers")).status_code == 401


async def test_webhook_route_is_in_openapi_with_its_errors(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG) as running:
        spec = (await running.anonymous.get("/openapi.json")).json()
        responses = spec["paths"]["/api/v1/webhooks/{name}"]["post"]["responses"]
        assert {"202", "401", "404", "413", "429"} <= set(responses)
        assert "/api/v1/producers" in spec["paths"]
