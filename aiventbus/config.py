"""Typed configuration loaded from YAML, with XDG paths and one-line validation errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiventbus.errors import ConfigError

TrustMode = Literal["auto", "confirm", "deny"]


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(Section):
    host: str = Field("127.0.0.1", description="Address to bind; keep a loopback address unless you firewall it")
    port: int = Field(8420, ge=0, le=65535, description="TCP port of the API and dashboard (0 picks a free one)")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host names accepted besides loopback names"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body in bytes")
    token_file: str | None = Field(None, description="API token file (default: <data_dir>/api-token)")


class PathsConfig(Section):
    data_dir: str | None = Field(None, description="Database, token and backups (default: XDG data dir)")
    state_dir: str | None = Field(None, description="Logs (default: XDG state dir)")


class OllamaConfig(Section):
    base_url: str = Field("http://localhost:11434", description="Ollama server URL")
    default_model: str = Field("gemma4:latest", description="Model for agents that name none")
    keep_alive: str = Field("5m", description="How long Ollama keeps the model loaded after a call")
    request_timeout_seconds: float = Field(300.0, gt=0, description="Longest one LLM call may take")
    context_tokens: int = Field(
        2048,
        ge=512,
        description="Context window assumed when the server reports none (llama-cpp-python's own default n_ctx)",
    )


class LLMConfig(Section):
    server_slots: int = Field(
        1,
        ge=1,
        description="Requests sent at once to one model server, unless it reports its slots "
        "(1: llama-cpp-python's server cuts a running answer when another request arrives)",
    )
    server_slots_by_url: dict[str, int] = Field(
        default_factory=dict,
        description="Slots per server base URL, e.g. vLLM, or Ollama with OLLAMA_NUM_PARALLEL",
    )


class BusConfig(Section):
    dedupe_window_seconds: float = Field(60.0, ge=0, description="Window in which a repeated dedupe_key is dropped")
    max_fan_out: int = Field(3, ge=1, description="Most child events one event may have")
    max_chain_depth: int = Field(10, ge=1, description="Most parent links from a trace's root to an event")
    max_chain_budget: int = Field(20, ge=1, description="Most events one trace may hold")
    max_payload_bytes: int = Field(1_048_576, ge=256, description="Largest event payload (JSON bytes)")
    synchronous: Literal["NORMAL", "FULL"] = Field("NORMAL", description="SQLite synchronous mode for the store")
    max_batch_events: int = Field(512, ge=1, description="Most writes grouped into one commit")


class WebhookConfig(Section):
    secret: str = Field(..., min_length=8, description="HMAC-SHA256 secret the sender signs the body with")


class CronJobConfig(Section):
    schedule: str = Field(..., description="Cron expression (5 fields)")
    payload: dict[str, Any] = Field(default_factory=dict, description="Payload of each cron.<name> event")

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError("must be a 5-field cron expression, e.g. '*/5 * * * *'")
        return value


class ProducersConfig(Section):
    clipboard_enabled: bool = Field(True, description="Watch the clipboard (clipboard.text)")
    clipboard_poll_interval_seconds: float = Field(1.0, gt=0, description="Clipboard poll period where polling")
    file_watcher_enabled: bool = Field(False, description="Watch file_watcher_paths (file.*)")
    file_watcher_paths: list[str] = Field(
        default_factory=lambda: ["~/Downloads", "~/Documents"], description="Folders the file watcher watches"
    )
    file_watcher_ignore: list[str] = Field(
        default_factory=lambda: ["*.swp", "*~", ".git/*", "*.part", "*.crdownload"],
        description="Glob patterns the file watcher ignores",
    )
    dbus_enabled: bool = Field(False, description="Listen on DBus for lock/unlock and notifications")
    notifications_enabled: bool = Field(True, description="With dbus_enabled: capture inbound notifications")
    system_log_enabled: bool = Field(False, description="Follow the system log (log.<level>)")
    system_log_command: list[str] = Field(
        default_factory=list, description="Command whose JSON lines are the system log (default per platform)"
    )
    terminal_monitor_enabled: bool = Field(False, description="Watch shell history and the preexec hook")
    terminal_history_files: list[str] = Field(
        default_factory=lambda: ["~/.bash_history", "~/.zsh_history"], description="History files polled"
    )
    terminal_spool_file: str | None = Field(
        None, description="File the preexec hook appends to (default: <state_dir>/terminal-spool.log)"
    )
    terminal_poll_interval_seconds: float = Field(1.0, gt=0, description="How often history and spool are read")
    clipboard_max_chars: int = Field(65_536, ge=64, description="Longest clipboard text kept (longer is cut)")
    clipboard_x11_change_events: bool = Field(
        True, description="On X11, read the clipboard only when XFixes reports a new owner (else poll)"
    )
    dbus_system_bus_address: str | None = Field(
        None, description="Bus for login1 lock/unlock (default: $DBUS_SYSTEM_BUS_ADDRESS or the system bus)"
    )
    dbus_session_bus_address: str | None = Field(
        None, description="Bus for notifications (default: $DBUS_SESSION_BUS_ADDRESS)"
    )
    webhook_max_body_bytes: int = Field(262_144, ge=256, description="Largest accepted webhook body in bytes")
    unavailable_recheck_seconds: float = Field(
        60.0, gt=0, description="How often an unavailable producer is tried again (a folder or display may appear)"
    )
    max_pending_per_producer: int = Field(
        256, ge=1, description="Distinct values a producer holds while rate limited (older ones are coalesced)"
    )
    rate_limit_per_second: float = Field(5.0, gt=0, description="Sustained events per second per producer")
    rate_limit_burst: int = Field(20, ge=1, description="Burst of events a producer may emit at once")
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict, description="Inbound webhooks by name")
    cron: dict[str, CronJobConfig] = Field(default_factory=dict, description="Scheduled cron.<name> events")


class McpServerConfig(Section):
    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Tool backend name")
    transport: Literal["stdio", "http"] = Field("stdio", description="stdio (command) or streamable http (url)")
    command: list[str] = Field(default_factory=list, description="Command that starts a stdio server")
    url: str | None = Field(None, description="URL of a streamable-HTTP server")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for a stdio server")
    timeout_seconds: float = Field(30.0, gt=0, description="Longest one tool call may take")


class ToolsConfig(Section):
    http_request_enabled: bool = Field(True, description="Offer the http_request action")
    http_request_timeout: float = Field(30.0, gt=0, description="http_request timeout in seconds")
    http_request_max_size: int = Field(1_048_576, ge=1, description="http_request response cap in bytes")
    http_request_allow_private: bool = Field(False, description="Let http_request reach loopback/private hosts")
    mcp_servers: list[McpServerConfig] = Field(default_factory=list, description="MCP servers used as tools")


class ClassifierConfig(Section):
    enabled: bool = Field(False, description="Route unmatched events with a small LLM call")
    model: str = Field("gemma4:latest", description="Model the classifier uses")
    provider: Literal["ollama", "openai"] = Field("ollama", description="Protocol of the classifier's LLM server")
    base_url: str | None = Field(None, description="Classifier LLM server URL (default ollama.base_url)")


class PolicyConfig(Section):
    trust_overrides: dict[str, TrustMode] = Field(
        default_factory=dict, description="Trust mode per action type (auto, confirm, deny)"
    )
    shell_timeout_seconds: float = Field(30.0, gt=0, description="Longest a shell_exec may run")
    shell_output_max_bytes: int = Field(65_536, ge=1024, description="stdout/stderr kept per shell_exec")
    shell_sandbox: Literal["auto", "off"] = Field(
        "auto",
        description="auto: auto-run shell commands run in the OS sandbox, or need approval where none works;"
        " off: all need approval",
    )
    file_max_bytes: int = Field(10_485_760, ge=1, description="Largest file a file action reads or writes")
    approval_ttl_seconds: float = Field(3600.0, gt=0, description="How long a pending action can be approved")
    allowlist: list[str] = Field(default_factory=list, description="Extra commands that may auto-run")
    blocklist: list[str] = Field(default_factory=list, description="Extra commands that are always denied")
    trusted_sources: list[str] = Field(
        default_factory=list, description="Untrusted sources (e.g. clipboard) the user marks trusted"
    )
    protected_paths: list[str] = Field(
        default_factory=list, description="Extra paths no action may write or delete (daemon files always are)"
    )
    sensitive_paths: list[str] = Field(
        default_factory=list, description="Extra paths whose content is never read without confirmation"
    )
    max_command_length: int = Field(2000, ge=16, description="Longer shell commands are never auto-run")
    max_chain_commands: int = Field(12, ge=1, description="Shell lines with more commands are never auto-run")


class LanesConfig(Section):
    interactive_prefixes: list[str] = Field(default_factory=lambda: ["user."], description="Interactive topics")
    critical_prefixes: list[str] = Field(
        default_factory=lambda: ["security.", "system.failure"], description="Critical topics"
    )
    interactive_slots: int = Field(1, ge=1, description="Workers reserved for interactive work")
    background_slots: int = Field(1, ge=1, description="Workers shared by critical and ambient work")
    interactive_expiry_seconds: float = Field(
        300.0, ge=0, description="Queued interactive work older than this expires instead of waiting (0 = never)"
    )


class AgentsConfig(Section):
    max_attempts: int = Field(3, ge=1, description="Attempts before an assignment is dead-lettered")
    lease_seconds: float = Field(120.0, gt=0, description="How long a claim lasts without renewal")
    retry_backoff_seconds: float = Field(2.0, ge=0, description="Base of the exponential retry backoff")
    transcript_turns: int = Field(6, ge=0, description="Recent turns of the agent's transcript in its prompt")
    lease_check_interval_seconds: float = Field(
        5.0, gt=0, description="How often expired leases (dead workers) are looked for; at most lease_seconds/2"
    )
    llm_retry_max_seconds: float = Field(
        5.0, gt=0, description="Longest wait between retries while an agent's LLM server is unavailable"
    )


class MemoryConfig(Section):
    distill_enabled: bool = Field(True, description="Distil agent transcripts into long-term memories")
    distill_interval_seconds: float = Field(60.0, gt=0, description="How often the distiller looks for work")
    distill_batch_size: int = Field(8, ge=1, description="Responses distilled per LLM pass")
    recall_limit: int = Field(5, ge=0, description="Memories recalled into one prompt")
    embeddings_enabled: bool = Field(False, description="Hybrid search with embeddings (needs sqlite-vec)")
    embedding_model: str = Field("all-minilm", description="Embedding model on the LLM server")
    embedding_dimensions: int = Field(384, ge=8, description="Embedding vector size")
    llm_provider: Literal["ollama", "openai"] = Field("ollama", description="Provider for distillation and embeddings")
    llm_base_url: str | None = Field(
        None, description="Server for distillation and embeddings (None = ollama.base_url)"
    )
    distill_model: str | None = Field(None, description="Model that distils memories (None = ollama.default_model)")
    distill_max_tokens: int = Field(512, ge=64, description="Most tokens one distillation answer may take")
    distill_max_memories: int = Field(5, ge=1, le=20, description="Most memories one distillation pass may create")
    merge_similarity: float = Field(
        0.8, ge=0, le=1, description="Word overlap at which a memory the model calls new still merges with an old one"
    )
    search_importance_weight: float = Field(1.0, ge=0, description="How much importance lifts a search hit")
    search_recency_half_life_days: float = Field(
        30.0, gt=0, description="Age in days at which recency weighting halves a hit's lift"
    )
    search_window: int = Field(
        1000, ge=10, description="Newest matches of a search that are scored (older ones only when too few hit)"
    )
    context_answer_tokens: int = Field(
        1024, ge=64, description="Tokens kept free for the answer when the agent sets no max_tokens"
    )
    knowledge_value_max_bytes: int = Field(65_536, ge=64, description="Largest knowledge value (JSON bytes)")
    pinned_facts: dict[str, list[str]] = Field(
        default_factory=dict, description="Facts always in the prompt, by agent id ('global' = every agent)"
    )


class TelemetryConfig(Section):
    queue_depth_sample_interval_seconds: float = Field(
        5.0, gt=0, description="How often the assignment queue depth gauge is sampled"
    )


class Config(Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    ollama: OllamaConfig = Field(default_factory=OllamaConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    producers: ProducersConfig = Field(default_factory=ProducersConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    lanes: LanesConfig = Field(default_factory=LanesConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    source_path: str | None = Field(None, exclude=True, description="File the config was read from")

    @property
    def data_dir(self) -> Path:
        return (
            Path(self.paths.data_dir).expanduser() if self.paths.data_dir else xdg_dir("XDG_DATA_HOME", ".local/share")
        )

    @property
    def state_dir(self) -> Path:
        if self.paths.state_dir:
            return Path(self.paths.state_dir).expanduser()
        return xdg_dir("XDG_STATE_HOME", ".local/state")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "aiventbus.db"

    @property
    def token_path(self) -> Path:
        return Path(self.server.token_file).expanduser() if self.server.token_file else self.data_dir / "api-token"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"


def xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable) or str(Path.home() / fallback)
    return Path(base) / "aiventbus"


def config_search_path(explicit: str | None) -> list[Path]:
    """Where a config file is looked for, first hit wins."""
    candidates: list[Path] = []
    if explicit:
        return [Path(explicit).expanduser()]
    if env := os.environ.get("AIVENTBUS_CONFIG"):
        return [Path(env).expanduser()]
    candidates.append(Path.cwd() / "config.yaml")
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidates.append(Path(xdg) / "aiventbus" / "config.yaml")
    return candidates


def describe_validation_error(error: ValidationError) -> str:
    """The first problem as one line: the dotted key and what is expected."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if first["type"] == "missing":
        return f"{key}: required key is missing"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"{key}: {first['msg']}{shown}"


def parse_config(data: Any, source: str | None = None) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source or 'config'}: the top level must be a mapping of sections")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}{describe_validation_error(error)}") from None
    config.source_path = source
    return config


def load_config(explicit: str | None = None) -> Config:
    """Load the first config file on the search path, or the defaults when there is none."""
    for path in config_search_path(explicit):
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                line = f" line {mark.line + 1}" if mark is not None else ""
                raise ConfigError(f"{path}:{line} is not valid YAML") from None
            return parse_config(data, str(path))
        if explicit or os.environ.get("AIVENTBUS_CONFIG"):
            raise ConfigError(f"config file not found: {path}")
    return Config()
