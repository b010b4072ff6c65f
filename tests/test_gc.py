"""gc keeps whole closures: a tree or commit it keeps has everything it reaches.

Writers publish blobs, then trees, then commits, so what a dead writer left
has blobs older than its trees. A grace period applied object by object would
delete the blobs and keep the trees, and two shortcuts trust a present tree:
the stat cache reuses it on a re-log, and push prunes its walk at it. Each
test below builds one such leftover on a local store, ages part of it (the
files' modification times are what gc reads) and checks that what comes
after ends complete.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import artifacts
import remotes
from artifacts import Artifact
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry
from cas import Repository
from cas.fsck import fsck
from cas.gc import gc
from cas.objects import decode_header
from cas.store import LOOSE_THRESHOLD
from cas.walk import references

ENTITY, PROJECT = "team", "proj"
GRACE = 3600.0
OLD = time.time() - 2 * GRACE


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (OLD, OLD))  # old enough for the stat cache to vouch for them


def log_dir(store: Path, src: Path, name: str = "data") -> str:
    with artifacts.init(project=PROJECT, entity=ENTITY, store=str(store)) as run:
        draft = Artifact(name, "dataset")
        draft.add_dir(str(src))
        return run.log_artifact(draft).id


def drop_refs(repo: Repository) -> None:
    """Make every version unreachable, as a writer killed before publishing leaves it."""
    for name, target in repo.refs.list("").items():
        repo.refs.delete_if_equals(name, target)


def age_blob_packs(repo: Repository, keys: set[str] | None = None) -> int:
    """Make the packs holding only blobs (among ``keys``, if given) look old."""
    aged = 0
    for pack in repo.objects.packs():
        key = f"packs/{pack}.pack"
        if keys is not None and key not in keys:
            continue
        data = repo.storage.get(key)
        entries = repo.objects.pack_entries(pack)
        if all(decode_header(data[o : o + n])[0] == "blob" for _, o, n in entries):
            for suffix in ("pack", "idx"):
                os.utime(repo.storage.local_path(f"packs/{pack}.{suffix}"), (OLD, OLD))
            aged += 1
    return aged


def assert_version(store: Path, commit_hex: str, files: dict[str, bytes], dest: Path) -> None:
    repo = Repository.open(str(store))
    report = fsck(repo)
    assert report.ok, report.problems[:5]
    registry = Registry(repo)
    commit_id = bytes.fromhex(commit_hex)
    version = registry.version(ENTITY, PROJECT, commit_id)
    Artifact._from_version(registry, version).download(str(dest))
    got = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert got == files


FILES = {f"d{i}/f{j}.txt": f"file {i} {j}\n".encode() * 20 for i in range(3) for j in range(4)}


def test_a_killed_log_then_gc_then_the_same_log_again_is_complete(tmp_path: Path) -> None:
    store, src = tmp_path / "store", tmp_path / "src"
    write_files(src, FILES)
    log_dir(store, src)  # its objects and the stat cache's entries stay
    repo = Repository.open(str(store))
    drop_refs(repo)
    assert age_blob_packs(repo) >= 1  # the blobs went first: they are the oldest

    gc(repo, grace_seconds=GRACE)
    again = log_dir(store, src)  # the stat cache vouches for the trees, if they are there
    assert_version(store, again, FILES, tmp_path / "dl")


def test_a_killed_push_then_remote_gc_then_push_again_sends_what_is_missing(
    tmp_path: Path,
) -> None:
    store, src, remote = tmp_path / "store", tmp_path / "src", tmp_path / "remote"
    write_files(src, FILES)
    commit = log_dir(store, src)
    repo = Repository.open(str(store))
    remotes.add_remote(repo, "origin", str(remote))
    remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    other = Repository.open(str(remote))
    drop_refs(other)  # the push died before moving the remote's refs
    assert age_blob_packs(other) >= 1

    gc(other, grace_seconds=GRACE)
    remotes.push(Repository.open(str(store)), "origin", policy=ARTIFACT_REFS)
    assert_version(remote, commit, FILES, tmp_path / "dl")


def test_force_push_over_then_remote_gc_then_force_push_back_is_complete(
    tmp_path: Path,
) -> None:
    remote = tmp_path / "remote"
    b_store, b_src = tmp_path / "b", tmp_path / "b-src"
    write_files(b_src, FILES)
    log_dir(b_store, b_src)
    b = Repository.open(str(b_store))
    remotes.add_remote(b, "origin", str(remote))
    remotes.push(b, "origin", policy=ARTIFACT_REFS)
    first_push = set(Repository.open(str(remote)).storage.list("packs/"))
    # B's next version keeps most files: its trees reach blobs of the first push.
    changed = {**FILES, "d0/f0.txt": b"changed\n"}
    write_files(b_src, changed)
    b_head = log_dir(b_store, b_src)
    remotes.push(b, "origin", policy=ARTIFACT_REFS)

    a_store, a_src = tmp_path / "a", tmp_path / "a-src"
    write_files(a_src, {"other.txt": b"A's own\n"})
    log_dir(a_store, a_src)
    a = Repository.open(str(a_store))
    remotes.add_remote(a, "origin", str(remote))
    # B's versions are unreachable on the remote now
    remotes.push(a, "origin", force=True, policy=ARTIFACT_REFS)

    other = Repository.open(str(remote))
    assert age_blob_packs(other, first_push) >= 1
    gc(other, grace_seconds=GRACE)
    remotes.push(Repository.open(str(b_store)), "origin", force=True, policy=ARTIFACT_REFS)
    assert_version(remote, b_head, changed, tmp_path / "dl")


def closure_holds(store_path: Path) -> list[str]:
    """Every present tree or commit whose references are not all present."""
    repo = Repository.open(str(store_path))
    store = repo.objects
    present = set(store)
    broken = []
    for object_id in present:
        obj = store.get(object_id)
        lacking = [r for r in references(obj) if r not in present]
        if lacking:
            broken.append(f"{object_id.hex()[:12]} lacks {lacking[0].hex()[:12]}")
    return broken


def test_gc_deletes_each_object_after_everything_reaching_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed at any instant, gc leaves no tree or commit reaching a missing object:
    the rule is checked before every deletion gc makes."""
    store, src = tmp_path / "store", tmp_path / "src"
    files = {**FILES, "big/huge.bin": b"x" * (LOOSE_THRESHOLD + 1)}  # a loose blob
    write_files(src, files)
    log_dir(store, src)
    write_files(src, {**files, "d1/f1.txt": b"second\n"})
    log_dir(store, src)  # a second version: its trees reach the first one's blobs
    repo = Repository.open(str(store))
    drop_refs(repo)
    checked = []
    delete = repo.storage.delete

    def checked_delete(key: str) -> None:
        broken = closure_holds(store)
        assert not broken, f"before deleting {key}: {broken[:3]}"
        checked.append(key)
        delete(key)

    monkeypatch.setattr(repo.storage, "delete", checked_delete)
    report = gc(repo, grace_seconds=0)
    assert report.objects_fossilized > len(files) and len(checked) > 3
    assert not closure_holds(store)
    assert not set(Repository.open(str(store)).objects)  # everything went


class FakeClock:
    """time.monotonic and time.sleep of cas.pacing: work advances it (``step`` seconds
    between two readings), sleeps are noted."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step, self.slept = 0.0, step, []

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_paced_task_sleeps_three_times_its_work_at_a_quarter_share(monkeypatch) -> None:
    from cas import pacing

    clock = FakeClock()
    monkeypatch.setattr(pacing, "time", clock)
    pace = pacing.Pace(0.25)
    for _ in range(100):  # 100 units of 2 ms of work
        clock.now += 0.002
        pace()
    work = 100 * 0.002
    assert sum(clock.slept) == pytest.approx(3 * work, rel=0.1)
    assert max(clock.slept) <= 4 * pacing.STRETCH  # never one long stall
    unpaced = pacing.Pace(None)
    clock.slept.clear()
    clock.now += 1.0
    unpaced()
    assert clock.slept == []
    with pytest.raises(ValueError):
        pacing.Pace(0)


def test_a_paced_gc_collects_exactly_what_a_full_speed_one_does(
    tmp_path: Path, monkeypatch
) -> None:
    from cas import pacing

    reports = []
    for share in (None, 0.5):
        store, src = tmp_path / f"store-{share}", tmp_path / f"src-{share}"
        write_files(src, {f"d{i % 3}/f{i}": b"x%d" % i for i in range(60)})
        log_dir(store, src)
        repo = Repository.open(str(store))
        drop_refs(repo)
        clock = FakeClock(step=1e-3)  # a millisecond of "work" per object
        if share is not None:
            monkeypatch.setattr(pacing, "time", clock)
        report = gc(repo, grace_seconds=0, cpu_share=share)
        monkeypatch.undo()
        reports.append((report.reachable, report.objects_fossilized, report.packs_rewritten))
        if share is not None:
            assert clock.slept, "a paced gc sleeps between objects"
        assert fsck(Repository.open(str(store))).ok
    assert reports[0] == reports[1] and reports[0][1] > 0
