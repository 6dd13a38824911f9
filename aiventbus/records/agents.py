"""Agents and routing rules as data: what the API accepts, what the store keeps, and how ids are made."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ProviderKind = Literal["ollama", "openai"]
ACTION_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def slugify(name: str) -> str:
    """`"General Assistant"` -> `general-assistant`: lower case, runs of other characters become one dash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def agent_id_for(name: str) -> str:
    return f"agent_{slugify(name)}"


def agent_slug(agent_id: str) -> str:
    return agent_id.removeprefix("agent_")


def response_topic(agent_id: str) -> str:
    """Where an agent's responses go when the event names no output_topic."""
    return f"agent.{agent_slug(agent_id)}.response"


def agent_source(agent_id: str) -> str:
    """The `source` of events an agent publishes; routing uses it to avoid self-loops."""
    return f"agent:{agent_id}"


class _AgentFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not URL.match(value):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:11434")
        return value.rstrip("/") if value else value

    @field_validator("allowed_actions", check_fields=False)
    @classmethod
    def _action_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if not ACTION_TYPE.match(name):
                raise ValueError(f"{name!r} is not an action type name (e.g. notify, shell_exec)")
        return sorted(set(value))


class AgentIn(_AgentFields):
    """An agent as created through the API; the id is derived from the name."""

    name: str = Field(..., min_length=1, max_length=100, description="Display name; the id is agent_<slug>")
    model: str | None = Field(None, min_length=1, max_length=200, description="Model (default ollama.default_model)")
    description: str = Field("", max_length=2000, description="What the agent is for (the classifier reads it)")
    system_prompt: str = Field("", max_length=20000)
    provider: ProviderKind = Field("ollama", description="ollama (native API) or openai (OpenAI-compatible)")
    base_url: str | None = Field(None, description="LLM server URL (default ollama.base_url)")
    enabled: bool = True
    allowed_actions: list[str] | None = Field(None, description="Action types it may propose (null = all)")
    max_tokens: int | None = Field(None, ge=1, le=131072)
    temperature: float = Field(0.2, ge=0, le=2)
    context_tokens: int | None = Field(None, ge=512, le=1_048_576, description="Context window (null = ask server)")

    @field_validator("name")
    @classmethod
    def _name_has_slug(cls, value: str) -> str:
        if not slugify(value):
            raise ValueError("must contain at least one letter or digit")
        return value.strip()


class AgentPatch(_AgentFields):
    """A partial update; the name (and so the id) cannot change."""

    model: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    system_prompt: str | None = Field(None, max_length=20000)
    provider: ProviderKind | None = None
    base_url: str | None = None
    enabled: bool | None = None
    allowed_actions: list[str] | None = None
    max_tokens: int | None = Field(None, ge=1, le=131072)
    temperature: float | None = Field(None, ge=0, le=2)
    context_tokens: int | None = Field(None, ge=512, le=1_048_576)


class AgentSpec(BaseModel):
    """A stored agent."""

    id: str
    name: str
    model: str
    description: str = ""
    system_prompt: str = ""
    provider: ProviderKind = "ollama"
    base_url: str | None = None
    enabled: bool = True
    allowed_actions: list[str] | None = None
    max_tokens: int | None = None
    temperature: float = 0.2
    context_tokens: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class _RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("topic_pattern", check_fields=False)
    @classmethod
    def _pattern_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9_.:/\-*?]{1,200}$", value):
            raise ValueError("must be a topic glob of letters, digits, . _ - : / and * ? (e.g. user.*)")
        return value


class RoutingRuleIn(_RuleFields):
    name: str = Field(..., min_length=1, max_length=200)
    topic_pattern: str = Field(..., description="Topic glob, e.g. user.* (* and ? wildcards)")
    semantic_type: str | None = Field(None, max_length=200, description="Also require this semantic_type (glob)")
    source: str | None = Field(None, max_length=100, description="Also require this source (glob)")
    consumer_id: str = Field(..., description="Id of the agent that gets matching events")
    priority: int = Field(100, ge=0, le=1_000_000, description="Rule order: lower runs first")
    enabled: bool = True


class RoutingRulePatch(_RuleFields):
    name: str | None = Field(None, min_length=1, max_length=200)
    topic_pattern: str | None = None
    semantic_type: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=100)
    consumer_id: str | None = None
    priority: int | None = Field(None, ge=0, le=1_000_000)
    enabled: bool | None = None


class RoutingRule(BaseModel):
    id: str
    name: str
    topic_pattern: str
    semantic_type: str | None = None
    source: str | None = None
    consumer_id: str
    priority: int = 100
    enabled: bool = True
    created_at: float = 0.0
