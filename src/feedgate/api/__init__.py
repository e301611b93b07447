"""Thin HTTP handlers for everything that is not proxied: feedback, scores, sessions, manual logs, request
queries, stats, datasets and exports, health. Each module's ``add_routes`` names its routes."""
