"""Observing the gateway from its edges: the access log. Called by the others, calling none of them."""
