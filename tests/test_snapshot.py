"""``add_dir`` stages a directory whole and logs it directory by directory.

Every result must equal what staging the same files one by one gives; these
tests compare the two, and check the directory cache's trust rules.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest

import artifacts
from artifacts import Artifact, scan, snapshot
from artifacts.errors import DuplicateEntryError, UsageError
from artifacts.scan import scan_tree
from artifacts.snapshot import DirSource
from cas import forking, pages
from tests.helpers import contents, files_stored, write

OLD_NS = time.time_ns() - 3600 * 10**9  # an hour ago: far from racily clean


def make_source(root: str) -> dict[str, bytes]:
    files = {
        "a.txt": b"a",
        "sub/b.txt": b"b" * 3000,
        "sub/deeper/c.bin": os.urandom(5000),
        "sub/deeper/d.bin": b"",
        "z/e.txt": b"e",
    }
    for path, data in files.items():
        write(os.path.join(root, path), data)
    os.makedirs(os.path.join(root, "empty", "inner"))
    os.chmod(os.path.join(root, "z", "e.txt"), 0o755)
    for path in files:
        os.utime(os.path.join(root, path), ns=(OLD_NS, OLD_NS))
    return files


def file_by_file(name: str, root: str, prefix: str = "") -> Artifact:
    artifact = Artifact(name, "dataset")
    for dirpath, _, names in os.walk(root):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), root)
            artifact.add_file(os.path.join(dirpath, n), name=prefix + rel)
    return artifact


def test_a_directory_staged_whole_logs_as_file_by_file(ws):
    make_source("src")
    with artifacts.init() as run:
        whole = Artifact("whole", "dataset")
        whole.add_dir("src")
        assert isinstance(next(iter(whole._draft.edits.values())), DirSource)
        logged = run.log_artifact(whole)
        single = run.log_artifact(file_by_file("single", "src"))
        assert logged.digest == single.digest
        entry = logged.get_entry("z/e.txt")
        assert entry.size == 1
        assert "empty" not in {p.split("/")[0] for p in logged.manifest.entries}
        again = Artifact("whole", "dataset")
        again.add_dir("src")
        assert run.log_artifact(again).version == "v0"  # unchanged: same tree, no version


def test_a_directory_of_several_rounds_logs_as_file_by_file(ws, monkeypatch):
    # Rounds of 4 files: a directory's files span rounds, in name order, its
    # subdirectories (built before it) fall between them, and its pages are cut as
    # they fill; the re-log finds every directory in the cache.
    monkeypatch.setattr(snapshot, "STORE_ROUND", 4)
    monkeypatch.setattr(pages, "MIN_PAGE", 2)  # pages of a few entries, as a big one's
    monkeypatch.setattr(pages, "BOUNDARY_ODDS", 3)
    for i in range(23):
        write(f"src/f{i:02d}", bytes([i]) * i)
        if i % 5 == 0:
            write(f"src/f{i:02d}.d/inner{i}", b"in")  # a subdirectory between the files
    os.makedirs("src/f07.empty")  # an empty directory between them: no entry
    with artifacts.init() as run:
        whole = Artifact("whole", "dataset")
        whole.add_dir("src")
        logged = run.log_artifact(whole)
        single = run.log_artifact(file_by_file("single", "src"))
        assert logged.digest == single.digest
        objects = run.registry.objects
        root = objects.get_commit(bytes.fromhex(logged.id)).tree
        assert pages.height_of(objects.get_tree(root)) >= 1  # paged
        again = Artifact("whole", "dataset")
        again.add_dir("src")
        assert run.log_artifact(again).version == "v0"


def test_under_a_prefix_and_beside_single_files(ws):
    files = make_source("src")
    write("extra.txt", "x")
    with artifacts.init() as run:
        artifact = Artifact("mixed", "dataset")
        artifact.add_dir("src", name="data/set")
        artifact.add_file("extra.txt", name="data/extra.txt")
        artifact.add_file("extra.txt", name="data/set/new.txt")  # inside, but no clash
        logged = run.log_artifact(artifact)
    got = contents(logged, "dl")
    expected = {f"data/set/{p}": d for p, d in files.items()}
    expected |= {"data/extra.txt": b"x", "data/set/new.txt": b"x"}
    assert got == expected


def test_edits_inside_a_staged_directory(ws):
    files = make_source("src")
    write("other.txt", "other")
    with artifacts.init() as run:
        artifact = Artifact("edited", "dataset")
        artifact.add_dir("src")
        with pytest.raises(DuplicateEntryError):
            artifact.add_file("other.txt", name="sub/b.txt")  # different bytes, no overwrite
        artifact.add_file("other.txt", name="sub/b.txt", overwrite=True)
        artifact.remove("sub/deeper")
        logged = run.log_artifact(artifact)
    expected = {p: d for p, d in files.items() if not p.startswith("sub/deeper/")}
    expected["sub/b.txt"] = b"other"
    assert contents(logged, "dl") == expected


def test_nested_and_repeated_directories(ws):
    files = make_source("src")
    write("more/m.txt", "m")
    with artifacts.init() as run:
        artifact = Artifact("nested", "dataset")
        artifact.add_dir("src")
        artifact.add_dir("more", name="sub/more")
        artifact.add_dir("src", name="copy")
        logged = run.log_artifact(artifact)
        with pytest.raises(DuplicateEntryError):
            clash = Artifact("clash", "dataset")
            clash.add_dir("src")
            write("src2/a.txt", "not a")
            clash.add_dir("src2")
    expected = dict(files) | {"sub/more/m.txt": b"m"} | {f"copy/{p}": d for p, d in files.items()}
    assert contents(logged, "dl") == expected


def test_a_draft_merges_a_directory_into_its_base(ws):
    files = make_source("src")
    write("v2/a.txt", "new a")
    write("v2/added.txt", "added")
    with artifacts.init() as run:
        first = Artifact("draft", "dataset")
        first.add_dir("src")
        v0 = run.log_artifact(first)
        draft = v0.new_draft()
        draft.add_dir("v2", merge=True)  # over the base's root: merged file by file
        draft.add_dir("v2", name="fresh")  # where the base has nothing: built whole
        v1 = run.log_artifact(draft)
    expected = dict(files) | {"a.txt": b"new a", "added.txt": b"added"}
    expected |= {"fresh/a.txt": b"new a", "fresh/added.txt": b"added"}
    assert v1.version == "v1"
    assert contents(v1, "dl") == expected


def test_an_unchanged_directory_is_not_read_and_a_changed_stat_is_noticed(ws, monkeypatch):
    make_source("src")
    path = os.path.join("src", "sub", "deeper", "c.bin")
    with artifacts.init() as run:
        first = Artifact("cached", "dataset")
        first.add_dir("src")
        v0 = run.log_artifact(first)
        stored = files_stored(monkeypatch)
        again = Artifact("cached", "dataset")
        again.add_dir("src")
        assert run.log_artifact(again).version == "v0"
        assert stored == []  # nothing was read
        with open(path, "r+b") as f:  # new bytes, same size, inode and mtime: a new ctime
            f.write(b"X" * 10)
        os.utime(path, ns=(OLD_NS, OLD_NS))
        third = Artifact("cached", "dataset")
        third.add_dir("src")
        v1 = run.log_artifact(third)
    assert v1.version == "v1"
    assert contents(v1, "dl")["sub/deeper/c.bin"].startswith(b"X" * 10)
    assert contents(v0, "dl0")["sub/deeper/c.bin"] != contents(v1, "dl1")["sub/deeper/c.bin"]


def test_a_racily_clean_directory_is_read_again(ws):
    """A file changed within the clock's granularity of its hashing keeps its stat."""
    make_source("src")
    path = os.path.join("src", "a.txt")
    now = time.time_ns()
    os.utime(path, ns=(now, now))
    with artifacts.init() as run:
        first = Artifact("racy", "dataset")
        first.add_dir("src")
        run.log_artifact(first)
        with open(path, "wb") as f:
            f.write(b"b")  # same size
        os.utime(path, ns=(now, now))  # and the same mtime
        second = Artifact("racy", "dataset")
        second.add_dir("src")
        v1 = run.log_artifact(second)
    assert v1.version == "v1"
    assert contents(v1, "dl")["a.txt"] == b"b"


def test_scan_signatures_change_with_any_stat(ws):
    make_source("src")
    before = scan_tree("src")
    same = scan_tree("src")
    assert before.signature == same.signature
    assert before.total_size == sum(f.size for _, f in before.iter_files())
    os.utime(os.path.join("src", "sub", "b.txt"), ns=(OLD_NS + 1, OLD_NS + 1))
    after = scan_tree("src")
    assert after.signature != before.signature
    assert after.dirs["z"].signature == before.dirs["z"].signature
    assert after.dirs["sub"].signature != before.dirs["sub"].signature


# ---- a big tree is scanned by two processes ---------------------------------------------


def every_directory(root: scan.DirScan) -> dict[str, tuple[object, ...]]:
    """Each directory's path -> what a scan says of it, in the order it says it."""
    found, stack = {}, [root]
    while stack:
        node = stack.pop()
        found[node.path] = (
            list(node.files.items()),
            list(node.dirs),
            node.signature,
            node.newest_mtime_ns,
            node.total_size,
        )
        stack.extend(node.dirs.values())
    return found


def scan_with_warnings(root: str) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        found = every_directory(scan_tree(root))
    return found, sorted(str(w.message) for w in warned)


def scan_twice(monkeypatch: pytest.MonkeyPatch, root: str) -> tuple[dict, dict, list]:
    """(one process's scan, two processes' scan, the warnings of each)."""
    monkeypatch.setattr(scan, "SPLIT_MIN_FILES", 10**9)
    one, one_warned = scan_with_warnings(root)
    monkeypatch.setattr(scan, "SPLIT_MIN_FILES", 1)
    monkeypatch.setattr(scan, "_CAN_SPLIT", True)  # even on one core
    monkeypatch.setattr(forking, "alone", lambda: True)  # even beside pytest's threads
    two, two_warned = scan_with_warnings(root)
    return one, two, [one_warned, two_warned]


def build_wide_tree(root: str, links: bool) -> None:
    """Six directories, each with a plain subtree and (with ``links``) one holding links."""
    write(f"{root}/top.txt", b"top")
    for d in range(6):
        for f in range(3):
            write(f"{root}/d{d}/f{f}", bytes([d, f]) * (f + 1))
            write(f"{root}/d{d}/plain/deeper/g{f}", bytes([f]))
        write(f"{root}/d{d}/.artifacts/objects/x", b"x")  # a store: skipped by both
        write(f"{root}/d{d}/plain/vault/refs/x", b"x")  # a store by its layout: skipped too
        os.mkdir(f"{root}/d{d}/plain/vault/tmp")
        if links:
            write(f"{root}/d{d}/linked/real", b"real")
            os.symlink("real", f"{root}/d{d}/linked/link")  # the parent follows it
            os.symlink("../plain", f"{root}/d{d}/linked/dirlink")  # a warning
    os.chmod(f"{root}/d0/f1", 0o755)


def test_two_processes_scan_a_big_tree_as_one_does(ws, monkeypatch):
    build_wide_tree("src", links=True)
    forks, adopted, left_back = [], [], []
    real_fork, real_finish = os.fork, scan._Helper.finish

    def counted_fork():
        forks.append(os.getpid())
        return real_fork()

    def counted_finish(helper, order):
        before = len(order)
        left = real_finish(helper, order)
        adopted.append(len(order) - before)
        left_back.extend(left)
        return left

    monkeypatch.setattr(os, "fork", counted_fork)
    monkeypatch.setattr(scan._Helper, "finish", counted_finish)
    one, two, (one_warned, two_warned) = scan_twice(monkeypatch, "src")
    assert len(forks) == 1 and adopted[0] > 0  # the helper did scan some
    # The helper leaves what is not plain to the parent: links, and stores to skip.
    assert left_back and all(n.path.endswith(("/linked", "/vault")) for n in left_back)
    assert two == one
    assert two_warned == one_warned and len(one_warned) == 6  # every dirlink, once
    for d in range(6):  # a file link: its target's path
        link = dict(two[os.path.abspath(f"src/d{d}/linked")][0])["link"]
        assert link[5] == os.path.abspath(f"src/d{d}/linked/real")
    assert not any(".artifacts" in path or "vault" in path for path in two)
    assert any(path.endswith("/plain/deeper") for path in two)


def test_a_scan_helper_that_fails_hands_its_directories_back(ws, monkeypatch):
    build_wide_tree("src", links=False)
    monkeypatch.setattr(scan, "_scan_plain", lambda paths: os._exit(3))
    one, two, _ = scan_twice(monkeypatch, "src")
    assert two == one


def test_an_error_while_the_helper_runs_reaps_it_and_is_the_one_raised(ws, tmp_path, monkeypatch):
    build_wide_tree("src", links=False)
    (tmp_path / "secret").write_bytes(b"secret")
    for d in range(6):  # wherever the parent goes first, it meets one
        os.symlink(tmp_path / "secret", f"src/d{d}/escape")
    reaped = []
    real_abandon = scan._Helper.abandon

    def watched_abandon(helper):
        pid = helper.pid
        real_abandon(helper)
        reaped.append(pid)

    monkeypatch.setattr(scan._Helper, "abandon", watched_abandon)
    monkeypatch.setattr(forking, "alone", lambda: True)  # even beside pytest's threads
    monkeypatch.setattr(scan, "SPLIT_MIN_FILES", 1)
    monkeypatch.setattr(scan, "_CAN_SPLIT", True)
    with pytest.raises(UsageError, match="outside"):
        scan_tree("src")
    assert len(reaped) == 1 and reaped[0] > 0
    with pytest.raises(ChildProcessError):
        os.waitpid(reaped[0], os.WNOHANG)  # not left a zombie


def build_big_directory(root: str, count: int) -> None:
    """One directory of ``count`` small files, a link among them, and a subdirectory."""
    os.makedirs(f"{root}/big/sub")
    for i in range(count):
        with open(f"{root}/big/f{i:05d}", "wb") as f:
            f.write(bytes([i % 256]) * (i % 7))
    os.chmod(f"{root}/big/f00003", 0o755)
    os.symlink("f00001", f"{root}/big/link")
    write(f"{root}/big/sub/g", b"g")


def count_forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    forks: list[int] = []
    real_fork = os.fork

    def counted_fork():
        forks.append(os.getpid())
        return real_fork()

    monkeypatch.setattr(os, "fork", counted_fork)
    return forks


def test_one_big_directory_is_stated_by_two_processes_as_one_does(ws, monkeypatch):
    # A flat directory has no subtrees to hand a helper: half of its files' stats are.
    build_big_directory("src", 5_000)
    forks = count_forks(monkeypatch)
    monkeypatch.setattr(scan, "_CAN_SPLIT", False)
    one = every_directory(scan_tree("src"))
    assert forks == []
    monkeypatch.setattr(scan, "_CAN_SPLIT", True)  # even on one core
    monkeypatch.setattr(forking, "alone", lambda: True)  # even beside pytest's threads
    monkeypatch.setattr(scan, "SPLIT_MIN_FILES", 10**9)  # no helper for subtrees
    two = every_directory(scan_tree("src"))
    assert len(forks) == 1
    assert two == one
    big = dict(two[os.path.abspath("src/big")][0])
    assert len(big) == 5_001 and big["link"][5] == os.path.abspath("src/big/f00001")
    assert big["f00003"][4] and not big["f00004"][4]  # the executable bit, from either half


def test_a_failed_stat_helper_leaves_its_half_to_the_parent(ws, monkeypatch):
    build_big_directory("src", 5_000)
    monkeypatch.setattr(scan, "_CAN_SPLIT", False)
    one = every_directory(scan_tree("src"))
    monkeypatch.setattr(scan, "_CAN_SPLIT", True)
    monkeypatch.setattr(forking, "alone", lambda: True)
    monkeypatch.setattr(scan, "SPLIT_MIN_FILES", 10**9)
    monkeypatch.setattr(scan, "_stat_rows", _exit_in_helper(scan._stat_rows))
    forks = count_forks(monkeypatch)
    assert every_directory(scan_tree("src")) == one
    assert len(forks) == 1  # a helper was started, and died


def _exit_in_helper(real_stat_rows):
    parent = os.getpid()

    def stat_rows(directory, names):
        if os.getpid() != parent:
            os._exit(3)  # the helper dies
        return real_stat_rows(directory, names)

    return stat_rows


def test_a_symlinked_directory_warning_points_at_the_callers_line(ws):
    write("data/real/f", b"f")
    os.symlink("real", "data/loop")
    with pytest.warns(UserWarning, match="symlinked directory") as warned:
        Artifact("data", "dataset").add_dir("data")
    assert warned[0].filename == __file__
