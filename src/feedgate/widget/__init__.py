"""The browser feedback widget: the ``<feedgate-feedback>`` script, its example page, and the handlers that
serve them with their caching and security headers. The files are package data, read once when the app is
made (``assets.py``); ``routes.py`` answers for them."""
