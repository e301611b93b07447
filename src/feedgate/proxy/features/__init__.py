"""Helicone's feature headers, one module each: target URLs, fallbacks, retries, rate limits, the response
cache, and the state several instances share for the last two. ``parse.py`` reads them all at once."""
