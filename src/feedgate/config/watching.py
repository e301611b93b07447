"""The settings of what people watch feedgate through: the console, ``/metrics`` and traces."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, field_validator

from feedgate.config.checks import origin_of
from feedgate.config.section import Section


class ConsoleSettings(Section):
    enabled: bool = Field(
        True, description="Serve the web console at /console/ and the widget example at /widget/example."
    )
    session_idle_s: float = Field(
        8 * 3600.0,
        gt=0,
        le=30 * 86400,
        description="With auth.keys set: a console session unused this long ends (log in again).",
    )
    session_max_s: float = Field(
        24 * 3600.0,
        gt=0,
        le=365 * 86400,
        description="With auth.keys set: a console session ends this long after its login, however much it is used.",
    )
    login_attempts: int = Field(
        5, ge=1, le=1000, description="Failed console logins one client address may make before it must wait."
    )
    login_wait_s: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="How long a client address that used up login_attempts waits; each further failure doubles "
        "it, up to an hour.",
    )
    secure_cookie: Literal["auto", "always"] = Field(
        "auto",
        description="auto: the session cookie is Secure when feedgate itself serves HTTPS; always: also behind a "
        "proxy that ends TLS in front of feedgate.",
    )


class MetricsSettings(Section):
    enabled: bool = Field(
        True,
        description="Serve GET /metrics in Prometheus text format; false removes the route (404) and counts nothing.",
    )
    public: bool = Field(
        False, description="With auth.keys set, let /metrics be scraped without a key (a scraper on your own network)."
    )
    models: list[str] = Field(
        default_factory=list,
        description="Model names that get their own value of the metrics' model label besides those in the price "
        "table; any other model is counted as other.",
    )


class TracingSettings(Section):
    enabled: bool = Field(
        False,
        description="Export OpenTelemetry traces over OTLP/HTTP (pip install 'feedgate[otel]'). Also on when "
        "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.",
    )
    endpoint: str | None = Field(
        None,
        description="Where spans are sent (an OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces); unset: "
        "the OTEL_EXPORTER_OTLP_* variables, else http://localhost:4318/v1/traces.",
    )
    service_name: str = Field("feedgate", min_length=1, description="The service.name spans are reported under.")
    sample_ratio: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of new traces recorded; a request whose caller's traceparent says sampled or not "
        "follows the caller.",
    )
    export_delay_ms: float = Field(
        5000.0, gt=0, le=60_000, description="How often the batch processor sends the spans it holds."
    )

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and origin_of(value) is None:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("enabled")
    @classmethod
    def _installed(cls, value: bool) -> bool:
        # Found without importing it: the check costs nothing, and a missing extra is a one-line config error.
        if value and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is None:
            raise ValueError("needs OpenTelemetry: pip install 'feedgate[otel]'")
        return value
