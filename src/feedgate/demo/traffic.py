"""Synthetic but realistic traffic and feedback, so every analysis command can be tried without an API key.

Why it builds real ``Exchange`` records and runs them through ``build_row``: the rows then look exactly
like proxied ones (request and response bytes as providers send them, SSE streams, pricing, fingerprints,
redacted headers), so exports, filters and stats behave on demo data as they will on real traffic.

What is in it (deterministic for a seed):

* five models of different quality, OpenAI ones on ``/v1/chat/completions`` and Anthropic ones on
  ``/v1/messages``; about 40% streamed; about 1% of requests retried after a 429 (two attempts);
* five system prompts tied to features, two of them sent with ``Helicone-Prompt-Id``; questions drawn from
  skewed pools, so identical inputs recur (exports deduplicate them);
* users (a few of them harsh raters), sessions, properties ``feature``, ``environment`` and ``plan``;
* explicit ratings on ``rated_share`` of requests (comments on some thumbs-down), implicit signals
  (``copied``, ``code_accepted``, ``abandoned``, and ``regenerated`` from real re-sends that the store
  detects itself), and ``helpfulness`` eval scores;
* a planted regression: in the last ``REGRESSION_DAYS`` days, ``gpt-4o-mini`` on the ``support`` feature
  is rated much worse and regenerated more often. ``sql-helper`` is a poor prompt throughout.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from feedgate.demo.bodies import anthropic_json, anthropic_sse, openai_json, openai_sse
from feedgate.logrows.build import build_row
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.store.bodies import BodyPacker, StreamEvents
from feedgate.store.ops import PutFeedback, PutScores, WriteOp
from feedgate.store.utc import utc_text

REGRESSION_DAYS = 3
REGRESSED_MODEL, REGRESSED_FEATURE = "gpt-4o-mini", "support"

# model -> (provider, base probability of a thumbs-up, median latency in ms, share of traffic)
MODELS: dict[str, tuple[str, float, float, float]] = {
    "gpt-4o-mini": ("openai", 0.74, 900.0, 0.35),
    "gpt-4o": ("openai", 0.82, 1800.0, 0.2),
    "gpt-4.1-mini": ("openai", 0.78, 1100.0, 0.15),
    "claude-sonnet-4-5": ("anthropic", 0.85, 2200.0, 0.15),
    "claude-haiku-4-5": ("anthropic", 0.76, 800.0, 0.15),
}
# feature -> (system prompt, Helicone-Prompt-Id or None, quality offset, share of traffic)
PROMPTS: dict[str, tuple[str, str | None, float, float]] = {
    "support": (
        "You are Acme's support assistant. Be concise and friendly; cite the help centre.",
        "support-v2",
        0.0,
        0.4,
    ),
    "code": (
        "You are a senior engineer. Answer with working code and a short explanation.",
        "code-assistant",
        0.02,
        0.25,
    ),
    "summarize": ("Summarize the user's text in three bullet points.", None, 0.05, 0.15),
    "search": ("Answer from the provided search results only. Say when you do not know.", None, -0.02, 0.12),
    "sql": ("You translate questions into PostgreSQL. Reply with one SQL query.", None, -0.15, 0.08),
}
_VERBS = ("reset", "export", "delete", "share", "rename", "restore", "sync", "upgrade", "cancel", "invite")
_NOUNS = (
    "my password",
    "an invoice",
    "a project",
    "the API key",
    "my team",
    "a dashboard",
    "the report",
    "my subscription",
    "a webhook",
    "two-factor login",
    "a workspace",
    "the billing address",
)
_CODE = (
    "parse a CSV file",
    "retry an HTTP call",
    "debounce a function",
    "merge two sorted lists",
    "read a YAML config",
    "paginate an API",
    "hash a password",
    "stream a large file",
    "validate an email",
)
_LANGS = ("Python", "TypeScript", "Go", "Rust", "SQL")
_COMMENTS = (
    "Wrong answer",
    "Too long",
    "Ignored my question",
    "Made up a feature that does not exist",
    "Code does not compile",
    "Not what I asked",
    "Outdated steps",
    "Rude tone",
)
_SENTENCES = (
    "Sure, here is how to do it.",
    "First, open the settings page.",
    "Then choose the right option.",
    "You can also use the API for this.",
    "This takes effect immediately.",
    "Let me know if it helps.",
    "Note that admins may need to approve it.",
    "The change is logged in the audit trail.",
)
_PLANS = ("free", "pro", "enterprise")


@dataclass(slots=True)
class DemoCounts:
    requests: int = 0
    attempts: int = 0
    ratings: int = 0
    signals: int = 0
    scores: int = 0


def _questions(feature: str) -> list[str]:
    if feature == "code":
        return [f"Write a {lang} function to {task}." for lang in _LANGS for task in _CODE]
    if feature == "sql":
        return [f"SQL: how many {noun} were changed per day last month?" for noun in _NOUNS] + [
            f"SQL: list users who {verb} {noun}." for verb in _VERBS for noun in _NOUNS[:4]
        ]
    if feature == "summarize":
        return [
            f"Summarize: the team decided to {v} {n} before Friday, pending review #{k}."
            for v in _VERBS
            for n in _NOUNS
            for k in range(3)
        ]
    return [f"How do I {verb} {noun}?" for verb in _VERBS for noun in _NOUNS]


class DemoTraffic:
    """Yields batches of write ops for ``n`` requests spread over the ``days`` before ``now``."""

    def __init__(
        self,
        n: int,
        *,
        days: float = 30.0,
        seed: int = 7,
        rated_share: float = 0.2,
        now: datetime | None = None,
        prices: PriceTable | None = None,
        packer: BodyPacker | None = None,
    ) -> None:
        self.n, self.days, self.rated_share = n, days, rated_share
        # The rows' bodies kept as a gateway with the same ``log`` settings would keep them.
        self.packer = packer
        self.rng = random.Random(seed)
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.prices = prices or PriceTable.load()
        self.counts = DemoCounts()
        self.models = list(MODELS)
        self.model_weights = [MODELS[m][3] for m in self.models]
        self.features = list(PROMPTS)
        self.feature_weights = [PROMPTS[f][3] for f in self.features]
        self.pools = {f: _questions(f) for f in self.features}
        # A skewed pick: a few questions are asked very often, most rarely, as in real traffic.
        self.pool_weights = {f: [1.0 / (k + 1) for k in range(len(q))] for f, q in self.pools.items()}
        n_users = max(5, n // 400)
        self.users = [f"user-{k:05d}" for k in range(n_users)]
        self.harsh = {u for u in self.users if self.rng.random() < 0.03}
        self.user_plan = {u: self.rng.choices(_PLANS, (0.6, 0.3, 0.1))[0] for u in self.users}
        self.sessions: dict[str, tuple[str, int]] = {}

    def batches(self, size: int = 5000) -> Iterator[list[WriteOp]]:
        batch: list[WriteOp] = []
        start = self.now - timedelta(days=self.days)
        step = self.days * 86400.0 / max(1, self.n)
        for i in range(self.n):
            when = start.timestamp() + i * step + self.rng.random() * step
            batch.extend(self._request(when))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _session(self, user: str) -> str:
        session, left = self.sessions.get(user, ("", 0))
        if left <= 0:
            session, left = str(uuid.UUID(int=self.rng.getrandbits(128))), self.rng.randint(1, 8)
        self.sessions[user] = (session, left - 1)
        return session

    def _request(self, when: float) -> list[WriteOp]:
        rng = self.rng
        model = rng.choices(self.models, self.model_weights)[0]
        feature = rng.choices(self.features, self.feature_weights)[0]
        user = rng.choice(self.users)
        question = rng.choices(self.pools[feature], self.pool_weights[feature])[0]
        recent = when >= self.now.timestamp() - REGRESSION_DAYS * 86400
        regressed = recent and model == REGRESSED_MODEL and feature == REGRESSED_FEATURE
        headers = {
            "Authorization": "Bearer sk-demo",
            "Content-Type": "application/json",
            "Helicone-User-Id": user,
            "Helicone-Session-Id": self._session(user),
            "Helicone-Session-Path": f"/{feature}",
            "Helicone-Property-Feature": feature,
            "Helicone-Property-Environment": "staging" if rng.random() < 0.1 else "prod",
            "Helicone-Property-Plan": self.user_plan[user],
        }
        prompt_id = PROMPTS[feature][1]
        if prompt_id is not None:
            headers["Helicone-Prompt-Id"] = prompt_id
        stream = rng.random() < 0.4
        ops: list[WriteOp] = []
        request_id = str(uuid.UUID(int=rng.getrandbits(128)))
        if rng.random() < 0.01:  # rate-limited first, retried by the SDK with the same ID
            ops.append(self._exchange(request_id, when, model, feature, question, headers, stream, 429))
            when += 1.5
        ops.append(self._exchange(request_id, when, model, feature, question, headers, stream, 200))
        self.counts.requests += 1
        regen = rng.random() < (0.3 if regressed else 0.04)
        ops.extend(self._feedback(request_id, when, model, feature, user, regressed, stream, regen))
        if regen:  # the user asks again: the store marks the first answer "regenerated" by itself
            again = str(uuid.UUID(int=rng.getrandbits(128)))
            ops.append(self._exchange(again, when + 20, model, feature, question, headers, stream, 200))
            self.counts.requests += 1
        return ops

    def _feedback(
        self,
        request_id: str,
        when: float,
        model: str,
        feature: str,
        user: str,
        regressed: bool,
        stream: bool,
        regen: bool,
    ) -> list[WriteOp]:
        rng = self.rng
        quality = MODELS[model][1] + PROMPTS[feature][2] - (0.3 if user in self.harsh else 0.0)
        quality -= 0.3 if regressed else 0.0
        quality -= 0.03 if self.user_plan[user] == "free" else 0.0
        at = utc_text(when + rng.uniform(5, 600))
        ops: list[WriteOp] = []
        if rng.random() < self.rated_share:
            up = rng.random() < quality
            comment = None if up or rng.random() > 0.3 else rng.choice(_COMMENTS)
            ops.append(
                PutFeedback(
                    "request", request_id, "explicit", up, comment=comment, user_id=user, source="demo", datetime_utc=at
                )
            )
            self.counts.ratings += 1
        signal = None
        if stream and not regen and rng.random() < 0.01:
            signal = "abandoned"
        elif rng.random() < 0.08 and not regen:
            signal = "code_accepted" if feature == "code" else "copied"
        if signal is not None:
            ops.append(
                PutFeedback(
                    "request",
                    request_id,
                    "implicit",
                    signal != "abandoned",
                    signal=signal,
                    source="demo",
                    datetime_utc=at,
                )
            )
            self.counts.signals += 1
        if rng.random() < 0.05:
            score = min(1.0, max(0.0, rng.gauss(quality, 0.15)))
            ops.append(PutScores(request_id, {"helpfulness": (round(score, 3), "float")}, datetime_utc=at))
            self.counts.scores += 1
        return ops

    def _exchange(
        self,
        request_id: str,
        when: float,
        model: str,
        feature: str,
        question: str,
        headers: dict[str, str],
        stream: bool,
        status: int,
    ) -> WriteOp:
        rng = self.rng
        provider = MODELS[model][0]
        system = PROMPTS[feature][0]
        answer = " ".join(rng.sample(_SENTENCES, rng.randint(2, 5)))
        if feature == "code":
            answer += "\n\n```python\ndef solve(data):\n    return sorted(data)\n```"
        tokens_in = (len(system) + len(question)) // 4 + 8
        tokens_out = len(answer) // 4 + rng.randint(0, 40)
        if provider == "anthropic":
            body = {
                "model": model,
                "max_tokens": 1024,
                "system": system,
                "messages": [{"role": "user", "content": question}],
                "stream": stream,
            }
            path = "/v1/messages"
        else:
            body = {
                "model": model,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                "user": None,
            }
            del body["user"]
            if stream:
                body.update(stream=True, stream_options={"include_usage": True})
            path = "/v1/chat/completions"
        duration = MODELS[model][2] * rng.lognormvariate(0, 0.35) + tokens_out * 2.0
        if status != 200:
            chunks = [b'{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}']
            response_headers = {"Content-Type": "application/json"}
            duration = rng.uniform(20, 80)
        elif stream:
            chunks = (
                anthropic_sse(model, answer, tokens_in, tokens_out)
                if provider == "anthropic"
                else openai_sse(model, answer, tokens_in, tokens_out)
            )
            response_headers = {"Content-Type": "text/event-stream", "x-request-id": f"req_{request_id[:12]}"}
        else:
            chunks = [
                anthropic_json(model, answer, tokens_in, tokens_out)
                if provider == "anthropic"
                else openai_json(model, answer, tokens_in, tokens_out)
            ]
            response_headers = {"Content-Type": "application/json", "x-request-id": f"req_{request_id[:12]}"}
        self.counts.attempts += 1
        exchange = Exchange(
            request_id=request_id,
            started_at=when,
            provider=provider,
            provider_kind=provider,
            method="POST",
            path=path,
            query="",
            target_url=f"https://api.{provider}.com{path}",
            request_headers=headers,
            request_body=orjson.dumps(body),
            status=status,
            response_headers=response_headers,
            response_chunks=chunks,
            is_stream=stream and status == 200,
            duration_ms=duration,
            ttft_ms=duration * rng.uniform(0.1, 0.3) if stream and status == 200 else None,
        )
        return build_row(exchange, self.prices, packer=self.packer)


def produce(
    n: int,
    days: float,
    seed: int,
    rated_share: float,
    now: float,
    batch: int,
    queue: Any,
    keeping: tuple[StreamEvents, int] = ("raw", 0),
) -> None:
    """Child-process entry point: generate batches onto ``queue``, then ``None``, then the counts.

    ``keeping``: the ``log`` settings' stream_events and request_body_compress_over_bytes."""
    when = datetime.fromtimestamp(now, UTC)
    packer = BodyPacker(*keeping)
    traffic = DemoTraffic(n, days=days, seed=seed, rated_share=rated_share, now=when, packer=packer)
    for ops in traffic.batches(batch):
        queue.put(ops)
    queue.put(None)
    queue.put(traffic.counts)
