"""Large directories as pages (cas/pages.py): canonical, local to an edit, and hostile
pages refused."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import msgpack
import pytest

from cas import Blob, Commit, InvalidObjectError, ObjectStore, Repository, Tree, TreeEntry, pages
from cas.fsck import fsck
from cas.storage import MemoryStorage
from tests.helpers import CountingStore
from tests.test_objects import golden_objects

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStorage())


def entry(name: str, version: int = 0) -> TreeEntry:
    return TreeEntry(name, "blob", bytes([version % 256]) * 32, version)


def flat(count: int, prefix: str = "f") -> list[TreeEntry]:
    return [entry(f"{prefix}{i:07d}") for i in range(count)]


def build(store: ObjectStore, entries: list[TreeEntry]) -> bytes:
    with store.writer() as writer:
        found = pages.build(writer, entries)
    assert found is not None
    return found[0]


def edit(store: ObjectStore, root: bytes | None, changes: dict) -> bytes | None:
    with store.writer() as writer:
        found = pages.edit(store, writer, root, changes)
    return None if found is None else found[0]


def test_a_small_directory_is_the_plain_tree_byte_for_byte(store: ObjectStore) -> None:
    entries = flat(pages.MIN_PAGE)
    root = build(store, entries)
    assert root == Tree(tuple(entries)).id
    assert pages.height_of(store.get_tree(root)) == 0


def test_a_directory_whose_one_page_ends_at_its_last_entry_is_that_page(
    store: ObjectStore,
) -> None:
    # Built entry by entry, the page is written as it ends: it must still be the plain
    # tree, not an index of one page.
    entries = flat(pages.MAX_PAGE + 1)
    last = next(
        i
        for i in range(pages.MIN_PAGE - 1, len(entries))
        if pages._ends_page(entries[i].name, 0, i + 1)
    )
    entries = entries[: last + 1]
    root = build(store, entries)
    assert root == Tree(tuple(entries)).id


def test_a_builder_refuses_entries_out_of_name_order(store: ObjectStore) -> None:
    with store.writer() as writer:
        builder = pages.Builder(writer)
        builder.add(entry("b"))
        with pytest.raises(ValueError, match="not after"):
            builder.add(entry("a"))


def test_a_large_directory_is_paged_and_reads_back_whole(store: ObjectStore) -> None:
    entries = flat(20_000)
    root = build(store, entries)
    index = store.get_tree(root)
    assert pages.height_of(index) == 1 and len(index.entries) > 2
    assert index.size == sum(e.size for e in entries)
    assert list(pages.entries(store, root)) == entries
    assert pages.get(store, root, "f0012345") == entries[12345]
    assert pages.get(store, root, "f0012345x") is None
    assert pages.get(store, root, "a") is None


@pytest.mark.usefixtures("tiny_pages")
@pytest.mark.parametrize("after", [None, "", "a", "f0000000", "f0000150", "f0000150x", "g"])
def test_entries_after_a_name_read_only_the_pages_from_there(
    store: CountingStore, after: str | None
) -> None:
    entries = flat(300)
    root = build(store, entries)
    store.trees_read.clear()
    found = list(pages.entries(store, root, after))
    assert found == [e for e in entries if after is None or e.name > after]
    if after == "f0000150x":  # one page per height is read, none of those before it
        height = pages.height_of(store.get_tree(root))
        store.trees_read.clear()
        assert next(pages.entries(store, root, after)).name == "f0000151"
        assert height >= 2 and len(store.trees_read) == 1 + height


@pytest.mark.usefixtures("tiny_pages")
@pytest.mark.parametrize("before", ["", "a", "f0000000", "f0000150", "f0000150x", "f0000299", "g"])
def test_entries_before_a_name_read_back_only_the_pages_up_to_there(
    store: CountingStore, before: str
) -> None:
    entries = flat(300)
    root = build(store, entries)
    found = list(pages.entries_before(store, root, before))
    assert found == [e for e in reversed(entries) if e.name < before]
    if before == "f0000150x":  # one page per height is read, none of those after it
        height = pages.height_of(store.get_tree(root))
        store.trees_read.clear()
        assert next(pages.entries_before(store, root, before)).name == "f0000150"
        assert height >= 2 and len(store.trees_read) == 1 + height


@pytest.mark.usefixtures("tiny_pages")
@pytest.mark.parametrize("seed", range(12))
def test_same_entries_same_root_whatever_the_edits(store: ObjectStore, seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{rng.randrange(10**6):06d}" for _ in range(400)]
    want: dict[str, TreeEntry] = {}
    root = None
    for _ in range(30):  # random batches of puts, replacements and removals
        before, old = dict(want), root
        changes: dict[str, TreeEntry | None] = {}
        for _ in range(rng.choice((1, 2, 5, 40))):
            name = rng.choice(names)
            changes[name] = None if rng.random() < 0.3 else entry(name, rng.randrange(4))
        root = edit(store, root, changes)
        for name, value in changes.items():
            if value is None:
                want.pop(name, None)
            else:
                want[name] = value
        if not want:
            assert root is None
            continue
        assert root == build(store, list(want.values()))
        assert list(pages.entries(store, root)) == sorted(want.values())
        if old is not None:  # and a diff finds exactly what changed
            changed = sorted(n for n in before.keys() | want.keys() if before.get(n) != want.get(n))
            found = list(pages.diff(store, old, root))
            assert found == [(before.get(n), want.get(n)) for n in changed]
    assert pages.height_of(store.get_tree(build(store, flat(400)))) >= 3  # a tall index


def test_a_one_entry_edit_of_100k_writes_a_page_per_height(store: CountingStore) -> None:
    root = build(store, flat(100_000))
    height = pages.height_of(store.get_tree(root))
    store.trees_read.clear()
    with store.writer() as writer:
        pages.edit(store, writer, root, {"f0050000": entry("f0050000", 1)})
        assert writer.objects_written == height + 1
    assert len(store.trees_read) == height + 1


@pytest.mark.usefixtures("tiny_pages")
def test_removing_all_but_a_few_entries_collapses_to_a_plain_tree(store: ObjectStore) -> None:
    entries = flat(300)
    root = build(store, entries)
    root = edit(store, root, {e.name: None for e in entries[2:]})
    assert root == Tree(tuple(entries[:2])).id
    assert edit(store, root, {e.name: None for e in entries[:2]}) is None


# ---- hostile pages ---------------------------------------------------------


def page_of(store: ObjectStore, entries: list[TreeEntry], name: str | None = None) -> TreeEntry:
    """An index entry naming a leaf page of ``entries``, as a hostile writer may."""
    tree = Tree(tuple(entries))
    page_id = store.put(tree)
    return TreeEntry(name or entries[0].name, "page", page_id, tree.size, 0)


def index(store: ObjectStore, items: list[TreeEntry]) -> bytes:
    return store.put(Tree(tuple(items)))


def refused(store: ObjectStore, root: bytes, name: str = "a0000001") -> None:
    """A walk, and a look-up and an edit of ``name`` (in the bad page), refuse ``root``."""
    with pytest.raises(InvalidObjectError):
        list(pages.entries(store, root))
    with pytest.raises(InvalidObjectError):
        pages.get(store, root, name)
    with pytest.raises(InvalidObjectError), store.writer() as writer:
        pages.edit(store, writer, root, {name: entry(name, 1)})


def test_pages_that_overlap_are_refused(store: ObjectStore) -> None:
    a, b = page_of(store, flat(3, "a")), page_of(store, [entry("a0000001x"), entry("b")])
    refused(store, index(store, [a, b]))  # a's names run past b's first name


def test_a_page_that_does_not_start_at_its_name_is_refused(store: ObjectStore) -> None:
    a, b = page_of(store, flat(3, "a")), page_of(store, flat(3, "c"), name="b")
    refused(store, index(store, [a, b]), "b0000001")


def test_a_page_of_the_wrong_height_is_refused(store: ObjectStore) -> None:
    a, b = page_of(store, flat(3, "a")), page_of(store, flat(3, "b"))
    lower = index(store, [a, b])
    tree = store.get_tree(lower)
    wrong = TreeEntry("a0000000", "page", lower, tree.size, 0)  # an index named as a leaf
    refused(store, index(store, [wrong, page_of(store, flat(3, "c"))]))
    leaf_as_index = a._replace(executable=1)  # (a leaf named as an index)
    refused(store, index(store, [leaf_as_index, b._replace(executable=1)]))


def test_a_page_of_the_wrong_size_is_refused(store: ObjectStore) -> None:
    a, b = page_of(store, flat(3, "a")), page_of(store, flat(3, "b"))
    refused(store, index(store, [a._replace(size=a.size + 1), b]))


def test_an_index_of_one_page_is_refused(store: ObjectStore) -> None:
    refused(store, index(store, [page_of(store, flat(3, "a"))]))


def test_an_index_taller_than_any_store_could_hold_is_refused(store: ObjectStore) -> None:
    def chain(prefix: str) -> TreeEntry:  # a page over one page over ... over a leaf
        item = page_of(store, flat(3, prefix))
        for height in range(1, pages.MAX_HEIGHT + 1):
            item = TreeEntry(item.name, "page", index(store, [item]), item.size, height)
        return item

    refused(store, index(store, [chain("a"), chain("b")]))


def test_page_entries_beside_files_or_of_mixed_heights_are_refused(store: ObjectStore) -> None:
    a, b = page_of(store, flat(3, "a")), page_of(store, flat(3, "b"))
    for items in ([a, entry("c")], [a, b._replace(executable=1)]):
        payload = _packed([list(e) for e in items])
        with pytest.raises(InvalidObjectError):
            Tree.from_payload(payload)
        with pytest.raises(InvalidObjectError):
            Tree(tuple(items))


def _packed(items: list[list]) -> bytes:
    return msgpack.packb(items, use_bin_type=True)


def test_a_page_entry_with_a_bool_for_its_height_is_refused() -> None:
    assert Tree.from_payload(_packed([["a", "page", bytes(32), 0, 0]])).entries[0].executable == 0
    for height in (False, -1, "0"):
        with pytest.raises(InvalidObjectError):
            Tree.from_payload(_packed([["a", "page", bytes(32), 0, height]]))


# ---- the rule of docs/format.md 2.2.1 --------------------------------------


def test_the_cut_is_the_crc_rule_of_the_format_doc() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC-32 the doc names
    for name in ("f0000700", "f0001111", "f0001112", "x"):
        for height in (0, 1, 5):
            crc = zlib.crc32(bytes([height]) + name.encode())
            for count in (1, 1023, 1024, 8191, 8192):
                want = count >= 8192 or (count >= 1024 and crc % 512 == 0)
                assert pages._ends_page(name, height, count) == want


def test_the_100k_example_of_the_format_doc(store: ObjectStore) -> None:
    empty = Blob(b"").id
    root = build(store, [TreeEntry(f"f{i:07d}", "blob", empty, 0) for i in range(100_000)])
    index = store.get_tree(root)
    assert len(index.entries) == 64 and index.entries[1].name == "f0001112"
    assert root.hex() in (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    assert root.hex() == "26865ed969e2f88cc3c658ef48bc8cd60fd5ceb086710a24c7f9ddbc10873234"


def test_the_index_vector_reads_as_its_directory(store: ObjectStore) -> None:
    made = golden_objects()
    for name in ("tree-sub", "tree-top", "tree-tail", "tree-index"):
        store.put(made[name])
    names = [e.name for e in pages.entries(store, made["tree-index"].id)]
    assert names == ["README.md", "run.sh", "sub", "tail.txt"]


def test_fsck_finds_a_hostile_page_where_it_stands() -> None:
    repo = Repository(MemoryStorage())
    store = repo.objects
    a, b = page_of(store, flat(3, "a")), page_of(store, [entry("a0000001x"), entry("b")])
    good = build(store, flat(5000))
    for name, root in (("good", good), ("bad", index(store, [a, b]))):
        repo.refs.set_if_equals(name, None, store.put(Commit(root)))
    invalid = [(p.object_id, p.ref) for p in fsck(repo).problems if p.problem == "invalid"]
    assert invalid == [(a.id.hex(), "bad")]  # (the entries' blobs are missing: not written)
