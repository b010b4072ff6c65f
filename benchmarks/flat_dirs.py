"""Figures for large flat directories (issue #21 item 1), side by side in one run.

    PYTHONPATH=$PWD python -m benchmarks.flat_dirs [D2 directory] [--million]

- first log of D2's 100,000 files nested (100 x 1,000) and flat (hard links in one
  directory: no data is copied), and a one-file draft of each (median of 5);
- with --million, a flat directory of 1,000,000 entries (16-byte blobs), built through
  trees without writing a million files: a one-file draft, a diff of two versions
  differing in 10 entries, and the objects a push of those 10 changes sends.
Not a timed test: figures to report, on whatever load the machine has.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import artifacts
from artifacts.trees import apply_edits, diff
from cas import Blob, Commit, ObjectStore, Repository, TreeEntry, pages
from remotes import transfer

DRAFTS = 5


def _log_dir(store: str, directory: str) -> float:
    with artifacts.init(store=store, job_type="log") as run:
        start = time.perf_counter()
        artifact = artifacts.Artifact("entries", "dataset")
        artifact.add_dir(directory)
        run.log_artifact(artifact)
        return time.perf_counter() - start


def _drafts(store: str, path: str, scratch: str) -> float:
    times = []
    with artifacts.init(store=store, job_type="draft") as run:
        for i in range(DRAFTS):
            change = os.path.join(scratch, f"change{i}.bin")
            Path(change).write_bytes(os.urandom(4096))
            start = time.perf_counter()
            draft = run.use_artifact("entries:latest").new_draft()
            draft.add_file(change, name=path)
            run.log_artifact(draft)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def hundred_thousand(d2: Path, work: Path) -> None:
    flat = work / "flat"
    flat.mkdir()
    for sub in sorted(d2.iterdir()):
        for file in sub.iterdir():
            os.link(file, flat / f"{sub.name}_{file.name}")
    # The flat one first: the second log reads the same files (hard links) from the cache.
    flat_log = _log_dir(str(work / "flat-store"), str(flat))
    nested_log = _log_dir(str(work / "nested-store"), str(d2))
    nested_draft = _drafts(str(work / "nested-store"), "dir000/file0000.bin", str(work))
    flat_draft = _drafts(str(work / "flat-store"), "dir000_file0000.bin", str(work))
    print(f"first log, 100k: nested {nested_log:.2f} s, flat {flat_log:.2f} s", end=" ")
    print(f"({flat_log / nested_log:.2f} x)")
    print(f"one-file draft, 100k: nested {nested_draft * 1e3:.1f} ms,", end=" ")
    print(f"flat {flat_draft * 1e3:.1f} ms ({flat_draft / nested_draft:.2f} x)")


def _edit(store: ObjectStore, root: bytes, edits: dict, parent: bytes) -> tuple[bytes, bytes]:
    """The new root and a commit of it, written: what a draft writes."""
    with store.writer() as writer:
        new, _ = apply_edits(store, writer, root, edits)
        commit = writer.add(Commit(new, (parent,), {"message": "draft"}))
    return new, commit


def _million_entries(store: ObjectStore) -> tuple[bytes, bytes]:
    """(root, commit) of a version of 1,000,000 16-byte files in one directory. (The
    entries are freed on return: a million live objects slow every later allocation,
    through Python's garbage collector, as no draft or diff process has them.)"""
    with store.writer() as writer:
        entries = [
            TreeEntry(f"f{i:07d}", "blob", writer.add(Blob(b"%016d" % i)), 16)
            for i in range(1_000_000)
        ]
        built = pages.build(writer, entries)
        assert built is not None
        return built[0], writer.add(Commit(built[0], (), {}))


def million(work: Path) -> None:
    store = Repository.open(str(work / "m-store")).objects
    root, v1 = _million_entries(store)
    gc.collect()
    times = []
    for _ in range(DRAFTS):
        blob = store.put(Blob(os.urandom(16)))
        start = time.perf_counter()
        _edit(store, root, {("f0500000",): TreeEntry("f0500000", "blob", blob, 16)}, v1)
        times.append(time.perf_counter() - start)
    print(f"one-file draft, 1M flat: {statistics.median(times) * 1e3:.1f} ms (median of {DRAFTS})")
    changes = {}
    for i in range(5, 1_000_000, 100_000):
        blob = store.put(Blob(os.urandom(16)))
        changes[(f"f{i:07d}",)] = TreeEntry(f"f{i:07d}", "blob", blob, 16)
    new, v2 = _edit(store, root, changes, v1)
    times = []
    for _ in range(DRAFTS):
        start = time.perf_counter()
        found = diff(store, root, new)
        times.append(time.perf_counter() - start)
        assert len(found.modified) == 10
    print(f"diff, 1M flat, 10 entries changed: {statistics.median(times) * 1e3:.1f} ms", end=" ")
    print(f"(median of {DRAFTS}; first {times[0] * 1e3:.1f} ms)")
    remote = Repository.open(str(work / "remote"))
    transfer.copy_objects(store, remote.objects, transfer.missing(store, remote.objects, [v1]))
    sent = transfer.missing(store, remote.objects, [v2])
    print(f"push of those 10 changes, 1M flat: {len(sent)} objects", end=" ")
    kinds = [store.kind(i) for i in sent]
    print(f"({kinds.count('blob')} blobs, {kinds.count('tree')} trees, 1 commit)")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    d2 = Path(args[0]) if args else None
    work = Path(tempfile.mkdtemp(prefix="flat-dirs-"))
    try:
        print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        if d2 is not None:
            hundred_thousand(d2, work)
        if "--million" in sys.argv:
            million(work)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
