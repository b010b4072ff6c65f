"""Refs over every backend: compare-and-swap, tombstones, names, and ABA safety."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import msgpack
import pytest

from cas import Repository
from cas.errors import (
    InvalidNameError,
    InvalidObjectError,
    PreconditionFailedError,
    RefConflictError,
    RefNotFoundError,
)
from cas.objects import Blob
from cas.refs import RefStore, encode_ref, validate_ref_name
from cas.storage import IfMatch, MemoryStorage, Storage

A, B, C = (Blob(name.encode()).id for name in ("a", "b", "c"))


@pytest.fixture
def refs(storage: Storage) -> RefStore:
    return RefStore(storage)


def stored(refs: RefStore, name: str) -> dict:
    return msgpack.unpackb(refs.storage.get(f"refs/{name}"), raw=False)


# ---- read / get / set ----------------------------------------------------------


def test_unset_ref(refs: RefStore) -> None:
    assert refs.read("heads/main") is None
    assert "heads/main" not in refs
    with pytest.raises(RefNotFoundError) as info:
        refs.get("heads/main")
    assert info.value.name == "heads/main"
    assert isinstance(info.value, LookupError)


def test_set_from_absent_then_from_a_value(refs: RefStore) -> None:
    refs.set_if_equals("heads/main", None, A)
    assert refs.read("heads/main") == A
    assert refs.get("heads/main") == A
    assert "heads/main" in refs
    refs.set_if_equals("heads/main", A, B)
    assert refs.get("heads/main") == B
    refs.set_if_equals("heads/main", B, B)  # id -> same id is a write too
    assert refs.get("heads/main") == B
    assert stored(refs, "heads/main") == {"id": B, "seq": 3}


def test_ref_bytes_match_the_format_doc(
    refs: RefStore, format_vectors: dict[str, dict[str, bytes]]
) -> None:
    hello = Blob(b"hello\n").id
    refs.set_if_equals("r", None, hello)
    assert refs.storage.get("refs/r") == format_vectors["ref-hello-seq1"]["bytes"]
    assert encode_ref(hello, 1) == format_vectors["ref-hello-seq1"]["bytes"]
    refs.delete_if_equals("r", hello)
    assert refs.storage.get("refs/r") == format_vectors["ref-tombstone-seq2"]["bytes"]


@pytest.mark.parametrize(
    ("current", "claimed"),
    [(None, A), (A, None), (A, B), (A, C)],
    ids=["absent-claimed-set", "set-claimed-absent", "wrong-old", "other-wrong-old"],
)
def test_wrong_old_value_conflicts(
    refs: RefStore, current: bytes | None, claimed: bytes | None
) -> None:
    if current is not None:
        refs.set_if_equals("x", None, current)
    before = refs.storage.get("refs/x") if current is not None else None
    with pytest.raises(RefConflictError) as info:
        refs.set_if_equals("x", claimed, C)
    error = info.value
    assert (error.name, error.expected, error.actual) == ("x", claimed, current)
    assert isinstance(error, PreconditionFailedError)
    assert refs.read("x") == current
    if before is not None:
        assert refs.storage.get("refs/x") == before  # not even the seq moved


def test_conflict_message_names_both_values(refs: RefStore) -> None:
    refs.set_if_equals("x", None, A)
    with pytest.raises(RefConflictError) as info:
        refs.set_if_equals("x", B, C)
    message = str(info.value)
    assert "'x'" in message and A.hex()[:16] in message and B.hex()[:16] in message


def test_only_ids_can_be_stored(refs: RefStore) -> None:
    for bad in (b"short", A.hex(), A + b"x"):
        with pytest.raises(InvalidObjectError):
            refs.set_if_equals("x", None, bad)  # type: ignore[arg-type]
    assert refs.read("x") is None


# ---- delete / tombstones ---------------------------------------------------------


def test_delete_then_recreate(refs: RefStore) -> None:
    refs.set_if_equals("tags/v1", None, A)
    refs.delete_if_equals("tags/v1", A)
    assert refs.read("tags/v1") is None
    assert "tags/v1" not in refs
    with pytest.raises(RefNotFoundError):
        refs.get("tags/v1")
    assert stored(refs, "tags/v1") == {"id": None, "seq": 2}  # a tombstone, not a gap
    assert refs.list() == {}
    assert list(refs.names()) == ["tags/v1"]
    refs.set_if_equals("tags/v1", None, B)
    assert refs.get("tags/v1") == B
    assert stored(refs, "tags/v1") == {"id": B, "seq": 3}


def test_delete_with_wrong_old_conflicts(refs: RefStore) -> None:
    refs.set_if_equals("x", None, A)
    with pytest.raises(RefConflictError):
        refs.delete_if_equals("x", B)
    assert refs.get("x") == A


def test_delete_of_an_absent_ref_conflicts(refs: RefStore) -> None:
    with pytest.raises(RefConflictError) as info:
        refs.delete_if_equals("x", A)
    assert info.value.actual is None


def test_absent_to_absent_is_a_no_op(refs: RefStore) -> None:
    refs.set_if_equals("x", None, None)
    assert list(refs.storage.list("refs/")) == []


# ---- list ----------------------------------------------------------------------


def test_list_by_prefix(refs: RefStore) -> None:
    targets = {"heads/main": A, "heads/dev": B, "heads/feature/x": C, "tags/v1": A, "headsup": B}
    for name, target in targets.items():
        refs.set_if_equals(name, None, target)
    refs.set_if_equals("heads/gone", None, C)
    refs.delete_if_equals("heads/gone", C)
    assert refs.list() == targets
    assert refs.list("heads/") == {
        "heads/main": A,
        "heads/dev": B,
        "heads/feature/x": C,
    }
    assert refs.list("heads") == {k: v for k, v in targets.items() if k.startswith("heads")}
    assert refs.list("tags/") == {"tags/v1": A}
    assert refs.list("nothing/") == {}
    assert sorted(refs.names("heads/")) == [
        "heads/dev",
        "heads/feature/x",
        "heads/gone",
        "heads/main",
    ]


# ---- names -----------------------------------------------------------------------

INVALID_NAMES = [
    "",
    "/",
    "a//b",
    "/a",
    "a/",
    "../x",
    "a/../b",
    "a/./b",
    ".",
    "..",
    "a b",
    "a\0b",
    "a\nb",
    "a\\b",
    "a:b",
    "x" * 129,
    "/".join(["a"] * 17),
]


@pytest.mark.parametrize("name", INVALID_NAMES, ids=repr)
def test_invalid_names_are_refused(name: str) -> None:
    # Names are checked before any storage is touched: one backend is enough here.
    refs = RefStore(MemoryStorage())
    with pytest.raises(InvalidNameError) as info:
        validate_ref_name(name)
    assert info.value.name == name
    for operation in (
        lambda: refs.read(name),
        lambda: refs.get(name),
        lambda: refs.set_if_equals(name, None, A),
        lambda: refs.delete_if_equals(name, A),
    ):
        with pytest.raises(InvalidNameError):
            operation()
    assert list(refs.storage.list("")) == []


VALID_NAMES = ["main", "heads/main", "a.b", "v1.0.0", "x@y=z+w-_", "x" * 128, "/".join("a" * 16)]


def test_valid_names_are_accepted(refs: RefStore) -> None:
    for i, name in enumerate(VALID_NAMES):
        assert validate_ref_name(name) == name
        target = Blob(str(i).encode()).id
        refs.set_if_equals(name, None, target)
        assert refs.get(name) == target
    assert refs.list() == {name: Blob(str(i).encode()).id for i, name in enumerate(VALID_NAMES)}


def test_unreadable_ref_bytes_are_refused(refs: RefStore) -> None:
    for data in (b"garbage", msgpack.packb({"id": b"short", "seq": 1}), msgpack.packb([1, 2])):
        refs.storage.put("refs/bad", data)
        with pytest.raises(InvalidObjectError):
            refs.read("bad")


# ---- ABA ---------------------------------------------------------------------


def test_aba_writer_with_an_old_token_cannot_swap(refs: RefStore) -> None:
    refs.set_if_equals("x", None, A)
    first_bytes, first_token = refs.storage.get_versioned("refs/x")
    refs.set_if_equals("x", A, B)
    refs.set_if_equals("x", B, A)
    # The ref points at A again, but its bytes differ (seq 1 -> 3), so the version does too.
    again_bytes, again_token = refs.storage.get_versioned("refs/x")
    assert refs.read("x") == A
    assert first_bytes != again_bytes
    assert msgpack.unpackb(first_bytes)["seq"] == 1
    assert msgpack.unpackb(again_bytes)["seq"] == 3
    assert first_token != again_token
    # A writer that read the first A and only now swaps must lose.
    with pytest.raises(PreconditionFailedError):
        refs.storage.put("refs/x", encode_ref(C, 2), mode=IfMatch(first_token))
    assert refs.read("x") == A
    assert refs.storage.get("refs/x") == again_bytes


def test_aba_across_delete_and_recreate(refs: RefStore) -> None:
    refs.set_if_equals("x", None, A)
    first_bytes, first_token = refs.storage.get_versioned("refs/x")
    refs.delete_if_equals("x", A)
    refs.set_if_equals("x", None, A)
    assert refs.storage.get("refs/x") != first_bytes
    with pytest.raises(PreconditionFailedError):
        refs.storage.put("refs/x", encode_ref(C, 2), mode=IfMatch(first_token))


# ---- concurrency (threads; processes are in test_races.py) -----------------------


def needs_atomic_swaps(storage: Storage) -> None:
    if not storage.capabilities.conditional_update:
        pytest.skip("this backend does not promise an atomic compare-and-swap")


def test_only_one_concurrent_swap_wins(refs: RefStore) -> None:
    needs_atomic_swaps(refs.storage)
    refs.set_if_equals("x", None, A)
    n = 8
    candidates = [Blob(f"candidate {i}".encode()).id for i in range(n)]
    barrier = threading.Barrier(n)

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            refs.set_if_equals("x", A, candidates[i])
            return True
        except RefConflictError as error:
            assert error.expected == A and error.actual in candidates
            return False

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(attempt, range(n)))
    assert results.count(True) == 1
    assert refs.get("x") == candidates[results.index(True)]
    assert stored(refs, "x")["seq"] == 2


def test_update_ref_retries_until_it_lands(repo: Repository) -> None:
    needs_atomic_swaps(repo.storage)
    threads, rounds = 4, 10

    def work() -> None:
        for _ in range(rounds):
            repo.update_ref("counter", increment(repo))

    def increment(repo: Repository):
        def compute(old: bytes | None) -> bytes:
            value = 0 if old is None else int(repo.objects.read_blob(old))
            return repo.objects.put(Blob(str(value + 1).encode()))

        return compute

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    final = repo.refs.get("counter")
    assert repo.objects.read_blob(final) == str(threads * rounds).encode()
    assert stored(repo.refs, "counter")["seq"] == threads * rounds


def test_update_ref_leaves_an_unchanged_value_alone(repo: Repository) -> None:
    repo.refs.set_if_equals("x", None, A)
    before = repo.storage.get("refs/x")
    assert repo.update_ref("x", lambda old: old) == A
    assert repo.storage.get("refs/x") == before
