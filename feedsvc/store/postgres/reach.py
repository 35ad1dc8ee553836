"""Whether the PostgreSQL server can be reached: fail at once while it cannot.

When the server refuses connections or stops answering (a partition that drops packets
silently), every call would wait its whole deadline, and a node serving hundreds of
requests a second would hold hundreds of them waiting, each to fail the same way. So the
first call that cannot reach the server marks it *unreachable*; while it is, calls fail at
once with StorageBusyError (a 503 with ``Retry-After``, or a cached feed served stale),
except one call at a time every ``RETRY_SECONDS``, which tries the server for real. Its
success marks the server reachable again: a node recovers on the first request after the
outage ends plus at most ``RETRY_SECONDS``, without a restart.

Only failures to reach the server count: a lock wait, a full disk or a killed backend
(its connection is gone but the server answers) leave it reachable.
"""

from __future__ import annotations

import time


class Reach:
    """The reachability of one server, shared by every event loop of the store (a few
    attributes set in one step each, so no lock is needed under the GIL)."""

    RETRY_SECONDS = 0.5

    def __init__(self) -> None:
        self.down_since: float | None = None
        self._trying = False
        self._last_try = 0.0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def admit(self) -> bool:
        """Whether a call may go to the server now. While it is unreachable, one call every
        ``RETRY_SECONDS`` may (the caller must then report ``reached`` or ``lost``)."""
        if self.down_since is None:
            return True
        now = time.monotonic()
        if self._trying or now - self._last_try < self.RETRY_SECONDS:
            return False
        self._trying = True
        self._last_try = now
        return True

    def reached(self) -> None:
        self.down_since = None
        self._trying = False

    def lost(self) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self._last_try = now
        self._trying = False

    def released(self) -> None:
        """A call ended without telling either way (cancelled, or its connection cut while
        the server may be fine): the state stays, and the next try may come."""
        self._trying = False
