"""The upstreams feedgate forwards to, and how an incoming path picks one.

``/v1/...`` goes to the default provider; ``/<name>/...`` goes to the provider called ``name`` (so the
Anthropic SDK works with ``base_url=http://host:8787/anthropic``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feedgate.config import Settings


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: str  # "openai", "anthropic", "azure", "openai-compatible"
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def log_kind(self) -> str:
        """The wire format of this provider's bodies: "anthropic" or "openai"."""
        return "anthropic" if self.kind == "anthropic" else "openai"


class Providers:
    def __init__(self, providers: list[Provider], default: str = "openai") -> None:
        self.by_name = {provider.name: provider for provider in providers}
        self.default = self.by_name[default]

    def get(self, name: str) -> Provider | None:
        return self.by_name.get(name)

    @classmethod
    def from_settings(cls, settings: Settings) -> Providers:
        return cls(
            [
                Provider("openai", "openai", settings.openai.base_url),
                Provider("anthropic", "anthropic", settings.anthropic.base_url),
            ]
        )
