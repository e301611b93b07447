"""The hot path: route a request to a provider, forward it, relay the answer, tee the bytes for the log.

``handler.py`` is the route handler; ``sending.py`` sends (targets, retries), ``relay.py`` answers the
client, ``features/`` holds the Helicone feature headers. Nothing here parses an answer or waits for the
database: ``logrows/`` does the first in the writer, ``store/`` the second.
"""
