"""Pack indexes that do not match their packs: half-uploaded, damaged, or left behind
by a pack that is gone or cut short. A damaged index is not cached, is named with
what to do, and stops no read of other objects; an index whose pack cannot hold what
it lists never answers "already stored?"."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from cas.errors import CasError, NotFoundError
from cas.fsck import fsck
from cas.objects import Blob, Commit, Tree, TreeEntry
from cas.repair import repair
from cas.repo import Repository
from cas.storage import LocalStorage, Storage
from cas.store import ObjectStore


def pack_of_blobs(storage: Storage, label: str, n: int = 5) -> tuple[str, list[Blob]]:
    blobs = [Blob(f"{label} {i}".encode() * 20) for i in range(n)]
    store = ObjectStore(storage)
    with store.writer() as writer:
        for blob in blobs:
            writer.add(blob)
    (name,) = {store.pack_of(blob.id) for blob in blobs}
    assert name is not None
    return name, blobs


def idx(name: str) -> str:
    return f"packs/{name}.idx"


def commit_reaching(repo: Repository, blob: Blob) -> None:
    tree = Tree((TreeEntry("a.txt", "blob", blob.id, len(blob.data)),))
    commit = Commit(repo.objects.put(tree))
    repo.refs.set_if_equals("main", None, repo.objects.put(commit))


def test_a_half_uploaded_index_on_a_bucket_is_not_cached(
    make_spec: Any, open_store: Any, tmp_path: Path
) -> None:
    storage = open_store(make_spec("s3-moto"))
    name, blobs = pack_of_blobs(storage, "team a")
    good = storage.get(idx(name))
    storage.put(idx(name), good[: len(good) - 30])  # a store without atomic puts, mid-upload
    cache = tmp_path / "index-cache"
    with pytest.warns(UserWarning, match=f"pack index {name} is truncated"):
        with pytest.raises(NotFoundError):
            ObjectStore(storage, cache_dir=str(cache)).get(blobs[0].id)
    assert not (cache / f"{name}.idx").exists()
    storage.put(idx(name), good)  # the upload finished (or a repair put it back)
    assert ObjectStore(storage, cache_dir=str(cache)).get(blobs[0].id) == blobs[0]


def test_a_damaged_cached_index_is_dropped_and_read_again(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path / "store"))
    name, blobs = pack_of_blobs(storage, "cached")
    cache = tmp_path / "index-cache"
    cache.mkdir()
    (cache / f"{name}.idx").write_bytes(b"CASIDX01\x00\x00")  # cached by an older version
    assert ObjectStore(storage, cache_dir=str(cache)).get(blobs[1].id) == blobs[1]
    assert (cache / f"{name}.idx").read_bytes() == storage.get(idx(name))


def damage_index(storage: Storage, name: str, damage: str) -> None:
    data = bytearray(storage.get(idx(name)))
    if damage == "truncated":
        del data[-20:]
    else:
        data[-1] ^= 0x10  # the last entry's length
    storage.put(idx(name), bytes(data))


@pytest.mark.parametrize("damage", ["truncated", "bit flip"])
def test_a_damaged_index_stops_no_read_of_other_packs_and_fsck_names_it(
    make_spec: Any, open_store: Any, damage: str
) -> None:
    storage = open_store(make_spec("s3-moto"))
    bad, bad_blobs = pack_of_blobs(storage, "damaged")
    _, good_blobs = pack_of_blobs(storage, "intact")
    commit_reaching(Repository(storage), bad_blobs[0])
    damage_index(storage, bad, damage)

    reader = ObjectStore(storage)
    with pytest.warns(UserWarning, match=f"pack index {bad} .*artifacts fsck"):
        assert reader.get(good_blobs[2].id) == good_blobs[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not at every read
        assert reader.has_many([b.id for b in good_blobs]) == {b.id for b in good_blobs}
        with pytest.raises(NotFoundError):
            reader.get(bad_blobs[0].id)
    with pytest.warns(UserWarning):
        report = fsck(Repository(storage))
    assert any(p.kind == "pack index" and p.object_id == bad for p in report.problems)


def test_a_local_index_is_checked_whole_by_fsck(tmp_path: Path) -> None:
    """A local store's indexes are read at every command, so checked there only for
    their shape: a damaged length reads no wrong bytes (each object is verified), and
    fsck names the index."""
    storage = LocalStorage(str(tmp_path / "store"))
    bad, bad_blobs = pack_of_blobs(storage, "damaged")
    commit_reaching(Repository(storage), bad_blobs[0])
    damage_index(storage, bad, "bit flip")
    last = max(bad_blobs, key=lambda b: b.id)  # the entry whose length was damaged
    with pytest.raises(CasError):
        ObjectStore(storage).get(last.id)
    with pytest.warns(UserWarning, match=f"pack index {bad}"):
        report = fsck(Repository(storage))
    assert any(p.kind == "pack index" and p.object_id == bad for p in report.problems)


@pytest.mark.parametrize("damage", ["missing", "short"])
def test_an_index_whose_pack_is_missing_or_short_is_not_already_stored(
    make_spec: Any, open_store: Any, tmp_path: Path, damage: str
) -> None:
    """Team A's pack is gone or cut short, its index left: team B writing the same
    file must store it, not rely on bytes that are not there."""
    storage = open_store(make_spec("s3-moto"))
    name, blobs = pack_of_blobs(storage, "shared")
    if damage == "missing":
        storage.delete(f"packs/{name}.pack")
    else:
        storage.put(f"packs/{name}.pack", storage.get(f"packs/{name}.pack")[:-5])
    team_b = ObjectStore(storage, cache_dir=str(tmp_path / "b-cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        team_b.sync_packs()  # as a writer's lease does before it starts
        with team_b.writer() as writer:
            writer.add(blobs[-1])
    with pytest.warns(UserWarning, match=f"pack index {name}"):
        reader = ObjectStore(storage, cache_dir=str(tmp_path / "c-cache"))
        assert reader.get(blobs[-1].id) == blobs[-1]
        with pytest.raises(NotFoundError):
            reader.get(blobs[0].id)  # loudly missing, never other bytes


@pytest.mark.parametrize("damage", ["index truncated", "pack missing"])
def test_fsck_repair_mends_an_index_set_aside(tmp_path: Path, damage: str) -> None:
    """An index set aside over a whole pack is written again from the pack; one whose
    pack is gone is deleted once its objects are back from the copy."""
    storage = LocalStorage(str(tmp_path / "store"))
    name, blobs = pack_of_blobs(storage, "mended")
    repo = Repository(storage)
    commit_reaching(repo, blobs[0])
    copy = ObjectStore(LocalStorage(str(tmp_path / "copy")))
    copy.put(blobs[0])
    good = storage.get(idx(name))
    if damage == "index truncated":
        storage.put(idx(name), good[:-30])
    else:
        storage.delete(f"packs/{name}.pack")
    with pytest.warns(UserWarning, match=f"pack index {name}"):
        result = repair(repo, copy)
    assert result.ok, result.report.problems
    assert result.indexes_mended == [name]
    if damage == "index truncated":
        assert storage.get(idx(name)) == good
        assert ObjectStore(storage).get(blobs[3].id) == blobs[3]
    else:
        assert not storage.exists(idx(name))
    assert fsck(Repository(storage)).ok


class ListingThatPassedAPack(LocalStorage):
    """A directory listing is no snapshot: a pack renamed into place after the
    listing passed its name, and its index after, shows the index alone."""

    missed: set[str] = set()

    def list_stats(self, prefix: str = "") -> Any:
        for key, stat in super().list_stats(prefix):
            if key not in self.missed:
                yield key, stat


def test_an_index_listed_without_its_pack_published_meanwhile_is_read(tmp_path: Path) -> None:
    """Racing loggers on one local store: another's pack and index appear during our
    listing. Its objects are read, with no warning that its pack is missing."""
    storage = ListingThatPassedAPack(str(tmp_path / "store"))
    name, blobs = pack_of_blobs(storage, "racing")
    storage.missed = {f"packs/{name}.pack"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ObjectStore(storage).get(blobs[0].id) == blobs[0]
