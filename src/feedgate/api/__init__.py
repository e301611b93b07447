"""Thin HTTP handlers for everything that is not proxied: feedback, scores, sessions, manual logs, request
queries, stats, datasets and exports, health. Each module lists its ``routes``;
``app/`` adds them before the proxy's catch-all routes."""
