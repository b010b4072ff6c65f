"""Hostile and damaged stores: objects and refs written by hand, bypassing every check.

A store may come from anyone (a pulled remote, a shared bucket). Whatever it holds,
reading or downloading a version must fail with a :class:`cas.CasError` naming the
problem, write nothing outside the download root, and never hang. Test names state
the behaviour.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import msgpack
import pytest

import artifacts
from artifacts import Artifact, UsageError, VerificationError, scan
from artifacts.ref_names import alias_ref, head_ref
from cas import (
    Blob,
    CasError,
    Commit,
    CorruptObjectError,
    InvalidNameError,
    InvalidObjectError,
    ObjectNotFoundError,
    Repository,
    Tree,
    TreeEntry,
    forking,
)
from cas.keys import loose_key
from cas.objects import encode_header, object_id
from tests.helpers import remove_deep, workspace, write
from tests.processes import python, wait_ok

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared workspace one level down: tests watch ``tmp_path`` around it."""
    return workspace(tmp_path / "work", monkeypatch)


@pytest.fixture
def repo(ws: Path) -> Repository:
    return Repository.open(str(ws / ".artifacts"))


def raw_tree(entries: list[list]) -> bytes:
    """Tree bytes straight from msgpack: no name, order or uniqueness check."""
    payload = msgpack.packb(entries, use_bin_type=True)
    return encode_header("tree", len(payload)) + payload


def blob(repo: Repository, data: bytes) -> bytes:
    return repo.objects.put(Blob(data))


def file_entry(repo: Repository, name: str, data: bytes = b"payload") -> list:
    return [name, "blob", blob(repo, data), len(data), False]


def meta(name: str, number: int = 0, **extra) -> dict:
    return {"artifact": name, "type": "dataset", "version": number, "size": 1, **extra}


def wire(repo: Repository, name: str, tree: bytes, **extra) -> bytes:
    """Make a commit of ``tree`` the ``latest`` version of artifact ``name``."""
    commit = repo.objects.put(Commit(tree, (), meta(name, **extra)))
    repo.refs.set_if_equals(head_ref("team", "proj", name), None, commit)
    return commit


def snapshot(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*")}


def outside_store(top: Path) -> set[str]:
    """Every path below ``top`` but the store's own files."""
    return {p for p in snapshot(top) if ".artifacts" not in Path(p).parts}


def use(spec: str) -> Artifact:
    with artifacts.init() as run:
        return run.use_artifact(spec)


# ---- entry names that could escape ---------------------------------------------------

BAD_NAMES = [
    "..",
    "../x",
    "/etc/x",
    "a/b",
    "",
    ".",
    "nul\0x",
    "back\\slash",
    "../../../../tmp/x",
    ".artifacts",
    ".ARTIFACTS",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
@pytest.mark.parametrize("depth", ["root", "nested"])
def test_a_tree_entry_with_a_forbidden_name_fails_to_read_and_writes_nothing(
    ws, repo, tmp_path, name, depth
):
    tree = repo.objects.put_raw(raw_tree([file_entry(repo, name)]))
    if depth == "nested":
        tree = repo.objects.put(Tree((TreeEntry("sub", "tree", tree, 7),)))
    wire(repo, "evil", tree)
    watched = ("/etc/x", "/tmp/x", "/x")
    existed = {p: os.path.exists(p) for p in watched}
    before = outside_store(tmp_path)

    artifact = use("evil")  # the commit itself is fine
    with pytest.raises(InvalidObjectError, match="forbidden entry name"):
        artifact.files()
    with pytest.raises(InvalidObjectError):
        artifact.download(str(tmp_path / "out" / "root"))
    with pytest.raises(InvalidObjectError):
        artifact.download(str(tmp_path / "out" / "root"), path_prefix="sub/")
    with pytest.raises(InvalidObjectError):
        artifact.checkout(str(tmp_path / "out" / "root"))
    with pytest.raises(InvalidObjectError):
        artifact.verify(str(ws))
    with pytest.raises(InvalidObjectError):
        # Looking a path up reads the trees along it, and checks them the same way.
        artifact.new_draft().remove("sub/zzz" if depth == "nested" else "zzz")

    # Nothing anywhere: the listing fails before the first byte is written.
    assert outside_store(tmp_path) == before
    assert {p: os.path.exists(p) for p in watched} == existed


def test_a_version_holding_the_store_directory_cannot_rewrite_the_projects_store(ws, repo):
    # Downloaded into the project, it would point the user's "model" at its own commit.
    model = wire(repo, "model", repo.objects.put(Tree(())))
    ref = ("refs", "team", "proj", "artifacts", "model")
    tree = repo.objects.put_raw(raw_tree([file_entry(repo, "latest", b"hostile")]))
    for name in reversed(ref):
        tree = repo.objects.put(Tree((TreeEntry(name, "tree", tree, 7),)))
    tree = repo.objects.put_raw(raw_tree([["." + "artifacts", "tree", tree, 7, False]]))
    wire(repo, "evil", tree)
    artifact = use("evil")
    before = snapshot(ws)
    for action in (artifact.download, artifact.checkout):
        with pytest.raises(InvalidObjectError, match="forbidden entry name"):
            action(str(ws))
    assert snapshot(ws) == before
    assert repo.refs.read(head_ref("team", "proj", "model")) == model


@pytest.mark.parametrize(
    "entries",
    [
        lambda r: [file_entry(r, "a"), file_entry(r, "a", b"other")],  # duplicate names
        lambda r: [file_entry(r, "b"), file_entry(r, "a")],  # out of order
        lambda r: [["a", "blob", b"short", 1, False]],  # not an id
        lambda r: [["a", "link", blob(r, b"x"), 1, False]],  # unknown kind
        lambda r: [["a", "blob", blob(r, b"x"), -1, False]],  # negative size
        lambda r: [["a", "blob", blob(r, b"x"), 1]],  # four fields
        lambda r: {"a": 1},  # not a list
    ],
    ids=["duplicate", "unsorted", "bad-id", "bad-kind", "bad-size", "short-entry", "not-a-list"],
)
def test_a_malformed_tree_is_an_invalid_object(ws, repo, tmp_path, entries):
    wire(repo, "evil", repo.objects.put_raw(raw_tree(entries(repo))))
    artifact = use("evil")
    with pytest.raises(InvalidObjectError):
        artifact.files()
    with pytest.raises(InvalidObjectError):
        artifact.download(str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# ---- objects that are missing, of the wrong kind, or corrupt ---------------------------


def test_a_commit_pointing_to_a_missing_tree_is_not_found(ws, repo, tmp_path):
    missing = object_id(b"no such tree")
    wire(repo, "evil", missing)
    artifact = use("evil")
    for action in (
        artifact.files,
        lambda: artifact.download(str(tmp_path / "out")),
        lambda: artifact.get_entry("x"),
    ):
        with pytest.raises(ObjectNotFoundError) as caught:
            action()
        assert isinstance(caught.value, CasError) and caught.value.object_id == missing
    draft = artifact.new_draft()
    draft.add_file(write(ws / "f", b"f"))
    with artifacts.init() as run, pytest.raises(ObjectNotFoundError):
        run.log_artifact(draft)  # an edit of a version whose tree is gone
    assert use("evil").id == artifact.id  # and nothing was logged


def failed_download(artifact: Artifact, tmp_path: Path, error: type[Exception]) -> list[str]:
    """Download ``artifact`` twice, expecting ``error`` both times: into a new directory
    (nothing may appear, not even a staging directory), then into one holding a file
    "keep" (which must stay); returns what that second directory holds afterwards."""
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error):
        artifact.download(str(tmp_path / "new"))
    assert sorted(os.listdir(tmp_path)) == before
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_bytes(b"keep")
    with pytest.raises(error):
        artifact.download(str(full))
    assert (full / "keep").read_bytes() == b"keep"
    return sorted(os.listdir(full))  # no leftover temporary either


def test_an_entry_whose_object_is_of_another_kind_is_an_invalid_object(ws, repo, tmp_path):
    a_blob = blob(repo, b"not a tree")
    a_tree = repo.objects.put(Tree(()))
    wire(repo, "dir-is-blob", repo.objects.put(Tree((TreeEntry("d", "tree", a_blob, 1),))))
    wire(repo, "file-is-tree", repo.objects.put(Tree((TreeEntry("f", "blob", a_tree, 1),))))
    with pytest.raises(InvalidObjectError, match="expected a tree"):
        use("dir-is-blob").files()
    assert failed_download(use("file-is-tree"), tmp_path, InvalidObjectError) == ["keep"]


def test_a_missing_blob_fails_the_download_and_leaves_no_partial_file(ws, repo, tmp_path):
    missing = object_id(b"gone")
    tree = Tree(
        (TreeEntry("good", "blob", blob(repo, b"good"), 4), TreeEntry("lost", "blob", missing, 9))
    )
    wire(repo, "evil", repo.objects.put(tree))
    assert failed_download(use("evil"), tmp_path, ObjectNotFoundError) in (
        ["keep"],
        ["good", "keep"],
    )


@pytest.mark.parametrize("size", [10, 2 << 20], ids=["small", "large"])
def test_a_corrupt_blob_never_takes_the_files_name(ws, repo, tmp_path, size):
    data = os.urandom(size)
    real_id = object_id(encode_header("blob", size) + data)
    damaged = encode_header("blob", size) + data[:-1] + bytes([data[-1] ^ 1])
    repo.storage.put(loose_key(real_id), damaged)  # the storage backdoor: no check at all
    wire(repo, "evil", repo.objects.put(Tree((TreeEntry("f.bin", "blob", real_id, size),))))
    assert failed_download(use("evil"), tmp_path, CorruptObjectError) == ["keep"]


def test_a_reference_with_a_garbage_descriptor_is_an_invalid_object(ws, repo, tmp_path):
    for name, descriptor in (
        ("not-msgpack", b"\xc1\xc1"),
        ("not-a-map", msgpack.packb([1, 2])),
        ("no-uri", msgpack.packb({"size": 3})),
    ):
        tree = Tree((TreeEntry("r", "ref", blob(repo, descriptor), 3),))
        wire(repo, name, repo.objects.put(tree))
        artifact = use(name)
        with pytest.raises(InvalidObjectError, match="descriptor"):
            artifact.files()
        with pytest.raises(InvalidObjectError, match="descriptor"):
            artifact.download(str(tmp_path / name))


def test_a_very_deep_tree_is_read_downloaded_verified_and_checked_out_without_exhausting_the_stack(
    ws, repo, tmp_path
):
    with repo.objects.writer() as writer:  # one pack: 1100 loose objects would be slow
        tree = writer.add(Tree((TreeEntry("f", "blob", blob(repo, b"deep"), 4),)))
        for _ in range(1100):  # past the interpreter's recursion limit (1000)
            tree = writer.add(Tree((TreeEntry("a", "tree", tree, 4),)))
    wire(repo, "deep", tree)
    artifact = use("deep")
    [(path, _entry)] = [(e.path, e) for e in artifact.files()]
    assert path == "a/" * 1100 + "f"
    try:
        root = artifact.download(str(tmp_path / "out"))
        deepest = Path(root, *path.split("/"))
        assert deepest.read_bytes() == b"deep"
        artifact.verify(root)
        (deepest.parent / "extra").write_bytes(b"not in the version")
        with pytest.raises(VerificationError, match="unexpected"):
            artifact.verify(root)
        artifact.checkout(root)
        assert sorted(os.listdir(deepest.parent)) == ["f"]
        artifact.verify(root)
    finally:
        remove_deep(tmp_path / "out")  # pytest's own cleanup recurses, and would fail


def test_a_version_whose_metadata_is_no_longer_accepted_is_read_and_drafted(ws, repo):
    old = {"raw": b"\xff", "n": 1}  # bytes that are not UTF-8: an older store could hold them
    wire(repo, "old", repo.objects.put(Tree(())), metadata=old)
    version = use("old")
    assert version.metadata == old
    draft = version.new_draft()
    assert draft.metadata == old
    with artifacts.init() as run, pytest.raises(UsageError, match="not UTF-8"):
        run.log_artifact(draft)
    draft.metadata = {"n": 1}
    (ws / "f").write_bytes(b"new")
    draft.add_file(str(ws / "f"))
    with artifacts.init() as run:
        assert run.log_artifact(draft).metadata == {"n": 1}


# ---- refs and commits that claim to be what they are not -------------------------------


def test_latest_of_one_artifact_pointing_at_a_version_of_another_is_refused(ws, repo):
    with artifacts.init() as run:
        other = run.log_artifact(make(ws, "other", {"x": b"1"}))
    repo.refs.set_if_equals(head_ref("team", "proj", "victim"), None, bytes.fromhex(other.id))
    with pytest.raises(InvalidObjectError, match="version of 'other', not of 'victim'"):
        use("victim")
    # Logging to "victim" cannot be redirected into "other" either.
    with artifacts.init() as run, pytest.raises(InvalidObjectError):
        run.log_artifact(make(ws, "victim", {"y": b"2"}))
    assert use("other").version == "v0"


def test_an_alias_pointing_at_a_version_of_another_artifact_is_refused(ws, repo):
    with artifacts.init() as run:
        run.log_artifact(make(ws, "victim", {"v": b"1"}))
        other = run.log_artifact(make(ws, "other", {"x": b"1"}))
    ref = alias_ref("team", "proj", "victim", "best")
    repo.refs.set_if_equals(ref, None, bytes.fromhex(other.id))
    with pytest.raises(InvalidObjectError):
        use("victim:best")


def test_a_history_that_wanders_into_another_artifact_is_refused(ws, repo):
    with artifacts.init() as run:
        other = run.log_artifact(make(ws, "other", {"x": b"1"}))
    commit = repo.objects.put(
        Commit(bytes.fromhex(other.digest), (bytes.fromhex(other.id),), meta("victim", 1))
    )
    repo.refs.set_if_equals(head_ref("team", "proj", "victim"), None, commit)
    assert use("victim").version == "v1"
    with pytest.raises(InvalidObjectError):
        use("victim:v0")


@pytest.mark.parametrize(
    "bad_meta",
    [
        {},
        meta("../../escape"),
        meta("victim", "x"),
        meta("victim", None),
        meta("victim", -1),
        meta("victim", True),
        {**meta("victim"), "type": ""},
        {**meta("victim"), "size": "big"},
    ],
    ids=["empty", "escaping-name", "str-version", "no-version", "negative", "bool", "type", "size"],
)
def test_a_commit_without_valid_version_metadata_is_refused(ws, repo, tmp_path, bad_meta):
    tree = repo.objects.put(Tree((TreeEntry("f", "blob", blob(repo, b"f"), 1),)))
    commit = repo.objects.put(Commit(tree, (), bad_meta))
    repo.refs.set_if_equals(head_ref("team", "proj", "victim"), None, commit)
    before = outside_store(tmp_path)
    with pytest.raises(InvalidObjectError, match="not an artifact version"):
        use("victim")
    with pytest.raises(InvalidObjectError):
        use("victim:v0")
    assert outside_store(tmp_path) == before
    assert not os.path.exists(tmp_path.parent / "escape")


def test_a_ref_to_an_object_that_is_not_a_commit_is_refused(ws, repo):
    tree = repo.objects.put(Tree(()))
    repo.refs.set_if_equals(head_ref("team", "proj", "victim"), None, tree)
    with pytest.raises(InvalidObjectError, match="expected a commit"):
        use("victim")


def test_a_ref_holding_garbage_bytes_is_refused(ws, repo):
    repo.storage.put("refs/" + head_ref("team", "proj", "victim"), b"\x93garbage")
    with pytest.raises(InvalidObjectError, match="unreadable"):
        use("victim")


def test_a_planted_ref_with_a_forbidden_name_cannot_be_read(ws, repo):
    repo.storage.put("refs/team/proj/artifacts/bad name/latest", b"\x80")
    with pytest.raises(InvalidNameError):
        repo.refs.read("team/proj/artifacts/bad name/latest")
    with pytest.raises(InvalidNameError):
        use("bad name")


# ---- the download root ----------------------------------------------------------------


def test_download_refuses_to_follow_a_symlinked_directory_out_of_the_root(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with artifacts.init() as run:
        artifact = run.log_artifact(make(ws, "data", {"sub/x": b"1", "y": b"2"}))
    root = tmp_path / "dl"
    root.mkdir()
    os.symlink(outside, root / "sub")
    with pytest.raises(UsageError, match="outside"):
        artifact.download(str(root))
    assert os.listdir(outside) == []


def test_download_replaces_a_symlinked_file_instead_of_writing_through_it(ws, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"do not touch")
    with artifacts.init() as run:
        artifact = run.log_artifact(make(ws, "data", {"y": b"new"}))
    root = tmp_path / "dl"
    root.mkdir()
    os.symlink(victim, root / "y")
    artifact.download(str(root))
    assert victim.read_bytes() == b"do not touch"
    assert not os.path.islink(root / "y") and (root / "y").read_bytes() == b"new"


# ---- symlinks in add_dir --------------------------------------------------------------


def test_add_dir_refuses_a_symlink_escaping_the_root(ws, tmp_path):
    (tmp_path / "secret").write_bytes(b"secret")
    write(ws / "data" / "ok", b"ok")
    os.symlink(tmp_path / "secret", ws / "data" / "abs-link")
    with pytest.raises(UsageError, match="outside"):
        Artifact("data", "dataset").add_dir("data")
    os.unlink(ws / "data" / "abs-link")
    os.symlink("../../secret", ws / "data" / "rel-link")
    with pytest.raises(UsageError, match="outside"):
        Artifact("data", "dataset").add_dir("data")


def test_add_dir_refuses_a_dangling_symlink(ws):
    write(ws / "data" / "ok", b"ok")
    os.symlink("nowhere", ws / "data" / "dangling")
    with pytest.raises(UsageError, match="points to nothing"):
        Artifact("data", "dataset").add_dir("data")


def test_add_dir_stores_a_symlink_to_a_file_inside_as_that_files_contents(ws, tmp_path):
    write(ws / "data" / "real" / "file.bin", b"the contents")
    os.symlink("real/file.bin", ws / "data" / "link.bin")
    with artifacts.init() as run:
        artifact = Artifact("data", "dataset")
        artifact.add_dir("data")
        run.log_artifact(artifact)
    assert artifact.get_entry("link.bin").digest == artifact.get_entry("real/file.bin").digest
    root = Path(artifact.download(str(tmp_path / "dl")))
    assert not os.path.islink(root / "link.bin")
    assert (root / "link.bin").read_bytes() == b"the contents"


def test_add_dir_skips_a_symlinked_directory_with_a_warning(ws):
    write(ws / "data" / "real" / "f", b"f")
    os.symlink("real", ws / "data" / "loop")
    os.symlink(".", ws / "data" / "real" / "self")
    artifact = Artifact("data", "dataset")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        artifact.add_dir("data")
    assert len(caught) == 2 and all("symlinked directory" in str(w.message) for w in caught)
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, by add_dir: not again by the log's check
        run.log_artifact(artifact)
    assert [e.path for e in artifact.files()] == ["real/f"]


# ---- helpers ----------------------------------------------------------------------------


def make(ws: Path, name: str, files: dict[str, bytes]) -> Artifact:
    artifact = Artifact(name, "dataset")
    for path, data in files.items():
        artifact.add_file(write(ws / "src" / name / path, data), name=path)
    return artifact


# ---- special files: FIFOs, sockets, devices -----------------------------------------

_LOG_AFTER_SWAP = """
import os, sys, artifacts
from artifacts import Artifact
from cas.errors import UsageError
kind, size = sys.argv[1], int(sys.argv[2])
os.makedirs("data", exist_ok=True)
with open("data/f", "wb") as f:
    f.write(b"x" * size)
artifact = Artifact("data", "dataset")
artifact.add_dir("data") if kind == "dir" else artifact.add_file("data/f")
os.unlink("data/f")
os.mkfifo("data/f")  # no writer: opening it to read would wait forever
try:
    with artifacts.init() as run:
        run.log_artifact(artifact)
except UsageError as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("kind", "size"), [("dir", 10), ("dir", 2 << 20), ("file", 10), ("file", 17 << 20)]
)
def test_a_file_replaced_by_a_fifo_before_it_is_read_fails_the_log_at_once(ws, kind, size):
    """Staged as a file, a FIFO by the time the log reads it: a clear error, never a hang."""
    proc = python("-c", _LOG_AFTER_SWAP, kind, str(size), cwd=ws)
    try:
        out = wait_ok(proc, timeout=10)
    finally:
        proc.kill()
    assert "data/f is no longer a regular file" in out


def test_add_dir_skips_fifos_and_sockets_with_a_warning(ws, monkeypatch):
    write(ws / "data" / "kept", b"kept")
    os.mkfifo(ws / "data" / "fifo")
    os.mkdir(ws / "data" / "sub")
    os.mkfifo(ws / "data" / "sub" / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ws / "data" / "sock"))
        os.symlink("fifo", ws / "data" / "link")
        for split in (10**9, 1):  # scanned by one process, then with a helper
            monkeypatch.setattr(scan, "SPLIT_MIN_FILES", split)
            monkeypatch.setattr(scan, "_CAN_SPLIT", True)
            monkeypatch.setattr(forking, "alone", lambda: True)  # beside pytest's threads
            artifact = Artifact("data", "dataset")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                artifact.add_dir("data")
            messages = sorted(str(w.message) for w in caught)
            assert len(messages) == 4, messages
            for name, what in [("fifo", "FIFO"), ("link", "FIFO"), ("sock", "socket")]:
                assert any(f"data/{name}" in m and what in m for m in messages), messages
            assert any("data/sub/fifo" in m for m in messages), messages
            with artifacts.init() as run:
                run.log_artifact(artifact)
            assert [e.path for e in artifact.files()] == ["kept"]
