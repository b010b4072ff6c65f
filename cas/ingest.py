"""Storing many files as blobs, in parallel where that pays.

Reading and hashing small files is CPU-bound Python work, so threads do not
help (the GIL); processes do. Each worker opens the same local store and
writes its own pack; packs are content-named, so workers never collide.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from .objects import ObjectId
from .storage import open_storage
from .store import ObjectStore

PARALLEL_MIN_FILES = 2000  # below this, starting workers costs more than it saves


def store_files(store: ObjectStore, files: list[tuple[str, int]]) -> list[tuple[ObjectId, int]]:
    """Store each (path, size) as a blob; returns (id, size) in the same order."""
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < PARALLEL_MIN_FILES or workers < 2 or not store.storage.capabilities.local:
        with store.writer() as writer:
            return [writer.add_file(path, size) for path, size in files]
    step = -(-len(files) // workers)
    chunks = [files[i : i + step] for i in range(0, len(files), step)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(chunks), mp_context=context) as pool:
        parts = pool.map(_store_chunk, [store.storage.url] * len(chunks), chunks)
        results = [item for part in parts for item in part]
    store.refresh_packs()
    return results


def _store_chunk(url: str, files: list[tuple[str, int]]) -> list[tuple[ObjectId, int]]:
    store = ObjectStore(open_storage(url))
    with store.writer() as writer:
        return [writer.add_file(path, size) for path, size in files]
