"""Memory follows a tree's depth and a round's size, not its count of files (issue #21).

Each test logs or sends thousands of small files under ``tracemalloc`` and bounds
the Python memory the operation holds at its peak, beyond what it held before:
bounds that holding a record per file (of the whole tree) exceeds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tracemalloc
from collections.abc import Callable
from typing import Any

import artifacts
from artifacts import snapshot
from artifacts.scan import scan_tree

DIRS, FILES = 10, 1500  # 15,000 files of 16 bytes, in packs of 1,500 (cas.packset.SMALL_PACK)
# What any log holds whatever its size (a megabyte of pack writes pending, the pack
# indexes' pages), and what it may hold per file: its pack index entry (44 bytes).
FIXED, PER_FILE = 2_000_000, 100
# A directory being logged also holds, per file, its name (about 75 bytes), its place in
# name order (4) and its packed stat-cache row (about 90), until its tree is written.
BIG_DIR_PER_FILE = 300


def make_tree(root: str) -> None:
    for d in range(DIRS):
        folder = os.path.join(root, f"dir{d:03d}")
        os.makedirs(folder)
        for i in range(FILES):
            with open(os.path.join(folder, f"file{i:04d}.bin"), "wb") as f:
                f.write(b"%016d" % (d * FILES + i))


def peak_above_start(operation: Callable[[], Any]) -> int:
    """Bytes that ``operation`` allocated and held at once, at most."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        operation()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_logging_a_tree_holds_a_round_of_files_not_the_tree(ws, monkeypatch):
    """A log holds the files of one round of storing (here 1,500), and the stat cache is
    written as directories are built: the old code held every file's blob id, row and
    packed cache row until the end (about 300 bytes a file)."""
    monkeypatch.setattr(snapshot, "STORE_ROUND", FILES)
    make_tree("data")
    with artifacts.init() as run:
        artifact = artifacts.Artifact("many", "dataset")
        artifact.add_dir("data")
        peak = peak_above_start(lambda: run.log_artifact(artifact))
    assert peak < FIXED + PER_FILE * DIRS * FILES, f"{peak / 1e6:.1f} MB held"


def test_logging_one_big_directory_holds_a_round_of_its_files_not_all(ws, monkeypatch):
    """A flat directory is logged a round of its files at a time too, its pages written as
    they fill: what it holds per file is its name, its place in name order and its
    packed stat-cache row. The old code held every file's blob id, row, cache row and
    entry until the directory's end, as one directory of D2's 100k files did (75 MiB
    more than the same files nested)."""
    monkeypatch.setattr(snapshot, "STORE_ROUND", FILES)
    make_tree("nested")
    os.mkdir("data")
    for d in range(DIRS):  # the same files in one directory
        for name in os.listdir(f"nested/dir{d:03d}"):
            os.link(f"nested/dir{d:03d}/{name}", f"data/dir{d:03d}_{name}")
    with artifacts.init() as run:
        artifact = artifacts.Artifact("flat", "dataset")
        artifact.add_dir("data")
        peak = peak_above_start(lambda: run.log_artifact(artifact))
    assert peak < FIXED + BIG_DIR_PER_FILE * DIRS * FILES, f"{peak / 1e6:.1f} MB held"


def test_a_scan_keeps_a_hundred_bytes_a_file(ws):
    """add_dir keeps the stat of every file until the log: as names in one string and
    numbers in one array, not a dict of tuples (about 250 bytes a file)."""
    make_tree("data")
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        scan = scan_tree("data")
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert sum(1 for _ in scan.iter_files()) == DIRS * FILES
    assert held < 100 * DIRS * FILES, f"{held / 1e6:.1f} MB held"


def test_show_of_a_big_version_holds_one_file_at_a_time(ws, capsys):
    """`artifacts show` (text and --json) walks the files as it prints them: the old code
    built a record of every file first (about 500 bytes each: 756 MB for 1M files)."""
    from artifacts.cli import main
    from cas import Blob, TreeEntry, pages

    count = 20_000
    with artifacts.init(job_type="setup") as run:
        registry = run.registry
        with registry.repo.writing(), registry.objects.writer() as writer:
            entries = [
                TreeEntry(f"f{i:07d}", "blob", writer.add(Blob(b"%016d" % i)), 16)
                for i in range(count)
            ]
            root, size = pages.build(writer, entries)
        registry.log(run.entity, run.project, "entries", "dataset", root, size, {})
        del entries
    for extra in ([], ["--json"]):
        argv = ["show", "entries:v0", *extra]
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere):
            peak = peak_above_start(functools.partial(main, argv))
        main(argv)
        printed = capsys.readouterr().out
        listed = json.loads(printed)["files"] if extra else printed.splitlines()[-count:]
        assert len(listed) == count and "f0019999" in str(listed[-1])
        assert peak < FIXED + PER_FILE * count, f"{peak / 1e6:.1f} MB held ({extra})"
