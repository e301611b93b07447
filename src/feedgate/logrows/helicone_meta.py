"""What a request's ``Helicone-*`` headers ask of its log row: user, session, prompt, properties, omissions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class HeliconeMeta:
    """What a request's ``Helicone-*`` headers ask of the log."""

    user_id: str | None = None
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    prompt_id: str | None = None
    model_override: str | None = None
    omit_request: bool = False
    omit_response: bool = False
    properties: dict[str, str] = field(default_factory=dict)


_PROPERTY_PREFIX = "helicone-property-"


def helicone_meta(headers: Mapping[str, str]) -> HeliconeMeta:
    meta = HeliconeMeta()
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith("helicone-"):
            continue
        if lower.startswith(_PROPERTY_PREFIX) and len(lower) > len(_PROPERTY_PREFIX):
            # Helicone lower-cases property names (its Headers iteration does); so do we.
            meta.properties[lower[len(_PROPERTY_PREFIX) :]] = value
        elif lower == "helicone-user-id":
            meta.user_id = value
        elif lower == "helicone-session-id":
            meta.session_id = value
        elif lower == "helicone-session-path":
            meta.session_path = value
        elif lower == "helicone-session-name":
            meta.session_name = value
        elif lower == "helicone-prompt-id":
            meta.prompt_id = value
        elif lower == "helicone-model-override":
            meta.model_override = value
        elif lower == "helicone-omit-request":
            meta.omit_request = value.strip().lower() == "true"
        elif lower == "helicone-omit-response":
            meta.omit_response = value.strip().lower() == "true"
    return meta
