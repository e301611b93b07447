"""The console's login and security model, through real HTTP against a real gateway (no browser).

Sessions, their expiry and logout; CSRF and origin checks on every POST; the security headers of every
page; the key never accepted as a header and never stored; failed logins slowed per address; errors as
pages; the open console without keys; the vendored assets served with long caching and an ETag.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from conftest import Gateway, GatewayFactory
from console_client import console, text_of
from feedgate.console.guard import CONTENT_SECURITY_POLICY
from feedgate.console.sessions import BROWSER_COOKIE, SESSION_COOKIE
from pgschema import Schemas

KEY = "fg-console-test-key-0123456789"
OTHER_KEY = "fg-other-key-abcdefghijklmnop"
PAGES = ("/console/", "/console/requests", "/console/login", "/console/nowhere")


@pytest.fixture
async def keyed(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway(auth={"keys": [KEY, OTHER_KEY]}, console={"login_attempts": 3, "login_wait_s": 60})


def sessions_table(gateway: Gateway) -> list[sqlite3.Row]:
    path = gateway.settings.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute("SELECT * FROM console_sessions"))


def backdate(gateway: Gateway, column: str, value: str) -> None:
    path = gateway.settings.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE console_sessions SET {column} = ?", (value,))


async def test_pages_need_a_login_and_the_login_starts_a_server_side_session(keyed: Gateway) -> None:
    async with console(keyed.url) as browser:
        page = await browser.get("/console/requests?model=x", allow_redirects=False)
        assert page.status == 303
        assert page.headers["Location"] == "/console/login?next=%2Fconsole%2Frequests%3Fmodel%3Dx"
        form = await browser.get("/console/login")
        assert form.status == 200 and 'name="key"' in form.text
        done = await browser.post(
            "/console/login", {"csrf": form.csrf, "key": KEY, "next": "/console/requests?model=x"}
        )
        assert done.status == 200 and done.url.endswith("/console/requests?model=x")
        assert "Log out" in done.text
        token = browser.cookie(SESSION_COOKIE)
        assert token is not None and KEY not in token
        rows = sessions_table(keyed)
        assert len(rows) == 1
        # Only the token's hash is kept, and the key is named by a hash too.
        assert rows[0]["session_hash"] == hashlib.sha256(token.encode()).hexdigest()
        flat = " ".join(str(value) for value in rows[0])
        assert token not in flat and KEY not in flat


async def test_session_cookie_flags(keyed: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{keyed.url}/console/login") as r:
        page = await r.text()
        browser_cookie = r.headers.getall("Set-Cookie")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    browser_value = browser_cookie[0].split(";")[0]
    headers = {"Cookie": browser_value}
    form = {"csrf": csrf.group(1), "key": KEY}
    async with http.post(f"{keyed.url}/console/login", data=form, headers=headers, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/console/"
        cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"] == "SameSite=Strict"
    assert attributes["path"] == "Path=/console"
    assert "secure" not in attributes  # served over plain HTTP here; over HTTPS it is Secure


async def test_always_secure_cookie_behind_a_tls_proxy(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(auth={"keys": [KEY]}, console={"secure_cookie": "always"})
    async with http.get(f"{gateway.url}/console/login") as r:
        assert "Secure" in r.headers["Set-Cookie"]


async def test_a_wrong_key_is_refused_and_the_address_is_slowed_down(keyed: Gateway) -> None:
    async with console(keyed.url) as browser:
        for _ in range(3):
            page = await browser.login("not-a-key")
            assert page.status == 401 and "That key is not accepted." in page.text
        blocked = await browser.login(KEY)  # even the right key waits now: tries are not checked while blocked
        assert blocked.status == 429
        assert "Too many failed logins" in blocked.text and int(blocked.headers["Retry-After"]) > 0
        assert browser.cookie(SESSION_COOKIE) is None
        assert sessions_table(keyed) == []


async def test_the_key_as_a_bearer_header_does_not_open_the_console(
    keyed: Gateway, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.get(f"{keyed.url}/console/requests", headers=headers, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/console/login")
    async with http.post(f"{keyed.url}/console/requests/abc/feedback", headers=headers, data={"rating": "down"}) as r:
        assert r.status in (303, 200)
        assert "/console/login" in str(r.url)
    # Nor does anything that looks like a feedback token: the console reads no credential header at all.
    token_like = {"Authorization": "Bearer fgt1.anything.at.all"}
    async with http.get(f"{keyed.url}/console/", headers=token_like, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/console/login"
    # The API is as it was: the key is still the API's way in.
    async with http.get(f"{keyed.v1}/request/abc/feedback", headers=headers) as r:
        assert r.status == 200


async def test_logout_ends_the_session_everywhere(keyed: Gateway) -> None:
    async with console(keyed.url) as browser:
        await browser.login(KEY)
        token = browser.cookie(SESSION_COOKIE)
        assert token is not None
        page = await browser.submit("/console/", "/console/logout", {})
        assert page.status == 200 and page.url.endswith("/console/login")
        assert sessions_table(keyed) == []
    # The old cookie, replayed, no longer opens anything.
    async with console(keyed.url) as replay:
        replay.http.cookie_jar.update_cookies({SESSION_COOKIE: token})
        page = await replay.get("/console/requests", allow_redirects=False)
        assert page.status == 303 and "/console/login" in page.headers["Location"]


@pytest.mark.parametrize(
    ("column", "value", "ended", "message"),
    [
        ("seen_utc", "2000-01-01T00:00:00.000000Z", "idle", "unused"),
        ("expires_utc", "2000-01-01T00:00:00.000000Z", "expired", "time limit"),
        ("key_id", "0" * 32, "key+removed", "no longer accepted"),
    ],
)
async def test_idle_absolute_and_revoked_sessions_end(
    keyed: Gateway, column: str, value: str, ended: str, message: str
) -> None:
    async with console(keyed.url) as browser:
        await browser.login(KEY)
        assert (await browser.get("/console/requests")).status == 200
        backdate(keyed, column, value)
        page = await browser.get("/console/")
        assert page.url.endswith(f"/console/login?ended={ended}")
        assert message in page.text
        assert browser.cookie(SESSION_COOKIE) in (None, "")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_sessions_are_shared_by_instances_on_one_store(
    make_gateway: GatewayFactory, request: pytest.FixtureRequest, backend: str
) -> None:
    database: dict[str, str] = {}
    if backend == "postgres":
        schemas: Schemas = request.getfixturevalue("pg_schemas")
        database = {"url": schemas.new_url()}
    first = await make_gateway(auth={"keys": [KEY, OTHER_KEY]}, database=database)
    second = await make_gateway(auth={"keys": [KEY, OTHER_KEY]}, database=database)
    async with console(first.url) as browser:
        await browser.login(OTHER_KEY)
        token = browser.cookie(SESSION_COOKIE)
        assert token is not None
    async with console(second.url) as elsewhere:
        elsewhere.http.cookie_jar.update_cookies({SESSION_COOKIE: token})
        page = await elsewhere.get("/console/requests")
        assert page.status == 200 and "Log out" in page.text
        await elsewhere.submit("/console/requests", "/console/logout", {})
    async with console(first.url) as replay:  # logged out on the second instance: gone on the first too
        replay.http.cookie_jar.update_cookies({SESSION_COOKIE: token})
        page = await replay.get("/console/requests", allow_redirects=False)
        assert page.status == 303


async def test_a_post_without_the_token_or_from_another_origin_is_403(keyed: Gateway, gateway_request_id: str) -> None:
    async with console(keyed.url) as browser:
        await browser.login(KEY)
        path = f"/console/requests/{gateway_request_id}"
        page = await browser.get(path)
        assert page.status == 200
        action = f"{path}/feedback"
        refused = [
            await browser.post(action, {"rating": "down"}),
            await browser.post(action, {"rating": "down", "csrf": "0" * 64}),
            await browser.post(
                action, {"rating": "down", "csrf": page.csrf}, headers={"Origin": "https://evil.example"}
            ),
            await browser.post(action, {"rating": "down", "csrf": page.csrf}, headers={"Sec-Fetch-Site": "cross-site"}),
            await browser.post("/console/logout", {}),
        ]
        for answer in refused:
            assert answer.status == 403, answer.text
            assert "text/html" in answer.headers["Content-Type"]
            assert "This form was refused" in answer.text
            assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        async with browser.http.get(f"{keyed.v1}/request/{gateway_request_id}/feedback", headers=_auth()) as r:
            assert (await r.json())["data"]["rating"] is None  # nothing was stored
        # The console's own pages send Origin: null (no-referrer) or their own origin: both are fine with the token.
        for origin in ("null", keyed.url):
            done = await browser.post(action, {"rating": "up", "csrf": page.csrf}, headers={"Origin": origin})
            assert done.status == 200


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def gateway_request_id(keyed: Gateway, http: aiohttp.ClientSession) -> str:
    """One proxied call through the keyed gateway."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    async with http.post(f"{keyed.v1}/chat/completions", json=body, headers={"Helicone-Auth": f"Bearer {KEY}"}) as r:
        assert r.status == 200
        request_id = r.headers["Helicone-Id"]
    await keyed.settled()
    return request_id


async def test_security_headers_on_every_page_and_answer(keyed: Gateway) -> None:
    async with console(keyed.url) as browser:
        await browser.login(KEY)
        for path in PAGES:
            page = await browser.get(path)
            headers = page.headers
            assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["Cache-Control"] == "no-store"
            assert "text/html" in headers["Content-Type"]
            # No inline script or style anywhere: every script is a file, and no element has a style.
            assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))", page.text), path
            assert "<style" not in page.text and " style=" not in page.text, path
            assert not re.search(r"<[^>]+\son[a-z]+=", page.text), path  # no inline event handlers either


async def test_errors_are_pages_with_their_status(keyed: Gateway) -> None:
    async with console(keyed.url) as browser:
        await browser.login(KEY)
        missing = await browser.get("/console/requests/no-such-request")
        assert missing.status == 404 and "No request with ID no-such-request" in text_of(missing.text)
        bad_id = await browser.get("/console/requests/" + "x" * 300)
        assert bad_id.status == 400 and "invalid request ID" in missing.text + bad_id.text
        nowhere = await browser.get("/console/nowhere/at/all")
        assert nowhere.status == 404 and "no such page" in nowhere.text
        for page in (missing, bad_id, nowhere):
            assert "text/html" in page.headers["Content-Type"] and "Traceback" not in page.text
            assert "Log out" in page.text


async def test_without_keys_the_console_is_open_with_a_banner_and_posts_still_need_a_token(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    async with console(gateway.url) as browser:
        page = await browser.get("/console/")
        assert page.status == 200
        assert "This console is open to anyone who can reach this address" in text_of(page.text)
        assert "Log out" not in page.text
        assert browser.cookie(BROWSER_COOKIE)  # the per-browser token the forms are signed with
        assert (await browser.get("/console/login")).url.endswith("/console/")
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        async with http.post(f"{gateway.v1}/chat/completions", json=body) as r:
            request_id = r.headers["Helicone-Id"]
        await gateway.settled()
        refused = await browser.post(f"/console/requests/{request_id}/feedback", {"rating": "up"})
        assert refused.status == 403
        done = await browser.submit(
            f"/console/requests/{request_id}", f"/console/requests/{request_id}/feedback", {"rating": "up"}
        )
        assert done.status == 200
    async with console(gateway.url) as stranger:  # another browser's token is not this one's
        refused = await stranger.post(f"/console/requests/{request_id}/feedback", {"rating": "down", "csrf": done.csrf})
        assert refused.status == 403


async def test_static_files_are_cached_long_with_an_etag(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with console(gateway.url) as browser:
        page = await browser.get("/console/")
    links = re.findall(r'(?:href|src)="(/console/static/[^"]+)"', page.text)
    assert any("console.css" in link for link in links) and any("htmx.min.js" in link for link in links)
    for link in links:
        async with http.get(gateway.url + link.replace("&amp;", "&")) as r:
            assert r.status == 200
            assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            etag = r.headers["ETag"]
            assert r.headers["Content-Type"].split(";")[0] in ("text/css", "text/javascript", "application/javascript")
        async with http.get(gateway.url + link, headers={"If-None-Match": etag}) as r:
            assert r.status == 304
    async with http.get(f"{gateway.url}/console/static/vendor/VENDORED.md") as r:
        assert r.status == 404  # only the CSS and scripts are served
    async with http.get(f"{gateway.url}/console/static/../../app.py") as r:
        assert r.status in (400, 404)


async def test_vendored_assets_are_pinned_with_their_licences() -> None:
    vendor = Path(__file__).parents[1] / "src" / "feedgate" / "console" / "static" / "vendor"
    notes = (vendor / "VENDORED.md").read_text()
    htmx = re.search(r"htmx\.org\]\([^)]*\) \| (2\.0\.\d+) \|", notes)
    uplot = re.search(r"uplot\]\([^)]*\) \| (1\.6\.\d+) \|", notes)
    assert htmx and uplot
    # The files are the versions the notes name.
    assert f'version:"{htmx.group(1)}"'.encode() in (vendor / "htmx.min.js").read_bytes()
    assert f"(v{uplot.group(1)})".encode() in (vendor / "uPlot.iife.min.js").read_bytes()
    assert "Zero-Clause BSD" in (vendor / "htmx.LICENSE").read_text()
    assert "MIT License" in (vendor / "uPlot.LICENSE").read_text()


async def test_console_disabled_removes_it(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await make_gateway(console={"enabled": False})
    async with http.get(f"{gateway.url}/console/") as r:
        assert r.status == 404


async def test_console_without_its_slash_goes_to_the_overview(keyed: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{keyed.url}/console", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/console/"
        assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


async def test_cors_origins_do_not_open_console_pages_to_other_sites(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(auth={"cors_origins": ["*"]})
    origin = {"Origin": "https://elsewhere.example"}
    async with http.get(f"{gateway.url}/console/requests", headers=origin) as r:
        assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
    async with http.get(f"{gateway.v1}/request/nope/feedback", headers=origin) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "https://elsewhere.example"  # the API's CORS is as it was


async def test_open_console_forms_are_accepted_by_another_process_on_the_same_store(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    """As with ``serve --workers``: the page from one process, its POST answered by another."""
    first, second = await make_gateway(), await make_gateway()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{first.v1}/chat/completions", json=body) as r:
        request_id = r.headers["Helicone-Id"]
    await first.settled()
    async with console(first.url) as browser:
        page = await browser.get(f"/console/requests/{request_id}")
        browser.base = second.url
        done = await browser.post(f"/console/requests/{request_id}/feedback", {"rating": "up", "csrf": page.csrf})
    assert done.status == 200 and "rated up" in text_of(done.text)
