"""W&B's public API beyond the seed page (issue 19), called as a wandb user calls it.

Each section is one part of the issue. Where a test follows an example of wandb's own
docstrings, its name or a comment says so; the calls are W&B's, with ``wandb``
replaced by ``artifacts``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artifacts
from artifacts import ArtifactNotFoundError, ArtifactStateError, CasError, UsageError
from artifacts.files import blob_id_of_file
from tests.helpers import tree_of, write


def logged(run, name: str, files: dict[str, str], type: str = "dataset") -> artifacts.Artifact:
    src = Path(os.getcwd()) / f"src-{name}"
    for path, data in files.items():
        write(src / path, data)
    artifact = artifacts.Artifact(name, type)
    artifact.add_dir(str(src))
    return run.log_artifact(artifact)


# ---- entries that act (part 2) ---------------------------------------------------


def test_get_entry_gives_an_entry_with_w_and_b_fields_that_downloads_itself(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "aaa", "d/b.txt": "bb"})
        entry = version.get_entry("d/b.txt")
        assert (entry.path, entry.name, entry.size, entry.ref, entry.extra) == (
            "d/b.txt",
            "d/b.txt",
            2,
            None,
            {},
        )
        assert entry.digest == blob_id_of_file(str(ws / "src-data" / "d" / "b.txt")).hex()
        assert entry.parent_artifact() is version

        local = entry.download(str(ws / "out"))
        assert local == os.path.join(str(ws / "out"), "d", "b.txt")
        assert tree_of(ws / "out") == {"d/b.txt": b"bb"}  # that file alone
        assert entry.download(str(ws / "out"), skip_cache=True) == local  # again: in place

        default = entry.download()  # the artifact's own default root
        assert default == os.path.join(version.default_root(), "d", "b.txt")
        assert Path(default).read_bytes() == b"bb"


def test_manifest_entries_act_too_and_the_manifest_answers_w_and_b_queries(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a", "d/b.txt": "b", "d/e/c.txt": "c", "dd": "x"})
        manifest = version.manifest
        assert len(manifest) == 4
        assert manifest.digest() == version.digest
        entry = manifest.entries["d/e/c.txt"]
        assert Path(entry.download(str(ws / "m"))).read_bytes() == b"c"
        assert entry.parent_artifact() is version
        assert manifest.get_entry_by_path("a.txt").size == 1
        assert manifest.get_entry_by_path("nope.txt") is None
        assert manifest.get_entry_by_path("d") is None  # a directory is not an entry
        assert [e.path for e in manifest.get_entries_in_directory("d")] == [
            "d/b.txt",
            "d/e/c.txt",
        ]  # everything below d/, not "dd"
        assert manifest.get_entries_in_directory("nope") == []


def test_get_path_is_get_entry_and_files_takes_names_and_per_page(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a", "b.txt": "b", "d/c.txt": "c"})
        assert version.get_path("d/c.txt") == version.get_entry("d/c.txt")
        assert [e.path for e in version.files()] == ["a.txt", "b.txt", "d/c.txt"]
        chosen = version.files(names=["d/c.txt", "a.txt", "missing.txt"], per_page=1)
        assert [e.path for e in chosen] == ["a.txt", "d/c.txt"]
        assert Path(chosen[1].download(str(ws / "f"))).read_bytes() == b"c"


def test_file_downloads_a_single_file_artifact_and_refuses_more(ws):
    with artifacts.init() as run:
        one = logged(run, "model", {"weights.bin": "w"}, type="model")
        path = one.file(str(ws / "root"))
        assert path == os.path.join(str(ws / "root"), "weights.bin")
        assert Path(path).read_bytes() == b"w"
        two = logged(run, "data", {"a": "1", "b": "2"})
        with pytest.raises(ValueError, match="holds 2 files, not one"):
            two.file(str(ws / "other"))
        assert not (ws / "other").exists()


def test_a_reference_entry_gives_its_target_and_every_entry_a_ref_url(ws):
    target = write(ws / "elsewhere" / "big.bin", "payload")
    with artifacts.init() as run:
        draft = artifacts.Artifact("refs", "dataset")
        draft.add_reference(Path(target).as_uri(), name="big.bin")
        draft.add_file(write(ws / "plain.txt", "p"))
        version = run.log_artifact(draft)
        ref = version.get_entry("big.bin")
        assert ref.ref == Path(target).as_uri()
        assert ref.ref_target() == Path(target).as_uri()
        assert Path(ref.download(str(ws / "r"))).read_bytes() == b"payload"
        plain = version.get_entry("plain.txt")
        with pytest.raises(ValueError, match="not a reference"):
            plain.ref_target()
        assert plain.ref_url() == f"artifact://{version.id}/plain.txt"


def test_an_entry_of_a_draft_cannot_download(ws):
    draft = artifacts.Artifact("data", "dataset")
    entry = draft.add_file(write(ws / "x.txt", "x"))
    assert (entry.path, entry.size) == ("x.txt", 1)
    with pytest.raises(ArtifactStateError, match="log"):
        entry.download(str(ws / "out"))
    assert not (ws / "out").exists()


# ---- W&B's exception types (part 4) -------------------------------------------


def test_add_file_of_a_missing_file_or_a_directory_is_a_value_error(ws):
    draft = artifacts.Artifact("data", "dataset")
    for path in ("missing.txt", str(ws)):
        with pytest.raises(ValueError) as caught:
            draft.add_file(path)
        assert isinstance(caught.value, UsageError)


def test_verify_mismatch_is_a_value_error(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a"})
        root = version.download(str(ws / "out"))
        write(Path(root) / "a.txt", "changed")
        with pytest.raises(ValueError, match="content differs: a.txt"):
            version.verify(root)


def test_get_entry_of_a_missing_path_is_a_key_error_with_a_plain_message(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"d/a.txt": "a"})
        for missing in ("nope.txt", "d"):
            with pytest.raises(KeyError) as caught:
                version.get_entry(missing)
            assert isinstance(caught.value, ArtifactNotFoundError)
            assert str(caught.value).startswith("team/proj/data:v0 has no file")  # no quotes


def test_remove_of_a_missing_path_is_a_file_not_found_error(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a"})
    for draft in (artifacts.Artifact("data", "dataset"), version.new_draft()):
        with pytest.raises(FileNotFoundError) as caught:
            draft.remove("nope.txt")
        assert isinstance(caught.value, ArtifactNotFoundError)
        assert "nope.txt" in str(caught.value)


def test_use_artifact_with_another_type_is_a_value_error(ws):
    with artifacts.init() as run:
        logged(run, "data", {"a.txt": "a"})
        with pytest.raises(ValueError, match="has type 'dataset', not 'model'") as caught:
            run.use_artifact("data:latest", type="model")
        assert isinstance(caught.value, ArtifactNotFoundError)  # what it was before


def test_a_drafts_logged_only_properties_raise_w_and_b_not_logged_error_type(ws):
    draft = artifacts.Artifact("data", "dataset")
    for read in ("version", "digest", "size", "manifest", "id"):
        with pytest.raises(AttributeError) as caught:
            getattr(draft, read)
        assert isinstance(caught.value, ArtifactStateError)
    assert not hasattr(draft, "version")  # as with wandb: no version before logging


def test_changing_a_logged_artifact_raises_w_and_b_finalized_error_type(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a"})
        with pytest.raises(AttributeError) as caught:
            version.add_file(write(ws / "b.txt", "b"))
        assert isinstance(caught.value, ArtifactStateError)
        assert isinstance(caught.value, CasError)
