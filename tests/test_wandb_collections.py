"""W&B's ArtifactCollection as its users edit it (wandb 0.31): ``description`` and
``tags`` set, then ``save()``; read back by any later ``Api()``; a record of its own."""

from __future__ import annotations

import pytest

import artifacts
import remotes
from artifacts.collection_info import CollectionInfo
from artifacts.errors import InvalidTagError
from artifacts.refpolicy import ARTIFACT_REFS
from cas import Repository
from cas.errors import InvalidObjectError
from cas.fsck import fsck
from cas.objects import Blob, canonical_packb
from tests.helpers import write


def log_data(ws, text: str = "a") -> None:
    write(ws / "a.txt", text)
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", type="dataset")


def collection() -> artifacts.public.ArtifactCollection:
    return artifacts.Api(overrides={"project": "proj"}).artifact_collection("dataset", "data")


def test_a_collections_description_and_tags_are_saved_as_in_w_and_b(ws):
    log_data(ws)
    found = collection()
    assert (found.description, found.tags) == (None, [])
    logged_at = found.updated_at
    found.description = "Raw scans, one per patient"
    found.tags = ["raw", "scans"]
    found.save()
    again = collection()
    assert again.description == "Raw scans, one per patient"
    assert again.tags == ["raw", "scans"]
    assert again.updated_at >= logged_at
    assert artifacts.Api().artifact_type("dataset", "proj").collections()[0].tags == [
        "raw",
        "scans",
    ]
    # the versions are not touched
    (version,) = again.artifacts()
    assert (version.description, version.tags) == (None, [])


def test_save_applies_what_this_object_changed_over_the_newest_record(ws):
    log_data(ws)
    one, two = collection(), collection()
    assert two.tags == []  # read now, before one saves
    one.tags = ["raw"]
    one.save()
    two.tags = ["scans"]
    two.description = "by two"
    two.save()  # adds its tag, keeps the one saved meanwhile
    assert (collection().tags, collection().description) == (["raw", "scans"], "by two")
    one.tags = []
    one.save()  # removes "raw", which it had; leaves "scans"
    assert collection().tags == ["scans"]
    assert collection().description == "by two"  # one did not change it


def test_a_collection_refuses_bad_tags_and_renaming_or_retyping(ws):
    log_data(ws)
    found = collection()
    found.tags = ["no/slash"]
    with pytest.raises(InvalidTagError):  # a ValueError, as W&B's
        found.save()
    found = collection()
    found.name = "renamed"
    with pytest.raises(artifacts.errors.UnsupportedError, match="rename"):
        found.save()
    found = collection()
    found.type = "model"
    with pytest.raises(artifacts.errors.UnsupportedError, match="type"):
        found.save()
    assert collection().tags == []


def test_deleting_a_collection_deletes_its_record(ws):
    log_data(ws)
    found = collection()
    found.description = "gone soon"
    found.save()
    found.delete()
    log_data(ws, "again")
    assert collection().description is None


def test_the_collection_record_vector_of_the_format_doc(format_vectors) -> None:
    made = CollectionInfo("Raw scans", ("raw", "scans"), 1700000000000000000).to_blob()
    assert format_vectors["collection-record"]["bytes"] == made.to_bytes()
    assert format_vectors["collection-record"]["id"] == made.id
    assert CollectionInfo.from_blob(made.id, made.data).tags == ("raw", "scans")


def test_a_hostile_collection_record_is_refused(ws):
    bad = Blob(canonical_packb({"description": 3, "tags": [], "updated": 0}))
    with pytest.raises(InvalidObjectError, match="description"):
        CollectionInfo.from_blob(bad.id, bad.data)


def test_a_collections_record_goes_through_a_push_and_a_clone_fsck_clean(ws):
    log_data(ws)
    found = collection()
    found.description, found.tags = "pushed", ["raw"]
    found.save()
    repo = Repository.open(str(ws / ".artifacts"))
    assert fsck(repo).ok
    remotes.add_remote(repo, "origin", str(ws / "remote"))
    remotes.push(repo, "origin", ["data"], policy=ARTIFACT_REFS)
    clone = remotes.clone(str(ws / "remote"), str(ws / "b"), policy=ARTIFACT_REFS)
    assert fsck(clone).ok
    there = artifacts.Api(store=clone.url, overrides={"project": "proj"})
    pushed = there.artifact_collection("dataset", "data")
    assert (pushed.description, pushed.tags) == ("pushed", ["raw"])


def test_a_collections_aliases_leave_out_an_alias_removed(ws):
    """A removed alias's ref stays as a tombstone, and its name was listed as held."""
    log_data(ws)
    version = artifacts.Api(overrides={"project": "proj"}).artifact("data:v0")
    version.aliases.append("best")
    version.save()
    assert collection().aliases == ["latest", "best"]
    version.aliases.remove("best")
    version.save()
    assert collection().aliases == ["latest"]


def test_an_artifact_type_gives_one_collection_by_name_as_w_and_bs(ws):
    log_data(ws)
    dataset = artifacts.Api(overrides={"project": "proj"}).artifact_type("dataset", "proj")
    found = dataset.collection("data")
    assert (found.name, found.type, [v.version for v in found.versions()]) == (
        "data",
        "dataset",
        ["v0"],
    )
    with pytest.raises(artifacts.errors.CommError, match="no artifact team/proj/nope"):
        dataset.collection("nope")
    with artifacts.init(project="proj") as run:
        run.log_artifact(write(ws / "m.bin", "m"), name="net", type="model")
    with pytest.raises(artifacts.errors.CommError, match="of type 'dataset'"):
        dataset.collection("net")  # an artifact of another type


def test_a_missing_collection_or_type_is_w_and_bs_value_error_and_still_a_comm_error(ws):
    log_data(ws)
    api = artifacts.Api(overrides={"project": "proj"})
    missing = [
        lambda: api.artifact_collection("dataset", "nope"),  # W&B: "Could not find…"
        lambda: api.artifact_collection("model", "data"),  # there, of another type
        lambda: api.artifact_type("model", "proj"),
        lambda: api.artifacts("dataset", "nope"),
        lambda: api.artifact_type("dataset", "proj").collection("nope"),
    ]
    for call in missing:
        with pytest.raises(ValueError) as raised:
            call()
        assert isinstance(raised.value, artifacts.errors.CommError)


def test_a_collections_tags_set_to_one_string_are_that_one_tag(ws):
    """`collection.tags = "raw"` was saved as the tags 'r', 'a', 'w' (a version's tags
    take a single string as one tag, as W&B's do)."""
    log_data(ws)
    found = collection()
    found.tags = "raw"
    assert found.tags == ["raw"]
    found.save()
    assert collection().tags == ["raw"]
