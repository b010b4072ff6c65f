"""Staging a path twice, as W&B's manifest does: the same contents again is fine (the
newest stays), other contents are refused unless overwritten, whatever the kinds."""

from __future__ import annotations

import itertools
import os
import tempfile

import pytest

import artifacts
from artifacts import Artifact, DuplicateEntryError
from tests.helpers import write

KINDS = ("file", "dir", "new_file", "ref", "version")
CANNOT_OVERWRITE = ("ref", "version")  # add_reference has no overwrite, as in W&B


def _local(data: str) -> str:
    """A fresh directory holding ``a.txt`` with ``data``: the directory."""
    src = tempfile.mkdtemp(dir=os.getcwd(), prefix="src-")
    write(os.path.join(src, "a.txt"), data)
    return src


def add(artifact: Artifact, kind: str, data: str, overwrite: bool = False) -> None:
    """Put ``data`` at ``a.txt`` of ``artifact`` the ``kind`` way."""
    if kind == "file":
        artifact.add_file(os.path.join(_local(data), "a.txt"), overwrite=overwrite)
    elif kind == "dir":
        artifact.add_dir(_local(data), merge=overwrite)
    elif kind == "new_file":
        with artifact.new_file("a.txt", mode="w" if overwrite else "x") as f:
            f.write(data)
    elif kind == "ref":  # one URI per contents: a reference's entry holds its URI
        artifact.add_reference("file://" + write(os.path.abspath(f"refs/{data}/a.txt"), data))
    else:  # a file of a logged version
        with artifacts.init() as run:
            logged = run.log_artifact(_only("file", data, "source"))
        artifact.add_reference(logged.get_entry("a.txt").ref_url())


def _only(kind: str, data: str, name: str = "data") -> Artifact:
    artifact = Artifact(name, "dataset")
    add(artifact, kind, data)
    return artifact


@pytest.mark.parametrize(("first", "second"), list(itertools.product(KINDS, KINDS)))
def test_a_path_staged_twice_follows_one_rule_whatever_the_kinds(ws, first, second):
    same = _only(first, "one")
    add(same, second, "one")  # the same contents: no error, the newest stays
    assert same.digest == _only(second, "one").digest

    other = _only(first, "one")
    with pytest.raises(DuplicateEntryError) as caught:
        add(other, second, "two")
    assert caught.value.path == "a.txt"
    assert isinstance(caught.value, ValueError)  # what W&B raises
    assert other.digest == _only(first, "one").digest  # the first is kept
    if second in CANNOT_OVERWRITE:
        assert "remove() it first" in str(caught.value)
        other.remove("a.txt")
    add(other, second, "two", overwrite=True)
    assert other.digest == _only(second, "two").digest


def test_an_unchecked_reference_is_the_same_only_as_itself(ws):
    """checksum=False records the URI, not the bytes (W&B: its digest is the URI), so
    nothing is known to be the same as it but that reference again."""
    path = os.path.join(_local("one"), "a.txt")
    artifact = Artifact("data", "dataset")
    artifact.add_reference("file://" + path, checksum=False)
    artifact.add_reference("file://" + path, checksum=False)
    for other in (
        lambda: artifact.add_file(path),  # its bytes today
        lambda: artifact.add_reference("file://" + path),  # checked
    ):
        with pytest.raises(DuplicateEntryError):
            other()
    artifact.add_file(path, overwrite=True)
    with pytest.raises(DuplicateEntryError):
        artifact.add_reference("file://" + path, checksum=False)


def test_new_file_takes_w_and_bs_policy(ws):
    artifact = Artifact("data", "dataset")
    with artifact.new_file("a.txt", policy="mutable") as f:
        f.write("one")
    assert artifact.digest == _only("file", "one").digest
