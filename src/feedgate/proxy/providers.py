"""The upstreams feedgate forwards to, and how an incoming path picks one.

``/v1/...`` goes to the default provider; ``/<name>/...`` goes to the provider called ``name`` (so the
Anthropic SDK works with ``base_url=http://host:8787/anthropic``). The built-in ``openai`` and ``anthropic``
providers always exist (their base URLs come from ``openai.base_url`` / ``anthropic.base_url``); the config's
``providers`` list adds others or replaces a built-in's kind, key and headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feedgate.config import Settings

AZURE_ROUTE = "proxy-azure"  # the route of /openai/deployments/...


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: str  # "openai", "anthropic", "azure", "openai-compatible"
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    propagate_trace: bool = False  # send the provider a traceparent naming feedgate's span of the call

    @property
    def log_kind(self) -> str:
        """The wire format of this provider's bodies: "anthropic" or "openai"."""
        return "anthropic" if self.kind == "anthropic" else "openai"


class Providers:
    def __init__(
        self, providers: list[Provider], default: str = "openai", allowed_origins: frozenset[str] = frozenset()
    ) -> None:
        self.by_name = {provider.name: provider for provider in providers}
        self.default = self.by_name[default]
        # Origins a Helicone-Target-Url / -OpenAI-Api-Base / -Fallbacks header may send a request to.
        self.allowed_origins = allowed_origins
        self.azure_paths = next((p for p in providers if p.kind == "azure"), self.default)

    def get(self, name: str) -> Provider | None:
        return self.by_name.get(name)

    def for_route(self, route_name: str | None, name: str | None) -> Provider | None:
        """The provider a proxied route addresses: ``name`` from ``/<name>/...``, None meaning ``/v1/...``.

        ``/openai/deployments/...`` (route ``AZURE_ROUTE``) is Azure OpenAI's own path, which an Azure SDK
        pointed at the gateway's root sends (Helicone's Azure setup): it goes, path unchanged, to the first
        azure provider, else to the default one (then usually with ``Helicone-OpenAI-Api-Base``).
        """
        if route_name == AZURE_ROUTE:
            return self.azure_paths
        return self.default if name is None else self.by_name.get(name)

    @classmethod
    def from_settings(cls, settings: Settings) -> Providers:
        by_name = {
            "openai": Provider("openai", "openai", settings.openai.base_url),
            "anthropic": Provider("anthropic", "anthropic", settings.anthropic.base_url),
        }
        for entry in settings.providers:
            builtin = by_name.get(entry.name)
            base_url = entry.base_url or (builtin.base_url if builtin is not None else None)
            assert base_url is not None  # Settings refuses a custom provider without one
            by_name[entry.name] = Provider(
                entry.name,
                entry.kind,
                base_url,
                entry.api_key.get_secret_value() if entry.api_key is not None else None,
                dict(entry.headers),
                entry.propagate_trace,
            )
        return cls(
            list(by_name.values()),
            settings.default_provider,
            frozenset(settings.proxy.allowed_target_origins),
        )
