"""The config reference (README table) and the example file (config/feedgate.yaml), made from ``Settings``.

Both are generated so they cannot drift from the code: ``python -m feedgate.config.reference`` rewrites
them, and a test fails when either is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from feedgate.config import Settings, env_name, top_level_env

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return None if field.default is PydanticUndefined else field.default


def settings_rows() -> Iterator[tuple[str, str, Any, str]]:
    """(dotted name, environment variable, default, help) for every setting."""
    for section, section_field in Settings.model_fields.items():
        model = section_field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, field in model.model_fields.items():
                yield f"{section}.{name}", env_name(section, name), _default(field), field.description or ""
        else:
            env = top_level_env(section_field.json_schema_extra) or "–"
            yield section, env, _default(section_field), section_field.description or ""


def _shown(value: Any) -> str:
    if value is None:
        return "–"
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def markdown() -> str:
    lines = ["| setting | environment variable | default | what it does |", "|---|---|---|---|"]
    for name, env, default, help_text in settings_rows():
        shown_env = f"`{env}`" if env != "–" else env
        lines.append(f"| `{name}` | {shown_env} | {_shown(default)} | {help_text.replace('|', '/')} |")
    return "\n".join(lines)


def yaml_example() -> str:
    out = [
        "# feedgate settings: every one is shown here with its default and what it does.",
        "# Layers: these defaults < this file (--config) < FEEDGATE_* environment < command-line flags.",
        "# Any string may be written os.environ/NAME to read it from the environment (keep secrets out of files).",
        "",
    ]
    current = None
    for name, env, default, help_text in settings_rows():
        section, _, field = name.partition(".")
        if field and section != current:
            out.append(f"{section}:")
            current = section
        indent = "  " if field else ""
        key = field or section
        out.append(f"{indent}# {help_text}" + (f" ({env})" if env != "–" else ""))
        dumped = yaml.safe_dump({key: default}, default_flow_style=False, sort_keys=False).rstrip()
        out.extend(f"{indent}{line}" for line in dumped.splitlines())
        if not field:
            current = None
            out.append("")
    out.extend(_examples())
    return "\n".join(out).rstrip() + "\n"


def _examples() -> list[str]:
    return [
        "",
        "# Examples (uncomment to use):",
        "# auth:",
        "#   keys: [os.environ/FEEDGATE_KEY]",
        "# providers:",
        "#   - name: groq",
        "#     kind: openai-compatible",
        "#     base_url: https://api.groq.com/openai",
        "#     api_key: os.environ/GROQ_API_KEY",
        "#   - name: azure",
        "#     kind: azure",
        "#     base_url: https://my-resource.openai.azure.com",
        "#     api_key: os.environ/AZURE_OPENAI_KEY",
        "# prices:",
        "#   my-finetune: {input: 0.3, output: 1.2}",
    ]


def write(root: Path) -> None:
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{markdown()}\n{END}{tail}", encoding="utf-8")
    (root / "config" / "feedgate.yaml").write_text(yaml_example(), encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
