"""The upstream client: keep-alive pools per origin (``client.py``) and one connection's answer parsed by
llhttp (``connection.py``). Failures are feedgate's own ``UpstreamError``s."""
