"""Hypothesis strategies for hostile calls to feedgate's own routes, driven by its OpenAPI document.

``calls()`` draws one call of an operation of ``/openapi.json``: its path IDs, query parameters, headers
and JSON body. A body is valid for the operation's schema (so the call reaches the store), or valid with
hostile values in some of its fields, or hostile as a whole, or not JSON at all. Hostile values are the
ones that broke feedgate before: integers at the 32-, 53- and 64-bit edges, floats near the double's
limits, NUL and other control characters, text past length limits, dates past 9999 or before the year 1,
spans reaching before the year 1, nesting past every limit, unknown fields. Hypothesis favours the first
choice of each ``one_of``, so the valid one always comes first. The runner is ``test_api_properties.py``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from feedgate.api.openapi import build_openapi

DOCUMENT = build_openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
LOGGED_IDS = ("fz-1", "fz-2", "fz-3")  # logged by the runner first, so feedback links to rows reads show
KNOWN_DATASET = "known-dataset"  # the runner puts the ID of a dataset it made in its place
PROPERTY = "feature"  # the property the logged requests carry
# Operations the suite calls: all of the document's but the ones that take no input.
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if path not in ("/openapi.json", "/healthz", "/readyz", "/metrics")
    and not path.startswith("/widget/")  # static files: no input to draw
]

# The most dangerous first: Hypothesis draws the first choices of a list most often.
EDGE_INTS = [2**64 - 1, 2**63, 2**53 + 1, -(2**63), 2**63 - 1, -(2**53) - 1, 2**31, 2**31 - 1, 2**53, -1, 0]
EDGE_FLOATS = [1.7976931348623157e308, -1.7e308, 1.8e19, 1e20, 9007199254740993.0, 5e-324, -0.0, 0.5]
EDGE_TEXT = [
    "\x00",
    "a\x00b",
    "",
    " ",
    "\t\n\r\x1b",
    "\u2028\ufeff",
    "é\U0001f600",
    "x" * 5000,
    "'; DROP TABLE scores; --",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59Z",
    "0005-01-01",
    "+10000-01-01",
    "3000000d",
    "700000d",
    "9" * 400 + "d",
    "1e400",
    "NaN",
    "property:a b",
    "property:" + PROPERTY,
    PROPERTY,
    *LOGGED_IDS,
]
# Not "." or "..": dot segments in paths are the proxy's to refuse (issue #13, item 9), not these routes'.
ID_TEXT = ["a b", "a/b", "a.b", "\x00", "%00", "x" * 129, "é", "a?b", "a#b", "{", "a}", "\\", "msg-1"]
TIMES = ["30d", "12h", "2w", "90m", "2025-07-01", "2025-07-01T12:00:00Z", "1970-01-01", "9999-12-31", "0001-01-01"]

ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2**63), 2**64 - 1))
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=False, allow_infinity=False))
texts = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=20))
scalars = st.one_of(texts, ints, floats, st.booleans(), st.none())
plain_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=24)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A list or object nested around the limits: 32 (kept JSON), 128 (log bodies), 254 (the encoder)."""
    depth = draw(st.sampled_from([33, 300, 31, 32, 127, 128, 129, 253, 254, 255]))
    value: Any = draw(scalars)
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)
hostile = st.one_of(scalars, deep(), json_values)

# Helicone filter trees: real tables, columns and operators (so most compile), values of every kind.
_LEAVES = {
    "request": ["model", "user_id", "created_at", "is_stream", "request_id", "nothing"],
    "response": ["status", "latency", "prompt_tokens", "cost", "created_at", "text"],
    "feedback": ["rating", "created_at", "comment", "signal"],
    "properties": [PROPERTY, "a b"],
    "scores": ["stars", "big"],
    "request_response_rmt": ["properties", "request_created_at", "total_tokens"],
}
_OPERATORS = ["equals", "gte", "lt", "contains", "not-equals", "like", "ilike", "not-contains", "lte", "gt", "bogus"]


@st.composite
def filter_leaves(draw: st.DrawFn) -> Any:
    table = draw(st.sampled_from(sorted(_LEAVES)))
    column = draw(st.sampled_from(_LEAVES[table]))
    value = draw(st.one_of(st.sampled_from(["x", 1, True, None, *TIMES, *LOGGED_IDS]), scalars))
    condition: Any = {draw(st.sampled_from(_OPERATORS)): value}
    if table == "request_response_rmt" and column == "properties":
        condition = {PROPERTY: condition}
    return {table: {column: condition}}


def _node(left: Any, operator: str, right: Any) -> Any:
    return {"left": left, "operator": operator, "right": right}


filter_trees = st.recursive(
    st.one_of(st.just("all"), filter_leaves()),
    lambda inner: st.builds(_node, inner, st.sampled_from(["and", "or", "xor"]), inner),
    max_leaves=4,
)


@st.composite
def provider_bodies(draw: st.DrawFn) -> Any:
    """A provider request or answer as a manual log reports it: chat-shaped, with usage counts."""
    names = ["prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"]
    return {
        "model": draw(plain_text),
        "messages": [{"role": "user", "content": draw(plain_text)}],
        "choices": [{"message": {"role": "assistant", "content": draw(plain_text)}, "finish_reason": "stop"}],
        "usage": draw(st.dictionaries(st.sampled_from(names), st.integers(0, 10**6), max_size=3)),
    }


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


_NAMED: dict[str, st.SearchStrategy[Any]] = {
    "requestId": st.sampled_from(LOGGED_IDS),
    "helicone-id": st.sampled_from(LOGGED_IDS),
    "requestIds": st.lists(st.sampled_from(LOGGED_IDS), max_size=3),
    "addRequests": st.lists(st.sampled_from(LOGGED_IDS), max_size=3),
    "datasetIds": st.lists(st.just(KNOWN_DATASET), max_size=1),
    "since": st.sampled_from(TIMES),
    "until": st.sampled_from(TIMES),
    "signal": st.sampled_from(["copied", "regenerated", "code_accepted"]),
    "properties": st.dictionaries(st.just(PROPERTY), plain_text, max_size=1),
    "min_scores": st.dictionaries(st.just("stars"), st.floats(-10, 10), max_size=1),
    "by": st.lists(st.sampled_from(["model", "user", "prompt", "path", "day", f"property:{PROPERTY}"]), max_size=2),
    "name": st.lists(st.sampled_from(["stars", "big", "relevance"]), max_size=2),
    "sort": st.sampled_from([{"created_at": "desc"}, {"latency": "asc"}, {"properties": {PROPERTY: "asc"}}]),
}


def from_schema(schema: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values valid for a schema of the document (``mutated`` then breaks one place in them)."""
    if name == "filter":
        return filter_trees
    if name == "json":
        return provider_bodies()
    if name in _NAMED and (name != "name" or schema.get("type") == "array"):  # a dataset's name is text
        return _NAMED[name]
    return _valid(_resolve(schema))


def _valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        bounds: dict[str, Any] = {key: schema[key] for key in ("minimum", "maximum") if key in schema}
        return st.one_of([from_schema({**_resolve(branch), **bounds}) for branch in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _objects(schema)
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 3), 3))
    if kind == "string":
        if "pattern" in schema and "\\u0000" not in schema["pattern"]:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= 64)
        return st.text(
            st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
            min_size=schema.get("minLength", 0),
            max_size=min(schema.get("maxLength", 24), 24),
        )
    if kind == "integer":
        return st.integers(schema.get("minimum", -1000), schema.get("maximum", 10**6))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1000.0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1e6))
        return st.floats(low, high, exclude_min="exclusiveMinimum" in schema, exclude_max="exclusiveMaximum" in schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values  # any JSON (metadata values, a filter tree's leaves)


@st.composite
def _objects(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    required = set(schema.get("required", ()))
    for key, sub in schema.get("properties", {}).items():
        if key in required or draw(st.booleans()):
            out[key] = draw(from_schema(sub, key))
    for pattern, sub in schema.get("patternProperties", {}).items():
        names = st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= 64)
        for key in draw(st.lists(st.one_of(st.sampled_from(["stars", "big"]), names), max_size=3)):
            out[key] = draw(from_schema(sub))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) or (extra is True and not schema.get("properties")):
        values = from_schema(extra if isinstance(extra, dict) else {})
        out.update(draw(st.dictionaries(plain_text, values, max_size=3)))
    return out


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (itself, each member, each item), as paths of keys and indexes."""
    places = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            places += _places(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            places += _places(child, (*path, index))
    return places


def _hostile_like(value: Any) -> st.SearchStrategy[Any]:
    """Hostile values of the same kind as ``value``, or of the kind it is most easily mistaken for."""
    if isinstance(value, bool):
        return st.sampled_from(["no", "yes", 1, 0, "true", None])
    if isinstance(value, int | float):
        return st.one_of(st.sampled_from(EDGE_INTS), st.sampled_from(EDGE_FLOATS), st.sampled_from(["1", None]))
    if isinstance(value, str):
        return st.sampled_from(EDGE_TEXT)
    return st.one_of(deep(), json_values, scalars)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid value with one fault: one place replaced by a hostile value, or an unknown member added.

    One fault at a time, so the rest of the value is valid and the fault reaches as far in as it can.
    """
    value = copy.deepcopy(draw(valid))  # drawn values may be shared (sampled_from): change a copy
    places = _places(value)
    # Deepest places first: Hypothesis draws the first of a list most often, and a fault in a leaf is the
    # one that gets past the shape checks to the value checks and the store.
    path = draw(st.sampled_from(sorted(places, key=len, reverse=True)))
    if not path:
        return draw(_hostile_like(value))
    holder = value
    for step in path[:-1]:
        holder = holder[step]
    if isinstance(holder, dict) and draw(st.integers(0, 4)) == 4:
        holder[draw(texts)] = draw(scalars)  # an unknown field beside the chosen one
    else:
        holder[path[-1]] = draw(_hostile_like(holder[path[-1]]))
    return value


@dataclass
class Call:
    method: str
    path: str  # the document's path, {name} for each path parameter
    url_path: str  # with the drawn IDs, percent-encoded as sent
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def _ids(name: str, mutate: bool) -> st.SearchStrategy[str]:
    known = st.just(KNOWN_DATASET) if name == "dataset_id" else st.sampled_from(LOGGED_IDS)
    return st.one_of(known, st.sampled_from(ID_TEXT), st.text(max_size=8)) if mutate else known


def _query_text(value: Any) -> str:
    # At most 500 characters: a request line over 8 KiB is refused by the HTTP parser, before any route.
    return (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False).strip('"'))[:500]


@st.composite
def _query(draw: st.DrawFn, operation: dict[str, Any], mutate: bool) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for parameter in operation["parameters"]:
        name = parameter["name"]
        if parameter["in"] != "query" or not (parameter.get("required") or draw(st.booleans())):
            continue
        if name == "filters":
            keys = st.sampled_from([f"property.{PROPERTY}", "min_score.stars", "property.a b", "min_score.x y"])
            pairs += [(key, value[:500]) for key, value in draw(st.dictionaries(keys, texts, max_size=2)).items()]
            continue
        values = from_schema(parameter["schema"], name)
        value = draw(st.one_of(values, mutated(values)) if mutate else values)
        pairs += [(name, _query_text(item)) for item in (value if isinstance(value, list) else [value])[:3]]
    if mutate and draw(st.booleans()):
        pairs.append((draw(st.sampled_from(["x", "limit", "format", "name"])), draw(texts)[:500]))
    return pairs


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, str]:
    names = ["Helicone-Request-Id", "Helicone-User-Id", "Helicone-Session-Id", f"Helicone-Property-{PROPERTY}"]
    names += ["Helicone-Property-a!b", "Content-Type", "X-Anything", "Authorization"]
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))
    # Authorization drawn as a feedback token's shape too, so the token check meets hostile ones.
    tokens = st.builds(lambda *parts: "Bearer fgt1." + ".".join(parts), printable, printable)
    values = st.one_of(st.sampled_from(LOGGED_IDS), printable, tokens)
    return draw(st.dictionaries(st.sampled_from(names), values, max_size=3))


_RAW = [b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe", b'{"a": 1e400}', b"[" * 2000, b'{"a": "\\ud800"}']


@st.composite
def calls(draw: st.DrawFn, operations: list[tuple[str, str, dict[str, Any]]] | None = None) -> Call:
    """One call of an operation of the document (of ``operations`` when given)."""
    method, path, operation = draw(st.sampled_from(operations or OPERATIONS))
    mutate = draw(st.booleans())
    url_path = path
    for parameter in operation["parameters"]:
        if parameter["in"] == "path":
            raw = draw(_ids(parameter["name"], mutate))
            url_path = url_path.replace("{" + parameter["name"] + "}", quote(raw, safe="") or "%20")
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    body: bytes | None = None
    shape = draw(
        st.sampled_from(["schema", "schema", "schema", "hostile", "raw", "none"]) if mutate else st.just("schema")
    )
    if content is not None and shape == "schema":
        valid = from_schema(content["schema"])
        value = draw(mutated(valid) if mutate else valid)
        # The standard encoder: orjson stops at 254 levels, and some bodies are meant to go deeper.
        body = json.dumps(value, ensure_ascii=False).encode()
    elif shape == "hostile":
        body = json.dumps(draw(hostile), ensure_ascii=False).encode()
    elif shape == "raw":
        body = draw(st.sampled_from(_RAW))
    headers = draw(_headers()) if mutate else {}
    return Call(method, path, url_path, draw(_query(operation, mutate)), headers, body)
