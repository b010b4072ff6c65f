"""Storing many files as blobs, in parallel where that pays.

Reading and hashing small files is CPU-bound Python work, so threads do not
help (the GIL); processes do. Each worker opens the same local store and
writes its own pack; packs are content-named, so workers never collide. They
are forked from this process when it runs no other thread, else from a fresh
helper process (:mod:`cas.forking`).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from . import forking, largeblobs
from ._fastio import CORES
from .objects import ObjectId
from .storage import open_storage
from .store import HASH_THREADS, LOOSE_THRESHOLD, ObjectStore

PARALLEL_MIN_FILES = 2000  # below this, starting workers costs more than it saves


OnStored = Callable[[int], object]


def store_files(
    store: ObjectStore,
    files: list[tuple[str, int]],
    on_stored: OnStored | None = None,
    replaced: Callable[[int], ObjectId | None] | None = None,
) -> list[tuple[ObjectId, int]]:
    """Store each (path, size) as a blob; returns (id, size) in the same order.

    ``on_stored(size)`` is called as files are stored: once per file, or once per
    worker's share of them with their total size. ``replaced(i)``, asked for large
    files only: the large blob file ``i`` replaces (at its path in the version
    before), if any: the file is stored as chunks where that saves, and the blob it
    replaces too (:data:`cas.chunked.CHANGED_THRESHOLD`)."""
    results: list[tuple[ObjectId, int] | None] = [None] * len(files)
    report = on_stored or (lambda size: None)
    big = [i for i, (_, size) in enumerate(files) if size >= LOOSE_THRESHOLD]
    olds = _replaced_blobs(store, files, big, replaced)
    if len(big) == 1:
        i = big[0]  # blake3 on every core
        results[i] = store.put_blob_file(files[i][0], replacing=i in olds)
        report(results[i][1])
    elif big:
        # A file per core, each hashed by one thread: blake3's own threads would
        # spin (sched_yield) against the other file's reads and writes.
        with ThreadPoolExecutor(HASH_THREADS) as pool:
            paths = [files[i][0] for i in big]
            replacing = [i in olds for i in big]
            for i, result in zip(
                big, pool.map(_put_one_thread, [store] * len(big), paths, replacing), strict=True
            ):
                results[i] = result
                report(result[1])
    for i, old in olds.items():
        if results[i][0] != old:  # type: ignore[index]
            largeblobs.rechunk(store, old, HASH_THREADS)
    small = [i for i, (_, size) in enumerate(files) if size < LOOSE_THRESHOLD]
    stored = _store_small(store, [files[i] for i in small], report)
    for i, result in zip(small, stored, strict=True):
        results[i] = result
    return results  # type: ignore[return-value]


def _store_small(
    store: ObjectStore, files: list[tuple[str, int]], report: OnStored
) -> list[tuple[ObjectId, int]]:
    workers = min(CORES, 8)  # the cores this process may run on, not the machine's
    if len(files) < PARALLEL_MIN_FILES or workers < 2 or not store.storage.capabilities.local:
        results = []
        with store.writer() as writer:
            for path, size in files:
                results.append(writer.add_file(path, size))
                report(results[-1][1])
        return results
    url = store.storage.url
    if forking.alone():
        results = _store_forked(url, files, workers, report)
    else:  # a worker forked here could wait forever for a lock another thread holds
        results = forking.call_alone(_store_forked, (url, files, workers), report)
    store.refresh_packs()
    return results


def _store_forked(
    url: str, files: list[tuple[str, int]], workers: int, report: OnStored
) -> list[tuple[ObjectId, int]]:
    """The files stored by ``workers`` processes forked from this one, which must run
    no other thread (:mod:`cas.forking`)."""
    import multiprocessing  # here: a re-log that stores nothing need not pay its import
    from concurrent.futures import ProcessPoolExecutor

    step = -(-len(files) // workers)
    chunks = [files[i : i + step] for i in range(0, len(files), step)]
    context = multiprocessing.get_context("fork")
    # Workers ignore Ctrl-C (the terminal sends it to them too): the parent decides.
    ignore_interrupts = (signal.SIGINT, signal.SIG_IGN)
    with ProcessPoolExecutor(
        len(chunks), mp_context=context, initializer=signal.signal, initargs=ignore_interrupts
    ) as pool:
        # Ctrl-C is held while the pool starts its workers: landing before the pool can
        # stop them, it would leave them waiting for work forever. It lands just after.
        with _interrupts_held():
            parts = pool.map(_store_chunk, [url] * len(chunks), chunks)
        results = []
        for part in parts:
            results.extend(part)
            report(sum(size for _, size in part))
    return results


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT blocked for this thread: delivered, if it came, on the way out."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _store_chunk(url: str, files: list[tuple[str, int]]) -> list[tuple[ObjectId, int]]:
    store = ObjectStore(open_storage(url))
    with store.writer() as writer:
        results = [writer.add_file(path, size) for path, size in files]
    store.storage.sync()  # the parent's ref will reach this pack; only we know its files
    return results


def _replaced_blobs(
    store: ObjectStore,
    files: list[tuple[str, int]],
    big: list[int],
    replaced: Callable[[int], ObjectId | None] | None,
) -> dict[int, ObjectId]:
    """The large files that replace a large blob, and the blob each replaces."""
    threshold = store.changed_chunk_threshold
    if replaced is None or threshold is None:
        return {}
    olds = {i: replaced(i) for i in big if files[i][1] >= threshold}
    return {i: old for i, old in olds.items() if old is not None}


def _put_one_thread(store: ObjectStore, path: str, replacing: bool) -> tuple[ObjectId, int]:
    return store.put_blob_file(path, hash_threads=1, replacing=replacing)
