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
from tests.helpers import write


def logged(run, name: str, files: dict[str, str], type: str = "dataset") -> artifacts.Artifact:
    src = Path(os.getcwd()) / f"src-{name}"
    for path, data in files.items():
        write(src / path, data)
    artifact = artifacts.Artifact(name, type)
    artifact.add_dir(str(src))
    return run.log_artifact(artifact)


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
