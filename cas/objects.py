"""The three object kinds, their canonical bytes and their ids.

Every object is stored as a msgpack *header* followed by a *payload*::

    header  = msgpack([FORMAT_VERSION, kind, len(payload)])
    object  = header + payload
    id      = blake3(object)            # 32 bytes

For a blob the payload is the file's raw bytes, so a blob can be hashed and
written while it streams. For a tree or commit the payload is canonical
msgpack (maps with sorted keys, binary ids, the shortest integer forms).
The kind is part of the hashed bytes, so ids never collide across kinds, and
it is checked whenever an object is read back as a particular kind.
See docs/format.md for the bytes, with worked examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import blake3
import msgpack

from .errors import CorruptObjectError, InvalidNameError, InvalidObjectError
from .storage.store_dirs import STORE_DIR

FORMAT_VERSION = 1
ID_SIZE = 32
ObjectId = bytes  # always the raw 32-byte digest; hex only in paths and output
Kind = Literal["blob", "tree", "commit"]
KINDS: tuple[str, ...] = ("blob", "tree", "commit")
# A tree entry points to a blob, a subtree, or a blob that describes an
# external object (an artifact's reference: its URI, ETag and size); or, in a
# large directory's index pages, to one of its pages (cas.pages).
ENTRY_KINDS: tuple[str, ...] = ("blob", "tree", "ref", "page")
TREE_KINDS = frozenset({"tree", "page"})  # entry kinds that point to a tree object
MAX_HEADER = 32  # the longest header is 1 + 1 + 7 + 9 = 18 bytes
MAX_NAME_BYTES = 255


def object_id(data: bytes) -> ObjectId:
    return blake3.blake3(data).digest()


def verify(expected: ObjectId, data: bytes) -> bytes:
    """``data``, once it is checked to be the object ``expected`` (CorruptObjectError)."""
    actual = object_id(data)
    if actual != expected:
        raise CorruptObjectError(expected, actual)
    return data


def encode_header(kind: str, length: int) -> bytes:
    return msgpack.packb([FORMAT_VERSION, kind, length])


BLOB_HEADER_PREFIX = encode_header("blob", 0)[:-1]  # what every blob's bytes start with
# msgpack's unsigned ints: marker -> (bytes that follow, smallest value it may hold in
# canonical form, i.e. when no shorter form fits)
_UINT_FORMS = {0xCC: (1, 0x80), 0xCD: (2, 0x100), 0xCE: (4, 0x10000), 0xCF: (8, 0x1_0000_0000)}


def _blob_header(data: bytes) -> tuple[str, int, int] | None:
    """A canonical blob header parsed by hand, or None to leave it to the parser."""
    at = len(BLOB_HEADER_PREFIX)
    if len(data) <= at:
        return None
    marker = data[at]
    if marker < 0x80:
        return "blob", marker, at + 1
    form = _UINT_FORMS.get(marker)
    if form is None or len(data) < at + 1 + form[0]:
        return None
    length = int.from_bytes(data[at + 1 : at + 1 + form[0]], "big")
    return ("blob", length, at + 1 + form[0]) if length >= form[1] else None


def decode_header(data: bytes) -> tuple[str, int, int]:
    """Return (kind, payload length, header length) from an object's first bytes."""
    if data.startswith(BLOB_HEADER_PREFIX):  # most objects: skip the general parser
        found = _blob_header(data)
        if found is not None:
            return found
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_HEADER, max_array_len=3)
    unpacker.feed(data[:MAX_HEADER])
    try:
        header = unpacker.unpack()
    except Exception as exc:
        raise InvalidObjectError(f"unreadable object header: {exc}") from None
    if (
        not isinstance(header, list)
        or len(header) != 3
        or header[0] != FORMAT_VERSION
        or header[1] not in KINDS
        or not isinstance(header[2], int)
        or isinstance(header[2], bool)
        or header[2] < 0
    ):
        raise InvalidObjectError(f"not an object header: {header!r:.80}")
    offset = unpacker.tell()
    if data[:offset] != encode_header(header[1], header[2]):
        raise InvalidObjectError("object header is not in canonical form")  # one id per content
    return header[1], header[2], offset


def split(data: bytes) -> tuple[str, bytes]:
    """Split whole object bytes into (kind, payload), checking the length."""
    kind, length, offset = decode_header(data)
    if len(data) - offset != length:
        raise InvalidObjectError(
            f"{kind} header says {length} payload bytes, found {len(data) - offset}"
        )
    return kind, data[offset:]


# Lists and maps in an object nest at most this deep (metadata is refused past 100
# when it is set; this bounds what a hostile store can make us check).
MAX_NESTING = 256


def canonical_packb(value: Any) -> bytes:
    return msgpack.packb(_canonical(value), use_bin_type=True)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise InvalidObjectError("map keys must be strings")
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidObjectError("metadata floats must be finite")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise InvalidObjectError(f"integer {value} does not fit in 64 bits")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    raise InvalidObjectError(f"cannot store a {type(value).__name__} in an object")


def _nesting(value: Any, limit: int) -> int:
    """How deep ``value``'s lists and maps nest, counted without recursion up to ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _unpack_payload(payload: bytes, what: str, check_canonical: bool = True) -> Any:
    try:
        # unpackb caps every length at the buffer's size, and msgpack's C
        # decoder refuses nesting deeper than its fixed stack: hostile input
        # fails fast instead of exhausting memory.
        value = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:
        raise InvalidObjectError(f"{what} payload is not msgpack: {exc}") from None
    if not check_canonical:  # (trees: their fixed shape is checked column by column)
        return value
    # Within the decoder's stack, yet deep enough to overflow Python's in the check below.
    if _nesting(value, MAX_NESTING) > MAX_NESTING:
        raise InvalidObjectError(f"{what} payload nests deeper than {MAX_NESTING} levels")
    if canonical_packb(value) != payload:
        raise InvalidObjectError(f"{what} payload is not in canonical form")
    return value


def validate_entry_name(name: str) -> str:
    """Refuse names that could escape a directory or collide when checked out."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(str(name), "entry names must be non-empty strings")
    if name in (".", ".."):
        raise InvalidNameError(name, "'.' and '..' are not entry names")
    if name.casefold() == STORE_DIR:  # as git refuses .git: a download could rewrite the store
        raise InvalidNameError(name, f"{STORE_DIR!r}, in any case, names the store's directory")
    for bad, why in (("/", "a slash"), ("\\", "a backslash"), ("\0", "a NUL byte")):
        if bad in name:
            raise InvalidNameError(name, f"entry names may not contain {why}")
    try:
        encoded = name.encode()
    except UnicodeEncodeError:
        raise InvalidNameError(name, "not valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise InvalidNameError(name, f"longer than {MAX_NAME_BYTES} bytes")
    return name


def _check_id(value: Any, what: str) -> ObjectId:
    if not isinstance(value, bytes) or len(value) != ID_SIZE:
        raise InvalidObjectError(f"{what} is not a {ID_SIZE}-byte id")
    return value


@dataclass(frozen=True, slots=True)
class Blob:
    """File contents. Large files never become a Blob: they stream (see store)."""

    data: bytes

    def to_bytes(self) -> bytes:
        return encode_header("blob", len(self.data)) + self.data

    @property
    def id(self) -> ObjectId:
        return object_id(self.to_bytes())

    @classmethod
    def from_payload(cls, payload: bytes) -> Blob:
        return cls(payload)


class _EntryFields(NamedTuple):
    name: str
    kind: str  # one of ENTRY_KINDS
    id: ObjectId
    size: int  # bytes of the file, or of everything below a subtree
    executable: bool = False  # for a "page" entry: the height of that page (an int)


class TreeEntry(_EntryFields):
    """One entry of a tree, checked when made. A named tuple, not a dataclass: a big
    tree decodes into 100,000s of them, and a tuple is several times cheaper to make."""

    __slots__ = ()

    def __new__(
        cls, name: str, kind: str, id: ObjectId, size: int, executable: bool = False
    ) -> TreeEntry:
        validate_entry_name(name)
        if kind not in ENTRY_KINDS:
            raise InvalidObjectError(f"entry {name!r} has unknown kind {kind!r}")
        _check_id(id, f"entry {name!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidObjectError(f"entry {name!r} has an invalid size")
        if kind == "page":
            if type(executable) is not int or executable < 0:
                raise InvalidObjectError(f"page entry {name!r} has an invalid height")
        elif not isinstance(executable, bool):
            raise InvalidObjectError(f"entry {name!r} has an invalid executable bit")
        return tuple.__new__(cls, (name, kind, id, size, executable))

    def to_list(self) -> list[Any]:
        return list(self)


@dataclass(frozen=True, slots=True)
class Tree:
    """A directory: entries sorted by name (by their UTF-8 bytes), names unique."""

    entries: tuple[TreeEntry, ...] = ()

    def __post_init__(self) -> None:
        names = [e.name.encode() for e in self.entries]
        if any(a >= b for a, b in zip(names, names[1:], strict=False)):
            ordered = tuple(sorted(self.entries, key=lambda e: e.name.encode()))
            keys = [e.name for e in ordered]
            for a, b in zip(keys, keys[1:], strict=False):
                if a == b:
                    raise InvalidObjectError(f"tree has two entries named {a!r}")
            object.__setattr__(self, "entries", ordered)
        _check_pages(self.entries)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def payload(self) -> bytes:
        return msgpack.packb(self.entries, use_bin_type=True)  # tuples pack as arrays

    def to_bytes(self) -> bytes:
        payload = self.payload()
        return encode_header("tree", len(payload)) + payload

    @property
    def id(self) -> ObjectId:
        return object_id(self.to_bytes())

    def get(self, name: str) -> TreeEntry | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    @classmethod
    def from_payload(cls, payload: bytes) -> Tree:
        raw = _unpack_payload(payload, "tree", check_canonical=False)
        if not isinstance(raw, list):
            raise InvalidObjectError("tree payload is not a list")
        entries = _checked_entries(raw)
        if entries is None:  # something is wrong: the slow path says what
            entries = cls._entries_one_by_one(raw)
        names = [e.name.encode() for e in entries]
        if any(a >= b for a, b in zip(names, names[1:], strict=False)):
            raise InvalidObjectError("tree entries are not sorted and unique")
        # Entries hold no maps or floats, so re-packing them as they are gives
        # the canonical bytes: cheaper than the general check, same verdict.
        if msgpack.packb(raw, use_bin_type=True) != payload:
            raise InvalidObjectError("tree payload is not in canonical form")
        _check_pages(entries)
        return cls(tuple(entries))

    @staticmethod
    def _entries_one_by_one(raw: list[Any]) -> list[TreeEntry]:
        entries = []
        for item in raw:
            if not isinstance(item, list) or len(item) != 5:
                raise InvalidObjectError("tree entry is not a 5-element list")
            try:
                entries.append(TreeEntry(*item))
            except InvalidNameError as exc:
                raise InvalidObjectError(f"tree holds a forbidden entry name: {exc}") from None
        return entries


def _checked_entries(raw: list[Any]) -> list[TreeEntry] | None:
    """The entries of a decoded tree, checked column by column (what ``TreeEntry``
    checks one by one, at a third of the cost for big trees), or None if any check
    fails."""
    if not all(type(item) is list and len(item) == 5 for item in raw):
        return None
    names, kinds, ids, sizes, executables = zip(*raw, strict=True) if raw else ((),) * 5
    if not (
        all(type(name) is str for name in names)
        and all(names)
        and "." not in names
        and ".." not in names
        and set(kinds) <= _FILE_KINDS  # (pages, whose last field is an int: one by one)
        and all(type(i) is bytes and len(i) == ID_SIZE for i in ids)
        and all(type(size) is int for size in sizes)
        and min(sizes, default=0) >= 0
        and all(type(x) is bool for x in executables)
    ):
        return None
    joined = "/".join(names)  # one scan per forbidden character, not one per name
    if joined.count("/") > max(len(names) - 1, 0) or "\\" in joined or "\0" in joined:
        return None
    if f"/{STORE_DIR}/" in f"/{joined}/".casefold():  # no "/" in a name: whole names only
        return None
    try:
        if max(map(len, map(str.encode, names)), default=0) > MAX_NAME_BYTES:
            return None
    except UnicodeEncodeError:
        return None
    new = tuple.__new__
    return [new(TreeEntry, item) for item in raw]  # checked above: skip TreeEntry's checks


_FILE_KINDS = frozenset(ENTRY_KINDS) - {"page"}


def _check_pages(entries: tuple[TreeEntry, ...] | list[TreeEntry]) -> None:
    """An index page names pages only, all of one height; any other tree names none."""
    pages = [e for e in entries if e.kind == "page"]
    if pages and len(pages) != len(entries):
        raise InvalidObjectError("tree mixes page entries with other entries")
    if len({e.executable for e in pages}) > 1:
        raise InvalidObjectError("index page names pages of different heights")


@dataclass(frozen=True, slots=True)
class Commit:
    """A version: the tree it records, its parents, and free-form metadata."""

    tree: ObjectId
    parents: tuple[ObjectId, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_id(self.tree, "commit tree")
        for parent in self.parents:
            _check_id(parent, "commit parent")
        if not isinstance(self.meta, dict):
            raise InvalidObjectError("commit metadata must be a map")

    def payload(self) -> bytes:
        return canonical_packb(
            {"meta": self.meta, "parents": list(self.parents), "tree": self.tree}
        )

    def to_bytes(self) -> bytes:
        payload = self.payload()
        return encode_header("commit", len(payload)) + payload

    @property
    def id(self) -> ObjectId:
        return object_id(self.to_bytes())

    @classmethod
    def from_payload(cls, payload: bytes) -> Commit:
        raw = _unpack_payload(payload, "commit")
        if not isinstance(raw, dict) or set(raw) != {"meta", "parents", "tree"}:
            raise InvalidObjectError("commit payload must be a map of meta, parents, tree")
        if not isinstance(raw["parents"], list):
            raise InvalidObjectError("commit parents must be a list")
        return cls(raw["tree"], tuple(raw["parents"]), raw["meta"])


Object = Blob | Tree | Commit
_CLASSES: dict[str, type[Blob] | type[Tree] | type[Commit]] = {
    "blob": Blob,
    "tree": Tree,
    "commit": Commit,
}


def decode(data: bytes, expect: str | None = None) -> Object:
    """Decode whole object bytes (already verified against their id)."""
    kind, payload = split(data)
    if expect is not None and kind != expect:
        raise InvalidObjectError(f"expected a {expect}, found a {kind}")
    return _CLASSES[kind].from_payload(payload)
