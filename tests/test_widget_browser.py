"""The widget in a real Chromium, on a page of another origin under a strict Content-Security-Policy.

Each test logs a call through the gateway with the openai SDK (against the fake upstream), embeds the
widget for its request ID on a page served from ``page_host`` (another port, so another origin, listed in
``auth.cors_origins``), acts as a user would (by role and accessible name, mouse or keyboard), and reads
back what the gateway stored through its API. Every page must end with no CSP violation, no uncaught
error and no console error beyond those a test expects (Chromium logs each failed fetch).
"""

from __future__ import annotations

import html
from typing import Any

import aiohttp
import openai
import pytest

from browser import BrowserPage, PageHost, PageOpener
from conftest import Gateway, GatewayFactory

try:
    from playwright.async_api import Page, Route, expect
except ImportError:  # the test extra brings it; an older environment skips these tests rather than fail
    pytest.skip("the playwright package is not installed (pip install -e '.[test]')", allow_module_level=True)

KEY = "fg-widget-test-key"
SECRET = "widget-test-secret-0123456789abcdef"  # signs feedback tokens (32 characters at least)
COMMENT = "made up a tracking number <b>"
STYLE = "feedgate-feedback { --feedgate-accent: rgb(10, 120, 30); }\n"
# Run in the page once the widget is drawn, before any click: keeps every feedgate event, with how it travels.
RECORD_EVENTS = """() => {
  window.events = [];
  for (const type of ["feedgate:rated", "feedgate:error"]) {
    document.addEventListener(type, (event) => window.events.push(
      {type, bubbles: event.bubbles, composed: event.composed, ...event.detail}));
  }
}"""


def page_csp(gateway: Gateway) -> str:
    """Only the gateway may be scripted and called; only the page's own stylesheet; nothing inline anywhere."""
    return (
        f"default-src 'none'; script-src {gateway.url}; connect-src {gateway.url}; style-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'"
    )


def embed(host: PageHost, gateway: Gateway, attributes: dict[str, str], path: str = "/answer.html") -> str:
    """A page on the host's origin with one ``<feedgate-feedback>``; returns its URL."""
    host.add("/page.css", STYLE, "text/css")
    attrs = " ".join(f'{name}="{html.escape(value, quote=True)}"' for name, value in attributes.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An answer</title>
<link rel="stylesheet" href="/page.css">
<script src="{gateway.url}/widget/feedback.js" defer></script>
</head><body>
<p>Your parcel left the depot this morning.</p>
<feedgate-feedback {attrs}></feedgate-feedback>
</body></html>
"""
    return host.add(path, page, headers={"Content-Security-Policy": page_csp(gateway)})


def key_headers(gateway: Gateway, header: str = "Authorization") -> dict[str, str]:
    return {header: f"Bearer {KEY}"} if gateway.settings.auth.keys else {}


async def logged_call(gateway: Gateway) -> tuple[str, str]:
    """One chat call through the gateway: its request ID, and its feedback token ("" when tokens are off)."""
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Where is my parcel?"}],
            extra_headers=key_headers(gateway, "Helicone-Auth"),
        )
    await gateway.settled()
    token = raw.headers.get("feedgate-feedback-token", "")
    assert bool(token) == bool(gateway.settings.feedback.token_secrets)
    return raw.headers["helicone-id"], token


async def stored_feedback(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """What the gateway stored, read with the feedgate key (a feedback token cannot read)."""
    url = f"{gateway.v1}/request/{request_id}/feedback"
    async with aiohttp.ClientSession() as http, http.get(url, headers=key_headers(gateway)) as r:
        assert r.status == 200
        data: dict[str, Any] = (await r.json())["data"]
        return data


async def open_widget(open_page: PageOpener, url: str) -> BrowserPage:
    opened = await open_page(url)
    await expect(opened.page.get_by_role("button", name="Rate up")).to_be_visible()  # the script ran
    await opened.page.evaluate(RECORD_EVENTS)
    return opened


async def events(page: Page) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = await page.evaluate("window.events")
    return recorded


@pytest.fixture
async def gateway_for_page(make_gateway: GatewayFactory, page_host: PageHost) -> Gateway:
    """A gateway as in production: feedgate keys, feedback tokens, and the page's origin allowed by CORS."""
    return await make_gateway(
        auth={"keys": [KEY], "cors_origins": [page_host.url]}, feedback={"token_secrets": [SECRET]}
    )


async def test_rate_down_with_a_comment_then_up_from_another_origin(
    gateway_for_page: Gateway, page_host: PageHost, open_page: PageOpener
) -> None:
    gateway = gateway_for_page
    request_id, token = await logged_call(gateway)
    opened = await open_widget(open_page, embed(page_host, gateway, {"request-id": request_id, "token": token}))
    page = opened.page
    up, down = page.get_by_role("button", name="Rate up"), page.get_by_role("button", name="Rate down")
    status = page.get_by_role("status")
    await expect(up).to_have_attribute("aria-pressed", "false")
    await expect(page.get_by_label("What was wrong? (optional)")).to_be_hidden()

    await down.click()
    await expect(status).to_have_text("Thanks for your feedback.")
    await expect(down).to_have_attribute("aria-pressed", "true")
    await page.get_by_label("What was wrong? (optional)").fill(COMMENT)
    await page.get_by_role("button", name="Send").click()
    await expect(status).to_have_text("Thanks, your comment was sent.")
    stored = await stored_feedback(gateway, request_id)
    assert stored["rating"] is False and stored["comment"] == COMMENT

    await up.click()  # the latest click wins
    await expect(status).to_have_text("Thanks for your feedback.")
    await expect(up).to_have_attribute("aria-pressed", "true")
    await expect(down).to_have_attribute("aria-pressed", "false")
    stored = await stored_feedback(gateway, request_id)
    assert stored["rating"] is True
    assert [(h["rating"], h["comment"]) for h in stored["history"]] == [(False, None), (False, COMMENT), (True, None)]

    travels = {"bubbles": True, "composed": True, "type": "feedgate:rated", "requestId": request_id}
    assert await events(page) == [
        {**travels, "rating": False, "comment": None},
        {**travels, "rating": False, "comment": COMMENT},
        {**travels, "rating": True, "comment": None},
    ]
    # The host page's stylesheet themes the widget inside its shadow root through a custom property.
    pressed = await up.evaluate("(button) => getComputedStyle(button).backgroundColor")
    assert pressed == "rgb(10, 120, 30)"
    opened.problems.assert_none()


async def test_the_keyboard_alone_rates(gateway_for_page: Gateway, page_host: PageHost, open_page: PageOpener) -> None:
    gateway = gateway_for_page
    request_id, token = await logged_call(gateway)
    opened = await open_widget(open_page, embed(page_host, gateway, {"request-id": request_id, "token": token}))
    page = opened.page
    up, down = page.get_by_role("button", name="Rate up"), page.get_by_role("button", name="Rate down")

    await page.keyboard.press("Tab")
    await expect(up).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(up).to_have_attribute("aria-pressed", "true")
    await expect(page.get_by_role("status")).to_have_text("Thanks for your feedback.")
    assert (await stored_feedback(gateway, request_id))["rating"] is True

    await page.keyboard.press("Tab")
    await expect(down).to_be_focused()
    await page.keyboard.press(" ")
    await expect(down).to_have_attribute("aria-pressed", "true")
    comment = page.get_by_label("What was wrong? (optional)")
    await expect(comment).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(comment).to_be_focused()
    await page.keyboard.type("too vague")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Send")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("Thanks, your comment was sent.")
    await expect(comment).to_be_hidden()
    await expect(down).to_be_focused()  # the box closed: focus goes back to the rating, not to the page
    stored = await stored_feedback(gateway, request_id)
    assert (stored["rating"], stored["comment"]) == (False, "too vague")
    opened.problems.assert_none()


async def test_the_signal_helper_stores_implicit_signals(
    gateway_for_page: Gateway, page_host: PageHost, open_page: PageOpener
) -> None:
    gateway = gateway_for_page
    request_id, token = await logged_call(gateway)
    opened = await open_widget(open_page, embed(page_host, gateway, {"request-id": request_id, "token": token}))
    send = "([id, token, name, options]) => window.feedgate.signal(id, token, name, options)"
    copied = await opened.page.evaluate(send, [request_id, token, "copied", {}])
    assert copied == {"ok": True, "status": 201, "message": ""}
    options = {"endpoint": gateway.url, "metadata": {"button": "retry"}}
    assert (await opened.page.evaluate(send, [request_id, token, "regenerated", options]))["ok"] is True
    stored = await stored_feedback(gateway, request_id)
    assert stored["rating"] is None  # signals never change the explicit rating
    assert [(s["signal"], s["rating"], s["metadata"]) for s in stored["signals"]] == [
        ("copied", True, None),
        ("regenerated", False, {"button": "retry"}),  # feedgate's negative signals count against the answer
    ]
    refused = await opened.page.evaluate(send, [request_id, token, "not a signal name!", {}])
    assert refused["ok"] is False and refused["status"] == 422 and "signal" in refused["message"]
    assert await events(opened.page) == [
        {
            "type": "feedgate:error",
            "bubbles": True,
            "composed": True,
            "requestId": request_id,
            "status": 422,
            "message": refused["message"],
            "signal": "not a signal name!",
        }
    ]
    assert len(opened.problems.console_errors) == 1 and "422" in opened.problems.console_errors[0]
    assert opened.problems.csp_violations == [] and opened.problems.page_errors == []


async def test_a_network_error_is_retried_once_and_a_4xx_never(
    gateway_for_page: Gateway, page_host: PageHost, open_page: PageOpener
) -> None:
    gateway = gateway_for_page
    request_id, token = await logged_call(gateway)
    opened = await open_widget(open_page, embed(page_host, gateway, {"request-id": request_id, "token": token}))
    page = opened.page
    posts: list[str] = []
    failures = ["connectionreset"]  # what the next POSTs meet before they reach the gateway

    async def network(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        posts.append(route.request.url)
        if failures:
            await route.abort(failures.pop())
        else:
            await route.continue_()

    await page.route(f"{gateway.url}/v1/**", network)
    await page.get_by_role("button", name="Rate up").click()
    await expect(page.get_by_role("status")).to_have_text("Thanks for your feedback.")
    assert len(posts) == 2 and (await stored_feedback(gateway, request_id))["rating"] is True

    # A refused call (422: unknown field) is final: one POST, an error said and fired, the rating kept.
    posts.clear()
    send = "([id, token]) => window.feedgate.signal(id, token, 'copied', {metadata: 'not an object'})"
    result = await page.evaluate(send, [request_id, token])
    assert result["status"] == 422 and len(posts) == 1

    # Two network errors in a row: the widget gives up, says so, and shows what is really stored.
    posts.clear()
    failures[:] = ["connectionrefused", "connectionrefused"]
    await page.get_by_role("button", name="Rate down").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your feedback was not saved: the gateway could not be reached"
    )
    await expect(page.get_by_role("button", name="Rate up")).to_have_attribute("aria-pressed", "true")
    last = (await events(page))[-1]
    assert (last["type"], last["status"], last["requestId"]) == ("feedgate:error", 0, request_id)
    assert (await stored_feedback(gateway, request_id))["rating"] is True and len(posts) == 2
    assert opened.problems.csp_violations == [] and opened.problems.page_errors == []


async def test_hostile_attributes_never_run_or_break_the_page(
    make_gateway: GatewayFactory, page_host: PageHost, open_page: PageOpener
) -> None:
    # No keys: so the gateway gets as far as checking the ID (with keys the hostile token is refused first).
    gateway = await make_gateway(auth={"cors_origins": [page_host.url]})
    hostile = '"\'><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    attributes = {"request-id": hostile, "token": hostile, "label": hostile, "comment-label": hostile}
    opened = await open_widget(open_page, embed(page_host, gateway, attributes))
    page = opened.page
    await page.get_by_role("button", name="Rate down").click()
    # The ID travels percent-encoded in the path; the gateway refuses it as an ID, and nothing ran.
    error = page.get_by_role("status")
    await expect(error).to_contain_text("Your feedback was not saved:")
    assert await page.evaluate("window.pwned") is None
    assert await page.get_by_role("group", name=hostile).count() == 1  # the label is text, not markup
    assert await page.get_by_role("textbox", name=hostile).count() == 1
    last = (await events(page))[-1]
    assert (last["type"], last["status"], last["requestId"]) == ("feedgate:error", 400, hostile)
    await expect(error).to_contain_text("<script>window.pwned = 1</script>")  # the gateway's message, as text

    # An endpoint that is not http(s) is refused before any call.
    url = embed(page_host, gateway, {"request-id": "msg-1", "endpoint": "javascript:window.pwned=3"}, "/js.html")
    second = await open_widget(open_page, url)
    await second.page.get_by_role("button", name="Rate up").click()
    await expect(second.page.get_by_role("status")).to_have_text(
        "Your feedback was not saved: the endpoint must be an http or https URL"
    )
    assert await second.page.evaluate("window.pwned") is None
    second.problems.assert_none()
    assert opened.problems.csp_violations == [] and opened.problems.page_errors == []


async def test_the_example_page_rates_and_signals_under_its_own_csp(gateway: Gateway, open_page: PageOpener) -> None:
    request_id, token = await logged_call(gateway)
    opened = await open_page(f"{gateway.url}/widget/example?request_id={request_id}&token={token}")
    page = opened.page
    await page.get_by_role("button", name="Rate down").click()
    events_list = page.locator("#events")
    await expect(events_list).to_contain_text(f"feedgate:rated {request_id}: down")
    await page.get_by_role("button", name="Copy the answer").click()
    await expect(events_list).to_contain_text("signal copied stored (201)")
    stored = await stored_feedback(gateway, request_id)
    assert stored["rating"] is False and [s["signal"] for s in stored["signals"]] == ["copied"]
    opened.problems.assert_none()

    bare = await open_page(f"{gateway.url}/widget/example")
    await expect(bare.page.locator("#events")).to_contain_text("No request_id in the query string")
    assert await bare.page.locator("feedgate-feedback").count() == 0
    bare.problems.assert_none()


async def test_the_browser_fixtures_see_what_a_strict_csp_refuses(
    gateway: Gateway, page_host: PageHost, open_page: PageOpener
) -> None:
    """The checks above could not pass by seeing nothing: inline script and style, and a throw, are all caught."""
    page_host.add("/throws.js", "window.ran = true; throw new Error('boom');", "text/javascript")
    body = """<!doctype html><html><head><title>refused</title>
<style>p { color: red; }</style>
<script src="/throws.js"></script>
<script>window.inline = true;</script>
</head><body><p style="color: blue">hi</p></body></html>"""
    csp = "default-src 'none'; script-src 'self'; style-src 'self'"
    opened = await open_page(page_host.add("/refused.html", body, headers={"Content-Security-Policy": csp}))
    await expect(opened.page.locator("p")).to_have_text("hi")
    assert await opened.page.evaluate("[window.ran, window.inline]") == [True, None]
    directives = sorted(violation.split(" ")[0] for violation in opened.problems.csp_violations)
    assert directives == ["script-src-elem", "style-src-attr", "style-src-elem"], opened.problems.csp_violations
    assert len(opened.problems.page_errors) == 1 and "boom" in opened.problems.page_errors[0]
    assert len(opened.problems.console_errors) >= 3  # Chromium logs each refusal too
    with pytest.raises(AssertionError, match="CSP violations"):
        opened.problems.assert_none()


async def test_a_token_for_one_answer_cannot_rate_another(
    gateway_for_page: Gateway, page_host: PageHost, open_page: PageOpener
) -> None:
    gateway = gateway_for_page
    first, first_token = await logged_call(gateway)
    second, second_token = await logged_call(gateway)
    wrong = {"request-id": second, "token": first_token}
    opened = await open_widget(open_page, embed(page_host, gateway, wrong))
    page = opened.page
    await page.get_by_role("button", name="Rate down").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your feedback was not saved: this feedback token is for another request ID"
    )
    await expect(page.get_by_role("button", name="Rate down")).to_have_attribute("aria-pressed", "false")
    assert await events(page) == [
        {
            "type": "feedgate:error",
            "bubbles": True,
            "composed": True,
            "requestId": second,
            "status": 403,
            "message": "this feedback token is for another request ID",
        }
    ]
    send = "([id, token]) => window.feedgate.signal(id, token, 'copied')"
    assert (await page.evaluate(send, [second, first_token]))["status"] == 403
    assert (await page.evaluate(send, [second, ""]))["status"] == 401  # no token, no key: refused too
    assert (await stored_feedback(gateway, second))["history"] == []
    assert (await stored_feedback(gateway, second))["signals"] == []

    # The right token for the same request works from the same page.
    assert await page.evaluate(send, [second, second_token]) == {"ok": True, "status": 201, "message": ""}
    assert await page.evaluate(send, [first, first_token]) == {"ok": True, "status": 201, "message": ""}
    assert [s["signal"] for s in (await stored_feedback(gateway, second))["signals"]] == ["copied"]
    assert opened.problems.csp_violations == [] and opened.problems.page_errors == []
    assert len(opened.problems.console_errors) == 3  # Chromium logs the 403, 403 and 401 it was answered
