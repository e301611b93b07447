"""Every setting feedgate has, declared once with its help text: the pydantic models.

How the layers (defaults, YAML, ``FEEDGATE_*`` environment, flags) become one ``Settings`` is
``loading.py``'s job; each field's environment variable is ``FEEDGATE_<SECTION>_<FIELD>`` unless the
field names another one in its ``env`` extra (``auth.keys`` is ``FEEDGATE_API_KEYS``): those names are
public interface.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from feedgate.config.checks import header_problem, origin_of
from feedgate.config.keeping import LogSettings
from feedgate.config.section import Section as _Section
from feedgate.config.watching import ConsoleSettings, MetricsSettings, TracingSettings

# A feedback token's secret is an HMAC key: 32 random characters carry well over the 128 bits it needs.
MIN_TOKEN_SECRET_CHARS = 32
_NOT_A_BASE_URL = "must be an http:// or https:// URL without user:password (send credentials as headers)"


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address to listen on. Keep loopback unless keys are set.")
    port: int = Field(8787, ge=0, le=65535, description="Port to listen on.")
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger bodies get 413."
    )
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="On SIGTERM/SIGINT, how long in-flight requests may take to finish."
    )
    access_log: bool = Field(True, description="One log line per request: ID, status, duration.")
    upstream_connect_timeout_s: float = Field(10.0, gt=0, description="Timeout to connect to a provider.")
    upstream_read_timeout_s: float = Field(
        600.0, gt=0, description="Longest silence from a provider (between bytes) before a 504."
    )
    readyz_timeout_s: float = Field(2.0, gt=0, description="Longest /readyz waits for the store before it answers 503.")
    allow_open_bind: bool = Field(
        False,
        description="Allow listening on a non-loopback address with no auth keys configured.",
    )
    workers: int | Literal["auto"] = Field(
        1,
        description="Worker processes serving the port (each its own event loop, upstream pools and log writer), "
        "under one supervisor that restarts a crashed one; auto: one per CPU this process may use. 1: no "
        "supervisor, one process.",
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_count_or_auto(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"must be a whole number of at least 1, or auto, not {value!r}")
        return int(text)


class DatabaseSettings(_Section):
    url: str = Field(
        "sqlite:///feedgate.db",
        description="Where logs and feedback live: sqlite:///PATH or postgresql://USER@HOST:PORT/DB.",
    )
    queue_size: int = Field(
        50_000, ge=1, description="Log records held in memory while the writer catches up; beyond: counted loss."
    )
    queue_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of bodies those records may hold in memory; beyond: counted loss, like queue_size.",
    )
    spool: str | None = Field(
        None,
        description="Directory where each log record is also written until the store has it, so a crash (kill "
        "-9) loses none: the next start writes them. Costs one write system call per request. Unset: off.",
    )
    batch_max: int = Field(1000, ge=1, description="Most records the writer puts in one transaction.")
    batch_wait_ms: float = Field(
        10.0,
        ge=0,
        le=1000,
        description="How long the writer gathers log rows into one transaction (fewer, larger transactions "
        "cost less CPU per row); feedback writes never wait.",
    )
    pool_min: int = Field(1, ge=1, description="PostgreSQL: smallest read-pool size.")
    pool_max: int = Field(10, ge=1, description="PostgreSQL: largest read-pool size.")
    connect_wait_s: float = Field(
        0.0, ge=0, description="At start, how long to wait for an unreachable database before giving up."
    )
    max_decoded_answer_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="A compressed answer is decoded for the log up to this size; beyond it the logged body is cut "
        "and the row marked feedgate-truncated.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class ProviderBaseSettings(_Section):
    base_url: str = Field(..., description="Upstream origin; the incoming path is appended to it.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if origin_of(value) is None:
            raise ValueError(_NOT_A_BASE_URL)
        return value.rstrip("/")


class OpenAISettings(ProviderBaseSettings):
    base_url: str = Field("https://api.openai.com", description="OpenAI upstream origin.")


class AnthropicSettings(ProviderBaseSettings):
    base_url: str = Field("https://api.anthropic.com", description="Anthropic upstream origin.")


class AuthSettings(_Section):
    keys: list[SecretStr] = Field(
        default_factory=list,
        description="feedgate keys; when set every route but /healthz and /readyz needs one.",
        json_schema_extra={"env": "FEEDGATE_API_KEYS"},
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the feedback API ('*' for any)."
    )


class FeedbackSettings(_Section):
    pending_ttl_s: float = Field(
        86_400.0, gt=0, description="How long feedback for an unknown request ID waits to be claimed."
    )
    regenerate_window_s: float = Field(
        600.0, ge=0, description="A conversation sent again within this window marks the earlier answer."
    )
    store_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How long a feedback write waits for the store before it is withdrawn and answered 503.",
    )
    token_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Secrets that sign feedback tokens (write os.environ/NAME; at least 32 characters each). The "
        "first signs, all verify, so a new secret goes first and the old one stays until its tokens expire. Set: "
        "proxied answers carry Feedgate-Feedback-Token and POST /v1/feedback-tokens mints tokens. Unset: off.",
    )
    token_ttl_s: int = Field(
        604_800, ge=60, le=31_536_000, description="How long a feedback token is valid after it is made (seconds)."
    )

    @field_validator("token_secrets")
    @classmethod
    def _long_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for number, secret in enumerate(value, start=1):
            length = len(secret.get_secret_value())
            if length < MIN_TOKEN_SECRET_CHARS:
                # Which one and how long, never the secret itself: this message is printed.
                raise ValueError(
                    f"secret {number} has {length} characters; each needs at least {MIN_TOKEN_SECRET_CHARS} "
                    "(make one with: openssl rand -base64 32)"
                )
        return value


class AnalysisSettings(_Section):
    min_ratings: int = Field(
        30, ge=1, description="Ratings (or requests, for signals) each window needs before a change can count."
    )
    alpha: float = Field(
        0.01, gt=0, lt=1, description="Significance level of the regression and poor-rating tests (one-sided)."
    )
    recent_days: float = Field(3.0, gt=0, description="Regressions: the recent window, in days up to now.")
    baseline_days: float = Field(14.0, gt=0, description="Regressions: the baseline window just before it.")
    properties: list[str] = Field(
        default_factory=list,
        description="Properties whose values regressions and insights examine (default: those on recent requests); "
        "these are also the properties the rollups keep per hour.",
    )
    rollups: bool = Field(
        True,
        description="Keep per-hour aggregates as rows are written, so stats, insights, regressions and the "
        "console's overview read small tables instead of scanning requests.",
    )
    webhook_url: str | None = Field(
        None, description="POSTed once per new regression found (JSON); unset sends nothing."
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class RedisSettings(_Section):
    url: str | None = Field(None, description="redis://HOST:PORT/DB for limits and cache shared by instances.")


class ProxySettings(_Section):
    allowed_target_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) that Helicone-Target-Url, Helicone-OpenAI-Api-Base and "
        "Helicone-Fallbacks may send a request to. Any other target is refused with 400.",
    )
    cache_lookup_timeout_s: float = Field(
        2.0, gt=0, description="Longest wait for a Helicone-Cache lookup; slower lookups count as a MISS."
    )

    @field_validator("allowed_target_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            origin = origin_of(item)
            if origin is None:
                raise ValueError(f"{item!r} is not an http(s) origin such as https://api.groq.com")
            out.append(origin)
        return out


ProviderKind = Literal["openai", "anthropic", "azure", "openai-compatible"]
BUILTIN_PROVIDERS = ("openai", "anthropic")
# Names a provider cannot take: their first path segment already means something else.
RESERVED_PROVIDER_NAMES = frozenset({"v1", "custom", "healthz", "readyz", "console"})
_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class ProviderSettings(_Section):
    name: str = Field(..., description="Route prefix: /<name>/... goes to this provider.")
    kind: ProviderKind = Field(
        ..., description="Wire format and key header: openai, anthropic, azure or openai-compatible."
    )
    base_url: str | None = Field(
        None,
        description="Upstream URL the incoming path is appended to. Optional only for the built-in openai and "
        "anthropic providers, which then keep openai.base_url / anthropic.base_url.",
    )
    api_key: SecretStr | None = Field(
        None,
        description="Provider key feedgate sends (write os.environ/NAME). When set, clients authenticate to "
        "feedgate with a feedgate key instead of a provider key.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every call.")
    propagate_trace: bool = Field(
        False,
        description="Send this provider a W3C traceparent naming feedgate's span of the call (with tracing on). "
        "Off: no traceparent reaches it, not even the caller's (some providers reject it; it leaks trace IDs).",
    )

    @model_validator(mode="before")
    @classmethod
    def _builtin_kind(cls, data: Any) -> Any:
        # The built-in names imply their kind, so `{name: openai, api_key: ...}` is enough to add a key.
        if isinstance(data, dict) and "kind" not in data and data.get("name") in BUILTIN_PROVIDERS:
            return {**data, "kind": data["name"]}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _PROVIDER_NAME.fullmatch(value):
            raise ValueError("must be 1-63 characters of a-z 0-9 _ - (it becomes the URL prefix /<name>/)")
        if value in RESERVED_PROVIDER_NAMES:
            raise ValueError(f"{value!r} is reserved; reserved names: {', '.join(sorted(RESERVED_PROVIDER_NAMES))}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if (problem := header_problem(name, header_value)) is not None:
                raise ValueError(problem)
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and origin_of(value) is None:
            raise ValueError(_NOT_A_BASE_URL)
        return None if value is None else value.rstrip("/")


class ModelPrice(_Section):
    input: float = Field(..., ge=0, description="USD per 1M uncached input tokens.")
    output: float = Field(..., ge=0, description="USD per 1M output tokens.")
    cache_read: float | None = Field(None, ge=0, description="USD per 1M cache-read tokens (null: input price).")
    cache_write: float | None = Field(None, ge=0, description="USD per 1M cache-write tokens (null: input price).")


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)  # type: ignore[arg-type]
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)  # type: ignore[arg-type]
    openai: OpenAISettings = Field(default_factory=OpenAISettings)  # type: ignore[arg-type]
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)  # type: ignore[arg-type]
    auth: AuthSettings = Field(default_factory=AuthSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)  # type: ignore[arg-type]
    redis: RedisSettings = Field(default_factory=RedisSettings)  # type: ignore[arg-type]
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)  # type: ignore[arg-type]
    log: LogSettings = Field(default_factory=LogSettings)  # type: ignore[arg-type]
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log verbosity.", json_schema_extra={"env": "FEEDGATE_LOG_LEVEL"}
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: readable lines. json: one JSON object per line (time, level, message, request ID, trace "
        "ID, status, duration, provider, model) for log shippers.",
        json_schema_extra={"env": "FEEDGATE_LOG_FORMAT"},
    )
    proxy: ProxySettings = Field(default_factory=ProxySettings)  # type: ignore[arg-type]
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)  # type: ignore[arg-type]
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)  # type: ignore[arg-type]
    tracing: TracingSettings = Field(default_factory=TracingSettings)  # type: ignore[arg-type]
    providers: list[ProviderSettings] = Field(
        default_factory=list,
        description="Upstreams besides the built-in openai and anthropic; an entry with a built-in name "
        "replaces that provider's kind, key and headers.",
    )
    default_provider: str = Field(
        "openai",
        description="The provider /v1/... goes to.",
        json_schema_extra={"env": "FEEDGATE_DEFAULT_PROVIDER"},
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Model prices (USD per 1M tokens) that replace or extend the shipped table."
    )

    @model_validator(mode="after")
    def _provider_names(self) -> Settings:
        names = [provider.name for provider in self.providers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"providers: {name!r} is declared twice")
        for provider in self.providers:
            if provider.base_url is None and provider.name not in BUILTIN_PROVIDERS:
                raise ValueError(f"providers: {provider.name!r} needs a base_url")
        known = {*BUILTIN_PROVIDERS, *names}
        if self.default_provider not in known:
            choices = ", ".join(sorted(known))
            raise ValueError(f"default_provider {self.default_provider!r} is not a provider: {choices}")
        return self
