"""Objects: golden bytes and ids, round trips, and refusal of anything non-canonical.

The golden vectors pin the format: if one of them changes, every id in every
existing store changes with it. They are written in docs/format.md too, and
checked there, so the document cannot drift from the code.
"""

from __future__ import annotations

import ast
import math
import random
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cas import objects
from cas.errors import CasError, InvalidNameError, InvalidObjectError
from cas.objects import (
    ENTRY_KINDS,
    KINDS,
    Blob,
    Commit,
    Tree,
    TreeEntry,
    decode,
    decode_header,
    encode_header,
)

ROOT = Path(__file__).resolve().parent.parent

# ---- golden vectors --------------------------------------------------------

GOLDEN: dict[str, tuple[str, str]] = {
    # name: (hex of the whole object bytes, hex of the id)
    "blob-hello": (
        "9301a4626c6f620668656c6c6f0a",
        "7d96ed988f182c0aacf0261c94d344e9b52f47b32fa61d594be4a9a58bca72c7",
    ),
    "blob-empty": (
        "9301a4626c6f6200",
        "a9ebb4936697e3f279762369b83a0b1fb196e72e0ed5f17f30c8b0474757699a",
    ),
    "tree-empty": (
        "9301a4747265650190",
        "ea0c5cf4c63d18f6ed012cc79e8d60c008c76648023c6635b4009f2e541a29c2",
    ),
    "tree-sub": (
        "9301a474726565359195a968656c6c6f2e747874a4626c6f62c4207d96ed988f"
        "182c0aacf0261c94d344e9b52f47b32fa61d594be4a9a58bca72c706c2",
        "2b838bcd237fce9354a7eb5732948b5e025002ad8cba929f79b0aeea476e3ac4",
    ),
    "tree-top": (
        "9301a474726565cc949395a9524541444d452e6d64a4626c6f62c4207d96ed98"
        "8f182c0aacf0261c94d344e9b52f47b32fa61d594be4a9a58bca72c706c295a6"
        "72756e2e7368a4626c6f62c420a9ebb4936697e3f279762369b83a0b1fb196e7"
        "2e0ed5f17f30c8b0474757699a00c395a3737562a474726565c4202b838bcd23"
        "7fce9354a7eb5732948b5e025002ad8cba929f79b0aeea476e3ac406c2",
        "fdc6f58b9958b01226a1448d5b8c6711cc337340137ae639408a58a873ed288d",
    ),
    "tree-tail": (
        "9301a474726565349195a87461696c2e747874a4626c6f62c4207d96ed988f18"
        "2c0aacf0261c94d344e9b52f47b32fa61d594be4a9a58bca72c706c2",
        "321d7b04af44b678c699fc46a74516613076854dd65459a0840c605f7f4b7fa7",
    ),
    "tree-index": (  # an index page (docs/format.md 2.2.1) of tree-top and tree-tail
        "9301a474726565689295a9524541444d452e6d64a470616765c420fdc6f58b99"
        "58b01226a1448d5b8c6711cc337340137ae639408a58a873ed288d0c0095a874"
        "61696c2e747874a470616765c420321d7b04af44b678c699fc46a74516613076"
        "854dd65459a0840c605f7f4b7fa70600",
        "8cca39a714618eb3a1d9f9ce64811d9090f59553bac09e67e3ad3665c6299abe",
    ),
    "commit-root": (
        "9301a6636f6d6d69743783a46d65746180a7706172656e747390a474726565c4"
        "20ea0c5cf4c63d18f6ed012cc79e8d60c008c76648023c6635b4009f2e541a29"
        "c2",
        "0aa7dc8615a45dad7604fe9f275e1d8b738508c20ae0fa20bc4a549326a1ca70",
    ),
    "commit-first": (
        "9301a6636f6d6d69747e83a46d65746183a6617574686f72a5616c696365a76d"
        "657373616765a56669727374a474696d65ce6553f100a7706172656e747391c4"
        "200aa7dc8615a45dad7604fe9f275e1d8b738508c20ae0fa20bc4a549326a1ca"
        "70a474726565c420fdc6f58b9958b01226a1448d5b8c6711cc337340137ae639"
        "408a58a873ed288d",
        "13e5692f5390ac6ea233305b203b97e78ab04b5b672415bab7fc22f824cd19fe",
    ),
}
# Vectors in docs/format.md that other modules check (refs, packs).
OTHER_DOC_VECTORS = {
    "ref-hello-seq1",
    "ref-tombstone-seq2",
    "pack-example",
    "idx-example",
    "annotation-first",  # tests/test_annotations.py
    "annotation-second",
    "registry-settings",  # tests/test_registry_links.py
    "collection-record",  # tests/test_wandb_collections.py
    "annotation-ttl",  # tests/test_ttl.py
    "deletion-record",  # tests/test_deletion.py
    "link-commit",  # tests/test_registry_links.py
    "chunklist-example",  # tests/test_chunked.py
    "chunk-cuts",
}


def golden_objects() -> dict[str, objects.Object]:
    hello = Blob(b"hello\n")
    empty = Blob(b"")
    empty_tree = Tree(())
    sub = Tree((TreeEntry("hello.txt", "blob", hello.id, 6),))
    top = Tree(
        (
            TreeEntry("README.md", "blob", hello.id, 6),
            TreeEntry("run.sh", "blob", empty.id, 0, executable=True),
            TreeEntry("sub", "tree", sub.id, 6),
        )
    )
    tail = Tree((TreeEntry("tail.txt", "blob", hello.id, 6),))
    index = Tree(
        (
            TreeEntry("README.md", "page", top.id, 12, 0),
            TreeEntry("tail.txt", "page", tail.id, 6, 0),
        )
    )
    root = Commit(tree=empty_tree.id)
    first = Commit(
        tree=top.id,
        parents=(root.id,),
        meta={"message": "first", "time": 1700000000, "author": "alice"},
    )
    return {
        "blob-hello": hello,
        "blob-empty": empty,
        "tree-empty": empty_tree,
        "tree-sub": sub,
        "tree-top": top,
        "tree-tail": tail,
        "tree-index": index,
        "commit-root": root,
        "commit-first": first,
    }


def obj(kind: str, payload: bytes) -> bytes:
    """Whole object bytes for a hand-crafted payload."""
    return objects.encode_header(kind, len(payload)) + payload


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_vector(name: str) -> None:
    data_hex, id_hex = GOLDEN[name]
    made = golden_objects()[name]
    assert made.to_bytes().hex() == data_hex
    assert made.id.hex() == id_hex
    assert objects.object_id(bytes.fromhex(data_hex)).hex() == id_hex
    assert decode(bytes.fromhex(data_hex)) == made


def test_golden_vectors_cover_the_brief() -> None:
    made = golden_objects()
    assert made["blob-hello"].data == b"hello\n"
    assert made["blob-empty"].data == b""
    assert made["tree-empty"].entries == ()
    top = made["tree-top"]
    assert [e.kind for e in top.entries].count("blob") == 2
    assert [e.executable for e in top.entries].count(True) == 1
    assert top.get("sub") is not None and top.get("sub").kind == "tree"
    first = made["commit-first"]
    assert len(first.parents) == 1
    assert first.meta == {"message": "first", "time": 1700000000, "author": "alice"}


def test_format_doc_vectors_match_the_code(format_vectors: dict[str, dict[str, bytes]]) -> None:
    assert set(format_vectors) == set(GOLDEN) | OTHER_DOC_VECTORS
    made = golden_objects()
    for name in GOLDEN:
        doc = format_vectors[name]
        assert doc["bytes"] == made[name].to_bytes(), f"docs/format.md: bytes of {name}"
        assert doc["id"] == made[name].id, f"docs/format.md: id of {name}"
    for name, doc in format_vectors.items():
        if "id" in doc:  # every id written in the doc is the blake3 of its bytes
            assert objects.object_id(doc["bytes"]) == doc["id"], name


def test_format_doc_parser_sees_every_change(parse_vectors: Any) -> None:
    text = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    data_hex, id_hex = GOLDEN["blob-hello"]
    assert parse_vectors(text)["blob-hello"]["bytes"].hex() == data_hex
    drifted = text.replace(id_hex, id_hex[:-1] + ("0" if id_hex[-1] != "0" else "1"))
    assert parse_vectors(drifted)["blob-hello"]["id"].hex() != id_hex
    wrapped = parse_vectors(text)["tree-top"]["bytes"]  # continued on indented lines
    assert wrapped.hex() == GOLDEN["tree-top"][0]
    with pytest.raises(ValueError):
        parse_vectors("```text\nvector: x\nbytes: 00\nstray line\n```\n")


# ---- round trips -----------------------------------------------------------

NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00")
entry_names = st.text(NAME_CHARS, min_size=1, max_size=40).filter(
    lambda n: (
        n not in (".", "..")
        and n.casefold() != ".artifacts"
        and len(n.encode()) <= objects.MAX_NAME_BYTES
    )
)
ids = st.binary(min_size=32, max_size=32)
entries = st.builds(
    TreeEntry,
    name=entry_names,
    kind=st.sampled_from([k for k in ENTRY_KINDS if k != "page"]),  # pages: test_pages.py
    id=ids,
    size=st.integers(0, 2**64 - 1),
    executable=st.booleans(),
)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.binary(max_size=40)
)
meta_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=25,
)
metas = st.dictionaries(text, meta_values, max_size=6)
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=2000))
def test_blob_round_trip(data: bytes) -> None:
    blob = Blob(data)
    raw = blob.to_bytes()
    assert decode(raw, "blob") == blob
    assert raw.endswith(data)
    assert blob.id == objects.object_id(raw)


@FAST
@given(st.lists(entries, max_size=12, unique_by=lambda e: e.name), st.randoms())
def test_tree_round_trip(entry_list: list[TreeEntry], rnd: random.Random) -> None:
    tree = Tree(tuple(entry_list))
    raw = tree.to_bytes()
    back = decode(raw, "tree")
    assert back == tree
    assert back.to_bytes() == raw
    assert back.id == tree.id
    names = [e.name.encode() for e in back.entries]
    assert names == sorted(names)
    shuffled = list(entry_list)
    rnd.shuffle(shuffled)
    assert Tree(tuple(shuffled)).to_bytes() == raw  # order of construction is irrelevant
    assert tree.size == sum(e.size for e in entry_list)


@FAST
@given(ids, st.lists(ids, max_size=4), metas)
def test_commit_round_trip(tree_id: bytes, parents: list[bytes], meta: dict[str, Any]) -> None:
    commit = Commit(tree=tree_id, parents=tuple(parents), meta=meta)
    raw = commit.to_bytes()
    back = decode(raw, "commit")
    assert back == commit
    assert back.to_bytes() == raw
    assert back.id == commit.id


@FAST
@given(metas)
def test_commit_meta_key_order_does_not_matter(meta: dict[str, Any]) -> None:
    reversed_meta = dict(reversed(list(meta.items())))
    a = Commit(tree=bytes(32), meta=meta)
    b = Commit(tree=bytes(32), meta=reversed_meta)
    assert a.to_bytes() == b.to_bytes()


def test_floats_are_float64_and_keep_their_sign() -> None:
    commit = Commit(tree=bytes(32), meta={"neg0": -0.0, "x": 0.1, "big": 1e300})
    raw = commit.to_bytes()
    back = decode(raw, "commit")
    assert math.copysign(1.0, back.meta["neg0"]) == -1.0
    assert back.meta["x"] == 0.1
    assert raw.count(b"\xcb") == 3 and b"\xca" not in raw


@FAST
@given(st.binary(max_size=64), st.sampled_from(KINDS))
def test_arbitrary_payloads_decode_canonically_or_raise(payload: bytes, kind: str) -> None:
    raw = obj(kind, payload)
    try:
        value = decode(raw)
    except InvalidObjectError:
        return
    assert value.to_bytes() == raw  # whatever is accepted is canonical


@FAST
@given(st.sampled_from(sorted(GOLDEN)), st.data())
def test_flipped_golden_bytes_decode_canonically_or_raise(name: str, data: st.DataObject) -> None:
    raw = bytearray(bytes.fromhex(GOLDEN[name][0]))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    try:
        value = decode(bytes(raw))
    except InvalidObjectError:
        return
    assert value.to_bytes() == bytes(raw)


# ---- non-canonical payloads are refused --------------------------------------

ID_A, ID_B = b"\xaa" * 32, b"\xbb" * 32
COMMIT_FIRST_PAYLOAD = objects.split(bytes.fromhex(GOLDEN["commit-first"][0]))[1]
TREE_TOP_PAYLOAD = objects.split(bytes.fromhex(GOLDEN["tree-top"][0]))[1]


def packb(value: Any, **kwargs: Any) -> bytes:
    """msgpack exactly as given: no key sorting, no canonical checks."""
    return msgpack.packb(value, use_bin_type=True, **kwargs)


def entry(name: Any = "a", kind: Any = "blob", id: Any = ID_A, size: Any = 1, x: Any = False):
    return [name, kind, id, size, x]


NON_CANONICAL_COMMITS = {
    "unsorted keys": packb({"tree": ID_A, "parents": [], "meta": {}}),
    "unsorted meta keys": packb({"meta": {"b": 1, "a": 2}, "parents": [], "tree": ID_A}),
    "unsorted nested meta keys": packb(
        {"meta": {"a": [{"z": 1, "y": 2}]}, "parents": [], "tree": ID_A}
    ),
    "duplicate key": b"".join(
        [b"\x84", packb("meta"), b"\x80", packb("meta"), b"\x80"]
        + [packb("parents"), b"\x90", packb("tree"), packb(ID_A)]
    ),
    "uint64 for a small int": COMMIT_FIRST_PAYLOAD.replace(
        bytes.fromhex("ce6553f100"), bytes.fromhex("cf000000006553f100")
    ),
    "uint8 for a fixint": packb({"meta": {"n": 1}, "parents": [], "tree": ID_A}).replace(
        packb("n") + b"\x01", packb("n") + b"\xcc\x01"
    ),
    "float32": packb({"meta": {"x": 1.5}, "parents": [], "tree": ID_A}, use_single_float=True),
    "NaN": packb({"meta": {"x": math.nan}, "parents": [], "tree": ID_A}),
    "infinity": packb({"meta": {"x": math.inf}, "parents": [], "tree": ID_A}),
    "bin16 for an id": packb({"meta": {}, "parents": [], "tree": ID_A}).replace(
        b"\xc4\x20" + ID_A, b"\xc5\x00\x20" + ID_A
    ),
    "str8 for a short key": packb({"meta": {}, "parents": [], "tree": ID_A}).replace(
        b"\xa4meta", b"\xd9\x04meta"
    ),
    "map16 for a small map": b"\xde\x00\x03" + packb({"meta": {}, "parents": [], "tree": ID_A})[1:],
    "timestamp ext": packb({"meta": {"t": msgpack.Timestamp(0)}, "parents": [], "tree": ID_A}),
    "other ext": packb({"meta": {"t": msgpack.ExtType(5, b"xy")}, "parents": [], "tree": ID_A}),
    "trailing bytes": COMMIT_FIRST_PAYLOAD + b"\xc0",
    "extra key": packb({"extra": 1, "meta": {}, "parents": [], "tree": ID_A}),
    "missing key": packb({"meta": {}, "tree": ID_A}),
    "parents not a list": packb({"meta": {}, "parents": {}, "tree": ID_A}),
    "parent not an id": packb({"meta": {}, "parents": [b"short"], "tree": ID_A}),
    "meta not a map": packb({"meta": [], "parents": [], "tree": ID_A}),
    "tree not an id": packb({"meta": {}, "parents": [], "tree": "a" * 32}),
    "non-string meta key": packb({"meta": {1: 2}, "parents": [], "tree": ID_A}),
    "bytes meta key": packb({"meta": {b"k": 2}, "parents": [], "tree": ID_A}),
    "not a map": packb([{}, [], ID_A]),
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(NON_CANONICAL_COMMITS))
def test_non_canonical_commit_payloads_are_refused(case: str) -> None:
    with pytest.raises(InvalidObjectError):
        decode(obj("commit", NON_CANONICAL_COMMITS[case]))


NON_CANONICAL_TREES = {
    "unsorted entries": packb([entry("b"), entry("a")]),
    "unsorted by utf-8 bytes": packb([entry("\u00e9"), entry("z")]),
    "duplicate names": packb([entry("a"), entry("a", id=ID_B)]),
    "4 fields": packb([entry()[:4]]),
    "6 fields": packb([[*entry(), None]]),
    "entry is a map": packb([{"name": "a"}]),
    "executable as int": packb([entry(x=1)]),
    "executable as nil": packb([entry(x=None)]),
    "negative size": packb([entry(size=-1)]),
    "float size": packb([entry(size=1.0)]),
    "bool size": packb([entry(size=True)]),
    "short id": packb([entry(id=b"\xaa" * 31)]),
    "long id": packb([entry(id=b"\xaa" * 33)]),
    "id as a string": packb([entry(id="a" * 32)]),
    "unknown entry kind": packb([entry(kind="commit")]),
    "name as bytes": packb([entry(name=b"a")]),
    "uint16 for a small size": packb([entry(size=6)]).replace(b"\x06\xc2", b"\xcd\x00\x06\xc2"),
    "array16 for a short list": b"\xdc\x00\x01" + packb([entry()])[1:],
    "payload is a map": packb({"a": entry()}),
    "payload is nil": packb(None),
    "trailing bytes": TREE_TOP_PAYLOAD + b"\x90",
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(NON_CANONICAL_TREES))
def test_non_canonical_tree_payloads_are_refused(case: str) -> None:
    with pytest.raises(InvalidObjectError):
        decode(obj("tree", NON_CANONICAL_TREES[case]))


def test_the_hand_crafted_payloads_are_otherwise_well_formed() -> None:
    # Guard the cases above: the same builders make payloads that *are* accepted.
    assert decode(obj("tree", packb([entry("a"), entry("b")]))).entries[1].name == "b"
    commit = decode(obj("commit", packb({"meta": {"a": 2, "b": 1}, "parents": [], "tree": ID_A})))
    assert commit.meta == {"a": 2, "b": 1}
    assert decode(obj("commit", COMMIT_FIRST_PAYLOAD)) == golden_objects()["commit-first"]


BAD_HEADERS = {
    "empty": b"",
    "not msgpack": b"\xc1",
    "a map": msgpack.packb({"kind": "blob"}) + b"x",
    "two items": msgpack.packb([1, "blob"]),
    "four items": msgpack.packb([1, "blob", 0, 0]),
    "version 0": msgpack.packb([0, "blob", 0]),
    "version 2": msgpack.packb([2, "blob", 0]),
    "unknown kind": msgpack.packb([1, "blub", 0]),
    "kind as bytes": msgpack.packb([1, b"blob", 0], use_bin_type=True),
    "negative length": msgpack.packb([1, "blob", -1]),
    "bool length": msgpack.packb([1, "blob", True]),
    "float length": msgpack.packb([1, "blob", 1.0]),
    "length too long": msgpack.packb([1, "blob", 7]) + b"hello\n",
    "length too short": msgpack.packb([1, "blob", 5]) + b"hello\n",
    "huge length": msgpack.packb([1, "blob", 2**64 - 1]) + b"hello\n",
    "truncated": bytes.fromhex(GOLDEN["tree-top"][0])[:6],
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_bad_headers_are_refused(case: str) -> None:
    with pytest.raises(InvalidObjectError):
        decode(BAD_HEADERS[case])


@pytest.mark.parametrize(
    "header",
    [
        bytes.fromhex("9301a4626c6f62cc06"),  # uint8 length
        bytes.fromhex("9301a4626c6f62cd0006"),  # uint16 length
        bytes.fromhex("9301a4626c6f62ce00000006"),  # uint32 length
        bytes.fromhex("9301a4626c6f62cf0000000000000006"),  # uint64 length
        bytes.fromhex("9301a4626c6f62d006"),  # int8 length
        bytes.fromhex("93cc01a4626c6f6206"),  # uint8 version
        bytes.fromhex("9301d904626c6f6206"),  # str8 kind
        bytes.fromhex("dc000301a4626c6f6206"),  # array16 header
    ],
    ids=["uint8-length", "uint16-length", "uint32-length", "uint64-length", "int8-length"]
    + ["uint8-version", "str8-kind", "array16"],
)
def test_non_canonical_headers_are_refused(header: bytes) -> None:
    with pytest.raises(InvalidObjectError):
        decode(header + b"hello\n")


@pytest.mark.parametrize("length", [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32])
def test_blob_headers_of_every_int_width_decode_to_their_length(length: int) -> None:
    header = encode_header("blob", length)  # msgpack's shortest form, as written
    assert decode_header(header) == ("blob", length, len(header))


# ---- kinds -------------------------------------------------------------------


@pytest.mark.parametrize("actual", ["blob-hello", "tree-top", "commit-first", "tree-empty"])
@pytest.mark.parametrize("expect", KINDS)
def test_kind_confusion_is_refused(actual: str, expect: str) -> None:
    raw = bytes.fromhex(GOLDEN[actual][0])
    kind = actual.split("-")[0]
    if kind == expect:
        assert decode(raw, expect) == golden_objects()[actual]
    else:
        with pytest.raises(InvalidObjectError, match=f"expected a {expect}"):
            decode(raw, expect)


def test_same_payload_different_kind_different_id() -> None:
    tree = golden_objects()["tree-top"]
    as_blob = Blob(tree.payload())
    assert as_blob.id != tree.id
    assert decode(as_blob.to_bytes()) == as_blob  # a blob may hold anything


def test_blob_payload_is_not_a_tree() -> None:
    with pytest.raises(InvalidObjectError):
        Tree.from_payload(b"hello\n")
    with pytest.raises(InvalidObjectError):
        decode(obj("tree", b"hello\n"))


# ---- entry names and fields --------------------------------------------------

FORBIDDEN_NAMES = [
    "",
    ".",
    "..",
    "a/b",
    "../x",
    "/etc/x",
    "a\\b",
    "x\0y",
    "a/",
    "x" * 256,
    ".artifacts",
    ".ARTIFACTS",
    ".Artifacts",
]


@pytest.mark.parametrize("name", FORBIDDEN_NAMES)
def test_forbidden_entry_names_are_refused_at_construction(name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        TreeEntry(name, "blob", ID_A, 0)
    assert isinstance(info.value, CasError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", FORBIDDEN_NAMES)
def test_forbidden_entry_names_are_refused_when_decoding(name: str) -> None:
    raw = obj("tree", packb([entry(name)]))
    with pytest.raises(InvalidObjectError):
        decode(raw)


@pytest.mark.parametrize("name", [".artifacts2", "x.artifacts", "artifacts", ".artifact"])
def test_names_that_only_resemble_the_store_directory_are_accepted(name: str) -> None:
    tree = Tree((TreeEntry("a", "blob", ID_A, 0), TreeEntry(name, "blob", ID_A, 0)))
    assert decode(tree.to_bytes()) == tree


def test_longest_entry_name_is_accepted() -> None:
    name = "\u00e9" * 127 + "x"  # 255 UTF-8 bytes
    tree = Tree((TreeEntry(name, "blob", ID_A, 0),))
    assert decode(tree.to_bytes()) == tree


def test_unencodable_entry_name_raises_invalid_name() -> None:
    with pytest.raises(InvalidNameError):
        TreeEntry("a\ud800", "blob", ID_A, 0)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "commit"},
        {"id": b"\xaa" * 31},
        {"id": "a" * 32},
        {"size": -1},
        {"size": True},
        {"size": 1.5},
        {"executable": 1},
    ],
    ids=lambda f: repr(f)[:30],
)
def test_bad_entry_fields_are_refused(fields: dict[str, Any]) -> None:
    args = {"name": "a", "kind": "blob", "id": ID_A, "size": 1, "executable": False} | fields
    with pytest.raises(InvalidObjectError):
        TreeEntry(**args)


def test_duplicate_names_are_refused_at_construction() -> None:
    with pytest.raises(InvalidObjectError):
        Tree((TreeEntry("a", "blob", ID_A, 0), TreeEntry("a", "tree", ID_B, 0)))
    with pytest.raises(InvalidObjectError):
        Tree((TreeEntry("b", "blob", ID_A, 0), TreeEntry("a", "blob", ID_A, 0),
              TreeEntry("b", "blob", ID_B, 0)))  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tree": b"short"},
        {"tree": ID_A, "parents": (b"short",)},
        {"tree": ID_A, "meta": [("a", 1)]},
    ],
    ids=["tree", "parent", "meta"],
)
def test_bad_commits_are_refused_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidObjectError):
        Commit(**kwargs)


@pytest.mark.parametrize(
    "meta",
    [{"x": math.nan}, {"x": [math.inf]}, {"x": {1: "a"}}, {"x": {1, 2}}, {"x": object()}],
    ids=["nan", "inf", "int-key", "set", "object"],
)
def test_unstorable_metadata_is_refused(meta: dict[str, Any]) -> None:
    with pytest.raises(InvalidObjectError):
        Commit(tree=ID_A, meta=meta).to_bytes()


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1], ids=["2**64", "-2**63-1"])
def test_out_of_range_integers_raise_invalid_object(value: int) -> None:
    with pytest.raises(InvalidObjectError):
        Commit(tree=ID_A, meta={"n": value}).to_bytes()


# ---- hostile msgpack -----------------------------------------------------------

HOSTILE = {
    "array32 of 4 GiB": b"\xdd\xff\xff\xff\xff" + b"\x00" * 5,
    "map32 of 4 GiB": b"\xdf\xff\xff\xff\xff" + b"\x00" * 5,
    "str32 of 4 GiB": b"\xdb\xff\xff\xff\xff" + b"a" * 5,
    "bin32 of 4 GiB": b"\xc6\xff\xff\xff\xff" + b"a" * 5,
    "ext32 of 4 GiB": b"\xc9\xff\xff\xff\xff\x01" + b"a" * 4,
    "entry name of 4 GiB": b"\x91\x95\xdb\xff\xff\xff\xff" + b"a" * 3,
    "arrays nested 100000 deep": b"\x91" * 100_000 + b"\xc0",
    "maps nested 100000 deep": b"\x81\xa1a" * 100_000 + b"\xc0",
    "meta nested 100000 deep": b"\x83\xa4meta" + b"\x81\xa1a" * 100_000 + b"\xc0",
    # Shallow enough for msgpack's decoder, deep enough for a recursive check to overflow.
    "arrays nested 900 deep": b"\x91" * 900 + b"\xc0",
    "meta nested 900 deep": b"\x83\xa4meta" + b"\x81\xa1a" * 900 + b"\xc0",
}


@pytest.mark.parametrize("kind", ["tree", "commit"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_msgpack_fails_fast_and_small(case: str, kind: str) -> None:
    raw = obj(kind, HOSTILE[case])
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InvalidObjectError):
            decode(raw)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 32 * 2**20, f"decoding {len(raw)} bytes allocated {peak} bytes"


def test_hostile_header_fails_fast() -> None:
    for raw in (b"\xdd\xff\xff\xff\xff" + b"\x00" * 5, b"\x91" * 100_000):
        started = time.perf_counter()
        with pytest.raises(InvalidObjectError):
            decode(raw)
        assert time.perf_counter() - started < 1.0


# ---- layering: artifacts -> remotes -> cas, and only artifacts knows its refs -----

FORBIDDEN_PACKAGES = {"artifacts", "remotes"}


def forbidden_imports(
    source: str, package: str, forbidden: set[str] = FORBIDDEN_PACKAGES
) -> list[str]:
    """Imports of the ``forbidden`` packages in a module of ``package`` (dotted)."""
    found = []
    parts = package.split(".")
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                targets = [node.module or ""]
            else:
                up = node.level - 1
                if up >= len(parts):  # climbs out of the top-level package
                    found.append(f"line {node.lineno}: relative import leaves {parts[0]}")
                    continue
                base = parts[: len(parts) - up]
                if node.module:
                    targets = [".".join([*base, node.module])]
                else:
                    targets = [".".join([*base, alias.name]) for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    targets = [arg.value]
        for target in targets:
            if target.split(".")[0] in forbidden:
                found.append(f"line {node.lineno}: {target}")
    return found


def test_forbidden_import_checker_catches_each_form() -> None:
    bad = {
        "import artifacts": "cas",
        "import remotes.s3 as r": "cas",
        "from artifacts.cli import main": "cas",
        "from remotes import x": "cas.storage",
        "from ... import artifacts": "cas.storage",
        "from ...artifacts import x": "cas.storage",
        "import importlib\nimportlib.import_module('artifacts.fs')": "cas",
        "__import__('remotes')": "cas",
        "def f():\n    import artifacts\n": "cas",
    }
    for source, package in bad.items():
        assert forbidden_imports(source, package), source
    fine = {
        "import os\nfrom . import objects\nfrom .storage.base import Storage": "cas",
        "from ..errors import CasError\nimport cas.objects": "cas.storage",
        "artifacts = 1\nx = 'remotes'": "cas",
    }
    for source, package in fine.items():
        assert forbidden_imports(source, package) == [], source


def test_cas_imports_nothing_from_artifacts_or_remotes() -> None:
    cas_dir = ROOT / "cas"
    files = sorted(cas_dir.rglob("*.py"))
    assert len(files) >= 10
    problems = {}
    for path in files:
        package = ".".join(path.relative_to(ROOT).parts[:-1])  # cas/storage/x.py: cas.storage
        found = forbidden_imports(path.read_text(encoding="utf-8"), package)
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert problems == {}


def test_remotes_imports_nothing_from_artifacts() -> None:
    files = sorted((ROOT / "remotes").rglob("*.py"))
    assert len(files) >= 5
    problems = {}
    for path in files:
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        found = forbidden_imports(path.read_text(encoding="utf-8"), package, {"artifacts"})
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert problems == {}


# What artifacts' refs are called, and the commit metadata that numbers versions: the
# ref policy in artifacts/ says what each ref is for; remotes and cas only move refs.
# ("artifacts" alone is the product's name, as in its cache directory.)
ARTIFACT_REF_WORDS = re.compile(r"(^|/)(latest|aliases|runs|dist)(/|$)|(^/?artifacts/|/artifacts$)")
ARTIFACT_META_KEYS = {"version", "rebased_from"}


def artifact_ref_knowledge(source: str) -> list[str]:
    """Strings in code (docstrings and comments aside) that name an artifact ref kind
    or metadata key, and keywords that set such a key."""
    tree = ast.parse(source)
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and (
                ARTIFACT_REF_WORDS.search(node.value) or node.value in ARTIFACT_META_KEYS
            ):
                found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.keyword) and node.arg in ARTIFACT_META_KEYS:
            found.append(f"line {node.value.lineno}: {node.arg}=")
    return found


def test_artifact_ref_checker_catches_each_form() -> None:
    bad = [
        'x = name.startswith("artifacts/")',
        'head = f"{e}/{p}/artifacts/{n}/latest"',
        'if parts[4] == "latest": pass',
        'prefix = name[: -len("latest")] + "aliases/"',
        'keep = "/runs/" not in name',
        'ref = f"{e}/{p}/dist/{n}"',
        'n = meta["version"] + 1',
        "meta.update(version=n)",
    ]
    for source in bad:
        assert artifact_ref_knowledge(source), source
    fine = [
        '"""Heads (like artifacts/<name>/latest) fast-forward."""',
        "# aliases/ and /runs/ are the policy's business",
        'TRACKING = "remotes"\nkey = f"packs/{name}.pack"\nx = "latest version"',
        'cache = os.path.join(base, "artifacts", digest)',
    ]
    for source in fine:
        assert artifact_ref_knowledge(source) == [], source


def test_remotes_and_cas_know_no_artifact_ref_names() -> None:
    files = sorted((ROOT / "remotes").rglob("*.py")) + sorted((ROOT / "cas").rglob("*.py"))
    problems = {}
    for path in files:
        found = artifact_ref_knowledge(path.read_text(encoding="utf-8"))
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert problems == {}


# ---- the house: one concern per module (issue 18) ------------------------------------

MODULE_LINES = 420  # "about 400": a module past this holds more than one concern


def test_no_module_of_the_packages_is_over_about_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for package in ("cas", "remotes", "artifacts")
        for path in (ROOT / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}, "split these along their concerns (docs/architecture.md)"
