"""The examples of the OpenAPI document (``openapi_operations.py``): IDs, rows, bodies and answers.

Plain data, kept apart from the operations so each file reads as one thing. ``tests/test_openapi.py`` checks
every example against its schema and sends it to a gateway.
"""

from __future__ import annotations

REQUEST_ID = "msg-123"
SESSION_ID = "ticket-4711"
DATASET_ID = "0b5e5d7c-3f4e-4a51-9d43-8a0f6a1f2c11"
PATH_EXAMPLES = {"request_id": REQUEST_ID, "session_id": SESSION_ID, "dataset_id": DATASET_ID}
NOW = "2026-01-15T09:30:00.000000Z"
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where is my parcel?"}]}
ROW = {
    "request_id": REQUEST_ID,
    "request_created_at": NOW,
    "response_status": 200,
    "model": "gpt-4o-mini-2024-07-18",
    "provider": "openai",
    "request_path": "/v1/chat/completions",
    "prompt_tokens": 12,
    "completion_tokens": 9,
    "total_tokens": 21,
    "delay_ms": 412.5,
    "cost": 7.2e-06,
    "properties": {"feature": "support"},
    "feedback_rating": False,
    "scores": {"stars": 2},
    "attempts": 1,
    "request_body": CHAT_BODY,
    "response_text": "It left the depot today.",
}
EVENT = {"rating": False, "comment": "made up a tracking number", "user_id": "u42", "metadata": None}
STATE = {
    **EVENT,
    "datetime_utc": NOW,
    "history": [{**EVENT, "source": "api", "datetime_utc": NOW}],
    "signals": [
        {"signal": "copied", "rating": True, "comment": None, "user_id": None, "metadata": {"chars": 120}}
        | {"source": "api", "datetime_utc": NOW}
    ],
    "scores": {"stars": 2, "relevance": 0.4},
    "request_known": True,
}
DATASET = {
    "id": DATASET_ID,
    "name": "bad answers",
    "created_at": NOW,
    "meta": {"owner": "support"},
    "organization": None,
    "dataset_type": "helicone",
    "filter": None,
    "requests_count": 1,
}
GROUP = {"key": "gpt-4o-mini", "requests": 1200, "rated": 300, "positive_rate": 0.81}
LOG_BODY = {
    "providerRequest": {
        "url": "https://api.openai.com/v1/chat/completions",
        "json": CHAT_BODY,
        "meta": {"Helicone-User-Id": "u42", "Helicone-Property-Feature": "support"},
    },
    "providerResponse": {
        "json": {"model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}},
        "status": 200,
        "headers": {},
    },
    "timing": {
        "startTime": {"seconds": 1768469400, "milliseconds": 250},
        "endTime": {"seconds": 1768469401, "milliseconds": 40},
    },
}
JSONL = "application/x-ndjson"
EXPORT_LINE = (
    '{"messages": [{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "..."}]}\n'
)
# Real tokens, signed with the secret "an example secret of at least 32 characters" at NOW.
TOKENS = {
    "request_tokens": {REQUEST_ID: "fgt1.cjo3OjE3NjkwNzQyMDA6bXNnLTEyMw.i3EOLxCOwezpjwgdLurh9Obiz3TeDxOH0N54cuuR1lU"},
    "session_tokens": {
        SESSION_ID: "fgt1.czo3OjE3NjkwNzQyMDA6dGlja2V0LTQ3MTE.uJUWq4VaFyuVB_h8tUgZUNegcnArQ06GrselsBfcOrk"
    },
    "allow": ["feedback", "score", "signal"],
    "expires_at": "2026-01-22T09:30:00Z",
}
