"""One flipped byte in a stored object is caught everywhere, and repaired from a clean copy.

Each case logs a small artifact (a few small files, packed, and one file just
over the loose threshold, stored loose), pushes it to a clean local remote,
then flips one byte of one object through the storage itself (the store under
test never knows), and checks that:

- reading the object raises ``CorruptObjectError`` naming its id;
- ``Artifact.download`` raises it too, and leaves no corrupt file behind: the
  damaged file does not exist, every file that does is right, and no
  ``.part-*`` temporary file remains;
- ``fsck`` reports exactly that object as corrupt;
- ``push`` from the damaged store and ``pull`` into a store from it raise
  ``CorruptObjectError``: the other side receives no damaged bytes (every
  object it holds verifies) and none of its refs moves;
- ``remotes.transfer.repair`` from the clean remote restores the object (a
  loose one in place, a packed one by rebuilding its pack byte for byte), after
  which fsck is clean and the download is whole.

The damaged object is a loose blob, a packed blob, a packed tree or a loose
commit; the flipped byte is its first (the header; for a loose blob, kept as its
content alone, the content's first), middle or last byte; the
store is a local directory, or a bucket on moto (S3) or fake-gcs-server (GCS).
"""

from __future__ import annotations

import io
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from artifacts import Artifact
from artifacts.names import parse_spec
from artifacts.ref_names import head_ref
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry
from artifacts.runs import Run
from cas import ObjectId, Repository
from cas.errors import CorruptObjectError
from cas.fsck import fsck
from cas.keys import content_key, loose_key
from cas.storage import LocalStorage, Storage
from cas.store import LOOSE_THRESHOLD, ObjectStore
from remotes import add_remote, pull, push, sync
from remotes.transfer import repair
from tests.helpers import corrupt

# Under pytest-xdist (make test), one worker runs them all: it builds the templates once.
pytestmark = pytest.mark.xdist_group("corruption")

ENTITY, PROJECT, NAME = "team", "proj", "data"
POSITIONS = ["header", "middle", "last"]
TARGETS = ["loose-blob", "packed-blob", "packed-tree", "loose-commit"]
# Buckets: the blobs (what a download writes) at every position; local: every target.
CASES = [
    pytest.param(("local", target, position), id=f"local-{target}-{position}")
    for target in TARGETS
    for position in POSITIONS
] + [
    pytest.param((backend, target, position), id=f"{backend}-{target}-{position}")
    for backend in ("s3-moto", "gcs")
    for target in ("loose-blob", "packed-blob")
    for position in POSITIONS
]


def source_files() -> dict[str, bytes]:
    rng = random.Random(6)
    files = {f"f{i}.txt": rng.randbytes(200 + i) for i in range(4)}
    files.update({f"sub/s{i}.txt": rng.randbytes(300 + i) for i in range(3)})
    files["big.bin"] = rng.randbytes(LOOSE_THRESHOLD + 123)
    return files


@dataclass
class Damaged:
    storage: Storage
    object_id: ObjectId
    original: bytes  # the object's right bytes
    path: str | None  # the file whose contents it is, for a blob
    data: Path  # the source directory


def where(position: str, length: int) -> int:
    return {"header": 0, "middle": length // 2, "last": length - 1}[position]


def version_of(storage: Storage) -> Artifact:
    registry = Registry(Repository(storage))
    version = registry.resolve(parse_spec(f"{NAME}:latest", ENTITY, PROJECT))
    return Artifact._from_version(registry, version)


def all_verify(repo: Repository) -> int:
    """Read every object the store holds, verified; how many."""
    count = 0
    for object_id in repo.objects:
        repo.objects.get_raw(object_id)
        count += 1
    return count


@pytest.fixture(scope="module", autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:  # remote pack-index caches stay here
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


def new_storage(request: pytest.FixtureRequest, backend: str, base: Path) -> Storage:
    """A fresh, empty store: a directory, or a new bucket on a test server."""
    if backend == "local":
        return LocalStorage(str(base / "store"))
    from tests import servers

    if backend == "gcs":
        spec = servers.new_gcs_spec(request.getfixturevalue("gcs_server"))
    else:
        spec = servers.new_s3_spec(request.getfixturevalue("moto_server"))
    return servers.open_storage_from_spec(spec)


@dataclass
class Template:
    """A store holding one logged version, pushed to a clean remote; copied for each test."""

    storage: Storage
    data: Path
    targets: dict[str, tuple[ObjectId, str | None]]  # target -> (object id, file path)


def build_template(storage: Storage, base: Path) -> Template:
    data = base / "data"
    for rel, content in source_files().items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    repo = Repository(storage)
    with Run(Registry(repo), ENTITY, PROJECT) as run:
        draft = Artifact(NAME, "dataset")
        draft.add_dir(str(data))
        run.log_artifact(draft)
    add_remote(repo, "clean", str(base / "clean"))  # read-only from here on: shared
    push(repo, "clean", policy=ARTIFACT_REFS)
    commit = repo.refs.get(head_ref(ENTITY, PROJECT, NAME))
    tree = repo.objects.get_commit(commit).tree
    entries = {e.name: e for e in repo.objects.get_tree(tree).entries}
    sub = {e.name: e for e in repo.objects.get_tree(entries["sub"].id).entries}
    targets = {
        "loose-blob": (entries["big.bin"].id, "big.bin"),
        "packed-blob": (sub["s1.txt"].id, "sub/s1.txt"),
        "packed-tree": (entries["sub"].id, None),
        "loose-commit": (commit, None),
    }
    repo.objects.refresh_packs()
    for target, (object_id, _) in targets.items():
        assert (repo.objects.pack_of(object_id) is None) == target.startswith("loose"), target
    return Template(storage, data, targets)


@pytest.fixture(scope="module")
def templates() -> Iterator[dict[str, Template]]:
    made: dict[str, Template] = {}
    yield made
    for template in made.values():
        template.storage.close()


def make_damaged(
    request: pytest.FixtureRequest,
    factory: pytest.TempPathFactory,
    templates: dict[str, Template],
) -> Damaged:
    """A copy of the backend's template store, with one byte of one object flipped."""
    backend, target, position = request.param
    template = templates.get(backend)
    if template is None:  # built natively on the backend, once
        base = factory.mktemp(f"template-{backend}")
        template = templates[backend] = build_template(new_storage(request, backend, base), base)
    base = factory.mktemp("damaged")
    storage = new_storage(request, backend, base)
    if isinstance(template.storage, LocalStorage):
        shutil.rmtree(base / "store")
        shutil.copytree(template.storage.root, base / "store")
    else:
        for key in template.storage.list(""):
            if not key.startswith("refs/locks/"):  # released locks: tombstones
                storage.put(key, template.storage.get(key))
    object_id, path = template.targets[target]
    original = ObjectStore(template.storage).get_raw(object_id)
    corrupt(storage, object_id, lambda n: where(position, n))
    return Damaged(storage, object_id, original, path, template.data)


@pytest.fixture(scope="module", params=CASES)
def damaged(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
) -> Iterator[Damaged]:
    """Shared by the tests of one case, which only read the damaged store."""
    found = make_damaged(request, tmp_path_factory, templates)
    yield found
    found.storage.close()


# Repair is the same code on every backend: buckets get one position per target.
REPAIR_CASES = [p for p in CASES if p.id.startswith("local") or p.id.endswith("middle")]


@pytest.fixture(params=REPAIR_CASES)
def damaged_copy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
) -> Iterator[Damaged]:
    """A damaged store of the test's own, for a test that changes it."""
    found = make_damaged(request, tmp_path_factory, templates)
    yield found
    found.storage.close()


# ---- every reader refuses it ---------------------------------------------------


def test_reading_names_the_corrupt_object(damaged: Damaged) -> None:
    store = ObjectStore(damaged.storage)  # a fresh reader: nothing cached
    hex_id = damaged.object_id.hex()
    with pytest.raises(CorruptObjectError, match=hex_id) as info:
        store.get_raw(damaged.object_id)
    assert info.value.object_id == damaged.object_id
    if damaged.path is not None:
        with pytest.raises(CorruptObjectError, match=hex_id):
            store.copy_blob_to(damaged.object_id, io.BytesIO())


def test_download_writes_no_corrupt_file(damaged: Damaged, tmp_path: Path) -> None:
    root = tmp_path / "download"
    with pytest.raises(CorruptObjectError, match=damaged.object_id.hex()):
        version_of(damaged.storage).download(str(root))
    expected = source_files()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            assert not name.startswith(".part"), f"temporary file left: {rel}"
            assert rel in expected, f"unexpected file {rel}"
            with open(os.path.join(dirpath, name), "rb") as f:
                assert f.read() == expected[rel], f"{rel} was written with wrong bytes"
    if damaged.path is not None:
        assert not (root / damaged.path).exists()


def test_fsck_reports_it(damaged: Damaged) -> None:
    report = fsck(Repository(damaged.storage))
    assert not report.ok
    assert [(p.problem, p.object_id) for p in report.problems] == [
        ("corrupt", damaged.object_id.hex())
    ]
    assert damaged.object_id.hex() in report.problems[0].message
    store = ObjectStore(damaged.storage)
    store.refresh_packs()
    pack = store.pack_of(damaged.object_id)
    big = len(damaged.original) >= LOOSE_THRESHOLD  # a large blob: its content alone
    loose = content_key(damaged.object_id) if big else loose_key(damaged.object_id)
    expected = f"packs/{pack}.pack" if pack else loose
    assert report.problems[0].where == expected  # the file to look at


def test_push_refuses_to_send_it(damaged: Damaged, tmp_path: Path) -> None:
    repo = Repository(damaged.storage)
    add_remote(repo, "fresh", str(tmp_path / "fresh"))
    with pytest.raises(CorruptObjectError, match=damaged.object_id.hex()):
        push(repo, "fresh", policy=ARTIFACT_REFS)
    other = Repository.open(str(tmp_path / "fresh"))
    all_verify(other)  # whatever landed there is intact
    assert other.refs.list("") == {}  # and no ref moved
    assert fsck(other).ok
    assert repo.refs.list("remotes/fresh/") == {}


def test_pull_refuses_to_take_it(
    damaged: Damaged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = Repository.open(str(tmp_path / "local"))
    if isinstance(damaged.storage, LocalStorage):
        add_remote(local, "src", damaged.storage.root)
    else:  # a bucket: its URL alone does not say which test server it is on
        real = sync.open_remote
        monkeypatch.setattr(
            sync,
            "open_remote",
            lambda repo, name: Repository(damaged.storage) if name == "src" else real(repo, name),
        )
    with pytest.raises(CorruptObjectError, match=damaged.object_id.hex()):
        pull(local, "src", policy=ARTIFACT_REFS)
    all_verify(local)
    assert local.refs.list("") == {}
    assert fsck(local).ok


# ---- repair from a clean copy ----------------------------------------------------


def test_repair_from_a_clean_remote(damaged_copy: Damaged, tmp_path: Path) -> None:
    damaged = damaged_copy
    repo = Repository(damaged.storage)
    result = repair(repo, "clean")
    assert result.ok, result.report.problems
    assert result.repaired == [damaged.object_id.hex()]
    assert result.unrepaired == []
    fresh = ObjectStore(damaged.storage)
    fresh.refresh_packs()
    packed = fresh.pack_of(damaged.object_id) is not None
    assert len(result.packs_rewritten) == int(packed)
    assert ObjectStore(damaged.storage).get_raw(damaged.object_id) == damaged.original
    assert fsck(Repository(damaged.storage)).ok
    root = tmp_path / "download"
    version = version_of(damaged.storage)
    version.download(str(root))
    version.verify(str(root))
    version.verify(str(damaged.data))


def test_repair_brings_back_a_missing_object(tmp_path: Path) -> None:
    template = build_template(LocalStorage(str(tmp_path / "store")), tmp_path)
    object_id, path = template.targets["loose-blob"]
    template.storage.delete(content_key(object_id))
    report = fsck(Repository(template.storage))
    assert [(p.problem, p.object_id) for p in report.problems] == [("missing", object_id.hex())]
    result = repair(Repository(template.storage), "clean")
    assert result.ok and result.repaired == [object_id.hex()]
    assert template.storage.get(content_key(object_id)) == (template.data / path).read_bytes()
    version_of(template.storage).verify(str(template.data))


def test_repair_goes_below_a_repaired_tree(tmp_path: Path) -> None:
    """fsck cannot see past a damaged tree; repair looks again once it is fixed."""
    template = build_template(LocalStorage(str(tmp_path / "store")), tmp_path)
    tree_id, _ = template.targets["packed-tree"]
    blob_id, _ = template.targets["packed-blob"]  # below that tree
    corrupt(template.storage, tree_id, lambda n: where("middle", n))
    corrupt(template.storage, blob_id, lambda n: where("last", n))
    first = fsck(Repository(template.storage))
    assert [p.object_id for p in first.problems] == [tree_id.hex()]  # the blob is hidden
    result = repair(Repository(template.storage), "clean")
    assert result.ok, result.report.problems
    assert sorted(result.repaired) == sorted([tree_id.hex(), blob_id.hex()])
    version_of(template.storage).verify(str(template.data))


def test_repair_without_a_good_copy_changes_nothing(tmp_path: Path) -> None:
    template = build_template(LocalStorage(str(tmp_path / "store")), tmp_path)
    repo = Repository(template.storage)
    (tmp_path / "empty").mkdir()  # a store with nothing in it
    add_remote(repo, "empty", str(tmp_path / "empty"))
    for target in ("loose-blob", "packed-blob"):
        corrupt(template.storage, template.targets[target][0], lambda n: where("middle", n))
    before = {k: template.storage.get(k) for k in template.storage.list("") if "/" in k}
    result = repair(repo, "empty")
    assert not result.ok and result.repaired == [] and result.packs_rewritten == []
    bad = sorted(template.targets[t][0].hex() for t in ("loose-blob", "packed-blob"))
    assert result.unrepaired == bad
    after = {k: template.storage.get(k) for k in template.storage.list("") if "/" in k}
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert all(k.startswith(("refs/locks/", "cache/")) for k in changed), changed
