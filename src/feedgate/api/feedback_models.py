"""What the feedback routes accept. Unknown fields are refused by name, so a typo is never dropped silently."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from feedgate.api.fields import JsonObject, ScoreValue, Text
from feedgate.errors import Unprocessable

SIGNALS = (
    "code_accepted",
    "code_rejected",
    "copied",
    "regenerated",
    "follow_up",
    "task_completed",
    "clicked",
    "abandoned",
    "edited",
)
MAX_METADATA_BYTES = 8192
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\- ]+$")]
# Ratings are JSON booleans only: "no", "yes", 1 or 0 are refused, never read as a polarity.
Rating = StrictBool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeedbackIn(_Strict):
    """A rating (explicit) or a signal (implicit). ``rating`` is the polarity either way."""

    rating: Rating
    comment: Text | None = Field(None, max_length=4000)
    kind: Literal["explicit", "implicit"] | None = None
    signal: Name | None = None
    user_id: Text | None = Field(None, min_length=1, max_length=256)
    metadata: JsonObject | None = None

    @model_validator(mode="after")
    def _kind_and_signal(self) -> FeedbackIn:
        if self.kind is None:
            # A named signal without a kind is what apps mean by an implicit signal.
            self.kind = "implicit" if self.signal is not None else "explicit"
        if self.kind == "implicit" and self.signal is None:
            raise ValueError("implicit feedback needs a signal, e.g. 'code_accepted'")
        if self.kind == "explicit" and self.signal is not None:
            raise ValueError("signal goes with kind 'implicit'; an explicit rating has none")
        if self.metadata is not None and len(orjson.dumps(self.metadata)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes")
        return self

    @property
    def metadata_json(self) -> str | None:
        return None if self.metadata is None else orjson.dumps(self.metadata).decode()


class ScoresIn(_Strict):
    scores: dict[Name, ScoreValue] = Field(min_length=1, max_length=100)


class ScoreNamesIn(_Strict):
    """Which scores ``DELETE /v1/request/{id}/score`` removes; without names, all of that request's."""

    names: list[Name] = Field(min_length=1, max_length=100)


class PropertyIn(_Strict):
    key: Name
    value: Text = Field(max_length=4000)


class SessionFeedbackIn(_Strict):
    rating: Rating
    comment: Text | None = Field(None, max_length=4000)
    user_id: Text | None = Field(None, min_length=1, max_length=256)


class LegacyFeedbackIn(_Strict):
    helicone_id: str = Field(alias="helicone-id", min_length=1)
    rating: Rating


class BatchItem(_Strict):
    request_id: str = Field(alias="requestId", min_length=1)
    rating: Rating | None = None
    scores: dict[Name, ScoreValue] | None = Field(None, min_length=1, max_length=100)
    comment: Text | None = Field(None, max_length=4000)
    kind: Literal["explicit", "implicit"] | None = None
    signal: Name | None = None
    user_id: Text | None = Field(None, min_length=1, max_length=256)
    metadata: JsonObject | None = None

    @model_validator(mode="after")
    def _something_to_store(self) -> BatchItem:
        if self.rating is None and not self.scores:
            raise ValueError("an item needs a rating or scores")
        if self.rating is None and (self.kind or self.signal or self.comment):
            raise ValueError("comment, kind and signal go with a rating")
        return self

    def feedback(self) -> FeedbackIn | None:
        """The item's rating or signal, checked as a single one would be (``ValidationError`` if invalid)."""
        if self.rating is None:
            return None
        return FeedbackIn(
            rating=self.rating,
            comment=self.comment,
            kind=self.kind,
            signal=self.signal,
            user_id=self.user_id,
            metadata=self.metadata,
        )


class BatchIn(_Strict):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


Model = TypeVar("Model", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as one readable sentence naming each field at fault."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown field '{where}'")
        elif error["type"] == "missing":
            parts.append(f"'{where}' is required")
        else:
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where != "body" else message)
    return "; ".join(parts)


def parse(model: type[Model], payload: Any) -> Model:
    if not isinstance(payload, dict):
        raise Unprocessable("request body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise Unprocessable(describe(exc)) from None


def score_types(scores: dict[str, bool | int | float]) -> dict[str, tuple[float, str]]:
    """Scores as stored: a number plus the type it was given as, so reads give back what was sent."""
    out: dict[str, tuple[float, str]] = {}
    for name, value in scores.items():
        kind = "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "float"
        out[name] = (float(value), kind)
    return out
