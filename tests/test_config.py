"""Settings: layering, secret references, clear errors, and the generated reference staying true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedgate.config import load_settings, masked
from feedgate.config.reference import END, START, markdown, yaml_example
from feedgate.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "feedgate", *args], capture_output=True, text=True, env={**clean, **(env or {})}
    )


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8787)
    assert settings.database.url == "sqlite:///feedgate.db"
    assert settings.openai.base_url == "https://api.openai.com"
    assert settings.server.max_body_bytes == 32 * 1024 * 1024


def test_yaml_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "f.yaml"
    config.write_text("server:\n  port: 9001\n  host: 0.0.0.0\ndatabase:\n  url: sqlite:///from-yaml.db\n")
    settings = load_settings(config, environ={"FEEDGATE_SERVER_PORT": "9002"}, overrides={"server": {"port": 9003}})
    assert settings.server.port == 9003 and settings.server.host == "0.0.0.0"
    assert settings.database.url == "sqlite:///from-yaml.db"
    from_env = load_settings(config, environ={"FEEDGATE_DATABASE_URL": "sqlite:///env.db", "FEEDGATE_API_KEYS": "a, b"})
    assert from_env.database.url == "sqlite:///env.db"
    assert [key.get_secret_value() for key in from_env.auth.keys] == ["a", "b"]


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "f.yaml"
    config.write_text("auth:\n  keys: [os.environ/MY_FG_KEY]\n")
    monkeypatch.setenv("MY_FG_KEY", "s3cret-key")
    settings = load_settings(config)
    assert settings.auth.keys[0].get_secret_value() == "s3cret-key"
    assert "s3cret-key" not in str(masked(settings))
    monkeypatch.delenv("MY_FG_KEY")
    with pytest.raises(ConfigError, match="MY_FG_KEY is not set"):
        load_settings(config)


def test_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("check-config", env={"FEEDGATE_SERVER_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "server.port" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("serve", "--database-url", "mysql://nope")
    assert result.returncode == 2 and "database.url" in result.stderr
    missing = run_cli("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2 and "absent.yaml" in missing.stderr


def test_provider_header_with_a_line_break_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "f.yaml"
    config.write_text('providers:\n  - name: openai\n    headers: {"OpenAI-Organization": "org-1\\r\\nX-Evil: 1"}\n')
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2 and "providers" in result.stderr and "line break" in result.stderr
    assert result.stderr.count("\n") == 1


def test_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    result = run_cli("check-config", env={"FEEDGATE_OPENAI_BASE_URL": "https://user:pw-secret@llm.internal"})
    assert result.returncode == 2 and "openai.base_url" in result.stderr and "user:password" in result.stderr
    assert "pw-secret" not in result.stderr


def test_check_config_masks_secrets() -> None:
    result = run_cli(
        "check-config",
        "--set",
        "server.port=9100",
        env={"FEEDGATE_API_KEYS": "fg-very-secret", "FEEDGATE_DATABASE_URL": "postgresql://u:pw-secret@db:5432/x"},
    )
    assert result.returncode == 0, result.stderr
    assert "fg-very-secret" not in result.stdout and "pw-secret" not in result.stdout
    assert "port: 9100" in result.stdout and "postgresql://u:***@db:5432/x" in result.stdout


def test_open_gateway_refuses_public_bind_without_keys() -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2 and "FEEDGATE_API_KEYS" in result.stderr


def test_generated_reference_and_example_are_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == markdown(), "README config reference is stale: run python -m feedgate.config.reference"
    example = (ROOT / "config" / "feedgate.yaml").read_text(encoding="utf-8")
    assert example == yaml_example(), "config/feedgate.yaml is stale: run python -m feedgate.config.reference"
    # The example file is itself a valid config that yields the defaults.
    assert load_settings(ROOT / "config" / "feedgate.yaml", environ={}) == load_settings(environ={})
