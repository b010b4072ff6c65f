"""Large flat directories, paged (cas/pages.py), through every user of trees: edit,
diff, merge, download, push; and directories written as one tree before pages."""

from __future__ import annotations

from pathlib import Path

import pytest

import artifacts
import remotes
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.trees import Diff, Part, apply_edits, diff, lookup, merge, walk
from cas import Blob, ObjectStore, Repository, Tree, TreeEntry, pages
from cas.fsck import fsck
from cas.storage import MemoryStorage
from cas.walk import reachable
from tests.helpers import CountingStore, tree_of
from tests.test_remotes import PROJECT, log


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStorage())


def fake(name: str, version: int = 0) -> TreeEntry:
    """An entry of a blob that is never read (edits, look-ups and diffs read no blob)."""
    return TreeEntry(name, "blob", bytes([version]) * 32, 16)


def flat(count: int) -> list[TreeEntry]:
    return [fake(f"f{i:07d}") for i in range(count)]


def edit(store: ObjectStore, base: bytes | None, edits: dict) -> bytes:
    with store.writer() as writer:
        return apply_edits(store, writer, base, edits)[0]


def paged(store: ObjectStore, entries: list[TreeEntry]) -> bytes:
    with store.writer() as writer:
        found = pages.build(writer, entries)
    assert found is not None
    return found[0]


def test_a_one_file_draft_of_a_100k_flat_dir_writes_a_page_per_height(
    store: CountingStore,
) -> None:
    root = edit(store, None, {("d", e.name): e for e in flat(100_000)})
    height = pages.height_of(store.get_tree(lookup(store, root, ("d",)).id))  # type: ignore[union-attr]
    store.trees_read.clear()
    with store.writer() as writer:
        apply_edits(store, writer, root, {("d", "f0050000"): fake("f0050000", 1)})
        assert writer.objects_written == 1 + height + 1  # the root, d's pages
    assert len(store.trees_read) == 1 + height + 1


def test_a_diff_of_ten_changes_in_a_large_flat_dir_reads_only_their_pages(
    store: CountingStore,
) -> None:
    entries = flat(100_000)
    old = paged(store, entries)
    changed = {f"f{i:07d}": fake(f"f{i:07d}", 2) for i in range(5, 100_000, 10_000)}
    new = edit(store, old, {(name,): e for name, e in changed.items()})
    store.trees_read.clear()
    assert diff(store, old, new).modified == sorted(changed)
    assert len(store.trees_read) <= 2 + 2 * len(changed)  # the two indexes, a page a change
    grown = edit(store, new, {("new",): fake("new"), ("f0000000",): None})
    found = diff(store, old, grown)
    assert (found.added, found.removed, len(found.modified)) == (["new"], ["f0000000"], 10)


@pytest.mark.usefixtures("tiny_pages")
def test_merging_parts_of_a_flat_dir_equals_logging_it_whole(store: ObjectStore) -> None:
    entries = flat(300)
    parts = [
        Part("a", paged(store, entries[:200])),
        Part("b", paged(store, entries[150:])),  # agrees with a on 150..199
        Part("c", paged(store, entries[7:9])),
    ]
    with store.writer() as writer:
        root, size = merge(store, writer, parts)
    assert root == paged(store, entries) and size == 16 * 300
    clash = Part("d", paged(store, [fake("f0000100", 1)]))
    with pytest.raises(artifacts.errors.MergeConflictError), store.writer() as writer:
        merge(store, writer, [*parts, clash])


def test_a_large_dir_written_as_one_tree_before_pages_still_reads(store: ObjectStore) -> None:
    """Stores written before pages hold big directories as one tree: they read, diff and
    edit as before; the first edit writes the directory as pages."""
    entries = flat(100_000)
    old = store.put(Tree(tuple(entries)))
    new = paged(store, entries)
    assert old != new
    assert [e for _, e in walk(store, old)] == entries
    assert lookup(store, old, ("f0099999",)) == entries[-1]
    assert diff(store, old, new) == diff(store, new, new)  # the same files: no change
    edited = edit(store, old, {("f0000001",): fake("f0000001", 1)})
    assert edited == edit(store, new, {("f0000001",): fake("f0000001", 1)})


@pytest.mark.usefixtures("tiny_pages")
def test_a_paged_dir_logs_downloads_and_pushes_page_by_page(ws: Path, tmp_path: Path) -> None:
    files = {f"flat/f{i:04d}": f"{i}".encode() for i in range(400)}
    local = ws / ".artifacts"
    log(local, files)
    repo = Repository.open(str(local))
    remotes.add_remote(repo, "origin", str(tmp_path / "remote"))
    remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    changed = {f"flat/f{i:04d}": b"changed %d" % i for i in range(0, 400, 40)}
    log(local, {**files, **changed})
    with artifacts.init(store=str(local), project=PROJECT, job_type="check") as run:
        artifact = run.use_artifact("data:latest")
        assert tree_of(artifact.download(str(tmp_path / "dl"))) == {**files, **changed}
        assert set(artifact.manifest) == set(files)
        assert artifact.get_entry("flat/f0123").size == 3
    repo = Repository.open(str(local))
    assert fsck(repo).ok
    pushed = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    # The new blobs, the pages on their paths, the two trees above, the commit: no more.
    root = repo.objects.get_commit(repo.refs.read(f"team/{PROJECT}/artifacts/data/latest")).tree
    flat_dir = lookup(repo.objects, root, ("flat",))
    height = pages.height_of(repo.objects.get_tree(flat_dir.id))  # type: ignore[union-attr]
    assert height >= 2
    assert pushed.objects_uploaded <= len(changed) * (1 + height) + 1 + 2
    assert fsck(Repository.open(str(tmp_path / "remote"))).ok


def test_reachable_follows_pages(store: ObjectStore) -> None:
    blobs = [store.put(Blob(b"%d" % i)) for i in range(5000)]
    entries = [TreeEntry(f"f{i:05d}", "blob", b, 1) for i, b in enumerate(blobs)]
    root = paged(store, entries)
    found = {object_id for object_id, kind in reachable(store, [root]) if kind == "blob"}
    assert found == set(blobs)


def test_a_version_logged_before_pages_reads_downloads_and_drafts(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code before pages wrote a directory as one tree whatever its size: as this code
    does with no page boundary at all."""
    files = {f"flat/f{i:04d}": b"%d" % i for i in range(2500)}  # two pages
    local = ws / ".artifacts"
    with monkeypatch.context() as before_pages:
        before_pages.setattr(pages, "MIN_PAGE", 10**9)
        log(local, files)
    repo = Repository.open(str(local))
    head = f"team/{PROJECT}/artifacts/data/latest"
    v0_root = repo.objects.get_commit(repo.refs.read(head)).tree  # type: ignore[arg-type]
    flat_dir = lookup(repo.objects, v0_root, ("flat",))
    assert len(repo.objects.get_tree(flat_dir.id).entries) == 2500  # type: ignore[union-attr]
    with artifacts.init(store=str(local), project=PROJECT, job_type="check") as run:
        artifact = run.use_artifact("data:v0")
        assert tree_of(artifact.download(str(tmp_path / "dl"))) == files
        draft = artifact.new_draft()
        change = tmp_path / "change"
        change.write_bytes(b"new")
        draft.add_file(str(change), name="flat/f0007")
        run.log_artifact(draft)
    repo = Repository.open(str(local))
    v1_root = repo.objects.get_commit(repo.refs.read(head)).tree  # type: ignore[arg-type]
    flat_dir = lookup(repo.objects, v1_root, ("flat",))
    assert pages.height_of(repo.objects.get_tree(flat_dir.id)) == 1  # type: ignore[union-attr]
    assert diff(repo.objects, v0_root, v1_root) == Diff([], [], ["flat/f0007"])
    assert fsck(repo).ok
