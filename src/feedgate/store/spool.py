"""``database.spool``: logged records kept in local files until the store has them, so a crash loses none.

Why: the writer's queue lives in memory, so a crash (kill -9, the OOM killer) loses what it holds: the batch
being written and whatever waits behind it. With a spool, each record is also written to a file before it
is queued: one ``write`` system call, no ``fsync``, so once it returns the record is in the kernel's page
cache, which a crashed process cannot take with it (a power cut still can). The next start writes whatever
the files still hold.

Layout: numbered segment files in the spool directory, each a run of length-prefixed records. The writer
commits records in the order they were appended, so the spool only counts how many of the oldest records
are written, and deletes a segment once all of its records are. A record is encoded by ``encode`` (the
exchange's own bytes, ``logrows/exchange.py``) and decoded by ``decode`` when it is replayed.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from feedgate.store.protocol import Store
from feedgate.store.reads.requests import logged_moments

log = logging.getLogger("feedgate.spool")
Record = TypeVar("Record")
_LENGTH = struct.Struct(">I")
SEGMENT_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int | None  # open for appending while it is the current segment
    size: int = 0
    appended: int = 0
    written: int = 0


class Spool(Generic[Record]):
    def __init__(
        self,
        directory: Path,
        encode: Callable[[Record], bytes],
        decode: Callable[[bytes], Record],
        *,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.directory = directory
        self.encode = encode
        self.decode = decode
        self.segment_bytes = segment_bytes
        self._segments: deque[_Segment] = deque()
        self._leftover: list[Path] = []
        self._next = 0

    def open(self) -> list[Record]:
        """Start a new segment, and return the records a previous run left unwritten (oldest first).

        The caller queues them again (they go into the new segment) and then calls ``forget_leftover``.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._leftover = sorted(self.directory.glob("*.spool"), key=lambda path: int(path.stem))
        self._next = int(self._leftover[-1].stem) + 1 if self._leftover else 0
        records: list[Record] = []
        for path in self._leftover:
            records.extend(self._read(path))
        self._rotate()
        return records

    def forget_leftover(self) -> None:
        for path in self._leftover:
            path.unlink(missing_ok=True)
        self._leftover = []

    def append(self, record: Record) -> None:
        """Write one record to the current segment before it is queued (one system call)."""
        current = self._segments[-1]
        payload = self.encode(record)
        assert current.fd is not None
        os.write(current.fd, _LENGTH.pack(len(payload)) + payload)
        current.size += _LENGTH.size + len(payload)
        current.appended += 1
        if current.size >= self.segment_bytes:
            self._rotate()

    def written(self, count: int) -> None:
        """The oldest ``count`` records appended are now committed (or dropped and counted)."""
        segments = self._segments
        while count and segments:
            oldest = segments[0]
            taken = min(count, oldest.appended - oldest.written)
            oldest.written += taken
            count -= taken
            if oldest.fd is None and oldest.written == oldest.appended:
                segments.popleft()
                oldest.path.unlink(missing_ok=True)
            elif taken == 0:
                break

    def close(self, *, everything_written: bool) -> None:
        """At a clean stop: delete the files when every record was written, keep them otherwise."""
        for segment in self._segments:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
            if everything_written:
                segment.path.unlink(missing_ok=True)
        self._segments.clear()

    def _rotate(self) -> None:
        if self._segments:
            current = self._segments[-1]
            if current.fd is not None:
                os.close(current.fd)
                current.fd = None
            if current.written == current.appended:
                self._segments.pop()
                current.path.unlink(missing_ok=True)
        path = self.directory / f"{self._next}.spool"
        self._next += 1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._segments.append(_Segment(path, fd))

    def _read(self, path: Path) -> list[Record]:
        data = path.read_bytes()
        records: list[Record] = []
        at = 0
        while at + _LENGTH.size <= len(data):
            (length,) = _LENGTH.unpack_from(data, at)
            end = at + _LENGTH.size + length
            if end > len(data):
                break  # a record cut short: nothing was acknowledged for it
            try:
                records.append(self.decode(data[at + _LENGTH.size : end]))
            except Exception:
                log.exception("spool %s: a record at offset %d could not be read; skipped", path, at)
            at = end
        if at != len(data):
            log.warning("spool %s: %d bytes at the end were not a whole record; skipped", path, len(data) - at)
        return records


async def recover(
    spool: Spool[Record],
    leftover: list[Record],
    store: Store,
    log_record: Callable[[Record], bool],
    moment: Callable[[Record], tuple[str, str]],
) -> int:
    """Queue again what a previous run left in the spool, but not what its store already has; returns how many.

    ``moment`` names a record as ``(request_id, datetime_utc)``, as its row would: a request ID alone is not
    enough, since a client's own ID may be logged once per attempt.
    """
    stored = await logged_moments(store, sorted({moment(record)[0] for record in leftover}))
    queued = 0
    for record in leftover:
        if moment(record) not in stored:
            queued += log_record(record)
    spool.forget_leftover()
    log.warning(
        "spool: %d log records left by the previous run; %d were already stored, %d queued now",
        len(leftover),
        len(leftover) - queued,
        queued,
    )
    return queued
