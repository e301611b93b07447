"""The widget's files as served: headers, caching, size, who may fetch them. The browser tests use them."""

from __future__ import annotations

import gzip
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import aiohttp
import pytest

from conftest import Gateway, GatewayFactory

ROOT = Path(__file__).resolve().parents[1]
WIDGET_DIR = ROOT / "src" / "feedgate" / "widget"
SCRIPT = files("feedgate.widget").joinpath("feedback.js").read_bytes()
EXAMPLE_PAGE = files("feedgate.widget").joinpath("example.html").read_bytes()
EXAMPLE_SCRIPT = files("feedgate.widget").joinpath("example.js").read_bytes()


@pytest.fixture
async def raw_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that shows the bytes as sent: no decompressing."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def test_the_script_is_served_cacheable_with_a_strong_etag_to_any_origin(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{gateway.url}/widget/feedback.js", headers={"Accept-Encoding": "identity"}) as r:
        body = await r.read()
        assert r.status == 200 and body == SCRIPT
        assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        # An unversioned URL: cached for a day, revalidated after, never "immutable".
        assert r.headers["Cache-Control"] == "public, max-age=86400, stale-while-revalidate=604800"
        etag = r.headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag  # strong: no W/
        assert "Content-Encoding" not in r.headers and "Accept-Encoding" in r.headers["Vary"]


async def test_the_script_answers_304_to_its_etag_and_200_to_another(
    gateway: Gateway, raw_http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.url}/widget/feedback.js"
    async with raw_http.get(url) as r:
        assert r.headers["Content-Encoding"] == "gzip"  # aiohttp's client offers gzip
        gzip_etag = r.headers["ETag"]
    async with raw_http.get(url, headers={"Accept-Encoding": "identity"}) as r:
        plain_etag = r.headers["ETag"]
    assert gzip_etag != plain_etag  # two representations, two strong tags
    for sent in (gzip_etag, plain_etag, f"W/{plain_etag}", f'"stale", {gzip_etag}', "*"):
        async with raw_http.get(url, headers={"If-None-Match": sent}) as r:
            assert r.status == 304, sent
            assert await r.read() == b""
            assert r.headers["ETag"] == gzip_etag and r.headers["Cache-Control"].startswith("public, max-age=")
    async with raw_http.get(url, headers={"If-None-Match": '"an-older-version"'}) as r:
        assert r.status == 200 and gzip.decompress(await r.read()) == SCRIPT
    async with raw_http.head(url) as r:
        assert r.status == 200 and r.headers["ETag"] == gzip_etag


async def test_the_script_is_under_6_kb_gzipped(gateway: Gateway, raw_http: aiohttp.ClientSession) -> None:
    async with raw_http.get(f"{gateway.url}/widget/feedback.js", headers={"Accept-Encoding": "gzip"}) as r:
        sent = await r.read()
    assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(sent) == SCRIPT
    assert len(sent) < 6 * 1024, len(sent)
    assert len(gzip.compress(SCRIPT, compresslevel=6)) < 6 * 1024  # what a proxy compressing on the fly sends


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),  # "not gzip", said explicitly
        ("gzip;q=nonsense", False),
        ("br, zstd", False),
        ("", False),
    ],
)
async def test_gzip_only_to_clients_that_accept_it(
    gateway: Gateway, raw_http: aiohttp.ClientSession, accept_encoding: str, gzipped: bool
) -> None:
    async with raw_http.get(f"{gateway.url}/widget/feedback.js", headers={"Accept-Encoding": accept_encoding}) as r:
        sent = await r.read()
    assert (r.headers.get("Content-Encoding") == "gzip") is gzipped
    assert (gzip.decompress(sent) if gzipped else sent) == SCRIPT


async def test_a_request_with_an_origin_gets_the_plain_script(
    make_gateway: GatewayFactory, raw_http: aiohttp.ClientSession
) -> None:
    """The middleware's ``Vary: Origin`` replaces ours there, so the answer must not depend on Accept-Encoding."""
    gw = await make_gateway(auth={"cors_origins": ["https://app.example"]})
    headers = {"Origin": "https://app.example", "Accept-Encoding": "gzip"}
    async with raw_http.get(f"{gw.url}/widget/feedback.js", headers=headers) as r:
        assert r.status == 200 and await r.read() == SCRIPT and "Content-Encoding" not in r.headers


async def test_the_widget_is_open_without_a_key_when_keys_are_set(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(auth={"keys": ["fg-secret"]})
    for path in ("/widget/feedback.js", "/widget/example", "/widget/example.js"):
        async with http.get(gw.url + path) as r:
            assert r.status == 200, path
    async with http.get(f"{gw.v1}/request/msg-1/feedback") as r:
        assert r.status == 401  # the API still needs its key


async def test_the_example_page_is_served_under_a_strict_csp(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{gateway.url}/widget/example?request_id=msg-1&token=t") as r:
        assert r.status == 200 and await r.read() == EXAMPLE_PAGE
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"  # the token in its query string goes nowhere
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    async with http.get(f"{gateway.url}/widget/example.js") as r:
        assert r.status == 200 and await r.read() == EXAMPLE_SCRIPT
        assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"


class _Inline(HTMLParser):
    """Collects what a strict CSP would refuse in a page: inline scripts, styles, style attributes, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style" or "style" in names or any(name.startswith("on") for name in names):
            self.refused.append(tag)
        if tag == "script":
            self._in_script = True
            self.scripts.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.refused.append("inline script")


def test_the_example_page_has_nothing_inline() -> None:
    parser = _Inline()
    parser.feed(EXAMPLE_PAGE.decode())
    assert parser.refused == [] and parser.scripts == ["/widget/feedback.js", "/widget/example.js"]


async def test_the_example_is_gone_when_the_console_is_disabled(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(console={"enabled": False}, auth={"keys": ["fg-secret"]})
    for path in ("/widget/example", "/widget/example.js"):
        async with http.get(gw.url + path) as r:
            assert r.status == 404, path
            assert (await r.json())["data"] is None
    async with http.get(f"{gw.url}/widget/feedback.js") as r:
        assert r.status == 200  # the widget itself does not depend on the console


def test_every_widget_file_ships_in_the_wheel() -> None:
    """Each non-Python file of the widget's folder matches a package-data pattern, so the wheel has it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["feedgate"]
    shipped = {path for pattern in patterns for path in (ROOT / "src" / "feedgate").glob(pattern)}
    data_files = {path for path in WIDGET_DIR.iterdir() if path.suffix not in (".py", ".pyc") and path.is_file()}
    assert data_files and data_files <= shipped, data_files - shipped


def _fenced(markdown: str, language: str) -> list[str]:
    return [block + "\n" for block in re.findall(rf"^```{language}\n(.*?)\n```$", markdown, re.S | re.M)]


def test_the_docs_show_the_example_as_served() -> None:
    """docs/widget.md is what a front-end developer copies: it must be the page and script the gateway serves."""
    docs = (ROOT / "docs" / "widget.md").read_text()
    assert EXAMPLE_PAGE.decode() in _fenced(docs, "html")
    assert EXAMPLE_SCRIPT.decode() in _fenced(docs, "js")
