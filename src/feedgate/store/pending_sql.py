"""Dropping pending feedback that nothing claimed: the same statements for both stores (``?`` style)."""

from __future__ import annotations

_UNCLAIMED = "AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = {column})"


def drop_pending_statements(count: int) -> list[str]:
    marks = ", ".join("?" for _ in range(count))
    return [
        f"DELETE FROM feedback_events WHERE target_type = 'request' AND target_id IN ({marks}) "
        + _UNCLAIMED.format(column="feedback_events.target_id"),
        f"DELETE FROM feedback WHERE target_type = 'request' AND target_id IN ({marks}) "
        + _UNCLAIMED.format(column="feedback.target_id"),
        f"DELETE FROM scores WHERE request_id IN ({marks}) " + _UNCLAIMED.format(column="scores.request_id"),
        f"DELETE FROM request_properties WHERE request_id IN ({marks}) "
        + _UNCLAIMED.format(column="request_properties.request_id"),
    ]
