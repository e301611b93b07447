"""Building one log row from one exchange: parse the bodies, reassemble streams, price, redact.

Runs in the log writer, after the client has its answer: the proxy only captures an ``Exchange``
(``exchange.py``) and ``build.build_row`` turns it into the ``InsertRequest`` the store writes.
"""
