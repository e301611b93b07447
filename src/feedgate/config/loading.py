"""From the layers to one ``Settings``: the defaults, then a YAML file (``--config PATH``), then
``FEEDGATE_*`` environment variables, then command-line flags.

A string value of the form ``os.environ/NAME`` is replaced by that environment variable when the settings
are loaded, so a config file can be committed without secrets in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from feedgate.config.settings import Settings
from feedgate.errors import ConfigError

ENV_PREFIX = "FEEDGATE_"
SECRET_REF_PREFIX = "os.environ/"


def env_name(section: str, field: str) -> str:
    """The environment variable that sets ``section.field``."""
    model = Settings.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    extra = model.model_fields[field].json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("env"), str):
        return str(extra["env"])
    return f"{ENV_PREFIX}{section.upper()}_{field.upper()}"


def _resolve_secret_refs(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.startswith(SECRET_REF_PREFIX):
        name = value[len(SECRET_REF_PREFIX) :]
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]
    if isinstance(value, list):
        return [_resolve_secret_refs(item, where) for item in value]
    if isinstance(value, dict):
        return {key: _resolve_secret_refs(item, f"{where}.{key}") for key, item in value.items()}
    return value


def _env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for section, section_field in Settings.model_fields.items():
        model = section_field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for field in model.model_fields:
            name = env_name(section, field)
            if name in environ:
                raw: Any = environ[name]
                if _is_list_field(model, field):
                    raw = [part.strip() for part in raw.split(",") if part.strip()]
                layer.setdefault(section, {})[field] = raw
    for name, field_info in Settings.model_fields.items():
        env = top_level_env(field_info.json_schema_extra)
        if env is not None and env in environ:
            layer[name] = environ[env]  # type: ignore[assignment]
    return layer


def top_level_env(extra: Any) -> str | None:
    """The environment variable of a setting outside the sections, if it has one."""
    return extra["env"] if isinstance(extra, dict) and isinstance(extra.get("env"), str) else None


def _is_list_field(model: type[BaseModel], field: str) -> bool:
    annotation = model.model_fields[field].annotation
    return getattr(annotation, "__origin__", None) is list


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config: {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of sections")
    return loaded


def load_settings(
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the effective settings: defaults, YAML, environment, then ``overrides`` (CLI flags)."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = read_yaml(config_path) if config_path else {}
    data = _merge(data, _env_layer(environ))
    data = _merge(data, overrides or {})
    data = _resolve_secret_refs(data, "config")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"  # a whole-settings check has no loc
        raise ConfigError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None


def dotted_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``--set section.field=value`` flags into a nested mapping."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {pair}: expected SECTION.FIELD=VALUE")
        section, field = key.split(".", 1)
        parsed: Any = yaml.safe_load(value) if value else value
        result.setdefault(section, {})[field] = parsed
    return result


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced by ``***``."""
    data = settings.model_dump(mode="json")
    data["auth"]["keys"] = ["***" for _ in settings.auth.keys]
    data["feedback"]["token_secrets"] = ["***" for _ in settings.feedback.token_secrets]
    data["database"]["url"] = mask_url(settings.database.url)
    if settings.redis.url:
        data["redis"]["url"] = mask_url(settings.redis.url)
    for provider, shown in zip(settings.providers, data["providers"], strict=True):
        shown["api_key"] = "***" if provider.api_key is not None else None
    return data


def mask_url(url: str) -> str:
    """Hide the password in ``scheme://user:password@host``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
