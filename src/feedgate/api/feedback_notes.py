"""Committed feedback as metrics and traces see it: one ``FeedbackNote`` per rating, signal or score.

The feedback handlers hand the notes of each commit to the app's ``FEEDBACK_OBSERVER`` (set by ``app/``:
Prometheus counts, and with tracing on a ``gen_ai.evaluation.result`` span event), after the commit
succeeded, so a count never runs ahead of the store. The label values are bounded here, where the
vocabulary is known: a signal outside the known list is ``other``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from feedgate.api.feedback_models import SIGNALS
from feedgate.store.ops import PutFeedback, PutScores, WriteOp

_KNOWN_SIGNALS = frozenset(SIGNALS)


@dataclass(frozen=True, slots=True)
class FeedbackNote:
    target_type: str  # "request" or "session"
    target_id: str
    kind: str  # rating, session_rating, signal, score
    value: str  # the metric label: up, down, cleared; a known signal or other; true, false, number
    name: str  # what was evaluated: "rating", the signal's name, the score's name
    score: float | None  # 1.0 / 0.0 for a rating or signal's polarity, a score's value; None when cleared


class FeedbackObserver(Protocol):
    async def __call__(self, request: web.Request, notes: Sequence[FeedbackNote]) -> None: ...


def _polarity(rating: bool | None) -> str:
    return "cleared" if rating is None else "up" if rating else "down"


def notes_for(ops: Sequence[WriteOp]) -> list[FeedbackNote]:
    notes: list[FeedbackNote] = []
    for op in ops:
        if isinstance(op, PutFeedback):
            score = None if op.rating is None else float(op.rating)
            if op.kind == "implicit" and op.signal is not None:
                value = op.signal if op.signal in _KNOWN_SIGNALS else "other"
                notes.append(FeedbackNote(op.target_type, op.target_id, "signal", value, op.signal, score))
            else:
                kind = "session_rating" if op.target_type == "session" else "rating"
                notes.append(FeedbackNote(op.target_type, op.target_id, kind, _polarity(op.rating), "rating", score))
        elif isinstance(op, PutScores):
            for name, (number, value_type) in op.scores.items():
                value = ("true" if number else "false") if value_type == "bool" else "number"
                notes.append(FeedbackNote("request", op.request_id, "score", value, name, number))
    return notes
