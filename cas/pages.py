"""Large directories as a balanced tree of pages (docs/format.md 2.2.1).

A directory's entries, in name order, are cut into *pages* where an entry's
name says so: past ``MIN_PAGE`` entries, an entry ends its page when the CRC-32
of its name (salted with the page's height) is 0 modulo ``BOUNDARY_ODDS``, and
at ``MAX_PAGE`` entries a page ends whatever the name. The pages are trees;
an *index page* one height up lists them as ``page`` entries (the page's first
name, its id, its total size, its height), and is cut the same way, until one
page is left: the directory's tree. A directory that fits in one page is
therefore the plain tree it always was, byte for byte.

Boundaries depend on names alone (a file's new contents never move one) and
the cut restarts at every boundary, so the same entries give the same pages
whatever edits produced them, and an edit rewrites only the pages from the one
it touches to the next boundary that did not move, at each height: O(log n).

Every reader here checks each page against the index entry that led to it
(height, first name, names below the next page's, total size), iteratively,
so a hostile store's pages out of order, overlapping, cyclic or of the wrong
height are refused (:class:`InvalidObjectError`), as other invalid trees are.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping

from .errors import InvalidObjectError
from .objects import ObjectId, Tree, TreeEntry
from .packs import PackWriter
from .store import ObjectStore

# Pages of about 1,500 entries: a page costs ~2 ms to decode and rewrite, so a draft
# and a diff of a few changes stay in milliseconds, and directories of up to 1,024
# entries (D2's have 1,000) keep the single tree they had before pages.
MIN_PAGE = 1024  # no page ends before this many entries: smaller directories are one tree
BOUNDARY_ODDS = 512  # past MIN_PAGE, each entry ends its page with odds 1 in this
MAX_PAGE = 8192  # a page ends here whatever its names (hostile names can't grow one)
MAX_HEIGHT = 16  # 2048**16 entries: a taller index is a hostile one
_SALTS = [zlib.crc32(bytes([height])) for height in range(MAX_HEIGHT + 1)]


def _ends_page(name: str, height: int, count: int) -> bool:
    if count < MIN_PAGE:
        return False
    return count >= MAX_PAGE or zlib.crc32(name.encode(), _SALTS[height]) % BOUNDARY_ODDS == 0


def _cut(items: Iterable[TreeEntry], height: int) -> Iterator[list[TreeEntry]]:
    """``items`` (sorted) cut into pages of ``height``."""
    page: list[TreeEntry] = []
    for item in items:
        page.append(item)
        if _ends_page(item.name, height, len(page)):
            yield page
            page = []
    if page:
        yield page


def _by_name(entries: Iterable[TreeEntry]) -> list[TreeEntry]:
    return sorted(entries, key=lambda e: e.name)  # code point order is UTF-8 byte order


def height_of(tree: Tree) -> int:
    """0 for a plain tree (a leaf page), else one more than the pages it lists."""
    entries = tree.entries
    return entries[0].executable + 1 if entries and entries[0].kind == "page" else 0


def _write(writer: PackWriter, page: list[TreeEntry], height: int) -> tuple[TreeEntry, Tree]:
    """The index entry of ``page``, written, and the page."""
    tree = Tree(tuple(page))
    return TreeEntry(page[0].name, "page", writer.add(tree), tree.size, height), tree


def _stack(writer: PackWriter, items: list[TreeEntry], height: int) -> tuple[ObjectId, int]:
    """The directory whose items at ``height`` are ``items`` (sorted, not empty)."""
    while True:
        pages = list(_cut(items, height))
        if len(pages) == 1:
            tree = Tree(tuple(pages[0]))
            return writer.add(tree), tree.size
        items = [_write(writer, page, height)[0] for page in pages]
        height += 1


def build(writer: PackWriter, entries: Iterable[TreeEntry]) -> tuple[ObjectId, int] | None:
    """(id, size) of the directory holding ``entries``, None if there are none."""
    builder = Builder(writer)
    for entry in _by_name(entries):
        builder.add(entry)
    return builder.finish()


class Builder:
    """A directory built from its entries given one by one in name order, each leaf
    page written as it fills: a big directory need not be held whole. The same
    entries give what :func:`build` gives."""

    def __init__(self, writer: PackWriter) -> None:
        self.writer = writer
        self._page: list[TreeEntry] = []  # the leaf page being filled
        self._pages: list[TreeEntry] = []  # the index entries of the leaf pages written
        self._last = ""  # the name added last ("" is no entry's name)

    def add(self, entry: TreeEntry) -> None:
        if entry.name <= self._last:  # out of order, a Tree would sort them and move the cuts
            raise ValueError(f"entry {entry.name!r} is not after {self._last!r}")
        self._last = entry.name
        page = self._page
        page.append(entry)
        if _ends_page(entry.name, 0, len(page)):
            self._pages.append(_write(self.writer, page, 0)[0])
            self._page = []

    def finish(self) -> tuple[ObjectId, int] | None:
        """(id, size) of the directory, None if it holds nothing."""
        pages, page = self._pages, self._page
        if not pages:
            return _stack(self.writer, page, 0) if page else None
        if page:
            pages.append(_write(self.writer, page, 0)[0])
        if len(pages) == 1:  # one page, ended by its last entry: it is the directory
            return pages[0].id, pages[0].size
        return _stack(self.writer, pages, 1)


def check_root(tree_id: ObjectId, tree: Tree) -> None:
    """Refuse a directory's tree that no writer makes: an index of one page, or taller
    than any store could hold."""
    height = height_of(tree)
    if height > MAX_HEIGHT or (height and len(tree.entries) < 2):
        raise InvalidObjectError(f"object {tree_id.hex()}: not a directory's index")


def check_page(tree: Tree, item: TreeEntry, upper: str | None) -> None:
    """Refuse ``tree`` as the page that ``item`` names, the next page starting at ``upper``
    (None: the last), unless it is what ``item`` says and stays within its range."""
    entries = tree.entries
    where = f"page {item.id.hex()}"
    if not entries or height_of(tree) != item.executable:
        raise InvalidObjectError(f"{where} is empty or not of the height its index says")
    if entries[0].name != item.name or (upper is not None and entries[-1].name >= upper):
        raise InvalidObjectError(f"{where} overlaps the pages beside it or is out of order")
    if tree.size != item.size:
        raise InvalidObjectError(f"{where} does not hold the size its index says")


def check(tree_id: ObjectId, tree: Tree, named: tuple[TreeEntry, str | None] | None) -> None:
    """``check_page`` of a page, given (the entry naming it, its range's end); else
    ``check_root``."""
    if named is None:
        check_root(tree_id, tree)
    else:
        check_page(tree, *named)


def page_ranges(index: Tree, upper: str | None) -> Iterator[tuple[TreeEntry, str | None]]:
    """Each page entry of ``index`` (whose range ends at ``upper``) with the name its
    next page starts at."""
    items = index.entries
    for at, item in enumerate(items):
        yield item, items[at + 1].name if at + 1 < len(items) else upper


class Reader:
    """Reads a store's pages, checking each against the entry that names it; keeps
    the pages it read, for a walk that passes the same index pages again."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._index: dict[ObjectId, Tree] = {}  # index pages read or written (few)

    def root(self, tree_id: ObjectId) -> Tree:
        tree = self._index.get(tree_id) or self.store.get_tree(tree_id)
        self._index[tree_id] = tree  # kept: a look-up and an edit of it read it once
        check_root(tree_id, tree)
        return tree

    def write(self, writer: PackWriter, page: list[TreeEntry], height: int) -> TreeEntry:
        """``_write``, keeping the page: an edit may read it back before the writer
        publishes it."""
        item, tree = _write(writer, page, height)
        self._index[item.id] = tree
        return item

    def child(self, item: TreeEntry, upper: str | None) -> Tree:
        """The page ``item`` names; ``upper``: the name the next page starts at."""
        tree = self._get(item.id)
        check_page(tree, item, upper)
        return tree

    def _get(self, tree_id: ObjectId) -> Tree:
        tree = self._index.get(tree_id)
        if tree is None:
            tree = self.store.get_tree(tree_id)
            if height_of(tree):
                self._index[tree_id] = tree
        return tree

    def find(self, root: Tree, height: int, name: str) -> tuple[TreeEntry, Tree, str | None]:
        """The page at ``height`` (below the root's) where ``name`` is or would go: (the
        index entry naming it, the page, the name the next page starts at)."""
        tree, upper = root, None
        while True:
            entries = tree.entries
            at = max(bisect_right([e.name for e in entries], name) - 1, 0)
            if at + 1 < len(entries):
                upper = entries[at + 1].name
            item = entries[at]
            tree = self.child(item, upper)
            if item.executable == height:
                return item, tree, upper


def entries(store: ObjectStore, tree_id: ObjectId, after: str | None = None) -> Iterator[TreeEntry]:
    """Every entry of the directory ``tree_id``, in name order, page by page; with
    ``after``, those named after it, reading no page that ends before it (a page of a
    million-entry directory costs as much as the first)."""
    reader = Reader(store)
    stack = [(reader.root(tree_id).entries, 0, None)]
    while stack:
        items, at, upper = stack.pop()
        if not items or items[0].kind != "page":
            start = 0 if after is None else bisect_right([e.name for e in items], after)
            yield from items[start:]
            continue
        if at + 1 < len(items):
            stack.append((items, at + 1, upper))
        next_start = items[at + 1].name if at + 1 < len(items) else upper
        if after is not None and next_start is not None and next_start <= after:
            continue  # every name of this page is before ``after``
        stack.append((reader.child(items[at], next_start).entries, 0, next_start))


def entries_before(store: ObjectStore, tree_id: ObjectId, before: str) -> Iterator[TreeEntry]:
    """The entries of the directory ``tree_id`` named before ``before``, last first,
    reading no page that starts after it (``entries`` read backwards: a previous page)."""
    reader = Reader(store)
    top = reader.root(tree_id).entries
    stack = [(top, len(top) - 1, None)]
    while stack:
        items, at, upper = stack.pop()
        if not items or items[0].kind != "page":
            yield from reversed(items[: bisect_left([e.name for e in items], before)])
            continue
        if at > 0:
            stack.append((items, at - 1, upper))
        if items[at].name >= before:
            continue  # every name of this page is at or after ``before``
        next_start = items[at + 1].name if at + 1 < len(items) else upper
        page = reader.child(items[at], next_start).entries
        stack.append((page, len(page) - 1, next_start))


def get(store: ObjectStore | Reader, tree_id: ObjectId, name: str) -> TreeEntry | None:
    """The entry ``name`` of the directory ``tree_id``: reads one page per height."""
    reader = store if isinstance(store, Reader) else Reader(store)
    tree = reader.root(tree_id)
    if height_of(tree):
        tree = reader.find(tree, 0, name)[1]
    entries = tree.entries
    at = bisect_right([e.name for e in entries], name) - 1
    return entries[at] if at >= 0 and entries[at].name == name else None


def edit(
    store: ObjectStore | Reader,
    writer: PackWriter,
    tree_id: ObjectId | None,
    changes: Mapping[str, TreeEntry | None],
) -> tuple[ObjectId, int] | None:
    """The directory ``tree_id`` (None: an empty one) with each name of ``changes`` set
    to its entry or, for None, removed: (id, size), or None if nothing is left.

    At each height, from the leaves up, the pages holding a change are cut again from
    their start until a boundary falls where one fell before; the index entries of the
    pages replaced and made are the changes one height up. (``store`` may be a
    :class:`Reader` that read the directory already.)"""
    if tree_id is None:
        return build(writer, (e for e in changes.values() if e is not None))
    reader = store if isinstance(store, Reader) else Reader(store)
    root = reader.root(tree_id)
    top = height_of(root)
    for height in range(top):
        changes = _edit_height(reader, writer, root, height, changes)
    items = {e.name: e for e in root.entries}
    _apply(items, changes)
    ordered = _by_name(items.values())
    while top and len(ordered) == 1:  # one page left below: it is the directory
        ordered, top = list(reader.child(ordered[0], None).entries), top - 1
    return _stack(writer, ordered, top) if ordered else None


def _apply(items: dict[str, TreeEntry], changes: Mapping[str, TreeEntry | None]) -> None:
    for name, entry in changes.items():
        if entry is None:
            items.pop(name, None)
        else:
            items[name] = entry


def _edit_height(
    reader: Reader,
    writer: PackWriter,
    root: Tree,
    height: int,
    changes: Mapping[str, TreeEntry | None],
) -> dict[str, TreeEntry | None]:
    """Cut again the pages at ``height`` that ``changes`` touch; returns the changes to
    the index entries one height up (pages gone: None; pages made: their entry)."""
    names = sorted(changes)
    above: dict[str, TreeEntry | None] = {}
    made: list[TreeEntry] = []
    at = 0
    while at < len(names):
        item, page, upper = reader.find(root, height, names[at])
        pending: list[TreeEntry] = []
        while True:  # from this page's start until a boundary falls where one did
            above[item.name] = None
            items = {e.name: e for e in page.entries}
            start = at
            while at < len(names) and (upper is None or names[at] < upper):
                at += 1
            _apply(items, {name: changes[name] for name in names[start:at]})
            for entry in _by_name(items.values()):
                pending.append(entry)
                if _ends_page(entry.name, height, len(pending)):
                    made.append(reader.write(writer, pending, height))
                    pending = []
            if not pending or upper is None:
                break
            item, page, upper = reader.find(root, height, upper)
        if pending:
            made.append(reader.write(writer, pending, height))
    above.update((entry.name, entry) for entry in made)  # after the removals
    return above


def diff(
    store: ObjectStore, a: ObjectId, b: ObjectId
) -> Iterator[tuple[TreeEntry | None, TreeEntry | None]]:
    """(old, new) for each name whose entry differs between the directories ``a`` and
    ``b`` (None where a side has none), in name order. A page of the same id on both
    sides is skipped unread, so two versions of a million entries that differ in ten
    compare about ten pages."""
    reader = Reader(store)
    left, right = _pending(reader.root(a), None), _pending(reader.root(b), None)
    while left and right:
        (x, x_upper), (y, y_upper) = left[-1], right[-1]
        x_page, y_page = x.kind == "page", y.kind == "page"
        if x_page and y_page and x.id == y.id:
            left.pop()
            right.pop()
        elif x_page and y_page and x.executable == y.executable == 0 and x_upper == y_upper:
            left.pop()  # two leaf pages of the same names' range: compare them whole
            right.pop()
            yield from _leaf_diff(reader.child(x, x_upper), reader.child(y, y_upper))
        elif not x_page and (x.name < y.name or (x.name == y.name and not y_page)):
            left.pop()
            if x.name < y.name:
                yield x, None
            else:
                right.pop()
                if x != y:
                    yield x, y
        elif not y_page and y.name < x.name:
            right.pop()
            yield None, y
        else:  # open a page that starts first, or the taller of two that start together
            if x_page and (not y_page or (x.name, -x.executable) <= (y.name, -y.executable)):
                left.pop()
                left.extend(_pending(reader.child(x, x_upper), x_upper))
            if y_page and (not x_page or (y.name, -y.executable) <= (x.name, -x.executable)):
                right.pop()
                right.extend(_pending(reader.child(y, y_upper), y_upper))
    for side, rest in ((0, left), (1, right)):
        while rest:
            item, upper = rest.pop()
            if item.kind == "page":
                rest.extend(_pending(reader.child(item, upper), upper))
            else:
                yield (item, None) if side == 0 else (None, item)


def _leaf_diff(a: Tree, b: Tree) -> Iterator[tuple[TreeEntry | None, TreeEntry | None]]:
    old = {e.name: e for e in set(a.entries).difference(b.entries)}
    new = {e.name: e for e in set(b.entries).difference(a.entries)}
    for name in sorted(old.keys() | new.keys()):
        yield old.get(name), new.get(name)


def _pending(page: Tree, upper: str | None) -> list[tuple[TreeEntry, str | None]]:
    """``page``'s items, last first (a stack), each with the name the next one starts at."""
    return list(page_ranges(page, upper))[::-1]
