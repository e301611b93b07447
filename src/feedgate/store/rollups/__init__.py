"""Per-hour sums the writer keeps beside the rows (issue #15): ``cells.py`` says what one request adds,
``changes.py`` keeps them in each batch's transaction, ``upserts.py`` writes them, ``build.py`` recomputes
them from rows, and ``coverage.py`` records from which hour each dimension's sums are complete."""
