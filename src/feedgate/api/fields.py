"""Field types the API's bodies share, each holding only what the stores can keep (``store/bounds.py``).

Each check raises ``ValueError``, so pydantic reports it against the field's path (``scores.big: ...``)
like any other invalid value, and the route answers 4xx naming the field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt

from feedgate.store.bounds import MAX_EXACT_INT, score_problem


def _bounded_score(value: bool | int | float) -> bool | int | float:
    problem = score_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A score: its type is kept (bool, int or float), its value within +-2**53 (see store/bounds.py).
ScoreValue = Annotated[
    StrictBool | StrictInt | StrictFloat,
    AfterValidator(_bounded_score),
    Field(json_schema_extra={"minimum": -MAX_EXACT_INT, "maximum": MAX_EXACT_INT}),
]
