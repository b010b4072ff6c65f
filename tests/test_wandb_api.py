"""W&B's public API beyond the seed page (issue 19), called as a wandb user calls it:
code written for ``wandb`` runs with ``wandb`` replaced by ``artifacts``. Where a test
follows an example of wandb's own docstrings (0.31), its name or a comment says so.

Sections: entries that act, W&B's exception types; reading without a run
(``artifacts.Api``); lineage you can walk; properties as W&B gives them.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

import artifacts
from artifacts import ArtifactNotFoundError, ArtifactStateError, CasError, UsageError
from artifacts.cache import DownloadCache
from artifacts.cli import main
from artifacts.errors import VersionDeletedError
from artifacts.files import blob_id_of_file
from cas.errors import InvalidNameError
from tests.helpers import ENTITY, PROJECT, tree_of, write


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
        with chosen[1].download(str(ws / "f")) as opened:  # W&B's File.download
            assert opened.read() == "c"


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


def test_add_reference_of_a_ref_url_adds_that_stored_file_as_in_w_and_b_docstring(ws):
    with artifacts.init() as run:
        source = logged(run, "raw", {"d/x.csv": "1,2\n", "y.csv": "3\n"})
        entry = source.get_entry("d/x.csv")
        derived = artifacts.Artifact("derived", "dataset")
        (added,) = derived.add_reference(entry.ref_url())  # W&B's docstring example
        assert (added.path, added.digest, added.size) == ("x.csv", entry.digest, 4)
        derived.add_reference(entry, name="copy/x.csv")  # the entry itself, as W&B takes it
        derived.add_reference(f"wandb-artifact://{source.id}/y.csv")  # W&B's spelling
        digest = derived.digest  # a draft's, computed
        made = run.log_artifact(derived)
    y = source.get_entry("y.csv").digest
    # The same stored files (same blob ids): nothing copied, nothing uploaded again.
    assert {e.path: e.digest for e in made.files()} == {
        "copy/x.csv": entry.digest,
        "x.csv": entry.digest,
        "y.csv": y,
    }
    assert (made.digest, made.size) == (digest, 10)
    assert made.get_entry("x.csv").ref is None  # a stored file, as any other
    root = made.download(str(ws / "out"))
    assert tree_of(root) == {"copy/x.csv": b"1,2\n", "x.csv": b"1,2\n", "y.csv": b"3\n"}
    made.verify(root)
    assert main(["fsck"]) == 0
    origin = str(ws / "origin")
    assert main(["--store", origin, "init"]) == 0
    assert main(["remote", "add", "origin", origin]) == 0
    assert main(["push"]) == 0
    pushed = artifacts.Api(store=origin).artifact("derived:latest").download(str(ws / "pushed"))
    assert tree_of(pushed) == tree_of(root)
    source.delete(delete_aliases=True)  # the derived version alone keeps its files
    assert main(["gc", "--grace", "0"]) == 0
    assert main(["fsck"]) == 0
    assert tree_of(made.download(str(ws / "after-gc"))) == tree_of(root)


def test_add_reference_of_a_version_file_refuses_what_is_not_a_file_of_a_version_here(ws, tmp_path):
    with artifacts.init() as run:
        source = logged(run, "raw", {"d/x.csv": "1", "y.csv": "2"})
        draft = artifacts.Artifact("derived", "dataset")
        with pytest.raises(KeyError, match="has no file 'nope.csv'"):
            draft.add_reference(f"artifact://{source.id}/nope.csv")
        with pytest.raises(UsageError, match="'d' is a directory of .*: reference its files"):
            draft.add_reference(f"artifact://{source.id}/d")
        with pytest.raises(ArtifactNotFoundError, match=f"no version {'0' * 64} in the store"):
            draft.add_reference(f"artifact://{'0' * 64}/y.csv")
        with pytest.raises(UsageError, match="ref_url"):
            draft.add_reference("artifact://nothex/y.csv")
        draft.add_reference(f"artifact://{source.id}/y.csv")
        source.delete(delete_aliases=True)  # after the add, before the log
        with pytest.raises(VersionDeletedError, match="deleted .*not deleted"):
            run.log_artifact(draft)
        with pytest.raises(VersionDeletedError, match="not deleted"):
            artifacts.Artifact("other", "dataset").add_reference(f"artifact://{source.id}/y.csv")

    elsewhere = str(tmp_path / "elsewhere")
    with artifacts.init(store=elsewhere) as run:
        other = logged(run, "raw2", {"z.csv": "z"})
    draft = artifacts.Artifact("derived", "dataset")
    draft.add_reference(other.get_entry("z.csv"))  # the entry knows its store
    with artifacts.init(store=str(ws / ".artifacts")) as run:
        with pytest.raises(ArtifactNotFoundError, match="in the store .*: log .* pull") as caught:
            run.log_artifact(draft)
        assert "\n" not in str(caught.value)
        with pytest.raises(ArtifactNotFoundError, match="no version"):  # the run's store
            draft.add_reference(other.get_entry("z.csv").ref_url(), name="again.csv")
    assert draft.is_draft()


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
    # W&B's ensure_logged ones; a draft's digest, size and manifest are computed, its id None
    for read in ("version", "file_count", "created_at", "entity"):
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


# ---- reading without a run: artifacts.Api() ------------------------------------------


def log_versions(name: str = "artifact", type: str = "type", count: int = 2, **init: Any):
    """``count`` versions of ``name``; the last holds alias ``alias``."""
    made = []
    with artifacts.init(job_type="produce", **init) as run:
        for i in range(count):
            artifact = artifacts.Artifact(name, type)
            with artifact.new_file("data.txt") as f:
                f.write(f"version {i}\n")
            made.append(run.log_artifact(artifact, aliases=["alias"] if i == count - 1 else []))
    return made


def test_api_artifact_docstring_examples(ws):
    v0, v1 = log_versions()
    # Specify the project, artifact's name, and the artifact's alias
    assert artifacts.Api().artifact(name="proj/artifact:alias").id == v1.id
    # Specify the project, artifact's name, and a specific artifact version
    assert artifacts.Api().artifact(name="proj/artifact:v0").id == v0.id
    # Specify the entity, project, artifact's name, and the artifact's alias
    assert artifacts.Api().artifact(name="team/proj/artifact:alias").id == v1.id
    # Specify the entity, project, artifact's name, and a specific artifact version
    assert artifacts.Api().artifact(name="team/proj/artifact:v1").id == v1.id
    assert artifacts.Api().artifact("artifact").version == "v1"  # latest by default
    with pytest.raises(artifacts.ArtifactNotFoundError):
        artifacts.Api().artifact("artifact:v0", type="model")


def test_api_artifact_exists_docstring_example(ws):
    log_versions()
    assert artifacts.Api().artifact_exists("team/proj/artifact:v1")
    assert artifacts.Api().artifact_exists("team/proj/artifact:alias")
    assert not artifacts.Api().artifact_exists("team/proj/artifact:v2")
    assert not artifacts.Api().artifact_exists("team/proj/other:latest")
    assert not artifacts.Api().artifact_exists("team/proj/artifact:v0", type="model")


def test_api_artifacts_docstring_example_lists_versions_newest_first(ws):
    log_versions(count=3)
    found = artifacts.Api().artifacts(type_name="type", name="team/proj/artifact")
    assert [a.version for a in found] == ["v2", "v1", "v0"]
    api = artifacts.Api()
    # Consume the first page of results.
    page_size = 2
    versions = api.artifacts(type_name="type", name="team/proj/artifact", per_page=page_size)
    first_page = list(islice(versions, page_size))
    assert [a.name for a in first_page] == ["artifact:v2", "artifact:v1"]
    # The deprecated name gives the same.
    assert [a.id for a in api.artifact_versions("type", "artifact")] == [a.id for a in found]
    with pytest.raises(artifacts.ArtifactNotFoundError):
        api.artifacts("model", "artifact")  # another type: not found, as in W&B


def test_api_artifact_collection_docstring_example(ws, tmp_path):
    log_versions()
    collections = artifacts.Api().artifact_collection(type_name="type", name="team/proj/artifact")
    # Get the first artifact in the collection
    artifact_example = collections.artifacts()[0]
    # Download the contents of the artifact to the specified root directory.
    root = artifact_example.download()
    assert Path(root, "data.txt").read_text() == "version 1\n"
    assert (collections.name, collections.type) == ("artifact", "type")
    assert [a.version for a in collections.versions()] == ["v1", "v0"]
    assert collections.aliases == ["latest", "alias"]
    assert artifacts.Api().artifact_collection_exists(type="type", name="artifact")
    assert not artifacts.Api().artifact_collection_exists(type="model", name="artifact")
    assert not artifacts.Api().artifact_collection_exists(type="type", name="proj/other")


def test_api_lists_types_and_collections_of_a_project(ws):
    log_versions("raw", "dataset", 1)
    log_versions("clean", "dataset", 1)
    log_versions("net", "model", 1)
    api = artifacts.Api()
    assert [t.name for t in api.artifact_types("proj")] == ["dataset", "model"]
    assert [c.name for c in api.artifact_type("dataset", "team/proj").collections()] == [
        "clean",
        "raw",
    ]
    assert [c.name for c in api.artifact_collections("proj", "model")] == ["net"]
    assert api.artifact_types("other") == []
    with pytest.raises(artifacts.ArtifactNotFoundError):
        api.artifact_type("code", "proj")


def test_api_overrides_and_store_choose_where_to_read(ws, tmp_path, monkeypatch):
    store = str(tmp_path / "elsewhere")
    log_versions("raw", "dataset", 1, store=store, entity="lab", project="vision")
    api = artifacts.Api(overrides={"entity": "lab", "project": "vision"}, store=store)
    assert api.artifact("raw").qualified_name == "lab/vision/raw:v0"
    monkeypatch.setenv("ARTIFACTS_STORE", store)
    assert artifacts.Api().artifact("lab/vision/raw:v0").version == "v0"


def test_api_refuses_a_local_store_that_does_not_exist_and_creates_none(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(artifacts.UsageError, match="no store at"):
        artifacts.Api(store=str(missing))
    assert not missing.exists()


def test_run_logged_artifacts_docstring_example(ws):
    with tempfile.NamedTemporaryFile(mode="w", delete=False, suffix=".txt") as tmp:
        tmp.write("This is a test artifact")
        tmp_path = tmp.name
    run = artifacts.init(project="artifact-example")
    artifact = artifacts.Artifact("test_artifact", type="dataset")
    artifact.add_file(tmp_path)
    run.log_artifact(artifact)
    run.finish()

    api = artifacts.Api()
    finished_run = api.run(f"{run.entity}/{run.project}/{run.id}")
    names = [logged_artifact.name for logged_artifact in finished_run.logged_artifacts()]
    assert names == ["test_artifact:v0"]


def test_run_used_artifacts_docstring_example(ws):
    log_versions("test_artifact", "dataset", 1, project="artifact-example")
    run = artifacts.init(project="artifact-example")
    run.use_artifact("test_artifact:latest")
    run.finish()

    api = artifacts.Api()
    finished_run = api.run(f"{run.entity}/{run.project}/{run.id}")
    assert [a.name for a in finished_run.used_artifacts()] == ["test_artifact:v0"]
    assert api.run(f"artifact-example/{run.id}").id == run.id  # the default entity
    assert api.run(f"{run.entity}/artifact-example/runs/{run.id}").id == run.id  # W&B's URL
    with pytest.raises(artifacts.RunNotFoundError):
        api.run("artifact-example/nosuchrun")


def test_api_runs_filters_by_group_job_type_and_config(ws):
    with artifacts.init(group="sweep", job_type="train", config={"experiment_name": "foo"}):
        pass
    with artifacts.init(group="sweep", job_type="eval", config={"experiment_name": "bar"}):
        pass
    with artifacts.init(job_type="train") as other:
        pass
    api = artifacts.Api()
    # Find runs in project where config.experiment_name has been set to "foo"
    foo = api.runs(path="team/proj", filters={"config.experiment_name": "foo"})
    assert [r.job_type for r in foo] == ["train"]
    assert [r.job_type for r in api.runs("proj", filters={"group": "sweep"})] == ["train", "eval"]
    assert [r.id for r in api.runs(filters={"group": None, "jobType": "train"})] == [other.id]
    assert [r.job_type for r in api.runs(order="-created_at")] == ["train", "eval", "train"]
    with pytest.raises(artifacts.UsageError, match=r"\$regex"):
        api.runs(filters={"config.experiment_name": {"$regex": "b.*"}})
    with pytest.raises(artifacts.UsageError, match="cannot match"):
        api.runs(filters={"createdAt": 1})


@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_reading_with_api_writes_nothing_to_the_store(ws, make_spec, open_store, backend):
    spec = make_spec(backend)
    options = dict(store=spec["url"], store_options=spec["options"])
    with artifacts.init(project="p", job_type="prep", **options) as run:
        raw = artifacts.Artifact("raw", "dataset")
        raw.add_file(write(ws / "raw.txt", "raw\n"))
        run.log_artifact(raw, aliases=["best"])
    with artifacts.init(project="p", job_type="train", **options) as run:
        run.use_artifact("raw:best")
        model = artifacts.Artifact("model", "model")
        model.add_file(write(ws / "w.bin", b"\0weights"))
        run.log_artifact(model)
    storage = open_store(spec)

    def snapshot() -> dict[str, bytes]:
        return {key: storage.get(key) for key in storage.list("")}

    before = snapshot()
    api = artifacts.Api(overrides={"project": "p"}, **options)
    version = api.artifact("model:latest", type="model")
    assert [a.name for a in version.logged_by().used_artifacts()] == ["raw:v0"]
    assert api.artifact_exists("raw:best") and not api.artifact_exists("raw:v9")
    assert [a.version for a in api.artifacts("dataset", "raw")] == ["v0"]
    assert [c.name for t in api.artifact_types() for c in t.collections()] == ["raw", "model"]
    assert api.artifact_collection("dataset", "raw").aliases == ["latest", "best"]
    for found in api.runs(filters={"job_type": "train"}):
        assert [a.name for a in found.logged_artifacts()] == ["model:v0"]
        assert api.run(found.id).job_type == "train"
    assert [r.job_type for r in api.artifact("raw:v0").used_by()] == ["train"]
    assert api.artifact("raw:v0").collection.created_at is not None
    assert snapshot() == before


# ---- lineage you can walk ------------------------------------------------------------


def test_init_records_the_config_converted_like_metadata(ws):
    when = datetime.datetime(2024, 5, 1, 12, 0)
    config = {"lr": 0.001, "layers": (64, 32), "when": when, 1: "one"}
    with artifacts.init(config=config, group="g", job_type="train", name="nice") as run:
        assert run.config == {"lr": 0.001, "layers": [64, 32], "when": when.isoformat(), "1": "one"}
    found = artifacts.Api().run(run.id)
    assert found.config == run.config
    assert (found.group, found.job_type, found.name) == ("g", "train", "nice")
    assert found.created_at.endswith("Z") and found.ended_at >= found.created_at
    assert found.path == [ENTITY, PROJECT, run.id]
    with pytest.raises(artifacts.UsageError, match="config"):
        artifacts.init(config={"bad": object()})
    assert artifacts.current_run() is None  # refused before anything was recorded


@pytest.mark.parametrize("option", [{"job_type": 5}, {"name": {"a": 1}}, {"job_type": ["x"]}])
def test_init_refuses_a_job_type_or_name_that_is_no_string(ws, option):
    """Recorded as given, it made `artifacts show` of every version the run logged fail
    with "internal error: TypeError: sequence item 0: expected str instance"."""
    with pytest.raises(artifacts.UsageError, match="a string"):
        artifacts.init(**option)
    assert artifacts.current_run() is None  # refused before anything was recorded
    assert artifacts.Api().runs() == []


@pytest.mark.parametrize("store", ["", 5])
def test_an_empty_store_is_refused_not_taken_as_none(ws, store):
    """init(store=os.environ.get("TEAM_STORE", "")) with the variable unset logged into
    the .artifacts/ found from the working directory, saying nothing (as the CLI's
    `--store ''` is refused); a store that is no string raised AttributeError."""
    with pytest.raises(artifacts.UsageError, match="store"):
        artifacts.init(store=store)
    assert artifacts.current_run() is None
    with pytest.raises(artifacts.UsageError, match="store"):
        artifacts.Api(store=store)


def test_use_artifact_of_a_version_of_another_store_is_refused(ws, tmp_path):
    """It was recorded as used by a run of a store without it: the run's
    used_artifacts() (and the lineage of what it logged) then failed for good with
    ObjectNotFoundError."""
    write(ws / "f.txt", "data")
    with artifacts.init() as run:
        version = run.log_artifact("f.txt", name="data", type="dataset")
    elsewhere = str(tmp_path / "elsewhere")
    with artifacts.init(store=elsewhere) as run:
        with pytest.raises(artifacts.ArtifactNotFoundError, match="bring it here first"):
            run.use_artifact(version)
    assert artifacts.Api(store=elsewhere).run(run.id).used_artifacts() == []
    with artifacts.init() as run:  # its own store's run takes it
        run.use_artifact(version)
    assert [a.name for a in artifacts.Api().run(run.id).used_artifacts()] == ["data:v0"]


def test_api_reads_the_store_its_overrides_name(ws, tmp_path):
    """overrides={"store": ...} was ignored: Api() read the store of the run this process
    started last, and gave its versions for the other's, saying nothing."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    for store, text in ((other, "other's"), (mine, "mine")):
        write(ws / "f.txt", text)
        with artifacts.init(store=str(store)) as run:
            run.log_artifact("f.txt", name="data", type="dataset")
    api = artifacts.Api(overrides={"store": str(other)})
    assert (
        api.artifact("data:v0").digest == artifacts.Api(store=str(other)).artifact("data:v0").digest
    )
    out = api.artifact("data:v0").download(str(tmp_path / "out"))
    assert tree_of(out) == {"f.txt": b"other's"}


def test_init_uses_the_given_id_and_refuses_to_replace_an_existing_run(ws):
    with artifacts.init(id="fixed-id", job_type="prep") as run:
        log_versions("raw", "dataset", 1)  # another run
        run.use_artifact("raw:v0")
    assert run.id == "fixed-id"
    with pytest.raises(artifacts.UsageError, match="resume='allow'"):
        artifacts.init(id="fixed-id")
    # Its lineage is intact: the record was not replaced.
    assert [a.name for a in artifacts.Api().run("fixed-id").used_artifacts()] == ["raw:v0"]
    with pytest.raises(InvalidNameError):
        artifacts.init(id="a/b")


def test_resume_continues_the_record_of_an_existing_run(ws):
    with artifacts.init(id="r1", job_type="train", config={"lr": 0.1}) as run:
        first = run.log_artifact(make_model("a"))
    started = artifacts.Api().run("r1").created_at
    with artifacts.init(id="r1", resume="allow", config={"epochs": 3}) as run:
        second = run.log_artifact(make_model("b"))
        assert artifacts.Api().run("r1").ended_at is None  # running again
    found = artifacts.Api().run("r1")
    assert [a.id for a in found.logged_artifacts()] == [first.id, second.id]
    assert found.created_at == started and found.job_type == "train"
    assert found.config == {"lr": 0.1, "epochs": 3}
    with artifacts.init(id="r1", resume="must"):
        pass
    with pytest.raises(artifacts.UsageError, match="does not exist"):
        artifacts.init(id="r2", resume="must")
    with artifacts.init(id="r3", resume="allow") as fresh:
        assert fresh.id == "r3"
    with pytest.raises(artifacts.UsageError, match="resume must be"):
        artifacts.init(id="r4", resume="sometimes")


def make_model(content: str) -> artifacts.Artifact:
    model = artifacts.Artifact("model", "model")
    with model.new_file("weights.bin") as f:
        f.write(content)
    return model


def test_from_a_model_back_to_the_raw_dataset_with_public_calls(ws):
    """The walk docs/artifacts.md shows (section 7), run as written there."""
    with artifacts.init(job_type="collect") as run:
        raw = artifacts.Artifact("raw-data", "dataset")
        raw.add_file(write(ws / "raw.csv", "x\n1\n"))
        run.log_artifact(raw)
    with artifacts.init(job_type="preprocess") as run:
        run.use_artifact("raw-data:latest")
        clean = artifacts.Artifact("clean-data", "dataset")
        clean.add_file(write(ws / "clean.csv", "x\n1\n2\n"))
        run.log_artifact(clean)
    with artifacts.init(job_type="train", config={"lr": 0.01}) as run:
        run.use_artifact("clean-data:latest")
        run.log_artifact(make_model("w"), aliases=["prod"])

    api = artifacts.Api()
    model = api.artifact("model:prod")
    training = model.logged_by()
    assert training.config == {"lr": 0.01}
    (dataset,) = training.used_artifacts()
    (raw_dataset,) = dataset.logged_by().used_artifacts()
    assert raw_dataset.name == "raw-data:v0"
    assert [r.job_type for r in raw_dataset.used_by()] == ["preprocess"]
    assert [a.name for a in raw_dataset.logged_by().logged_artifacts()] == ["raw-data:v0"]
    assert isinstance(training, artifacts.RunRecord)


# ---- properties as W&B gives them ------------------------------------------------------


def test_a_logged_version_has_w_and_b_names_state_and_times(ws):
    draft = artifacts.Artifact("data", "dataset")
    draft.add_file(write(ws / "a.txt", "a"))
    assert (draft.name, draft.source_name, draft.state) == ("data", "data", "PENDING")
    with artifacts.init() as run:
        logged = run.log_artifact(draft)
        assert logged.name == "data:v0"
        assert logged.state == "COMMITTED"
        assert logged.source_name == "data:v0"
        assert (logged.source_entity, logged.source_project) == (ENTITY, PROJECT)
        assert logged.source_version == "v0"
        assert logged.source_qualified_name == logged.qualified_name == "team/proj/data:v0"
        assert logged.collection.name == "data" and logged.collection.type == "dataset"
        assert [a.id for a in logged.collection.versions()] == [logged.id]
        assert logged.file_count == 1
        when = datetime.datetime.fromisoformat(logged.created_at.replace("Z", "+00:00"))
        age = datetime.datetime.now(datetime.timezone.utc) - when
        assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=5)
        assert logged.updated_at == logged.created_at
        assert logged.distributed_id is None
        with pytest.raises(artifacts.ArtifactStateError):
            logged.name = "renamed"
        used = run.use_artifact("data:latest")
        assert used.name == "data:v0"
        assert used.download().endswith("data:v0")
    with pytest.raises(artifacts.ArtifactStateError):
        artifacts.Artifact("x", "t").created_at  # noqa: B018


def test_distributed_parts_and_versions_give_their_distributed_id(ws):
    with artifacts.init() as run:
        part = artifacts.Artifact("dist", "dataset")
        part.add_file(write(ws / "one.txt", "1"))
        run.upsert_artifact(part, distributed_id="batch-7")
        assert part.distributed_id == "batch-7"
    with artifacts.init() as run:
        final = artifacts.Artifact("dist", "dataset")
        final.distributed_id = "batch-7"  # W&B's way: set on the artifact
        run.finish_artifact(final)
    assert final.distributed_id == "batch-7"
    assert final.file_count == 1


def test_a_drafts_digest_is_the_logged_digest_and_stores_nothing(ws):
    root = ws / "data"
    write(root / "x.txt", "x")
    write(root / "sub" / "y.txt", "y")
    draft = artifacts.Artifact("data", "dataset")
    draft.add_dir(str(root))
    draft.add_file(write(ws / "extra.txt", "e"), name="sub/extra.txt")
    draft.add_reference((ws / "extra.txt").as_uri(), name="ref/extra")
    store = ws / ".artifacts"
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    digest = draft.digest
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    with artifacts.init() as run:
        assert run.log_artifact(draft).digest == digest
        edited = draft.new_draft()
        edited.remove("sub/")
        edited.add_file(write(ws / "z.txt", "z"))
        digest = edited.digest
        assert run.log_artifact(edited).digest == digest
    empty = artifacts.Artifact("empty", "t")
    digest = empty.digest
    with artifacts.init() as run:
        assert run.log_artifact(empty).digest == digest


# ---- the download cache (item 6) ----------------------------------------------------
# From `wandb artifact cache cleanup --help` (wandb 0.31, wandb/cli/cli.py); W&B's
# command is `wandb artifact cache cleanup`, ours `artifacts cache cleanup`.


def test_wandb_cache_cleanup_example(download_cache_dir: Path) -> None:
    """$ wandb artifact cache cleanup 10GB"""
    cache = DownloadCache(str(download_cache_dir))
    cache.put_bytes(bytes(32), b"x")
    assert main(["cache", "cleanup", "10GB"]) == 0
    assert cache.has(bytes(32)), "well under 10GB: nothing to trim"


def test_wandb_cache_cleanup_remove_temp_example(download_cache_dir: Path) -> None:
    """$ wandb artifact cache cleanup --remove-temp 5GB"""
    (download_cache_dir / "tmp").mkdir(parents=True)
    (download_cache_dir / "tmp" / ".part-123-0").write_bytes(b"x")  # a killed download's
    assert main(["cache", "cleanup", "--remove-temp", "5GB"]) == 0
    assert not (download_cache_dir / "tmp" / ".part-123-0").exists()


# ---- log_artifact of a path (wandb_run._prepare_artifact) ----------------------------


def test_log_artifact_of_a_path_is_named_after_the_run_and_the_path_as_in_w_and_b(ws):
    write(ws / "model.pt", "weights")
    write(ws / "data" / "a.txt", "a")
    with artifacts.init() as run:
        one = run.log_artifact("model.pt")
        folder = run.log_artifact(Path("data"), type="dataset")
        named = run.log_artifact("model.pt", name="mine")
    assert (one.name, one.type) == (f"run-{run.id}-model.pt:v0", "unspecified")
    assert (folder.name, folder.type) == (f"run-{run.id}-data:v0", "dataset")
    assert [e.path for e in folder.files()] == ["a.txt"]
    assert named.name == "mine:v0"


def test_log_artifact_of_a_uri_logs_a_reference_as_in_w_and_b(ws):
    path = write(ws / "table.csv", "x,y\n")
    with artifacts.init() as run:
        version = run.log_artifact(f"file://{path}", name="table", type="dataset")
    (entry,) = version.files()
    assert (entry.path, entry.ref) == ("table.csv", f"file://{path}")


# ---- entry names as W&B reads them (LogicalPath) --------------------------------------


def test_entry_names_may_be_path_objects_or_spelled_with_dot_segments_as_in_w_and_b(ws):
    write(ws / "x.txt", "x")
    write(ws / "data" / "a.txt", "a")
    artifact = artifacts.Artifact("data", "dataset")
    entry = artifact.add_file(Path("x.txt"), name=Path("models") / "x.txt")
    assert entry.path == "models/x.txt"
    artifact.add_file("x.txt", name="./dot//y.txt")
    artifact.add_dir(Path("data"), name=Path("imgs"))
    with artifact.new_file(Path("notes") / "n.txt") as f:
        f.write("n")
    artifact.remove(Path("notes"))
    with artifacts.init() as run:
        run.log_artifact(artifact)
    assert [e.path for e in artifact.files()] == ["dot/y.txt", "imgs/a.txt", "models/x.txt"]
    for spelled in (Path("models/x.txt"), "./models/x.txt", "models//x.txt"):
        assert artifact.get_entry(spelled).path == "models/x.txt"
        assert artifact.manifest.get_entry_by_path(spelled).path == "models/x.txt"
    assert [e.path for e in artifact.files(names=[Path("imgs/a.txt")])] == ["imgs/a.txt"]


def test_download_gives_back_a_str_and_by_default_an_absolute_path_as_in_w_and_b(ws):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a"})
    expected = os.path.join(str(ws), "artifacts", "data:v0")
    assert version.download() == expected  # W&B: os.path.abspath("./artifacts")/name
    assert version.get_entry("a.txt").download() == os.path.join(expected, "a.txt")
    os.mkdir("elsewhere")
    os.chdir("elsewhere")  # the path given back still names what was downloaded
    assert tree_of(expected) == {"a.txt": b"a"}
    given = version.download(root=ws / "out")
    assert given == str(ws / "out") and type(given) is str
    assert type(version.checkout(ws / "co")) is str


def test_use_artifact_of_a_draft_logs_it_then_uses_it_as_in_w_and_b(ws):
    """W&B's way to record external data as a run's input: a draft of references."""
    path = write(ws / "raw.csv", "1,2\n")
    draft = artifacts.Artifact("raw", "dataset")
    draft.add_reference(f"file://{path}")
    with artifacts.init() as run:
        used = run.use_artifact(draft, aliases=["input"])
    assert used is draft and not draft.is_draft()
    assert (draft.version, sorted(draft.aliases)) == ("v0", ["input", "latest"])
    assert [r.id for r in draft.used_by()] == [run.id]


# ---- which store Api() reads, where download() writes, members scripts call -------------


def test_api_without_a_store_reads_the_runs_store_as_w_and_b_reads_the_runs_server(ws, tmp_path):
    (default,) = log_versions("raw", "dataset", 1)  # the working directory's store has raw too
    elsewhere = str(tmp_path / "elsewhere")
    with artifacts.init(store=elsewhere) as run:
        made = logged(run, "raw", {"data.txt": "from elsewhere"})
        assert artifacts.Api().artifact("raw:latest").id == made.id  # the run's store
    # The run is over; the process still reads its store, as W&B's Api stays logged
    # in to the server the run used. A store given to Api wins.
    found = artifacts.Api().artifact("raw:latest")
    assert (found.id, Path(found.download(), "data.txt").read_text()) == (made.id, "from elsewhere")
    assert artifacts.Api(store=str(ws / ".artifacts")).artifact("raw:latest").id == default.id
    with artifacts.init(store=str(ws / ".artifacts")):  # an active run's store comes first
        assert artifacts.Api().artifact("raw:latest").id == default.id
        assert artifacts.Api(store=elsewhere).artifact("raw:latest").id == made.id
    with artifacts.init():  # the last run's store: found as init finds it
        pass
    assert artifacts.Api().artifact("raw:latest").id == default.id


def test_save_and_artifacts_fs_without_a_store_use_the_store_api_reads(ws, tmp_path):
    """W&B's save() with no run, and its URLs, go to the server its runs use: here, the
    store of the active run, else of the last one, as Api() reads."""
    import fsspec

    elsewhere = str(tmp_path / "elsewhere")
    with artifacts.init(store=elsewhere) as run:
        made = logged(run, "raw", {"a.txt": "a"})
        with fsspec.open(made.url + "/a.txt", "rb") as f:  # the active run's store
            assert f.read() == b"a"
    draft = artifacts.Artifact("saved", "dataset")
    draft.add_file(write(ws / "b.txt", "b"))
    draft.save()  # no active run: a short one in the last run's store
    assert artifacts.Api(store=elsewhere).artifact("saved:latest").id == draft.id
    assert artifacts.Api().artifact("saved:latest").id == draft.id
    with fsspec.open(draft.url + "/b.txt", "rb") as f:
        assert f.read() == b"b"
    here = {"store": str(ws / ".artifacts")}  # a store given still wins
    with pytest.raises(FileNotFoundError):
        fsspec.open(draft.url + "/b.txt", "rb", **here).open()
    with artifacts.init(store="memory://") as run:  # a store only the run's connection holds
        in_memory = logged(run, "mem", {"c.txt": "c"})
        first = fsspec.filesystem("artifacts")
        assert first.cat_file(in_memory.url + "/c.txt") == b"c"
    with artifacts.init(store="memory://"):  # another, empty store of the same URL
        with pytest.raises(FileNotFoundError):
            fsspec.open(in_memory.url + "/c.txt", "rb").open()
    assert first.cat_file(in_memory.url + "/c.txt") == b"c"  # a filesystem keeps its store


def test_download_writes_below_artifacts_artifact_dir_as_w_and_b_below_wandb_artifact_dir(
    ws, monkeypatch
):
    with artifacts.init() as run:
        version = logged(run, "data", {"a.txt": "a"})
    monkeypatch.setenv("ARTIFACTS_ARTIFACT_DIR", "downloads")  # relative: to the cwd now
    expected = os.path.join(str(ws), "downloads", "data:v0")
    assert version.download() == expected
    assert version.get_entry("a.txt").download() == os.path.join(expected, "a.txt")
    assert tree_of(expected) == {"a.txt": b"a"}
    assert main(["download", "data:v0"]) == 0  # the command's default too
    assert not os.path.exists(ws / "artifacts")


def test_w_and_b_members_a_script_calls_on_a_draft_and_a_version(ws):
    import fsspec

    write(ws / "a.txt", "a")
    write(ws / "src" / "sub" / "b.txt", "b")
    draft = artifacts.Artifact("data", "dataset", incremental=True, use_as="input")
    entry = draft.add_file("a.txt")
    assert entry.local_path == str(ws / "a.txt")  # the file logging will read
    draft.add_dir("src", name="d")
    assert draft.get_added_local_path_name("a.txt") == "a.txt"
    assert draft.get_added_local_path_name(os.path.join("src", "sub", "b.txt")) == "d/sub/b.txt"
    assert draft.get_added_local_path_name("nope.txt") is None
    assert (draft.incremental, draft.use_as) == (True, None)  # use_as: W&B's, deprecated
    with pytest.raises(artifacts.ArtifactNotLoggedError):
        draft.history_step  # noqa: B018
    with pytest.raises(UsageError, match="add_file"):
        draft.add(object(), "table")  # W&B's media objects (wandb.Table…) do not exist here

    with artifacts.init() as run:
        version = run.log_artifact(draft)
    assert version.get_added_local_path_name("a.txt") == "a.txt"  # kept, as in W&B
    assert version.commit_hash == version.id
    assert version.history_step is None  # a run here logs no history steps
    assert version.url == "artifacts://team/proj/data:v0"
    with fsspec.open(version.url + "/d/sub/b.txt", "rb") as f:
        assert f.read() == b"b"
    assert version.json_encode() == {
        "_type": "artifactVersion",
        "_version": "v0",
        "id": version.id,
        "version": "v0",
        "sequenceName": "data",
        "usedAs": None,
    }
    assert version.get_entry("a.txt").local_path is None  # as W&B's entries of a logged version
    with pytest.raises(UsageError, match="get_entry"):
        version.get("table")


def test_times_are_in_w_and_bs_format_which_scripts_parse_with_strptime(ws):
    write(ws / "a.txt", "a")
    with artifacts.init() as run:
        data = artifacts.Artifact("data", "dataset")
        data.add_file("a.txt")
        run.log_artifact(data)
    api = artifacts.Api()
    version, recorded = api.artifact("data:v0"), api.run(run.path)
    times = [version.created_at, version.updated_at, version.collection.created_at]
    times += [version.collection.updated_at, recorded.created_at, recorded.ended_at]
    for when in times:  # W&B's: "2023-01-01T12:00:00Z", UTC to the second
        parsed = datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ")
        age = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - parsed
        assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=5)
