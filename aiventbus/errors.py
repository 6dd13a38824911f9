"""One exception tree; every error carries the data the API needs to explain itself."""

from __future__ import annotations

from typing import Any


class AiventbusError(Exception):
    """Base of every error the daemon raises on purpose."""

    status_code = 500

    def __init__(self, detail: str, **data: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.data = data


class ConfigError(AiventbusError):
    """The configuration is missing, unreadable or invalid."""

    status_code = 400


class ValidationFailed(AiventbusError):
    """Input broke a rule; `field` names what was wrong."""

    status_code = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", field=field)
        self.field = field


class NotFound(AiventbusError):
    status_code = 404

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier} not found", kind=kind, id=identifier)


class Conflict(AiventbusError):
    status_code = 409


class PayloadTooLarge(AiventbusError):
    status_code = 413


class ChainLimitExceeded(AiventbusError):
    """A chain-reaction guardrail refused an event."""

    status_code = 429

    def __init__(self, reason: str, limit: int, trace_id: str) -> None:
        super().__init__(
            f"chain limit exceeded: {reason} limit {limit} reached for trace {trace_id}",
            reason=reason,
            limit=limit,
            trace_id=trace_id,
        )
        self.reason = reason
        self.limit = limit
        self.trace_id = trace_id


class PolicyDenied(AiventbusError):
    status_code = 403

    def __init__(self, action_type: str, rule: str, detail: str) -> None:
        super().__init__(detail, action_type=action_type, rule=rule)
        self.action_type = action_type
        self.rule = rule


class LLMUnavailable(AiventbusError):
    """The model server cannot be reached or lacks the model; `fix` says what to do."""

    status_code = 503

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail, fix=fix)
        self.fix = fix


class StoreClosed(AiventbusError):
    status_code = 503


class LLMError(AiventbusError):
    """The model server answered, but not with something usable."""

    status_code = 502


class StructuredOutputError(AiventbusError):
    """Model output that is not a valid agent response; `raw` keeps the text."""

    status_code = 502

    def __init__(self, detail: str, raw: str) -> None:
        super().__init__(detail, raw=raw)
        self.raw = raw
