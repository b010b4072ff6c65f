"""Keeping a background task to a share of one CPU.

On a small machine a writer beside any busy process slows down, whoever that
process is: on two vCPUs, a plain busy loop beside a draft made it 1.4 times
slower (docs/performance.md). A task that can wait (gc run beside writers) calls
its :class:`Pace` between units of work; after each short stretch of work it
sleeps long enough that it is busy only ``share`` of the time.
"""

from __future__ import annotations

import time

STRETCH = 0.01  # seconds of work between sleeps: short, so a writer never waits long


class Pace:
    def __init__(self, share: float | None = None) -> None:
        if share is not None and not 0 < share <= 1:
            raise ValueError(f"a CPU share is more than 0 and at most 1, not {share}")
        self.share = None if share == 1 else share
        self._since = time.monotonic()

    def __call__(self) -> None:
        """Between two units of work: sleep if the work since the last sleep is due."""
        if self.share is None:
            return
        busy = time.monotonic() - self._since
        if busy >= STRETCH:
            time.sleep(busy * (1 - self.share) / self.share)
            self._since = time.monotonic()
