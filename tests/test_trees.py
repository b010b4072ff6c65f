"""Unit tests of artifacts/trees.py: edit, look up, walk, merge and diff trees by path."""

from __future__ import annotations

import pytest

from artifacts.errors import MergeConflictError
from artifacts.trees import REMOVE, Diff, Part, apply_edits, diff, lookup, merge, walk
from cas import Blob, ObjectStore, Tree, TreeEntry, UsageError
from cas.storage import MemoryStorage
from tests.helpers import CountingStore


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStorage())


def blob(store: ObjectStore, name: str, data: bytes, executable: bool = False) -> TreeEntry:
    blob_id = store.put(Blob(data))
    return TreeEntry(name, "blob", blob_id, len(data), executable)


def P(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def build(store: ObjectStore, files: dict[str, bytes], base: bytes | None = None) -> bytes:
    """A tree holding ``files`` (path -> bytes), applied on ``base``."""
    edits = {P(p): blob(store, P(p)[-1], data) for p, data in files.items()}
    return edit(store, base, edits)


def edit(store: ObjectStore, base: bytes | None, edits: dict) -> bytes:
    with store.writer() as writer:
        root, _size = apply_edits(store, writer, base, edits)
    return root


def contents(store: ObjectStore, root: bytes) -> dict[str, bytes]:
    return {path: store.read_blob(entry.id) for path, entry in walk(store, root)}


# ---- apply_edits -------------------------------------------------------------


def test_apply_edits_puts_files_into_new_nested_directories(store):
    with store.writer() as writer:
        root, size = apply_edits(
            store,
            writer,
            None,
            {P("a/b/c.txt"): blob(store, "c.txt", b"ccc"), P("top"): blob(store, "top", b"t")},
        )
    assert contents(store, root) == {"a/b/c.txt": b"ccc", "top": b"t"}
    assert size == 4
    assert store.get_tree(root).size == 4
    assert lookup(store, root, P("a"))
    assert lookup(store, root, P("a")).size == 3  # a subtree's size covers everything below


def test_apply_edits_replaces_an_existing_file(store):
    root = build(store, {"d/x": b"old", "d/y": b"keep"})
    new = build(store, {"d/x": b"new!"}, base=root)
    assert contents(store, new) == {"d/x": b"new!", "d/y": b"keep"}
    assert contents(store, root) == {"d/x": b"old", "d/y": b"keep"}  # the base is untouched


def test_apply_edits_removes_a_file(store):
    root = build(store, {"d/x": b"1", "d/y": b"2", "z": b"3"})
    new = edit(store, root, {P("d/x"): REMOVE})
    assert contents(store, new) == {"d/y": b"2", "z": b"3"}


def test_apply_edits_removes_a_directory_with_everything_below(store):
    root = build(store, {"d/x": b"1", "d/e/f/g": b"2", "z": b"3"})
    new = edit(store, root, {P("d"): REMOVE})
    assert contents(store, new) == {"z": b"3"}
    assert lookup(store, new, P("d")) is None


def test_apply_edits_remove_then_add_under_it_leaves_only_the_new_file(store):
    root = build(store, {"d/x": b"1", "d/y": b"2", "z": b"3"})
    new = edit(store, root, {P("d/new"): blob(store, "new", b"n"), P("d"): REMOVE})
    assert contents(store, new) == {"d/new": b"n", "z": b"3"}


def test_apply_edits_prunes_directories_left_empty(store):
    root = build(store, {"a/b/c/only": b"1", "keep": b"2"})
    new = edit(store, root, {P("a/b/c/only"): REMOVE})
    assert contents(store, new) == {"keep": b"2"}
    assert [e.name for e in store.get_tree(new).entries] == ["keep"]


def test_apply_edits_removing_everything_gives_the_empty_tree(store):
    root = build(store, {"a/x": b"1"})
    with store.writer() as writer:
        new, size = apply_edits(store, writer, root, {P("a"): REMOVE})
    assert size == 0
    assert new == Tree(()).id
    assert store.get_tree(new).entries == ()


def test_apply_edits_removing_a_missing_path_changes_nothing(store):
    root = build(store, {"a/x": b"1"})
    assert edit(store, root, {P("nope"): REMOVE, P("a/nope"): REMOVE}) == root


def test_apply_edits_same_content_gives_the_same_root(store):
    one = build(store, {"a/x": b"1", "b": b"2"})
    two = build(store, {"b": b"2", "a/x": b"1"})
    assert one == two


def test_apply_edits_refuses_a_file_and_a_directory_at_one_path(store):
    with pytest.raises(UsageError, match="a"):
        edit(store, None, {P("a"): blob(store, "a", b"f"), P("a/b"): blob(store, "b", b"d")})


def test_apply_edits_refuses_a_path_below_an_existing_file(store):
    root = build(store, {"a": b"file"})
    with pytest.raises(UsageError, match="not a directory"):
        edit(store, root, {P("a/b"): blob(store, "b", b"x")})


def test_apply_edits_can_replace_a_file_by_a_directory_when_the_file_is_removed(store):
    root = build(store, {"a": b"file"})
    new = edit(store, root, {P("a"): REMOVE, P("a/b"): blob(store, "b", b"x")})
    assert contents(store, new) == {"a/b": b"x"}


def test_apply_edits_reads_only_the_trees_on_the_edited_path(store):
    files = {f"d{i}/f{j}": f"{i}-{j}".encode() for i in range(20) for j in range(5)}
    root = build(store, files)
    store.trees_read.clear()
    new = build(store, {"d7/extra": b"x"}, base=root)
    assert len(store.trees_read) == 2  # the root and d7, nothing else
    assert contents(store, new)["d7/extra"] == b"x"


# ---- lookup and walk ------------------------------------------------------------


def test_lookup_finds_files_and_directories_and_reports_absence(store):
    root = build(store, {"a/b/c": b"1", "x": b"22"})
    assert lookup(store, root, P("a/b/c")).kind == "blob"
    assert lookup(store, root, P("a/b/c")).size == 1
    assert lookup(store, root, P("a/b")).kind == "tree"
    assert lookup(store, root, P("x")).size == 2
    assert lookup(store, root, P("missing")) is None
    assert lookup(store, root, P("a/missing")) is None
    assert lookup(store, root, P("x/below_a_file")) is None
    assert lookup(store, root, P("a/b/c/below_a_file")) is None


def test_lookup_reads_only_the_trees_along_the_path(store):
    root = build(store, {f"d{i}/f": b"1" for i in range(10)})
    store.trees_read.clear()
    lookup(store, root, P("d3/f"))
    assert len(store.trees_read) == 2


def test_walk_yields_every_file_depth_first_in_name_order(store):
    root = build(store, {"b": b"1", "a.txt": b"2", "a/z": b"3", "a/c/d": b"4", "A": b"5"})
    # Names compare segment by segment, by UTF-8 bytes: "a" (a directory) sorts before "a.txt".
    assert [p for p, _ in walk(store, root)] == ["A", "a/c/d", "a/z", "a.txt", "b"]


def test_walk_with_a_prefix_names_paths_under_it(store):
    root = build(store, {"d/x": b"1"})
    sub = lookup(store, root, P("d"))
    assert [p for p, _ in walk(store, sub.id, ("d",))] == ["d/x"]


# ---- merge ------------------------------------------------------------------------


def test_merge_unites_parts_that_agree(store):
    one = build(store, {"shared/same": b"s", "one/a": b"1"})
    two = build(store, {"shared/same": b"s", "two/b": b"2", "shared/other": b"o"})
    with store.writer() as writer:
        root, size = merge(store, writer, [Part("r1", one), Part("r2", two)])
    assert contents(store, root) == {
        "one/a": b"1",
        "shared/other": b"o",
        "shared/same": b"s",
        "two/b": b"2",
    }
    assert size == 4


def test_merge_of_identical_parts_reads_nothing_below_the_root(store):
    one = build(store, {f"d{i}/f": b"x" for i in range(10)})
    store.trees_read.clear()
    with store.writer() as writer:
        root, size = merge(store, writer, [Part("r1", one), Part("r2", one), Part("r3", one)])
    assert root == one
    assert size == 10
    assert store.trees_read == [one]  # only to learn its size


def test_merge_skips_subtrees_all_parts_agree_on(store):
    common = {f"big/d{i}/f": b"x" for i in range(10)}
    one = build(store, {**common, "a": b"1"})
    two = build(store, {**common, "b": b"2"})
    big = lookup(store, one, P("big")).id
    store.trees_read.clear()
    with store.writer() as writer:
        root, _ = merge(store, writer, [Part("r1", one), Part("r2", two)])
    assert store.trees_read.count(big) <= 1  # its size only; its children are never read
    assert len(contents(store, root)) == 12


def test_merge_of_parts_of_disjoint_directories_reads_none_of_them(store):
    # Dask parts of a dataset split by directory: on a bucket, every tree read is a
    # request, so a finish must take each directory's size from its entry, not its tree.
    parts = [build(store, {f"d{i}/f{j}": b"x" for j in range(3)}) for i in range(4)]
    store.trees_read.clear()
    with store.writer() as writer:
        root, size = merge(store, writer, [Part(f"r{i}", t) for i, t in enumerate(parts)])
    assert set(store.trees_read) <= set(parts)  # the part roots alone
    assert size == 12 and len(contents(store, root)) == 12


def test_merge_reports_every_conflicting_path_with_the_parts_involved(store):
    one = build(store, {"x": b"1", "d/y": b"same", "d/z": b"a"})
    two = build(store, {"x": b"2", "d/y": b"same", "d/z": b"b"})
    three = build(store, {"x": b"1", "other": b"o"})
    with store.writer() as writer, pytest.raises(MergeConflictError) as caught:
        merge(store, writer, [Part("r1", one), Part("r2", two), Part("r3", three)])
    assert caught.value.conflicts == {"x": ["r1", "r2", "r3"], "d/z": ["r1", "r2"]}
    assert "d/z" in str(caught.value) and "r2" in str(caught.value)


def test_merge_treats_a_file_against_a_directory_as_a_conflict(store):
    one = build(store, {"p": b"file"})
    two = build(store, {"p/q": b"dir"})
    with store.writer() as writer, pytest.raises(MergeConflictError) as caught:
        merge(store, writer, [Part("r1", one), Part("r2", two)])
    assert caught.value.conflicts == {"p": ["r1", "r2"]}


def test_merge_treats_a_different_executable_bit_as_a_conflict(store):
    with store.writer() as writer:
        one, _ = apply_edits(store, writer, None, {P("run.sh"): blob(store, "run.sh", b"#!")})
        two, _ = apply_edits(
            store, writer, None, {P("run.sh"): blob(store, "run.sh", b"#!", executable=True)}
        )
    with store.writer() as writer, pytest.raises(MergeConflictError):
        merge(store, writer, [Part("r1", one), Part("r2", two)])


# ---- diff -------------------------------------------------------------------------


def test_diff_lists_added_removed_and_modified_paths(store):
    a = build(store, {"same": b"s", "mod": b"1", "gone": b"g", "dir/gone": b"x", "dir/k": b"k"})
    b = build(store, {"same": b"s", "mod": b"2", "new": b"n", "newdir/a/b": b"y", "dir/k": b"k"})
    d = diff(store, a, b)
    assert d.added == ["new", "newdir/a/b"]
    assert d.removed == ["dir/gone", "gone"]
    assert d.modified == ["mod"]
    assert diff(store, a, a).added == diff(store, a, a).removed == []


def test_diff_of_a_file_replaced_by_a_directory(store):
    a = build(store, {"p": b"file"})
    b = build(store, {"p/q": b"x", "p/r": b"y"})
    d = diff(store, a, b)
    assert (d.added, d.removed, d.modified) == (["p/q", "p/r"], ["p"], [])


def test_diff_never_reads_subtrees_that_are_equal(store):
    common = {f"d{i}/e{j}/f": b"x" for i in range(10) for j in range(3)}
    a = build(store, {**common, "changed/x": b"1"})
    b = build(store, {**common, "changed/x": b"2"})
    store.trees_read.clear()
    d = diff(store, a, b)
    assert d.modified == ["changed/x"]
    # Two roots and the two versions of "changed/": the 40 shared trees are never opened.
    assert len(store.trees_read) == 4
    store.trees_read.clear()
    diff(store, a, a)
    assert store.trees_read == []


# ---- deep trees ---------------------------------------------------------------------

DEEP = "/".join(["d"] * 1100)  # past the interpreter's recursion limit (1000)


def test_a_tree_deeper_than_the_recursion_limit_is_edited_merged_and_diffed(store):
    one = build(store, {f"{DEEP}/a": b"1", "top": b"t"})
    two = build(store, {f"{DEEP}/b": b"2", f"{DEEP}/a": b"changed"}, base=one)
    assert contents(store, two) == {"top": b"t", f"{DEEP}/a": b"changed", f"{DEEP}/b": b"2"}
    assert diff(store, one, two) == Diff(added=[f"{DEEP}/b"], removed=[], modified=[f"{DEEP}/a"])
    pruned = edit(store, two, {P(f"{DEEP}/a"): REMOVE, P(f"{DEEP}/b"): REMOVE})
    assert contents(store, pruned) == {"top": b"t"}
    with store.writer() as writer:
        merged, _ = merge(
            store, writer, [Part("x", one), Part("y", build(store, {f"{DEEP}/c": b"3"}))]
        )
    assert contents(store, merged) == {"top": b"t", f"{DEEP}/a": b"1", f"{DEEP}/c": b"3"}
    with store.writer() as writer, pytest.raises(MergeConflictError) as caught:
        merge(store, writer, [Part("x", one), Part("y", two)])
    assert list(caught.value.conflicts) == [f"{DEEP}/a"]
