"""The reads both stores share, written once over the ``Store`` protocol's ``dialect``, ``fetch``, ``query``
and ``stream``: request pages, feedback, per-group counts, durations, window counts and export rows."""
