"""A pool of threads for requests to a storage, left at once when the caller fails.

``with ThreadPoolExecutor()`` waits on leaving for every task, queued ones too: a Ctrl-C
during a push to a remote that does not answer waited until each read of its refs had
been retried for the whole ``ARTIFACTS_TIMEOUT``. Here an exception (Ctrl-C, a request
that gave up) cancels what is queued and does not wait for what runs: those requests end
on their own, and the command's exit does not wait for them (``artifacts.__main__``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def worker_pool(threads: int) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(threads)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
