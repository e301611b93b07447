"""The web console at ``/console/``: server-rendered pages over the same reads and figures as the API.

``application.py`` builds it (a sub-application ``app/`` mounts), ``guard.py`` is its middleware (sessions,
CSRF, security headers, error pages), ``sessions.py`` its login model, ``pages.py`` the templates' setup,
``assets.py`` the vendored static files; one module per page: ``overview.py``, ``listing.py`` (the request
list, with ``filters.py``), ``request_view.py`` (one call, with ``conversation.py``), ``session_pages.py``
(Helicone sessions: lists of calls), ``login.py``. It reads through ``analysis/`` and ``store/reads/``,
writes feedback through the API's own path, and holds no SQL. See docs/console.md.
"""
