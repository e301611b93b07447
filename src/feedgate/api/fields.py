"""Field types the API's bodies share, each holding only what the stores can keep (``store/bounds.py``).

Each check raises ``ValueError``, so pydantic reports it against the field's path (``scores.big: ...``,
``metadata: ...``) like any other invalid value, and the route answers 4xx naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt

from feedgate.store.bounds import MAX_EXACT_INT, NUL, NUL_MESSAGE, depth_problem, score_problem


def _no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(NUL_MESSAGE)
    return value


def _bounded_score(value: bool | int | float) -> bool | int | float:
    problem = score_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _shallow(value: Any) -> Any:
    problem = depth_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# Text that goes into a text column. The pattern only tells the OpenAPI document; _no_nul checks.
Text = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})]
# A score: its type is kept (bool, int or float), its value within +-2**53 (see store/bounds.py).
ScoreValue = Annotated[
    StrictBool | StrictInt | StrictFloat,
    AfterValidator(_bounded_score),
    Field(json_schema_extra={"minimum": -MAX_EXACT_INT, "maximum": MAX_EXACT_INT}),
]
# A JSON object feedgate keeps as given (feedback metadata, dataset meta).
# Stored as JSON text, which writes a NUL inside a string as \u0000, so NUL needs no check here.
JsonObject = Annotated[dict[str, Any], AfterValidator(_shallow)]
