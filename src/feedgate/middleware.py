"""Request-wide concerns in one place: the request ID, auth, CORS, and errors turned into answers."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from urllib.parse import unquote

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from feedgate.appkeys import (
    CONSOLE_STATE,
    EXCHANGE,
    FEEDBACK_GRANT,
    FEEDBACK_TOKENS,
    PROVIDERS,
    REQUEST_ID,
    REQUEST_IDS,
    SETTINGS,
)
from feedgate.errors import BadRequest, FeedgateError, Forbidden, NotFound, PayloadTooLarge, Unauthorized, to_response
from feedgate.feedback_tokens import HEADER as TOKEN_HEADER
from feedgate.feedback_tokens import PREFIX as TOKEN_PREFIX
from feedgate.feedback_tokens import FeedbackTokens, Grant, Purpose, Scope
from feedgate.proxy.providers import AZURE_ROUTE
from feedgate.request_ids import choose_request_id

log = logging.getLogger("feedgate")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Stamp = Callable[[web.Request, web.StreamResponse], Awaitable[None]]

PROXY_ROUTES = frozenset({"proxy", "proxy-provider", AZURE_ROUTE})
# The widget's script and example page are open too: pages load them without a feedgate key.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/widget/feedback.js", "/widget/example", "/widget/example.js"}
)
METRICS_PATH = "/metrics"  # needs a key like any route, unless metrics.public
EXPOSED_HEADERS = f"Helicone-Id, {TOKEN_HEADER}"
# The only routes a feedback token opens: (method, route) -> (the scope of ID it must name, the path parameter
# holding that ID, the purpose it must allow; None: the body says which, feedback or signal, in api/feedback.py).
TOKEN_ROUTES: dict[tuple[str, str], tuple[Scope, str, Purpose | None]] = {
    ("POST", "/v1/request/{request_id}/feedback"): ("request", "request_id", None),
    ("POST", "/v1/request/{request_id}/score"): ("request", "request_id", "score"),
    ("POST", "/v1/session/{session_id}/feedback"): ("session", "session_id", "feedback"),
}
_TOKEN_ONLY_RATES = (
    "a feedback token only rates: POST /v1/request/{id}/feedback, POST /v1/request/{id}/score and "
    "POST /v1/session/{id}/feedback"
)


def is_proxied(request: web.Request) -> bool:
    return request.match_info.route.name in PROXY_ROUTES


def in_console(request: web.Request) -> bool:
    """Routed to the console's sub-application, which checks its own sessions (never a key in a header)."""
    return any(CONSOLE_STATE in app for app in request.match_info.apps)


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check_credentials(request: web.Request, proxied: bool) -> None:
    """A feedback token where one is presented (checked as a token, keys or not), else the feedgate key.

    The console checks its own sessions and reads neither from a header.
    """
    if in_console(request):
        return
    if proxied:
        if FEEDBACK_TOKENS in request.app:  # no secrets: no token of ours exists, nothing to look for
            _refuse_token_on_proxy(request)
    else:
        given = _bearer(request.headers.get("Authorization"))
        if given is not None and given.startswith(TOKEN_PREFIX):
            request[FEEDBACK_GRANT] = _check_token(request, given)
            return
    _check_key(request, proxied)


def _check_token(request: web.Request, token: str) -> Grant:
    resource = request.match_info.route.resource
    rule = TOKEN_ROUTES.get((request.method, resource.canonical)) if resource is not None else None
    if rule is None:
        raise Unauthorized(
            f"a feedback token cannot be used on {request.method} {request.path}: {_TOKEN_ONLY_RATES}; "
            "other routes need a feedgate key",
            code="feedback_token_not_accepted",
        )
    tokens = request.app.get(FEEDBACK_TOKENS)
    if tokens is None:
        raise Unauthorized(
            "feedback tokens are not enabled on this gateway (feedback.token_secrets is not set)",
            code="feedback_tokens_disabled",
        )
    grant = tokens.check(token)
    scope, id_name, purpose = rule
    if grant.scope != scope:
        raise Forbidden(
            f"this feedback token is for a {grant.scope} ID; this route takes a {scope} ID",
            code="feedback_token_wrong_scope",
        )
    if grant.target_id != request.match_info[id_name]:
        raise Forbidden(f"this feedback token is for another {scope} ID", code="feedback_token_wrong_id")
    if purpose is not None:
        grant.require(purpose)
    return grant


def _refuse_token_on_proxy(request: web.Request) -> None:
    """A token sent as a key on a proxied route is refused here, never forwarded to a provider."""
    headers = request.headers
    for name in ("Helicone-Auth", "Authorization"):
        given = _bearer(headers.get(name))
        if given is not None and given.startswith(TOKEN_PREFIX):
            raise Unauthorized(
                f"a feedback token cannot be used on proxied routes ({name}): {_TOKEN_ONLY_RATES}",
                code="feedback_token_not_accepted",
            )
    for name in ("x-api-key", "api-key"):
        if headers.get(name, "").startswith(TOKEN_PREFIX):
            raise Unauthorized(
                f"a feedback token cannot be used on proxied routes ({name}): {_TOKEN_ONLY_RATES}",
                code="feedback_token_not_accepted",
            )


def _check_key(request: web.Request, proxied: bool) -> None:
    settings = request.app[SETTINGS]
    keys = settings.auth.keys
    if not keys or request.path in OPEN_PATHS or (request.path == METRICS_PATH and settings.metrics.public):
        return
    header = "Helicone-Auth" if proxied else "Authorization"
    given = _bearer(request.headers.get(header))
    if given is None and proxied:
        given = _key_in_provider_header(request)
    if given is None:
        raise Unauthorized(f"missing feedgate key: send {header}: Bearer <key>", code="missing_key")
    given_bytes = given.encode("utf-8", "surrogateescape")  # a header's non-UTF-8 bytes: a wrong key, not a 500
    # Compare against every key so the time taken does not tell which key nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key.get_secret_value().encode())
    if not matched:
        raise Unauthorized("invalid feedgate key", code="invalid_key")


def _key_in_provider_header(request: web.Request) -> str | None:
    """The feedgate key where an SDK puts its API key, for providers whose own key feedgate injects.

    Then the client has no provider key to send, so its SDK's ``api_key`` is the feedgate key: the OpenAI SDK
    sends it as ``Authorization: Bearer``, the Anthropic SDK as ``x-api-key``, the Azure one as ``api-key``.
    """
    match_info = request.match_info
    provider = request.app[PROVIDERS].for_route(match_info.route.name, match_info.get("provider"))
    if provider is None or provider.api_key is None:
        return None
    headers = request.headers
    return _bearer(headers.get("Authorization")) or headers.get("x-api-key") or headers.get("api-key")


def _has_dot_segments(raw_path: str) -> bool:
    """Whether a path has ``.`` or ``..`` segments, plain or percent-encoded.

    Refused rather than resolved: the proxy forwards the raw path, and a provider that resolves
    ``/openai/../../admin`` would receive a call outside the prefix it was configured for, with its key.
    """
    path = raw_path.partition("?")[0]
    if "." not in path and "%" not in path:
        return False
    return any(unquote(segment) in (".", "..") for segment in path.split("/"))


def _cors_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    allowed = request.app[SETTINGS].auth.cors_origins
    if origin is None or not allowed:
        return None
    return origin if origin in allowed or "*" in allowed else None


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    proxied = is_proxied(request)
    try:
        if _has_dot_segments(request.raw_path):
            raise BadRequest("the path may not contain '.' or '..' segments", code="invalid_path")
        request[REQUEST_ID] = (
            choose_request_id(request.headers.get("Helicone-Request-Id"), request.app[REQUEST_IDS])
            if proxied
            else request.app[REQUEST_IDS].new()
        )
        origin = _cors_origin(request)
        if request.method == "OPTIONS" and origin is not None and "Access-Control-Request-Method" in request.headers:
            return _preflight(request, origin)
        _check_credentials(request, proxied)
        response = await handler(request)
    except FeedgateError as error:
        response = to_response(error, openai_shape=proxied)
    except (web.RequestPayloadError, BadHttpMessage) as exc:
        # A body that does not decode as its Content-Encoding says, or whose framing is broken: aiohttp's parser
        # finds it while the handler reads the body, and raises it wrapped around the parser's own error.
        response = to_response(_unreadable_body(exc), openai_shape=proxied)
    except web.HTTPRequestEntityTooLarge as exc:
        response = to_response(PayloadTooLarge(exc.text or "request body too large"), openai_shape=proxied)
    except web.HTTPNotFound:
        response = to_response(NotFound(f"no route for {request.method} {request.path}"), openai_shape=proxied)
    except web.HTTPException as exc:
        http_error = FeedgateError(exc.reason)
        http_error.status = exc.status
        http_error.error_type = "invalid_request_error"
        response = to_response(http_error, openai_shape=proxied)
    except ConnectionError:
        # The client went away before its answer could start: nobody is left to answer, nothing failed.
        # 499 is nginx's "client closed request", so the access log says what happened.
        log.debug("client went away during %s %s", request.method, request.path)
        response = web.Response(status=499)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = to_response(FeedgateError("internal error; see the gateway log"), openai_shape=proxied)
    if REQUEST_ID not in request:
        request[REQUEST_ID] = request.app[REQUEST_IDS].new()
    return response


def _unreadable_body(exc: Exception) -> BadRequest:
    cause = exc if isinstance(exc, BadHttpMessage) else exc.__cause__
    why = cause.message if isinstance(cause, BadHttpMessage) and cause.message else str(exc.__cause__ or exc)
    return BadRequest(f"the request body cannot be read: {why}", code="invalid_body_encoding")


def _preflight(request: web.Request, origin: str) -> web.Response:
    asked = request.headers.get("Access-Control-Request-Headers", "authorization, content-type")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": asked,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, streamed or not, error or not, carries its ID."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["Helicone-Id"] = request_id


def _allow_origin(headers: MutableMapping[str, str], origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    vary = headers.get("Vary")  # added to, not replaced: an answer may vary by Accept-Encoding as well
    if vary is None:
        headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        headers["Vary"] = f"{vary}, Origin"


def answer_stamp(tokens: FeedbackTokens | None, cors_origins: Iterable[str] = ()) -> Stamp:
    """The on_response_prepare hook: the request ID, a feedback token when secrets are configured, and CORS.

    Chosen once at start, so a gateway without ``feedback.token_secrets`` and ``auth.cors_origins`` does no
    token or origin work at all. The token goes on every answer to a proxied call that reached the proxy
    handler (it has an exchange): JSON, streams, upstream errors, cache hits; not on a refusal before it (a
    missing key, an unknown route), which has no call to rate. CORS headers are set here, when the answer's
    head is written, so a stream gets them as well as a JSON answer: without them a page on another origin
    could not read a streamed answer at all.
    """
    allowed = frozenset(cors_origins)
    if tokens is None and not allowed:
        return stamp_request_id
    for_request = tokens.for_request if tokens is not None else None
    any_origin = "*" in allowed

    async def stamp_answer(request: web.Request, response: web.StreamResponse) -> None:
        request_id = request.get(REQUEST_ID)
        if request_id is not None:
            response.headers["Helicone-Id"] = request_id
            if for_request is not None and EXCHANGE in request:
                response.headers[TOKEN_HEADER] = for_request(request_id)
        if allowed and not in_console(request):  # the console's pages are for its own origin only
            origin = request.headers.get("Origin")
            if origin is not None and (any_origin or origin in allowed):
                _allow_origin(response.headers, origin)

    return stamp_answer
