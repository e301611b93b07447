"""Export logged requests as training data, streamed: openai-chat, openai-preference, few-shot, jsonl.

Rows come from ``store/reads/export_rows.py`` in export order and go through the pure converters of
``training_formats.py`` (over ``chat_messages.py``) one at a time (one conversation group at a time for
preference pairs), so memory holds one chunk of rows plus a 16-byte digest per distinct input kept.
Identical inputs are written once: rows arrive best-rated first, so the copy kept is the best-rated one,
as ``openai_chat_lines`` chooses.
``jsonl`` writes every matching request in full (the fields of ``GET /v1/request/{id}``), undeduplicated.

Streamed answers export like plain ones: ``response_json`` holds the reassembled message of a stream,
``response_body`` the JSON of a non-streamed answer; Anthropic messages and Responses API calls convert to the
same chat shape, a Responses call with the earlier turns feedgate logged before it (``response_chains.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from array import array
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from feedgate.analysis.chat_messages import JSON, Chat, ExportRow, Inputs, to_chat
from feedgate.analysis.request_rows import annotated
from feedgate.analysis.response_chains import link_responses
from feedgate.analysis.training_formats import few_shot, openai_chat_line, openai_preference_lines, split
from feedgate.errors import FilterError
from feedgate.store.dialect import Frag
from feedgate.store.protocol import Store
from feedgate.store.reads.export_rows import Chunk, export_order, export_rows

FORMATS = ("openai-chat", "openai-preference", "few-shot", "jsonl")
_ORDER = {"openai-chat": "rating", "few-shot": "rating", "openai-preference": "conversation", "jsonl": "time"}
Progress = Callable[[int, int], None]
_MAX_KEYS = 8192
# A batch of lines (Export.batches) ends past this many bytes.
BATCH_BYTES = 1 << 18


def check_format(fmt: str | None) -> str:
    if fmt not in FORMATS:
        raise FilterError(f"format must be one of {', '.join(FORMATS)}, not {str(fmt)[:32]!r}")
    return fmt


def _json(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(bytes(raw) if isinstance(raw, memoryview) else raw)
    except orjson.JSONDecodeError:
        return None


class Bodies:
    """Request bodies parsed once per distinct body, so the rows that sent the same conversation share one
    parsed object and, through ``inputs``, one conversion. Bounded by the bytes held: memory stays flat."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.inputs = Inputs()
        self._parsed: dict[bytes, Any] = {}
        self._keys: dict[int, tuple[list[JSON], bytes]] = {}
        self._held = 0

    def parse(self, raw: Any) -> Any:
        if raw is None:
            return None
        key = bytes(raw)
        if key in self._parsed:
            return self._parsed[key]
        if self._held + len(key) > self.max_bytes:
            self._parsed.clear()
            self._keys.clear()
            self.inputs.clear()
            self._held = 0
        value = self._parsed[key] = _json(key)
        self._held += len(key)
        return value

    def input_key(self, chat: Chat, line: JSON) -> bytes:
        """``_input_digest``, once per shared request side: its messages list is the same object (held here,
        so its id is not reused), and its tools come with it."""
        found = self._keys.get(id(chat.input))
        if found is not None and found[0] is chat.input:
            return found[1]
        key = _input_digest(chat, line)
        if len(self._keys) >= _MAX_KEYS:  # inputs not shared (a prefilled answer's) would pile up
            self._keys.clear()
        self._keys[id(chat.input)] = (chat.input, key)
        return key


def export_row(row: dict[str, Any], bodies: Bodies | None = None) -> ExportRow:
    """What the training formats read of a row; its properties, scores, user and time they never read.

    With ``bodies``, equal request bodies share a parsed object, except a Responses call's: its request may
    be filled in from the log (``response_chains.py``)."""
    message = _json(row["response_json"] if row["is_stream"] else row["response_body"])
    share = bodies is not None and row["api"] != "responses"
    return ExportRow(
        request_id=row["request_id"],
        provider=row["provider"],
        path=row["path"],
        request_json=bodies.parse(row["request_body"]) if share and bodies is not None else _json(row["request_body"]),
        response_message=message if isinstance(message, dict) else None,
        rating=None if row["rating"] is None else bool(row["rating"]),
    )


def _digest(value: Any) -> bytes:
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _input_digest(chat: Chat, line: JSON) -> bytes:
    """What makes two openai-chat lines repeats of one input: the messages before the answer, and tools."""
    return _digest({"messages": chat.input, "tools": line.get("tools")})


def _line(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)


async def _linked_responses(store: Store, rows: Chunk) -> dict[int, ExportRow]:
    """The Responses API rows of a chunk, by their place in it, converted and filled in from the calls they
    continue (``response_chains.py``), which are looked up for the whole chunk at once."""
    apis = rows.column("api")
    pairs: dict[int, tuple[dict[str, Any], ExportRow]] = {}
    for index, api in enumerate(apis):
        if api == "responses":
            row = rows.row(index)
            pairs[index] = (row, export_row(row))
    if pairs:
        await link_responses(store, list(pairs.values()))
    return {index: exported for index, (_row, exported) in pairs.items()}


@dataclass
class Export:
    """One export: ``plan()`` finds the rows, ``batches()`` (or ``lines()``) streams JSONL; counters say how it
    went."""

    store: Store
    where: Frag
    fmt: str
    progress: Progress | None = None
    ids: list[int] = field(default_factory=list)
    rows_read: int = 0
    lines_written: int = 0
    duplicates: int = 0
    # What the conversion carries from row to row: the inputs written (16-byte digests), the parsed bodies shared
    # (openai-chat only: its conversion treats them as read-only, chat_messages.Inputs), the preference group.
    _seen: set[bytes] = field(default_factory=set, init=False, repr=False)
    _bodies: Bodies | None = field(default=None, init=False, repr=False)
    _group: list[ExportRow] = field(default_factory=list, init=False, repr=False)
    _group_key: str | None = field(default=None, init=False, repr=False)

    async def plan(self) -> int:
        self.ids = await export_order(self.store, self.where, _ORDER[self.fmt], self.fmt == "openai-preference")  # type: ignore[arg-type]
        return len(self.ids)

    async def lines(self) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(self.batches()) as batches:
            async for batch in batches:
                for line in batch:
                    yield line

    async def batches(self) -> AsyncGenerator[list[bytes], None]:
        """The lines in lists of about ``BATCH_BYTES``: a writer writes each at once, no line takes a round
        through the event loop, and a chunk of long lines is never held whole."""
        self._bodies = Bodies() if self.fmt == "openai-chat" else None
        async for rows in export_rows(self.store, self.ids, full=self.fmt == "jsonl"):
            linked = {} if self.fmt == "jsonl" else await _linked_responses(self.store, rows)
            batch: list[bytes] = []
            size = 0
            for line in self._chunk_lines(rows, linked):
                batch.append(line)
                size += len(line)
                if size >= BATCH_BYTES:
                    self.lines_written += len(batch)
                    yield batch
                    batch, size = [], 0
            if batch:
                self.lines_written += len(batch)
                yield batch
            self._read(len(rows))
        tail = [_line(line) for line in openai_preference_lines(self._group)]
        if tail:
            self.lines_written += len(tail)
            yield tail

    def _chunk_lines(self, rows: Chunk, linked: dict[int, ExportRow]) -> Iterator[bytes]:
        """The lines of one chunk. Its rows are converted one at a time, so what a row parses is freed with it,
        not held (and promoted through the GC's generations into the next full collection) for the whole chunk."""
        if self.fmt == "jsonl":
            for row in rows:
                yield _line(_full(row))
            return
        for index, row in enumerate(rows):
            exported = linked.get(index)
            if exported is None:
                exported = export_row(row, self._bodies)
            if self.fmt == "openai-preference":
                if row["messages_fingerprint"] != self._group_key:
                    for line in openai_preference_lines(self._group):
                        yield _line(line)
                    self._group, self._group_key = [], row["messages_fingerprint"]
                self._group.append(exported)
                continue
            for line, key in self._deduplicable(exported, self._bodies):
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                yield _line(line)

    def _read(self, count: int) -> None:
        self.rows_read += count
        if self.progress is not None:
            self.progress(self.rows_read, len(self.ids))

    def _deduplicable(self, row: ExportRow, bodies: Bodies | None) -> Iterator[tuple[Any, bytes]]:
        if self.fmt == "openai-chat":
            # openai_chat_lines([row]) without its own deduplication key, which this one replaces.
            chat = to_chat(row, bodies.inputs if bodies is not None else None)
            if chat is not None:
                line = openai_chat_line(chat)
                key = bodies.input_key(chat, line) if bodies is not None else _input_digest(chat, line)
                yield line, key
        else:
            for example in few_shot([row]):
                yield example, _digest([example.get("system"), example["input"]])


def _full(row: dict[str, Any]) -> dict[str, Any]:
    note = {
        "feedback_rating": None if row["rating"] is None else bool(row["rating"]),
        "feedback_created_at": row["rated_utc"],
        "feedback_comment": row["comment"],
        "scores": row["scores"],
        "later_properties": row["later_properties"],
    }
    return annotated(row, note, as_stored=True)


class Spool:
    """Lines kept in a temporary file with their offsets, to be split as ``analysis.export.split`` does."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()
        self.offsets = array("q")

    async def fill(self, batches: AsyncIterator[list[bytes]]) -> int:
        """Every line of ``batches`` (``Export.batches()``); how many."""
        end = self.file.tell()
        async for batch in batches:
            for line in batch:
                self.offsets.append(end)
                end += len(line)
            self.file.write(b"".join(batch))
        self.offsets.append(end)
        return len(self.offsets) - 1

    def parts(self, fraction: float, seed: int) -> tuple[list[int], list[int]]:
        # Shuffling the indices shuffles exactly as split() would shuffle the lines themselves.
        return split(list(range(len(self.offsets) - 1)), fraction, seed)

    def read(self, indices: list[int]) -> Iterator[bytes]:
        for index in indices:
            self.file.seek(self.offsets[index])
            yield self.file.read(self.offsets[index + 1] - self.offsets[index])

    def close(self) -> None:
        self.file.close()


def check_split(fraction: float) -> float:
    if not 0.0 < fraction < 1.0:
        raise FilterError(f"split must be between 0 and 1 (the training share, e.g. 0.9), got {fraction}")
    return fraction
