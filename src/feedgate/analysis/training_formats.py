"""Training and evaluation datasets from logged requests: OpenAI fine-tuning (SFT) and preference (DPO)
lines, few-shot examples, and a deterministic train/validation split.

Why: the point of collecting feedback is to act on it: fine-tune on good answers, learn preferences from
answer pairs, or build few-shot prompts. Every row is first normalised into OpenAI chat messages
(``chat_messages.py``). Pure: rows in, dicts out (``json.dumps``-able), no I/O.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from feedgate.analysis.chat_messages import JSON, Chat, ExportRow, join_text, to_chat

__all__ = ["few_shot", "openai_chat_line", "openai_chat_lines", "openai_preference_lines", "split"]

T = TypeVar("T")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _input_key(chat: Chat) -> str:
    return _canonical({"messages": chat.input, "tools": chat.tools})


def _rank(rating: bool | None) -> int:
    return 2 if rating is True else 1 if rating is None else 0


def _with_tools(payload: JSON, chat: Chat) -> JSON:
    if chat.tools:
        payload["tools"] = chat.tools
        if chat.parallel_tool_calls is not None:
            payload["parallel_tool_calls"] = chat.parallel_tool_calls
    return payload


def openai_chat_lines(rows: Iterable[ExportRow]) -> Iterator[JSON]:
    """OpenAI supervised fine-tuning lines: ``{"messages", "tools"?, "parallel_tool_calls"?}``.

    Rows with identical input (messages before the answer, and tools) are emitted once,
    at the position of the first one, with the best-rated answer (up > unrated > down;
    the first on ties).  Filtering by rating is the caller's choice.
    """
    best: dict[str, tuple[int, Chat]] = {}
    for row in rows:
        chat = to_chat(row)
        if chat is None:
            continue
        key, rank = _input_key(chat), _rank(row.rating)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, chat)
    for _rank_value, chat in best.values():
        yield openai_chat_line(chat)


def openai_chat_line(chat: Chat) -> JSON:
    """One conversation as an OpenAI fine-tuning line: its input messages, then the answer."""
    return _with_tools({"messages": [*chat.input, chat.answer]}, chat)


def openai_preference_lines(rows: Iterable[ExportRow]) -> Iterator[JSON]:
    """OpenAI preference (DPO) lines, one per input that has both a thumbs-up and a
    thumbs-down answer (that differ): ``{"input": {"messages", "tools"?,
    "parallel_tool_calls"?}, "preferred_output": [assistant], "non_preferred_output":
    [assistant]}``.  The first such pair in row order is used.
    """
    groups: dict[str, tuple[list[Chat], list[Chat]]] = {}
    for row in rows:
        if row.rating is None:
            continue
        chat = to_chat(row)
        if chat is None:
            continue
        good, bad = groups.setdefault(_input_key(chat), ([], []))
        (good if row.rating else bad).append(chat)
    for good, bad in groups.values():
        pair = next(
            ((g, b) for g in good for b in bad if _canonical(g.answer) != _canonical(b.answer)),
            None,
        )
        if pair is not None:
            g, b = pair
            yield {
                "input": _with_tools({"messages": list(g.input)}, g),
                "preferred_output": [g.answer],
                "non_preferred_output": [b.answer],
            }


def few_shot(rows: Iterable[ExportRow]) -> list[JSON]:
    """Few-shot examples ``{"input": last user text, "output": answer text, "system"?}``.

    Rows whose answer has no text (tool calls only) or whose last user message has no
    text are skipped.  Duplicates of (system, input) keep the best-rated row (up >
    unrated > down; first on ties) at the position of the first one.
    """
    best: dict[tuple[str | None, str], tuple[int, JSON]] = {}
    for row in rows:
        chat = to_chat(row)
        if chat is None:
            continue
        output = chat.answer.get("content")
        user = next((m for m in reversed(chat.input) if m["role"] == "user"), None)
        text = join_text(user["content"], "\n") if user is not None else None
        if not isinstance(output, str) or not output or not text:
            continue
        systems = [m["content"] for m in chat.input if m["role"] == "system"]
        system = "\n\n".join(systems) if systems else None
        example: JSON = {"input": text, "output": output}
        if system:
            example["system"] = system
        key, rank = (system, text), _rank(row.rating)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, example)
    return [example for _rank_value, example in best.values()]


def split(items: Sequence[T], train_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Deterministic train/validation split: shuffle with ``random.Random(seed)``, then
    take ``round(len * train_fraction)`` items for training.  With at least two items and
    ``0 < train_fraction < 1`` both parts get at least one item.
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be within [0, 1], got {train_fraction}")
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n_train = round(len(shuffled) * train_fraction)
    if 0.0 < train_fraction < 1.0 and len(shuffled) >= 2:
        n_train = min(max(n_train, 1), len(shuffled) - 1)
    return shuffled[:n_train], shuffled[n_train:]
