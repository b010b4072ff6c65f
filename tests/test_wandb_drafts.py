"""More of W&B's Artifact API as a wandb user calls it (see tests/test_wandb_api.py):
new_file's modes, finalize(), what an entry says of itself, and files() as W&B's
paginated collection of files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artifacts
from artifacts import Artifact, DuplicateEntryError
from artifacts.errors import ArtifactFinalizedError
from tests.helpers import write


def contents(artifact: Artifact) -> dict[str, bytes]:
    root = artifact.download(os.path.abspath("out-" + artifact.version))
    return {e.path: Path(root, e.path).read_bytes() for e in artifact.manifest.entries.values()}


# ---- new_file's modes ------------------------------------------------------------------


def test_new_file_mode_a_appends_to_what_new_file_wrote_there_as_in_w_and_b(ws):
    """W&B opens one temporary file per name: mode "a" appends to it, "w" starts over."""
    artifact = Artifact("log", "text")
    with artifact.new_file("log.txt") as f:
        f.write("one\n")
    with artifact.new_file("log.txt", mode="a") as f:
        f.write("two\n")
    with artifact.new_file("bytes.bin", mode="ab") as f:  # nothing there yet: empty
        f.write(b"\x00")
    with artifact.new_file("bytes.bin", mode="ab") as f:
        f.write(b"\x01")
    with pytest.raises(RuntimeError), artifact.new_file("log.txt", mode="a") as f:
        f.write("lost\n")
        raise RuntimeError("the block failed: what was staged stays")
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert contents(artifact) == {"bytes.bin": b"\0\1", "log.txt": b"one\ntwo\n"}

    again = Artifact("log", "text")
    with again.new_file("log.txt") as f:
        f.write("one\n")
    with again.new_file("log.txt", mode="w") as f:
        f.write("new\n")
    with again.new_file("log.txt", mode="a") as f:
        f.write("more\n")
    with pytest.raises(DuplicateEntryError, match="mode='a'"), again.new_file("log.txt") as f:
        f.write("other")
    with artifacts.init() as run:
        run.log_artifact(again)
    assert contents(again) == {"log.txt": b"new\nmore\n"}


def test_new_file_appended_to_n_times_holds_one_copy_of_the_file(ws, monkeypatch, tmp_path):
    """Each mode "a" copied the whole file written so far into a new one, and kept every
    copy until the log: N appends copied, and kept on disk, N²/2 lines."""
    import tempfile

    drafts = tmp_path / "drafts"
    drafts.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(drafts))
    artifact = Artifact("log", "text")
    line = "x" * 999 + "\n"
    for _ in range(200):
        with artifact.new_file("log.txt", mode="a") as f:
            f.write(line)
    on_disk = sum(p.stat().st_size for p in drafts.rglob("*") if p.is_file())
    assert on_disk == 200 * len(line)
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert contents(artifact) == {"log.txt": line.encode() * 200}


@pytest.mark.parametrize("mode", ["r", "rb", "zz", "wa", "wbt", "ww", ""])
def test_new_file_refuses_a_mode_it_cannot_write_with(ws, mode):
    """Any mode was taken: "r" (W&B's open() fails: no such file) and "zz" wrote and
    staged an empty file, saying nothing."""
    artifact = Artifact("log", "text")
    with pytest.raises(artifacts.UsageError, match="new_file's mode is"):
        artifact.new_file("log.txt", mode=mode).__enter__()
    with artifact.new_file("log.txt") as f:  # "x": nothing else was staged there
        f.write("written")


def test_a_failed_append_leaves_what_was_staged_even_if_it_truncated_the_file(ws):
    artifact = Artifact("log", "text")
    with artifact.new_file("log.txt") as f:
        f.write("one\n")
    with pytest.raises(RuntimeError), artifact.new_file("log.txt", mode="a+") as f:
        f.truncate(0)
        f.write("a whole other text, longer than the first\n")
        raise RuntimeError("the block failed: what was staged stays")
    with pytest.raises(RuntimeError), artifact.new_file("log.txt", mode="ab") as f:
        f.write(b"lost\n")
        raise RuntimeError
    with artifact.new_file("log.txt", mode="a+") as f:
        f.seek(0)
        assert f.read() == "one\n"
        f.write("two\n")
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert contents(artifact) == {"log.txt": b"one\ntwo\n"}


# ---- finalize() --------------------------------------------------------------------------


def test_finalize_stops_adds_and_removes_and_the_draft_still_logs_as_in_w_and_b(ws):
    artifact = Artifact("data", "dataset")
    artifact.add_file(write(ws / "a.txt", "a"))
    artifact.finalize()
    assert artifact.is_draft()
    edits = [
        lambda: artifact.add_file(write(ws / "b.txt", "b")),
        lambda: artifact.add_dir(str(ws / "d")),
        lambda: artifact.add_reference("file://" + str(ws / "b.txt")),
        lambda: artifact.remove("a.txt"),
        lambda: artifact.new_file("c.txt").__enter__(),
    ]
    os.makedirs(ws / "d")
    for edit in edits:
        with pytest.raises(ArtifactFinalizedError, match="finalized"):
            edit()
    artifact.description = "still editable, as in W&B"
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert [e.path for e in artifact.files()] == ["a.txt"]
    assert artifact.description == "still editable, as in W&B"


# ---- what an entry says of itself ------------------------------------------------------


def test_entry_to_json_gives_its_fields_as_w_and_bs_does(ws):
    source = write(ws / "a.txt", "a")
    artifact = Artifact("data", "dataset")
    staged = artifact.add_file(source)
    (ref,) = artifact.add_reference("file://" + write(ws / "r.txt", "rr"), name="r.txt")
    assert staged.to_json() == {
        "path": "a.txt",
        "digest": "",
        "size": 1,
        "executable": False,
        "extra": {},
        "local_path": source,
    }
    assert ref.to_json()["ref"] == "file://" + str(ws / "r.txt")
    with artifacts.init() as run:
        run.log_artifact(artifact)
    entry = artifact.get_entry("a.txt")
    assert entry.to_json() == {
        "path": "a.txt",
        "digest": entry.digest,
        "size": 1,
        "executable": False,
        "extra": {},
    }
    assert artifact.get_entry("r.txt").to_json()["ref"] == "file://" + str(ws / "r.txt")


# ---- files(): W&B's ArtifactFiles --------------------------------------------------------


def test_files_is_w_and_bs_collection_of_files_that_download_as_w_and_bs_do(ws):
    artifact = Artifact("data", "dataset")
    for path in ("a.txt", "b.txt", "d/c.txt"):
        with artifact.new_file(path) as f:
            f.write(path)
    with artifacts.init() as run:
        run.log_artifact(artifact)
    files = artifact.files(per_page=2)
    assert len(files) == 3 and repr(files) == "<ArtifactFiles team/proj/data:v0 (3)>"
    assert [f.name for f in files] == ["a.txt", "b.txt", "d/c.txt"]
    assert (files[-1].name, [f.name for f in files[:2]]) == ("d/c.txt", ["a.txt", "b.txt"])
    assert next(files).name == "a.txt" and next(files).name == "b.txt"  # W&B's is an iterator
    assert [f.size for f in artifact.files(names=["d/c.txt", "nope"])] == [7]

    # W&B's File.download: root/name (default root "."), an open file back, and
    # a file already there refused unless replace=True or exist_ok=True.
    with files[2].download() as opened:
        assert (opened.name, opened.read()) == (os.path.join(".", "d", "c.txt"), "d/c.txt")
    with files[0].download(root="out") as opened:
        assert opened.read() == "a.txt"
    write(ws / "out" / "a.txt", "changed")
    with pytest.raises(ValueError, match="replace=True"):
        files[0].download(root="out")
    with files[0].download(root="out", exist_ok=True) as opened:
        assert opened.read() == "changed"
    with files[0].download(root="out", replace=True) as opened:
        assert opened.read() == "a.txt"


# ---- a draft's id, size and manifest -----------------------------------------------------


def test_a_drafts_manifest_size_and_id_are_w_and_bs(ws):
    """W&B's draft has a manifest of what is staged (its base's files too, for a
    new_draft()), a size summed from it, and an id of None until logged."""
    artifact = Artifact("data", "dataset")
    assert artifact.id is None
    assert (len(artifact.manifest), artifact.size) == (0, 0)
    artifact.add_file(write(ws / "a.txt", "aaa"))
    write(ws / "src" / "d" / "b.txt", "bb")
    artifact.add_dir(str(ws / "src"), name="src")
    (ref,) = artifact.add_reference("file://" + write(ws / "r.txt", "r"), name="r.txt")
    manifest = artifact.manifest
    assert list(manifest.entries) == ["a.txt", "r.txt", "src/d/b.txt"]
    assert manifest.entries["a.txt"].local_path == str(ws / "a.txt")
    assert manifest.entries["r.txt"] == ref
    assert manifest.get_entry_by_path("src/d/b.txt").size == 2
    assert [e.path for e in manifest.get_entries_in_directory("src")] == ["src/d/b.txt"]
    assert artifact.size == manifest.size() == 6
    assert manifest.digest() == artifact.digest
    assert sorted(manifest.to_manifest_json()["contents"]) == ["a.txt", "r.txt", "src/d/b.txt"]
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert artifact.id is not None

    draft = artifact.new_draft()
    assert draft.id is None
    draft.remove("src")
    draft.add_file(write(ws / "c.txt", "cccc"))
    entries = draft.manifest.entries
    assert list(entries) == ["a.txt", "c.txt", "r.txt"]
    assert entries["a.txt"].digest == artifact.get_entry("a.txt").digest  # the base's, as is
    assert draft.size == 3 + 4 + 1
    with artifacts.init() as run:
        assert run.log_artifact(draft).digest == draft.manifest.digest()


def test_wait_of_a_draft_never_logged_raises_w_and_bs_not_logged_error(ws):
    draft = Artifact("data", "dataset")
    with pytest.raises(artifacts.ArtifactNotLoggedError, match="log"):  # W&B's, for wait()
        draft.wait()
    draft.add_file(write(ws / "a.txt", "a"))
    with artifacts.init() as run:
        assert run.log_artifact(draft).wait(timeout=5) is draft


def test_metadata_is_taken_as_json_text_and_refused_with_w_and_bs_exception_types(ws):
    artifact = Artifact("data", "dataset", metadata='{"rows": 10, "source": "s3"}')
    assert artifact.metadata == {"rows": 10, "source": "s3"}  # W&B parses JSON text
    artifact.metadata = ""
    assert artifact.metadata == {}
    with pytest.raises(TypeError, match="list"):  # W&B: "Cannot parse <class 'list'>…"
        artifact.metadata = [1, 2]
    with pytest.raises(TypeError, match="list"):  # JSON text of no object, too
        artifact.metadata = "[1, 2]"
    with pytest.raises(TypeError, match="object"):  # W&B's JSON encoding: a TypeError
        artifact.metadata = {"model": object()}
    with pytest.raises(ValueError, match="JSON"):  # W&B's JSON decoding: a ValueError
        artifact.metadata = "{not json"
    with pytest.raises(artifacts.UsageError):
        artifact.metadata = {"model": object()}
    assert artifact.metadata == {}
