"""What feedback means: selections, statistics with intervals, insights, regressions, training formats.

``stats.py``, ``insights.py`` and ``regressions.py`` are the pure reference definitions; ``quality.py``
and ``grouped.py`` apply them to what the store counts; ``reports.py`` answers the API and the commands.
"""
