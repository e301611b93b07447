"""Typed keys for the state the app shares: one place to see what lives on the app and the request."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from feedgate.access_log import AccessLines
from feedgate.config import Settings
from feedgate.pricing import PriceTable
from feedgate.proxy.cache_backend import CacheBackend
from feedgate.proxy.inflight import Inflight
from feedgate.proxy.providers import Providers
from feedgate.proxy.ratelimit import RateLimiter
from feedgate.proxy.request_id import RequestIds
from feedgate.proxy.upstream import UpstreamClient
from feedgate.store.base import Store
from feedgate.store.writer import Writer

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
WRITER = web.AppKey("writer", Writer)
HTTP = web.AppKey("http", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", UpstreamClient)
INFLIGHT = web.AppKey("inflight", Inflight)
PRICES = web.AppKey("prices", PriceTable)
PROVIDERS = web.AppKey("providers", Providers)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)

REQUEST_IDS = web.AppKey("request_ids", RequestIds)
ACCESS_LINES = web.AppKey("access_lines", AccessLines)
CACHE = web.AppKey("cache", CacheBackend)

REQUEST_ID = web.RequestKey("request_id", str)
