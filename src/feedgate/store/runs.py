"""Which gateway runs stopped without writing what they held: found, said once, and counted.

A process that is killed (kill -9, the OOM killer, a power cut) cannot write the log records still in its
memory: at most the batch being written and the records queued behind it (``database.spool`` keeps those
too). That loss should never be silent, so every run notes itself in ``feedgate_runs``: when it started,
when it was last seen alive (every ``BEAT_S``), and when it stopped cleanly. A run with no clean stop is
found by the next start, or by any instance on the same store, once it is plainly gone: its process is
dead on this host, or it has not been seen for ``GONE_S``. It is logged as a warning and counted on
``/readyz``, once: the run is then marked reported.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from feedgate.store.ops import RecordRun, ReportRuns
from feedgate.store.protocol import Store
from feedgate.store.utc import utc_text

log = logging.getLogger("feedgate.runs")
BEAT_S = 15.0
GONE_S = 4 * BEAT_S


@dataclass
class Runs:
    """This process's run, and the runs it found that stopped uncleanly."""

    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_utc: str = field(default_factory=utc_text)
    unclean: list[dict[str, Any]] = field(default_factory=list)

    def record(self, *, stopped: bool = False) -> RecordRun:
        """The write that notes this run as alive now (or, ``stopped``, as stopped cleanly)."""
        now = utc_text()
        return RecordRun(self.run_id, self.host, self.pid, self.started_utc, now, now if stopped else None)

    async def find_unclean(self, store: Store, *, spooled: bool) -> ReportRuns | None:
        """Runs that are gone without a clean stop and not yet reported; the write that reports them.

        ``spooled``: this store's records are spooled, so what a crashed run held is written at its restart.
        """
        rows = await store.query(
            "SELECT run_id, host, pid, started_utc, seen_utc FROM feedgate_runs "
            "WHERE stopped_utc IS NULL AND reported_utc IS NULL AND run_id <> ?",
            (self.run_id,),
        )
        gone_before = utc_text(time.time() - GONE_S)
        found = [row for row in rows if row["seen_utc"] < gone_before or self._dead_here(row)]
        for row in found:
            log.warning(
                "run %s (pid %s on %s, started %s, last seen %s) did not stop cleanly: the log records it still "
                "held (at most one batch and its queue) %s",
                row["run_id"],
                row["pid"],
                row["host"],
                row["started_utc"],
                row["seen_utc"],
                "are written from the spool when it restarts"
                if spooled
                else "may be lost; set database.spool to keep them across a crash",
            )
        self.unclean.extend(found)
        return ReportRuns([row["run_id"] for row in found], utc_text()) if found else None

    def _dead_here(self, row: dict[str, Any]) -> bool:
        if row["host"] != self.host:
            return False
        pid = int(row["pid"])
        if pid == self.pid:
            # This process has that PID now. A run last seen before this one started belonged to an earlier
            # process (a restarted container): it is over. One seen since is alive in this very process (two
            # gateways in one program, as a benchmark or a test starts them).
            return bool(row["seen_utc"] < self.started_utc)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # a process of another user's holds that PID: it may be the run, so wait for GONE_S
            return False
        return False
