"""What feedback tokens cost a proxied call: minting the ``Feedgate-Feedback-Token`` header, and checking one.

    python scripts/bench_feedback_tokens.py [--calls 200000]

Prints microseconds of CPU per call, the best of five runs, for:

- ``FeedbackTokens.for_request``: the token for one request ID (a UUID), as each proxied answer gets it;
- the on_response_prepare hook a gateway runs on every answer (``middleware.answer_stamp``): without
  secrets (``stamp_request_id``, what every gateway did before) and with them, on a proxied request, so the
  difference is what the header adds per proxied answer;
- ``FeedbackTokens.check`` with one secret and with two (a rotation), paid by a feedback call with a token.

The issue's budget for minting the header is 10 µs per request.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from feedgate.appkeys import EXCHANGE, REQUEST_ID
from feedgate.feedback_tokens import FeedbackTokens
from feedgate.logrows.exchange import Exchange
from feedgate.middleware import answer_stamp

REQUEST_ID_VALUE = "0193b0c4-2f6e-7a3b-9c1d-5e8f7a6b4c3d"
SECRET = "a-benchmark-secret-of-at-least-32-characters"
OLD_SECRET = "an-older-secret-still-verifying-its-tokens"


def best_us(run: Callable[[], object], calls: int) -> float:
    # CPU time, not wall time: on a shared machine other processes' load would otherwise count as ours.
    return min(timeit.repeat(run, number=calls, repeat=5, timer=time.process_time)) / calls * 1e6


def run_hook(hook: Callable[[web.Request, web.StreamResponse], Awaitable[None]]) -> Callable[[], object]:
    """The hook on a proxied request, driven without an event loop (it never awaits anything)."""
    request = make_mocked_request("POST", "/v1/chat/completions")
    request[REQUEST_ID] = REQUEST_ID_VALUE
    request[EXCHANGE] = Exchange(
        request_id=REQUEST_ID_VALUE,
        started_at=0.0,
        provider="openai",
        provider_kind="openai",
        method="POST",
        path="/v1/chat/completions",
        query="",
        target_url="https://api.openai.com",
        request_headers={},
        request_body=b"{}",
        proxied=True,
    )

    def once() -> None:
        response = web.Response()  # a fresh answer each time, as each request has its own
        try:
            cast(Coroutine[Any, Any, None], hook(request, response)).send(None)
        except StopIteration:
            pass

    return once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    tokens = FeedbackTokens([SECRET], 604_800)
    rotating = FeedbackTokens([SECRET, OLD_SECRET], 604_800)
    token = tokens.for_request(REQUEST_ID_VALUE)
    old_token = FeedbackTokens([OLD_SECRET], 604_800).for_request(REQUEST_ID_VALUE)

    mint = best_us(lambda: tokens.for_request(REQUEST_ID_VALUE), calls)
    without = best_us(run_hook(answer_stamp(None)), calls)
    with_secrets = best_us(run_hook(answer_stamp(tokens)), calls)
    check_one = best_us(lambda: tokens.check(token), calls)
    check_old = best_us(lambda: rotating.check(old_token), calls)
    print(f"token length for a UUID request ID: {len(token)} characters")
    print(f"for_request (the header's token):            {mint:6.2f} µs")
    print(f"on_response_prepare hook, no secrets:        {without:6.2f} µs")
    print(f"on_response_prepare hook, with secrets:      {with_secrets:6.2f} µs")
    print(f"  added per proxied answer:                  {with_secrets - without:6.2f} µs")
    print(f"check, one secret:                           {check_one:6.2f} µs")
    print(f"check, two secrets (a rotation):             {check_old:6.2f} µs")


if __name__ == "__main__":
    main()
