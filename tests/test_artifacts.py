"""The artifacts API: versions, aliases, names, drafts, references, downloads, lineage,
distributed versions, incremental costs, the stat cache and how a store is chosen."""

from __future__ import annotations

import datetime
import functools
import os
import pickle
import shutil
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import artifacts
from artifacts import (
    Artifact,
    ArtifactNotFoundError,
    ArtifactStateError,
    DuplicateEntryError,
    MergeConflictError,
    TypeMismatchError,
    UsageError,
    VerificationError,
)
from artifacts.errors import StagedFileChangedWarning
from artifacts.files import blob_id_of_file, stage_file
from artifacts.ref_names import alias_ref, dist_prefix, head_ref, ref_label
from artifacts.statcache import StatCache
from cas import InvalidNameError, Repository, ingest
from cas.store import LOOSE_THRESHOLD
from tests.helpers import CountingStore, contents, files_stored, tree_of, write
from tests.processes import python, wait_ok

ROOT = Path(__file__).resolve().parent.parent


def make(name: str, files: dict[str, bytes | str], type: str = "dataset", **kw) -> Artifact:
    """A draft holding ``files`` (path -> contents), written to a fresh source dir."""
    src = tempfile.mkdtemp(dir=os.getcwd(), prefix="src-")
    for path, data in files.items():
        write(os.path.join(src, path), data)
    artifact = Artifact(name, type, **kw)
    artifact.add_dir(src)
    return artifact


def log(run, name: str, files: dict[str, bytes | str], type: str = "dataset", **kw) -> Artifact:
    aliases = kw.pop("aliases", None)
    return run.log_artifact(make(name, files, type, **kw), aliases=aliases)


# ---- versions and aliases ----------------------------------------------------------


def test_versions_count_from_v0_and_latest_names_the_newest(ws):
    with artifacts.init() as run:
        v0 = log(run, "data", {"x.txt": "one"})
        assert (v0.version, v0.aliases) == ("v0", ["latest"])
        assert v0.qualified_name == "team/proj/data:v0"
        v1 = log(run, "data", {"x.txt": "two"})
        assert (v1.version, v1.aliases) == ("v1", ["latest"])
        assert v0.aliases == []  # "latest" moved on
        assert run.use_artifact("data:latest").id == v1.id
        assert run.use_artifact("data").id == v1.id
        assert contents(run.use_artifact("data:v0"), "dl0") == {"x.txt": b"one"}
        assert contents(run.use_artifact("data:v1"), "dl1") == {"x.txt": b"two"}


def test_each_version_records_how_many_files_it_holds(ws):
    """``files`` in the version's commit (docs/format.md): counted when logged, from the
    version before and what changed, so the versions page need not walk trees."""
    with artifacts.init() as run:
        v0 = log(run, "data", {"a/b/x.txt": "x", "a/y.txt": "y", "z.txt": "z"})
        draft = v0.new_draft()
        draft.remove("a")  # a directory: two files
        draft.add_file(write("new.txt", "new"), name="a/b/new.txt")
        v1 = run.log_artifact(draft)
        v2 = log(run, "data", {f"d{i}/f.txt": str(i) for i in range(5)})  # unrelated trees
    repo = Repository.open(str(ws / ".artifacts"))
    recorded = [repo.objects.get_commit(bytes.fromhex(v.id)).meta["files"] for v in (v0, v1, v2)]
    assert recorded == [3, 2, 5]


def test_a_first_log_of_a_directory_counts_its_files_without_reading_its_trees(ws):
    """A large first log must not read back every page it wrote to count its files:
    the scan has counted them (symlinked files and nested directories included)."""
    src = ws / "src"
    for d in range(3):
        for f in range(4):
            write(str(src / f"d{d}" / "deep" / f"f{f}.txt"), f"{d}{f}")
    (src / "empty").mkdir()
    (src / "link.txt").symlink_to(src / "d0" / "deep" / "f0.txt")
    with artifacts.init() as run:
        counting = CountingStore(run.registry.repo.storage)
        run.registry.objects = counting
        artifact = Artifact("data", "dataset")
        artifact.add_dir(str(src))
        logged = run.log_artifact(artifact)
    assert counting.trees_read == []
    assert logged.file_count == len(logged.files()) == 13


def test_identical_content_returns_the_latest_version_and_attaches_new_aliases(ws):
    with artifacts.init() as run:
        first = log(run, "data", {"a": "1", "d/b": "2"})
        again = log(run, "data", {"d/b": "2", "a": "1"}, aliases=["best"], description="other")
        assert again.version == "v0"
        assert again.id == first.id
        assert again.aliases == ["latest", "best"]
        with pytest.raises(ArtifactNotFoundError):
            run.use_artifact("data:v1")


def test_content_equal_to_an_older_version_makes_a_new_version(ws):
    with artifacts.init() as run:
        log(run, "data", {"a": "1"})
        log(run, "data", {"a": "2"})
        back = log(run, "data", {"a": "1"})
        assert back.version == "v2"  # only the latest version is compared
        assert back.digest == run.use_artifact("data:v0").digest


def test_an_alias_names_one_version_and_moves_when_given_to_another(ws):
    with artifacts.init() as run:
        v0 = log(run, "model", {"w": "0"}, type="model", aliases=["best", "prod"])
        v1 = log(run, "model", {"w": "1"}, type="model", aliases=["best"])
        assert run.use_artifact("model:best").id == v1.id
        assert run.use_artifact("model:prod").id == v0.id
        assert v0.aliases == ["prod"]
        assert v1.aliases == ["latest", "best"]


def test_an_invalid_alias_is_refused_before_any_version_is_made(ws):
    with artifacts.init() as run:
        for alias in ("v3", "bad alias", "a/b", ""):
            with pytest.raises(InvalidNameError):
                log(run, "data", {"a": "1"}, aliases=[alias])
        with pytest.raises(ArtifactNotFoundError):
            run.use_artifact("data")


BAD_LOGS = {
    "alias '..'": ("log_artifact", {"aliases": [".."]}),
    "alias '.'": ("log_artifact", {"aliases": ["."]}),
    "a tag that is no string": ("log_artifact", {"tags": [object()]}),
    # Taken, these could be neither removed nor added to by `tag rm`/`tag add` after.
    "a tag W&B refuses": ("log_artifact", {"tags": ["a/b"]}),
    "an empty tag": ("log_artifact", {"tags": [""]}),
    "finish with alias '..'": ("finish_artifact", {"aliases": [".."]}),
}


@pytest.mark.parametrize("method, options", BAD_LOGS.values(), ids=BAD_LOGS)
def test_a_bad_alias_or_tag_is_refused_before_anything_is_stored(ws, method, options):
    source = write("model.bin", "bytes no other test stores")
    with artifacts.init(group="g") as run:
        draft = Artifact("model", "model")
        draft.add_file(source)
        with pytest.raises((InvalidNameError, UsageError)):
            getattr(run, method)(draft, **options)
        assert not run.registry.objects.has(blob_id_of_file(source))
        with pytest.raises(ArtifactNotFoundError):
            run.use_artifact("model")


@pytest.mark.parametrize("description", [5, {"a": [1, 2]}, ["x"]])
def test_a_description_that_is_no_string_is_refused_before_anything_is_stored(ws, description):
    """It was logged, and the version's first edit after (a tag, a metadata key) wrote
    a record every read then refused: "... is not an annotation record: its
    description is not a string", for show, download, everything."""
    source = write("model.bin", "bytes no other test stores")
    with artifacts.init() as run:
        draft = Artifact("model", "model", description=description)
        draft.add_file(source)
        with pytest.raises(UsageError, match="a description is a string or None"):
            run.log_artifact(draft)
        assert not run.registry.objects.has(blob_id_of_file(source))
        draft.description = "the weights"
        version = run.log_artifact(draft)
    version.tags = ["edited"]
    version.save()
    assert artifacts.Api().artifact("model:v0").description == "the weights"


def test_a_single_alias_or_tag_may_be_given_as_a_string(ws):
    with artifacts.init() as run:
        version = run.log_artifact(make("data", {"a": "1"}), aliases="best", tags="clean")
        assert (version.aliases, version.tags) == (["latest", "best"], ["clean"])


def test_an_artifact_renamed_to_a_bad_name_is_refused_before_anything_is_stored(ws):
    source = write("model.bin", "bytes no other test stores")
    with artifacts.init() as run:
        draft = Artifact("model", "model")
        draft.add_file(source)
        draft.name = ".."
        with pytest.raises(InvalidNameError):
            run.log_artifact(draft)
        assert not run.registry.objects.has(blob_id_of_file(source))


def test_use_artifact_by_version_alias_and_full_name(ws):
    with artifacts.init() as run:
        for i in range(5):
            log(run, "data", {"i": str(i)}, aliases=["odd"] if i % 2 else None)
        assert run.use_artifact("data:v3").version == "v3"
        assert contents(run.use_artifact("data:v3"), "dl") == {"i": b"3"}
        assert run.use_artifact("data:odd").version == "v3"
        assert run.use_artifact("team/proj/data:v0").version == "v0"
        assert run.use_artifact("proj/data:v2").version == "v2"
    with artifacts.init(project="elsewhere") as other:
        found = other.use_artifact("team/proj/data:v1")
        assert (found.entity, found.project, found.version) == ("team", "proj", "v1")
        with pytest.raises(ArtifactNotFoundError):
            other.use_artifact("data:v1")  # the run's own project has no such artifact


@pytest.mark.parametrize("spec", ["data:v5", "data:v17", "data:nope", "missing", "missing:v0"])
def test_unknown_artifact_version_or_alias_is_not_found(ws, spec):
    with artifacts.init() as run:
        for i in range(5):
            log(run, "data", {"i": str(i)})
        with pytest.raises(ArtifactNotFoundError) as caught:
            run.use_artifact(spec)
        assert isinstance(caught.value, LookupError)


def test_logging_one_name_with_another_type_is_refused(ws):
    with artifacts.init() as run:
        log(run, "thing", {"a": "1"}, type="dataset")
        with pytest.raises(TypeMismatchError) as caught:
            log(run, "thing", {"a": "2"}, type="model")
        assert isinstance(caught.value, UsageError)
        assert "dataset" in str(caught.value) and "model" in str(caught.value)
        assert run.use_artifact("thing").version == "v0"
        with pytest.raises(ArtifactNotFoundError):
            run.use_artifact("thing:latest", type="model")
        assert run.use_artifact("thing:latest", type="dataset").type == "dataset"


def test_a_version_ref_is_labelled_as_users_name_it():
    assert ref_label(head_ref("team", "proj", "data")) == "team/proj/data"
    assert ref_label(alias_ref("team", "proj", "data", "best")) == "team/proj/data:best"
    assert (
        ref_label(dist_prefix("team", "proj", "data", "g") + "run") == "team/proj/dist/data/g/run"
    )


# ---- metadata -----------------------------------------------------------------------


def test_metadata_is_converted_as_wandb_converts_it_when_set(ws):
    np = pytest.importorskip("numpy")
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    metadata = {
        "acc": np.float32(0.5),
        "n": np.int64(3),
        "flag": np.bool_(True),
        "grid": np.zeros((2, 2), dtype=np.int8),
        "when": when,
        "day": datetime.date(2024, 1, 2),
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "pair": (1, (2.5, "x")),
        "text": b"utf-8 \xc3\xa9",
        3: "int key",
        None: "None key",
        np.int32(7): "numpy key",
        "nested": {"deep": [{"t": np.array([1.5, -np.inf])}]},
    }
    expected = {
        "acc": 0.5,
        "n": 3,
        "flag": True,
        "grid": [[0, 0], [0, 0]],
        "when": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "nan": None,
        "inf": None,
        "pair": [1, [2.5, "x"]],
        "text": "utf-8 é",
        "3": "int key",
        "null": "None key",
        "7": "numpy key",
        "nested": {"deep": [{"t": [1.5, None]}]},
    }
    artifact = Artifact("model", "model", metadata=metadata)
    assert artifact.metadata == expected
    assert type(artifact.metadata["acc"]) is float and type(artifact.metadata["n"]) is int
    artifact.metadata = {"day": datetime.date(2024, 1, 2)}
    assert artifact.metadata == {"day": "2024-01-02"}
    artifact.metadata["acc"] = np.float64(0.25)  # changed in place: converted when logged
    artifact.add_file(write("w.bin", "w"))
    with artifacts.init() as run:
        run.log_artifact(artifact)
        assert run.use_artifact("model:v0").metadata == {"day": "2024-01-02", "acc": 0.25}


UNSTORABLE_METADATA = {
    "an object": {"x": object()},
    "a set": {"x": {1, 2}},
    "a complex number": {"x": 1j},
    "an integer past 64 bits": {"x": 2**64},
    "bytes that are not UTF-8": {"x": b"\xff"},
    "a tuple key": {("a", "b"): 1},
    "two keys that are one string": {1: "a", "1": "b"},
    "nesting 101 deep": functools.reduce(lambda inner, _: {"k": inner}, range(101), {}),
    "not a dict": [("a", 1)],
}


@pytest.mark.parametrize("metadata", UNSTORABLE_METADATA.values(), ids=UNSTORABLE_METADATA)
def test_metadata_that_cannot_be_stored_is_refused_when_set(ws, metadata):
    with pytest.raises(UsageError):
        Artifact("model", "model", metadata=metadata)
    artifact = Artifact("model", "model")
    with pytest.raises(UsageError):
        artifact.metadata = metadata
    assert artifact.metadata == {}


def test_metadata_changed_in_place_to_something_unstorable_is_refused_before_any_file_is_stored(
    ws,
):
    source = write("model.bin", "bytes no other test stores")
    artifact = Artifact("model", "model", metadata={"ok": 1})
    artifact.add_file(source)
    artifact.metadata["bad"] = object()
    with artifacts.init() as run:
        with pytest.raises(UsageError, match=r"metadata\['bad'\]"):
            run.log_artifact(artifact)
        assert not run.registry.objects.has(blob_id_of_file(source))


def test_setting_metadata_does_not_import_numpy(ws):
    code = """
        import sys, datetime, artifacts
        artifacts.Artifact("m", "model", metadata={"when": datetime.date(2024, 1, 2), "x": [1.5]})
        assert "numpy" not in sys.modules
    """
    assert wait_ok(python("-c", textwrap.dedent(code), cwd=ws)) == ""


# ---- names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["x" * 129, "bad name", "a/b", "a:b", "", ".", "..", "é", "semi;colon"]
)
def test_invalid_artifact_names_are_refused(ws, name):
    with pytest.raises(InvalidNameError) as caught:
        Artifact(name, "dataset")
    assert isinstance(caught.value, ValueError)


def test_names_up_to_128_characters_are_fine(ws):
    with artifacts.init() as run:
        assert log(run, "n" * 128, {"a": "1"}).version == "v0"
        assert run.use_artifact("n" * 128 + ":v0").name == "n" * 128 + ":v0"


@pytest.mark.parametrize("entry", ["../x", "a/../b", "/abs", "back\\slash", "nul\0"])
def test_invalid_entry_names_are_refused(ws, entry):
    write("f", "x")
    with pytest.raises(InvalidNameError):
        Artifact("data", "dataset").add_file("f", name=entry)


@pytest.mark.parametrize("entry", ["a//b", "a/./b", "./a/b", "a/b/"])
def test_entry_names_are_read_as_w_and_b_reads_them(ws, entry):
    write("f", "x")
    assert Artifact("data", "dataset").add_file("f", name=entry).path == "a/b"


STORE_NAMES = [
    ".artifacts/refs/team/proj/artifacts/model/latest",
    "sub/.artifacts/x",
    ".ARTIFACTS/x",
]


@pytest.mark.parametrize("entry", STORE_NAMES)
def test_the_store_directory_name_is_refused_at_every_level_when_staging(ws, entry):
    # Downloaded into a project, such an entry would rewrite the project's store.
    write("f", "x")
    artifact = Artifact("data", "dataset")
    for stage in (
        lambda: artifact.add_file("f", name=entry),
        lambda: artifact.add_reference(f"file://{os.path.abspath('f')}", name=entry),
        lambda: artifact.add_dir(".", name=entry),
        lambda: artifact.new_file(entry).__enter__(),
    ):
        with pytest.raises(InvalidNameError, match="store"):
            stage()
    assert artifact._draft.edits == {}


def test_use_artifact_refuses_a_malformed_spec(ws):
    with artifacts.init() as run, pytest.raises(InvalidNameError):
        run.use_artifact("bad name!")


# ---- building drafts ----------------------------------------------------------------


def test_add_file_of_a_missing_path_or_a_directory_is_a_usage_error(ws):
    os.mkdir("adir")
    artifact = Artifact("data", "dataset")
    with pytest.raises(UsageError, match="no such file"):
        artifact.add_file("nope.txt")
    with pytest.raises(UsageError, match="not a regular file"):
        artifact.add_file("adir")
    with pytest.raises(UsageError, match="no such directory"):
        artifact.add_dir("nodir")


def test_a_different_file_at_an_existing_name_needs_overwrite(ws):
    write("one/a.txt", "first")
    write("two/a.txt", "second")
    write("three/a.txt", "first")
    artifact = Artifact("data", "dataset")
    artifact.add_file("one/a.txt")
    artifact.add_file("three/a.txt")  # same contents: fine
    with pytest.raises(DuplicateEntryError) as caught:
        artifact.add_file("two/a.txt")
    assert caught.value.path == "a.txt"
    artifact.add_file("two/a.txt", overwrite=True)
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert contents(artifact, "dl") == {"a.txt": b"second"}


def test_add_dir_over_a_staged_file_needs_merge(ws):
    write("d1/x", "1")
    write("d2/x", "2")
    write("d2/y", "y")
    artifact = Artifact("data", "dataset")
    artifact.add_dir("d1")
    with pytest.raises(DuplicateEntryError):
        artifact.add_dir("d2")
    artifact.add_dir("d2", merge=True)
    artifact.add_dir("d1", name="sub/")
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert contents(artifact, "dl") == {"x": b"2", "y": b"y", "sub/x": b"1"}


def test_add_dir_skips_the_store_directory(ws):
    write("data.csv", "a,b")
    with artifacts.init() as run:
        artifact = Artifact("project", "code")
        artifact.add_dir(".")
        run.log_artifact(artifact)
    assert [e.path for e in artifact.files()] == ["data.csv"]


def test_staged_files_are_read_from_where_they_were_added_after_a_chdir(ws, monkeypatch):
    write("data/f", "1")
    artifact = Artifact("data", "dataset")
    artifact.add_dir("data")  # a relative path
    artifact.add_file("data/f", name="g")
    (ws / "elsewhere").mkdir()
    monkeypatch.chdir(ws / "elsewhere")
    with artifacts.init(store=str(ws / ".artifacts")) as run:
        run.log_artifact(artifact)
    assert contents(artifact, str(ws / "dl")) == {"f": b"1", "g": b"1"}


def test_a_logged_artifact_cannot_change(ws):
    write("f", "x")
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1"})
        for change in (
            lambda: artifact.add_file("f"),
            lambda: artifact.add_dir("."),
            lambda: artifact.add_reference(f"file://{os.path.abspath('f')}"),
            lambda: artifact.remove("a"),
            lambda: artifact.new_file("n").__enter__(),
            lambda: run.log_artifact(artifact),
        ):
            with pytest.raises(ArtifactStateError):
                change()
        assert artifact.new_draft().is_draft()
    with pytest.raises(ArtifactStateError):
        run.log_artifact(make("data", {"b": "2"}))  # the run has finished
    with pytest.raises(ArtifactStateError):
        _ = Artifact("draft", "dataset").version  # a draft has no version yet


def test_new_file_writes_straight_into_the_draft(ws):
    artifact = Artifact("notes", "text")
    with artifact.new_file("hello.txt") as f:
        f.write("héllo")
    with artifact.new_file("deep/bytes.bin", mode="wb") as f:
        f.write(b"\x00\x01")
    with artifact.new_file("hello.txt") as f:
        f.write("héllo")  # the same contents again: fine
    with pytest.raises(DuplicateEntryError), artifact.new_file("hello.txt") as f:
        f.write("other")
    tmpdir = artifact._draft._tmpdir
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert contents(artifact, "dl") == {"hello.txt": "héllo".encode(), "deep/bytes.bin": b"\0\1"}
    assert not os.path.exists(tmpdir)  # the staging area is gone once logged


def test_remove_unstages_a_file_of_a_fresh_draft(ws):
    write("a", "1")
    write("b", "2")
    artifact = Artifact("data", "dataset")
    artifact.add_file("a")
    artifact.add_file("b")
    artifact.remove("a")
    with pytest.raises(ArtifactNotFoundError):
        artifact.remove("never-added")
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert [e.path for e in artifact.files()] == ["b"]


def test_draft_edits_add_modify_and_remove(ws):
    with artifacts.init() as run:
        base = log(run, "data", {"keep": "k", "mod": "old", "gone/x": "x", "gone/y": "y"})
        draft = base.new_draft()
        draft.add_file(write("new.txt", "n"), name="added/new.txt")
        draft.add_file(write("mod", "new"))  # modify: same path, new contents
        draft.remove("gone/")
        draft.remove(base.get_entry("keep"))  # an Entry works too
        with pytest.raises(ArtifactNotFoundError):
            draft.remove("not-there")
        v1 = run.log_artifact(draft)
    assert v1.version == "v1"
    assert contents(v1, "dl1") == {"added/new.txt": b"n", "mod": b"new"}
    assert contents(base, "dl0") == {"keep": b"k", "mod": b"old", "gone/x": b"x", "gone/y": b"y"}


def test_a_draft_with_no_change_logs_as_the_same_version(ws):
    with artifacts.init() as run:
        base = log(run, "data", {"a": "1"})
        same = run.log_artifact(base.new_draft())
        assert same.version == "v0"
        draft = base.new_draft()
        draft.add_file(write("a", "1"))  # the same contents again
        assert run.log_artifact(draft).version == "v0"


def test_save_outside_a_run_logs_into_the_store_the_draft_came_from(ws, tmp_path):
    store = str(tmp_path / "elsewhere")
    with artifacts.init(store=store) as run:
        base = log(run, "data", {"a": "1"})
    draft = base.new_draft()
    draft.add_file(write("b", "2"))
    assert artifacts.current_run() is None
    saved = draft.save()
    assert saved.version == "v1"
    assert saved.logged_by().job_type == "auto"
    with artifacts.init(store=store) as run:
        assert [e.path for e in run.use_artifact("data:v1").files()] == ["a", "b"]
    assert not os.listdir(ws / ".artifacts")  # the default store was never touched


@pytest.mark.parametrize("workers", [False, True], ids=["one-process", "workers"])
def test_logging_reports_the_bytes_of_every_file_it_stores(ws, monkeypatch, workers):
    if workers:  # the small files are stored by worker processes
        monkeypatch.setattr(ingest, "PARALLEL_MIN_FILES", 10)
    src = ws / "src"
    for i in range(30):
        write(src / f"d{i % 3}" / f"f{i}.txt", f"file {i}")
    for name in ("big1.bin", "big2.bin"):  # stored loose, side by side
        write(src / name, os.urandom(LOOSE_THRESHOLD + 1))
    draft = Artifact("data", "dataset")
    draft.add_dir(str(src))
    draft.add_file(write(ws / "one.txt", "alone"))
    stored: list[int] = []
    with artifacts.init() as run:
        total = draft.staged_bytes()
        run.log_artifact(draft, on_stored=stored.append)
    assert (
        sum(stored)
        == total
        == draft.size
        == 2 * (LOOSE_THRESHOLD + 1) + 5 + sum(len(f"file {i}") for i in range(30))
    )


# ---- references ---------------------------------------------------------------------


def test_a_file_reference_is_recorded_not_uploaded_and_download_fetches_it(ws):
    target = write(ws / "outside" / "big.bin", b"referenced bytes" * 100)
    uri = f"file://{os.path.abspath(target)}"
    artifact = Artifact("refs", "dataset")
    artifact.add_reference(uri)
    with artifacts.init() as run:
        run.log_artifact(artifact)
        store = run.registry.objects
        assert not store.has(blob_id_of_file(target))  # nothing uploaded
        assert not any(
            store.kind(i) == "blob" and b"referenced bytes" in store.read_blob(i) for i in store
        )
    entry = artifact.get_entry("big.bin")
    assert (entry.ref, entry.size) == (uri, 1600)
    assert contents(artifact, "dl") == {"big.bin": b"referenced bytes" * 100}
    artifact.verify("dl")


def test_bad_references_are_refused(ws):
    artifact = Artifact("refs", "dataset")
    with pytest.raises(UsageError, match="no such file"):
        artifact.add_reference(f"file://{ws}/missing")
    with pytest.raises(UsageError, match="unsupported"):
        artifact.add_reference("ftp://example.com/x")


# ---- reading a version -------------------------------------------------------------


def test_digest_size_manifest_files_and_get_entry(ws):
    write("src/run.sh", "#!/bin/sh\n")
    os.chmod("src/run.sh", 0o755)
    with artifacts.init() as run:
        artifact = make("data", {"d/x.txt": "xx", "d/e/y": "yyy", "z": ""})
        artifact.add_file("src/run.sh")
        run.log_artifact(artifact)
        twin = make("twin", {"d/e/y": "yyy", "z": "", "d/x.txt": "xx"})
        twin.add_file("src/run.sh")
        run.log_artifact(twin)
    assert len(artifact.digest) == 64 and artifact.digest == twin.digest  # content, not name
    assert artifact.size == 2 + 3 + 0 + 10
    paths = ["d/e/y", "d/x.txt", "run.sh", "z"]
    assert [e.path for e in artifact.files()] == paths
    assert list(artifact.manifest.entries) == paths and len(artifact.manifest) == 4
    assert artifact.get_entry("d/e/y").size == 3
    assert artifact.get_entry("run.sh").executable
    assert not artifact.get_entry("z").executable
    for missing in ("nope", "d", "d/e"):
        with pytest.raises(ArtifactNotFoundError):
            artifact.get_entry(missing)
    root = artifact.download("dl")
    assert os.access(os.path.join(root, "run.sh"), os.X_OK)


def test_download_defaults_to_artifacts_name_version_and_takes_a_path_prefix(ws):
    with artifacts.init() as run:
        artifact = log(run, "data", {"d/a": "1", "d/b/c": "2", "dd": "3", "e": "4"})
    root = artifact.download()
    assert Path(root).resolve() == (ws / "artifacts" / "data:v0").resolve()
    assert tree_of(root) == {"d/a": b"1", "d/b/c": b"2", "dd": b"3", "e": b"4"}
    assert tree_of(artifact.download("p1", path_prefix="d/")) == {"d/a": b"1", "d/b/c": b"2"}
    assert tree_of(artifact.download("p2", path_prefix="d")) == {
        "d/a": b"1",
        "d/b/c": b"2",
        "dd": b"3",
    }
    assert tree_of(artifact.download("p3", path_prefix="d/b")) == {"d/b/c": b"2"}
    assert tree_of(artifact.download("p4", path_prefix="zzz")) == {}


def test_download_into_a_new_an_empty_and_a_full_directory(ws):
    """New or empty: written whole beside it, then renamed into place (no staging
    directory left over). With files: the version's files join them, replacing any
    of the same name, and the others stay."""
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1", "d/b": "2", "run.sh": "#!/bin/sh\n"})
    version = {"a": b"1", "d/b": b"2", "run.sh": b"#!/bin/sh\n"}
    os.mkdir("empty")
    os.mkdir("linked")
    os.symlink("linked", "link")  # written through, not replaced by a directory
    write("full/a", "old")
    write("full/other", "stays")
    for name in ("new/deeper", "empty", "full", "link"):
        artifact.download(name)
    assert tree_of("new/deeper") == tree_of("empty") == tree_of("linked") == version
    assert os.path.islink("link")
    assert tree_of("full") == {**version, "other": b"stays"}
    leftovers = [p for p in ws.rglob("*") if ".part-" in p.name]
    assert leftovers == []


def test_a_file_with_a_255_byte_name_round_trips(ws):
    longest = "n" * 251 + ".bin"  # NAME_MAX: no room left for a temporary suffix
    with artifacts.init() as run:
        artifact = log(run, "data", {longest: "x", "d/" + longest: "y"})
    assert contents(artifact, "dl") == {longest: b"x", "d/" + longest: b"y"}
    artifact.verify("dl")


def test_checkout_makes_a_directory_hold_exactly_the_version(ws):
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1", "d/b": "2"})
    write("co/a", "changed")
    write("co/extra", "x")
    write("co/olddir/deep/f", "x")
    artifact.checkout("co")
    assert tree_of("co") == {"a": b"1", "d/b": b"2"}
    assert sorted(os.listdir("co")) == ["a", "d"]  # empty directories went too
    artifact.verify("co")


def test_checkout_clears_whatever_stands_where_the_version_has_a_file_or_directory(ws):
    with artifacts.init() as run:
        artifact = log(run, "data", {"x/y": "1", "f": "2", "s/t": "3"})
    write("co/x", "a file where the version has a directory")
    write("co/f/deep", "a directory where the version has a file")
    write(ws / "outside" / "t", "not ours")
    os.symlink(ws / "outside", "co/s")  # a link where the version has a directory
    artifact.checkout("co")
    assert tree_of("co") == {"x/y": b"1", "f": b"2", "s/t": b"3"}
    assert not os.path.islink("co/s")
    assert tree_of("outside") == {"t": b"not ours"}


def store_files(root: str | Path) -> dict[str, bytes]:
    """A store's content: its files but the backend's own (lock files, temporaries)."""
    return {p: data for p, data in tree_of(root).items() if p.split("/")[0] not in ("locks", "tmp")}


def make_store(path: str) -> dict[str, bytes]:
    """A store, not named .artifacts, holding one version; returns its files."""
    with artifacts.init(store=path) as run:
        log(run, "kept", {"k": "kept"})
    return store_files(path)


def test_checkout_into_the_project_root_leaves_its_store_alone(ws):
    write("a.txt", "a")
    with artifacts.init() as run:
        first = Artifact("ds", "t")
        first.add_dir(".")
        run.log_artifact(first)
        write("a.txt", "b")
        second = Artifact("ds", "t")
        second.add_dir(".")
        run.log_artifact(second)
    store = store_files(".artifacts")
    first.checkout(".")
    assert store_files(".artifacts") == store
    assert {p: d for p, d in tree_of(".").items() if not p.startswith(".artifacts/")} == {
        "a.txt": b"a"
    }
    with artifacts.init() as run:
        assert run.use_artifact("ds:latest").version == "v1"


def test_checkout_into_a_project_leaves_its_version_control_alone(ws):
    # A checkout deletes every file outside the version: into a project's root, the
    # history (git's .git directory, or the .git file of a worktree or submodule) stays.
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1"})
    write("proj/.git/HEAD", "ref: refs/heads/main\n")
    write("proj/.git/objects/ab/cdef", "object")
    write("proj/sub/.git", "gitdir: ../.git/modules/sub\n")
    write("proj/.hg/store/data", "hg")
    write("proj/train.py", "code")
    history = {p: d for p, d in tree_of("proj").items() if "/.git" in f"/{p}" or ".hg/" in p}
    artifact.checkout("proj")
    assert tree_of("proj") == {**history, "a": b"1"}
    artifact.verify("proj")  # what checkout leaves is no extra file


def test_checkout_leaves_a_store_of_any_name_inside_its_root_alone(ws):
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1"})
    kept = make_store("co/deep/vault")
    write("co/extra", "x")
    artifact.checkout("co")
    assert store_files("co/deep/vault") == kept
    assert sorted(os.listdir("co")) == ["a", "deep"]  # the store's parent stays: not empty
    with artifacts.init(store="co/deep/vault") as run:
        assert contents(run.use_artifact("kept:v0"), "dl") == {"k": b"kept"}


def test_a_download_or_checkout_that_would_write_into_a_store_writes_and_deletes_nothing(ws):
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1", "vault/refs/x": "overwritten", "vault/packs/y": "y"})
    kept = make_store("co/vault")
    write("co/extra", "x")
    before = tree_of("co")
    for write_version in (artifact.download, artifact.checkout):
        with pytest.raises(UsageError, match="store"):
            write_version("co")
        assert tree_of("co") == before
    os.symlink("vault", "co/link")  # a link that leads into the store: no way round
    with artifacts.init() as run:
        linked = log(run, "linked", {"link/refs/x": "overwritten"})
    with pytest.raises(UsageError, match="store"):
        linked.download("co")
    assert store_files("co/vault") == kept


@pytest.mark.parametrize(
    "root",
    [
        ".artifacts",
        ".artifacts/refs",
        ".artifacts/refs/new",
        ".artifacts/new",  # a project's store holds all below it, not only its layout
        "into-store/new",  # the same, through a link
        "vault",
    ],
)
def test_a_store_or_a_directory_inside_one_is_no_root_to_write_into(ws, root):
    with artifacts.init() as run:
        artifact = log(run, "data", {"latest": "1"})
    make_store("vault")
    os.symlink(".artifacts", "into-store")
    stores = {s: store_files(s) for s in (".artifacts", "vault")}
    for write_version in (artifact.download, artifact.checkout):
        with pytest.raises(UsageError, match="store"):
            write_version(root)
    assert {s: store_files(s) for s in stores} == stores


def test_add_dir_skips_a_store_of_any_name_and_refuses_a_store_as_its_root(ws):
    write("data/a.txt", "a")
    make_store("data/vault")
    with artifacts.init(store="data/vault") as run:  # the store that holds the version too
        artifact = Artifact("data", "dataset")
        artifact.add_dir("data")
        run.log_artifact(artifact)
        assert [e.path for e in artifact.files()] == ["a.txt"]
    for root in ("data/vault", ".artifacts", "data/vault/refs"):
        with pytest.raises(UsageError, match="store"):
            Artifact("data", "dataset").add_dir(root)


def test_verify_detects_modified_extra_and_missing_files(ws):
    with artifacts.init() as run:
        artifact = log(run, "data", {"a": "1", "d/b": "2", "c": "3"})
    root = artifact.download("dl")
    artifact.verify(root)
    write(f"{root}/a", "X")  # same size, other bytes
    write(f"{root}/d/extra", "e")
    os.unlink(f"{root}/c")
    with pytest.raises(VerificationError) as caught:
        artifact.verify(root)
    assert caught.value.problems == ["content differs: a", "missing c", "unexpected d/extra"]


def test_lineage_logged_by_and_used_by(ws):
    with artifacts.init(job_type="produce") as writer:
        made = log(writer, "data", {"a": "1"})
    with artifacts.init(job_type="consume") as reader:
        used = reader.use_artifact("data:v0")
        reader.use_artifact("data:latest")  # the same version twice counts once
    with artifacts.init():
        pass  # a run that uses nothing
    assert made.logged_by().id == writer.id
    assert made.logged_by().job_type == "produce"
    assert used.logged_by().id == writer.id
    users = used.used_by()
    assert [r.id for r in users] == [reader.id]
    assert users[0].used == [used.id]
    assert users[0].ended is not None
    assert made.logged_by().logged == [made.id]


def test_lineage_across_projects(ws):
    with artifacts.init(project="raw", job_type="produce") as writer:
        base = log(writer, "data", {"a": "1"})
    with artifacts.init(project="work", job_type="refine") as worker:
        used = worker.use_artifact("team/raw/data:v0")
        draft = used.new_draft()
        draft.add_file(write("b", "2"))
        refined = worker.log_artifact(draft)  # a draft logs into its base's project
    assert refined.qualified_name == "team/raw/data:v1"
    assert [r.id for r in base.used_by()] == [worker.id]
    assert refined.logged_by().id == worker.id
    assert refined.logged_by().project == "work"
    assert base.logged_by().id == writer.id


# ---- distributed versions ------------------------------------------------------------


def test_upsert_needs_a_distributed_id_or_a_group(ws):
    write("a", "1")
    with artifacts.init() as run:
        artifact = Artifact("dist", "dataset")
        artifact.add_file("a")
        with pytest.raises(UsageError, match="distributed_id"):
            run.upsert_artifact(artifact)
        with pytest.raises(UsageError, match="distributed_id"):
            run.finish_artifact(artifact)


def test_a_run_sent_to_another_process_says_what_to_send_instead(ws):
    # A Dask or Ray task's arguments are pickled: a run must say what to send instead.
    with artifacts.init() as run:
        with pytest.raises(UsageError, match=r"artifacts\.init"):
            pickle.dumps(run)


def test_the_group_is_the_default_distributed_id(ws):
    write("a", "1")
    write("b", "2")
    with artifacts.init(group="exp1") as one:
        part = Artifact("dist", "dataset")
        part.add_file("a")
        one.upsert_artifact(part)
    with artifacts.init(group="exp1") as two:
        last = Artifact("dist", "dataset")
        last.add_file("b")
        two.finish_artifact(last)
    assert contents(last, "dl") == {"a": b"1", "b": b"2"}


def test_conflicting_parts_commit_nothing_and_a_retry_after_fixing_works(ws):
    write("one/x.txt", "from one")
    write("two/x.txt", "from two")
    write("one/a", "a")
    r1, r2 = artifacts.init(), artifacts.init()
    try:
        for run, files in ((r1, ["one/x.txt", "one/a"]), (r2, ["two/x.txt"])):
            part = Artifact("dist", "dataset")
            for f in files:
                part.add_file(f)
            run.upsert_artifact(part, distributed_id="job")
        with artifacts.init() as r3:
            final = Artifact("dist", "dataset")
            with pytest.raises(MergeConflictError) as caught:
                r3.finish_artifact(final, distributed_id="job")
            assert caught.value.conflicts == {"x.txt": sorted([r1.id, r2.id])}
            assert "x.txt" in str(caught.value)
            assert r1.id in str(caught.value) and r2.id in str(caught.value)
            with pytest.raises(ArtifactNotFoundError):
                r3.use_artifact("dist")  # nothing was committed
            parts = r3.registry.refs.list(dist_prefix("team", "proj", "dist", "job"))
            assert len(parts) == 2  # and the parts are all still there

            fixed = Artifact("dist", "dataset")
            fixed.add_file("one/x.txt")  # run 2 agrees with run 1 now
            r2.upsert_artifact(fixed, distributed_id="job")
            r3.finish_artifact(final, distributed_id="job")
            assert final.version == "v0"
            assert contents(final, "dl") == {"a": b"a", "x.txt": b"from one"}
    finally:
        r1.finish()
        r2.finish()


def test_the_finishing_runs_own_files_can_conflict_too(ws):
    write("one/x", "1")
    write("two/x", "2")
    with artifacts.init() as r1:
        part = Artifact("dist", "dataset")
        part.add_file("one/x")
        r1.upsert_artifact(part, distributed_id="job")
    with artifacts.init() as r2:
        final = Artifact("dist", "dataset")
        final.add_file("two/x")
        with pytest.raises(MergeConflictError) as caught:
            r2.finish_artifact(final, distributed_id="job")
    assert caught.value.conflicts == {"x": sorted([r1.id, r2.id])}


def test_an_upsert_after_finish_starts_the_next_version(ws):
    write("a", "a")
    write("b", "b")
    worker = artifacts.init()
    try:
        part = Artifact("dist", "dataset")
        part.add_file("a")
        worker.upsert_artifact(part, distributed_id="job")
        with artifacts.init() as finisher:
            v0 = finisher.finish_artifact(Artifact("dist", "dataset"), distributed_id="job")
        assert contents(v0, "dl0") == {"a": b"a"}

        part = Artifact("dist", "dataset")
        part.add_file("b")
        worker.upsert_artifact(part, distributed_id="job")  # the same run, after the finish
        with artifacts.init() as finisher:
            v1 = finisher.finish_artifact(Artifact("dist", "dataset"), distributed_id="job")
        assert v1.version == "v1"
        assert contents(v1, "dl1") == {"b": b"b"}  # the old part is not in it again
    finally:
        worker.finish()


def test_a_run_upserting_twice_adds_to_its_part(ws):
    write("a", "a")
    write("b", "b")
    with artifacts.init() as worker:
        for name in ("a", "b"):
            part = Artifact("dist", "dataset")
            part.add_file(name)
            worker.upsert_artifact(part, distributed_id="job")
    with artifacts.init() as finisher:
        final = finisher.finish_artifact(Artifact("dist", "dataset"), distributed_id="job")
    assert contents(final, "dl") == {"a": b"a", "b": b"b"}


DEEP = "/".join(["d"] * 1000)  # as deep as the interpreter's recursion limit


def test_a_tree_1000_deep_is_drafted_and_finished(ws):
    for name in ("f1", "f2", "f3"):
        write(name, name)
    with artifacts.init() as run:
        first = Artifact("deep", "dataset")
        first.add_file("f1", f"{DEEP}/f1")
        draft = run.log_artifact(first).new_draft()
        draft.add_file("f2", f"{DEEP}/f2")
        assert [e.path for e in run.log_artifact(draft).files()] == [f"{DEEP}/f1", f"{DEEP}/f2"]
    with artifacts.init() as worker:
        part = Artifact("dist", "dataset")
        part.add_file("f1", f"{DEEP}/f1")
        worker.upsert_artifact(part, distributed_id="job")
    with artifacts.init() as finisher:
        own = Artifact("dist", "dataset")
        own.add_file("f2", f"{DEEP}/f2")
        v0 = finisher.finish_artifact(own, distributed_id="job")
        assert [e.path for e in v0.files()] == [f"{DEEP}/f1", f"{DEEP}/f2"]
        incremental = v0.new_draft()  # merged, then applied onto the base
        incremental.add_file("f3", f"{DEEP}/f3")
        v1 = finisher.finish_artifact(incremental, distributed_id="job")
        assert [e.path for e in v1.files()] == [f"{DEEP}/f{i}" for i in (1, 2, 3)]


def test_an_incremental_distributed_version_keeps_the_base_files(ws):
    with artifacts.init() as run:
        log(run, "data", {"old": "o"})
    write("new1", "1")
    write("new2", "2")
    with artifacts.init() as one:
        draft = one.use_artifact("data:latest").new_draft()
        draft.add_file("new1")
        one.upsert_artifact(draft, distributed_id="job")
    with artifacts.init() as two:
        draft = two.use_artifact("data:latest").new_draft()
        draft.add_file("new2")
        final = two.finish_artifact(draft, distributed_id="job")
    assert contents(final, "dl") == {"old": b"o", "new1": b"1", "new2": b"2"}


@pytest.mark.timeout(120)
def test_sixteen_processes_upsert_concurrently_then_one_finishes(ws):
    expected = {f"part-{i:02d}.bin": os.urandom(64) + bytes([i]) for i in range(16)}
    for name, data in expected.items():
        write(name, data)
    code = """
        import sys
        import artifacts

        with artifacts.init() as run:
            artifact = artifacts.Artifact("sharded", "dataset")
            artifact.add_file(f"part-{int(sys.argv[1]):02d}.bin")
            run.upsert_artifact(artifact, distributed_id="shards")
    """
    procs = [python("-c", textwrap.dedent(code), str(i), cwd=ws) for i in range(16)]
    for proc in procs:
        wait_ok(proc, timeout=100)
    with artifacts.init() as run:
        final = run.finish_artifact(Artifact("sharded", "dataset"), distributed_id="shards")
        assert final.version == "v0"
        assert contents(final, "dl") == expected
        assert not run.registry.refs.list(dist_prefix("team", "proj", "sharded", "shards"))


# ---- incremental drafts: the cost model -----------------------------------------------


def test_a_one_file_draft_writes_and_reads_only_the_path(ws):
    src = ws / "big"
    for d in range(100):
        folder = src / f"d{d:03d}"
        folder.mkdir(parents=True)
        for f in range(50):
            (folder / f"f{f:02d}.txt").write_bytes(f"{d}/{f}".encode())
    with artifacts.init() as run:
        base = Artifact("big", "dataset")
        base.add_dir(str(src))
        run.log_artifact(base)
        assert len(base.files()) == 5000
        shutil.rmtree(src)  # untouched files need not exist any more

        registry = run.registry
        counting = CountingStore(registry.repo.storage)
        registry.objects = counting
        before = set(counting)
        draft = base.new_draft()
        draft.add_file(write("new.txt", "new"), name="d042/new.txt")
        v1 = run.log_artifact(draft)
        new = set(counting) - before

    kinds = sorted(counting.kind(i) for i in new)
    # The file, the two trees on its path (d042/ and the root), the commit, and the
    # run's record (which now lists v1): a handful of objects, not thousands.
    assert kinds.count("tree") == 2
    assert kinds.count("commit") == 1
    assert kinds.count("blob") == 2
    # The root and d042/, before and after (read to edit, and to count the files from
    # v0's count: docs/format.md), never the other 99.
    assert len(set(counting.trees_read)) <= 4
    assert v1.version == "v1" and len(v1.files()) == 5001
    assert v1.get_entry("d042/new.txt").size == 3
    assert v1.get_entry("d099/f49.txt").digest == base.get_entry("d099/f49.txt").digest


def test_removing_a_directory_in_a_draft_reads_only_the_root(ws):
    with artifacts.init() as run:
        base = log(run, "data", {f"d{i}/f{j}": f"{i}{j}" for i in range(20) for j in range(5)})
        counting = CountingStore(run.registry.repo.storage)
        run.registry.objects = counting
        draft = base.new_draft()
        draft.remove("d7/")
        v1 = run.log_artifact(draft)
    # The root, before and after; and d7, only to count the files it took away (the
    # version's file count, docs/format.md): none of the other 19 directories.
    assert len(set(counting.trees_read)) <= 3
    assert len(v1.files()) == 95 and v1.file_count == 95


# ---- the stat cache ------------------------------------------------------------------


def test_a_file_changed_within_the_racy_window_is_hashed_again(ws):
    path = write("data/f.bin", b"A" * 100)
    with artifacts.init() as run:
        first = log_dir(run, "data")
        st = os.stat(path)
        with open(path, "r+b") as f:  # same size, same inode
            f.write(b"B" * 100)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
        assert os.stat(path).st_ino == st.st_ino
        second = log_dir(run, "data")
    assert second.version == "v1"  # the new bytes were read, though the stat is unchanged
    assert contents(second, "dl") == {"f.bin": b"B" * 100}
    assert first.digest != second.digest


def test_an_old_unchanged_file_is_not_read_again(ws, monkeypatch):
    """An old file's (size, mtime, ctime, inode) stands for its bytes.

    The cache is consulted when a log stages many files (a handful are simply hashed).
    """
    for i in range(70):
        write(f"data/other-{i}.txt", str(i))
    path = write("data/f.bin", b"A" * 100)
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))
    with artifacts.init() as run:
        first = log_dir(run, "data")
        cache = StatCache.for_store(run.registry.repo)
        blob_id = cache.lookup(stage_file(os.path.abspath(path)))
        assert blob_id is not None and blob_id.hex() == first.get_entry("f.bin").digest
        stored = files_stored(monkeypatch)
        again = log_dir(run, "data")
        assert again.version == "v0"
        assert "f.bin" not in stored
        os.utime(path, ns=(old + 10**9, old + 10**9))  # any stat change is noticed
        log_dir(run, "data")
        assert "f.bin" in stored  # read again (its bytes are the same: no new version)


def test_a_file_rewritten_in_place_with_its_mtime_restored_is_read_again(ws):
    """Same size, same inode, the old mtime put back: only the ctime tells (the user
    cannot set it), as git's stat check knows."""
    for i in range(70):
        write(f"data/other-{i}.txt", str(i))
    path = write("data/f.bin", b"A" * 100)
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))
    with artifacts.init() as run:
        log_dir(run, "data")
        inode = os.stat(path).st_ino
        with open(path, "r+b") as f:
            f.write(b"B" * 100)
        os.utime(path, ns=(old, old))
        assert os.stat(path).st_ino == inode
        again = log_dir(run, "data")
    assert again.version == "v1"
    assert contents(again, "dl")["f.bin"] == b"B" * 100


def log_dir(run, src: str) -> Artifact:
    artifact = Artifact("cached", "dataset")
    artifact.add_dir(src)
    return run.log_artifact(artifact)


# ---- which store --------------------------------------------------------------------


def test_store_argument_then_environment_then_nearest_store_dir(ws, monkeypatch):
    with artifacts.init(store=str(ws / "explicit")) as run:
        assert run.registry.repo.url == str(ws / "explicit")
    monkeypatch.setenv("ARTIFACTS_STORE", str(ws / "from-env"))
    with artifacts.init() as run:
        assert run.registry.repo.url == str(ws / "from-env")
    with artifacts.init(store=str(ws / "explicit")) as run:
        assert run.registry.repo.url == str(ws / "explicit")
    monkeypatch.delenv("ARTIFACTS_STORE")
    deep = ws / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    with artifacts.init() as run:
        assert run.registry.repo.url == str(ws / ".artifacts")
        log(run, "data", {"x": "1"})
    monkeypatch.chdir(ws)
    with artifacts.init() as run:
        assert run.use_artifact("data").version == "v0"


def test_without_any_store_one_is_created_in_the_working_directory(tmp_path, monkeypatch):
    if any((p / ".artifacts").is_dir() for p in tmp_path.parents):
        pytest.skip("a store above the tmp dir would be found first")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARTIFACTS_STORE", raising=False)
    with artifacts.init(project="p", entity="e") as run:
        assert run.registry.repo.url == str(tmp_path / ".artifacts")
    assert (tmp_path / ".artifacts").is_dir()


# ---- staged files changed before the log (W&B's policy="mutable") -----------------


def test_a_staged_file_changed_before_the_log_is_logged_as_it_is_now_with_a_warning(ws):
    """W&B copies a file when it is added; we read it when logged, and say so."""
    path = write("model.pt", "first")
    artifact = Artifact("model", "model")
    artifact.add_file(path)
    write(path, "second, longer")
    with artifacts.init() as run:
        with pytest.warns(StagedFileChangedWarning, match="as they are now: .*model.pt.*W&B"):
            run.log_artifact(artifact)
    assert contents(artifact, "dl") == {"model.pt": b"second, longer"}


def test_a_file_changed_in_a_staged_directory_is_named_in_a_warning(ws):
    write("data/a.txt", "a")
    write("data/sub/b.txt", "b")
    artifact = Artifact("data", "dataset")
    artifact.add_dir("data")
    write("data/sub/b.txt", "bb")
    write("data/new.txt", "n")  # not staged: the directory's files are those added
    with artifacts.init() as run:
        with pytest.warns(StagedFileChangedWarning, match="1 staged file.*sub/b.txt"):
            run.log_artifact(artifact)
    assert contents(artifact, "dl") == {"a.txt": b"a", "sub/b.txt": b"bb"}


def test_a_changed_file_in_a_directory_the_stat_cache_vouches_for_is_logged_as_added(ws):
    # Its bytes when added are in the store and the cache knows them by the stat taken
    # then: logged as W&B logs its copy, unread and without a warning.
    path = write("data/f.txt", "first")
    old = time.time_ns() - 10**10  # older than the racy-clean margin
    os.utime(path, ns=(old, old))
    with artifacts.init() as run:
        first = Artifact("data", "dataset")
        first.add_dir("data")
        run.log_artifact(first)
        second = Artifact("data", "dataset")
        second.metadata = {"run": 2}
        second.add_dir("data")
        write(path, "second, longer")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run.log_artifact(second)
    assert contents(second, "dl") == {"f.txt": b"first"}


def test_policy_immutable_promises_the_file_will_not_change_and_silences_the_warning(ws):
    write("f.txt", "1")
    write("data/a.txt", "a")
    artifact = Artifact("data", "dataset")
    artifact.add_file("f.txt", policy="immutable")
    artifact.add_dir("data", name="d", policy="immutable")
    write("f.txt", "22")
    write("data/a.txt", "aa")
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("error")
        run.log_artifact(artifact)


def test_unchanged_staged_files_log_without_a_warning(ws):
    write("f.txt", "1")
    write("data/a.txt", "a")
    artifact = Artifact("data", "dataset")
    artifact.add_file("f.txt", policy="mutable")
    artifact.add_dir("data", name="d")
    with artifact.new_file("n.txt") as f:
        f.write("n")
    with artifacts.init() as run, warnings.catch_warnings():
        warnings.simplefilter("error")
        run.log_artifact(artifact)


@pytest.mark.parametrize("method", ["add_file", "add_dir"])
def test_a_policy_other_than_mutable_or_immutable_is_refused_as_wandb_refuses_it(ws, method):
    write("d/f.txt", "1")
    artifact = Artifact("data", "dataset")
    with pytest.raises(ValueError, match="policy"):
        getattr(artifact, method)("d/f.txt" if method == "add_file" else "d", policy="copy")
