"""Synthetic traffic and feedback for ``feedgate demo``: realistic bodies (``bodies.py``) logged through the
real row builder, with a regression planted in the last days (``traffic.py``)."""
