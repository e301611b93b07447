"""The metric reference table (README and docs/observability.md), made from ``metrics.METRICS``.

Generated so it cannot drift from the code: ``python -m feedgate.ops.reference`` rewrites the block
between the markers in both files, and a test fails when either is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from feedgate.ops.metrics import METRICS

START, END = "<!-- metrics-reference:start -->", "<!-- metrics-reference:end -->"
FILES = ("README.md", "docs/observability.md")


def exposed_names(name: str, kind: str) -> tuple[str, ...]:
    """The sample names a metric appears under in the text format."""
    if kind == "histogram":
        return (f"{name}_bucket", f"{name}_sum", f"{name}_count")
    return (name,)


def markdown() -> str:
    lines = ["| metric | type | labels | what it measures |", "|---|---|---|---|"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "–"
        lines.append(f"| `{spec.name}` | {spec.kind} | {labels} | {spec.help.replace('|', '/')} |")
    lines.append(
        "| `process_*`, `python_*` | | | The process's CPU seconds, memory, open files and start time; "
        "the interpreter's version and garbage collections (prometheus_client's collectors). |"
    )
    return "\n".join(lines)


def rewritten(text: str) -> str:
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"markers {START} ... {END} not found")
    return f"{head}{START}\n{markdown()}\n{END}{tail}"


def write(root: Path) -> None:
    for name in FILES:
        path = root / name
        path.write_text(rewritten(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
