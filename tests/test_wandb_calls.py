"""W&B's calls as its users write them, keyword for keyword (wandb 0.31): parameters a
script passes to ``wandb`` must be taken, and mean here what they mean there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import artifacts
from tests.helpers import tree_of, write


def test_upsert_and_finish_take_w_and_b_path_name_type_and_keywords(ws):
    write(ws / "shard0" / "a.txt", "a")
    write(ws / "shard1" / "b.txt", "b")
    with artifacts.init(group="g") as worker:
        part = worker.upsert_artifact(
            artifact_or_path="shard0", name="shards", type="dataset", distributed_id="d1"
        )
    assert (part.type, part.distributed_id) == ("dataset", "d1")
    with artifacts.init(group="g") as finisher:
        # W&B's order, positionally
        final = finisher.finish_artifact("shard1", "shards", "dataset", ["best"], "d1")
    assert final.name == "shards:v0"
    assert sorted(final.aliases) == ["best", "latest"]
    assert tree_of(final.download()) == {"a.txt": b"a", "b.txt": b"b"}


def test_download_skips_missing_references_only_when_allowed_as_in_w_and_b(ws):
    kept = write(ws / "kept.csv", "k")
    gone = write(ws / "gone.csv", "g")
    with artifacts.init() as run:
        draft = artifacts.Artifact("refs", "dataset")
        draft.add_reference(f"file://{kept}")
        draft.add_reference(f"file://{gone}")
        draft.add_file(write(ws / "own.txt", "o"))
        version = run.log_artifact(draft)
    os.remove(gone)

    with pytest.raises(FileNotFoundError, match="gone.csv"):  # W&B's class for it
        version.download(str(ws / "strict"))
    with pytest.raises(artifacts.ReferenceChangedError):
        version.download(str(ws / "strict"))
    with pytest.warns(UserWarning, match="gone.csv"):
        root = version.download(str(ws / "lenient"), True)  # W&B's positional order
    assert tree_of(root) == {"kept.csv": b"k", "own.txt": b"o"}

    write(ws / "kept.csv", "changed")  # there but other bytes: never skipped
    with pytest.raises(artifacts.ReferenceChangedError) as raised, pytest.warns(UserWarning):
        version.download(str(ws / "changed"), allow_missing_references=True, multipart=False)
    assert not isinstance(raised.value, FileNotFoundError)


def test_api_listings_take_w_and_b_paging_and_query_keywords(ws):
    write(ws / "a.txt", "a")
    write(ws / "b.txt", "b")
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", type="dataset", tags=["best"])
        run.log_artifact("b.txt", name="data", type="dataset", tags=["other"])
    api = artifacts.Api(overrides={"project": "proj"})
    # W&B's positional order: type_name, name, order, per_page, tags, start
    newest_first = api.artifacts("dataset", "data", None, 10, None, None)
    assert [a.version for a in newest_first] == ["v1", "v0"]
    assert [a.version for a in api.artifacts("dataset", "data", tags="best")] == ["v0"]
    collection = api.artifact_collection("dataset", "data")
    assert len(collection.artifacts(per_page=1, start=None)) == 2
    assert [a.version for a in collection.versions(tags="other")] == ["v1"]
    assert [t.name for t in api.artifact_types("proj", start=None)] == ["dataset"]
    (found,) = api.artifact_collections("proj", "dataset", None, 50, None)
    assert found.name == "data"
    dataset = api.artifact_type("dataset", "proj")
    assert [c.name for c in dataset.collections(None, None, 50, None)] == ["data"]
    assert [f.path for f in newest_first[0].files(per_page=1, start=None)] == ["b.txt"]

    # Filtering and ordering collections are W&B server queries: refused, never ignored
    with pytest.raises(artifacts.UsageError, match="filters"):
        dataset.collections(filters={"name": "data"})
    with pytest.raises(artifacts.UsageError, match="order"):
        api.artifact_collections("proj", "dataset", order="-createdAt")


def test_w_and_b_error_classes_catch_what_wandb_raises_for_a_missing_name(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", type="dataset")
    api = artifacts.Api(overrides={"project": "proj"})
    # W&B's Api wraps "not found" in wandb.errors.CommError (also wandb.CommError)
    with pytest.raises(artifacts.errors.CommError):
        api.artifact("missing:latest")
    with pytest.raises(artifacts.CommError):
        api.artifact("data:v0", type="model")
    with pytest.raises(artifacts.errors.CommError):
        api.artifact_collection("dataset", "missing")
    with pytest.raises(artifacts.errors.CommError):
        api.artifact_type("model", "proj")
    with pytest.raises(artifacts.errors.CommError):
        api.run("proj/nope")
    with artifacts.init(project="proj") as run, pytest.raises(artifacts.errors.CommError):
        run.use_artifact("missing:latest")
    # wandb.Error (wandb.errors.Error) is the base of every error of the package
    assert artifacts.Error is artifacts.errors.Error
    assert issubclass(artifacts.errors.CommError, artifacts.Error)
    assert issubclass(artifacts.UsageError, artifacts.errors.Error)
    # a W&B server feature that does not exist here: wandb.errors.UnsupportedError
    with pytest.raises(artifacts.errors.UnsupportedError):
        api.artifact_type("dataset", "proj").collections(filters={"name": "data"})
    assert issubclass(artifacts.errors.UnsupportedError, artifacts.errors.UsageError)


def test_artifacts_errors_is_there_before_any_other_use_as_wandb_errors():
    code = "import artifacts; print(artifacts.errors.CommError.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "CommError\n"), out.stderr


def test_a_manifest_gives_w_and_b_size_and_manifest_json(ws):
    write(ws / "src" / "a.txt", "aaa")
    write(ws / "src" / "d" / "b.sh", "#!/bin/sh\n")
    os.chmod(ws / "src" / "d" / "b.sh", 0o755)
    table = write(ws / "table.csv", "x,y\n")
    with artifacts.init() as run:
        draft = artifacts.Artifact("data", "dataset")
        draft.add_dir("src")
        draft.add_reference(f"file://{table}")
        manifest = run.log_artifact(draft).manifest
    assert manifest.size() == 3 + 10 + 4  # references count, as in W&B
    dumped = manifest.to_manifest_json()
    assert dumped["version"] == 1
    assert isinstance(dumped["storagePolicy"], str) and dumped["storagePolicyConfig"] == {}
    contents = dumped["contents"]
    assert sorted(contents) == ["a.txt", "d/b.sh", "table.csv"]
    entry = manifest.entries["a.txt"]
    assert contents["a.txt"] == {"digest": entry.digest, "size": 3}  # defaults left out
    assert contents["d/b.sh"]["executable"] is True
    assert contents["table.csv"]["ref"] == f"file://{table}"


def test_aliases_given_to_upsert_go_to_the_finished_version(ws):
    write(ws / "one.txt", "1")
    write(ws / "two.txt", "2")
    with artifacts.init() as first:
        first.upsert_artifact("one.txt", name="dist", aliases=["from-one"], distributed_id="d")
    with artifacts.init() as second:
        second.upsert_artifact("two.txt", name="dist", aliases="dropped", distributed_id="d")
        second.upsert_artifact(
            "two.txt", name="dist", aliases=["from-two"], distributed_id="d", replace=True
        )
    with artifacts.init() as finisher:
        final = finisher.finish_artifact(
            artifacts.Artifact("dist", "unspecified"), aliases=["done"], distributed_id="d"
        )
    assert sorted(final.aliases) == ["done", "from-one", "from-two", "latest"]
    with artifacts.init() as run, pytest.raises(ValueError, match="bad/alias"):
        run.upsert_artifact("one.txt", name="dist", aliases=["bad/alias"], distributed_id="e")


def test_a_recorded_runs_use_artifact_records_the_use_as_w_and_b_public_run(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", type="dataset")
    with artifacts.init(project="proj") as other:
        pass
    api = artifacts.Api(overrides={"project": "proj"})
    finished = api.run(f"proj/{other.id}")
    data = api.artifact("data:v0")
    assert finished.use_artifact(data, use_as="training data") is data
    assert [a.name for a in finished.used_artifacts()] == ["data:v0"]
    assert [r.id for r in data.used_by()] == [other.id]
    finished.use_artifact(data)  # recorded once
    assert api.run(f"proj/{other.id}").used == [data.id]

    # W&B takes a logged version only, and says so with a ValueError
    with pytest.raises(ValueError, match="logged"):
        finished.use_artifact(artifacts.Artifact("draft", "dataset"))
    with pytest.raises(ValueError, match="Api"):
        finished.use_artifact("data:v0")


def test_a_recorded_run_has_w_and_b_state(ws):
    with artifacts.init(project="proj") as finished:
        pass
    with pytest.raises(RuntimeError), artifacts.init(project="proj") as raised:
        raise RuntimeError("training diverged")
    exited = artifacts.init(project="proj")
    exited.finish(exit_code=2)
    running = artifacts.init(project="proj")
    api = artifacts.Api(overrides={"project": "proj"})
    states = {
        run.id: api.run(f"proj/{run.id}").state for run in (finished, raised, exited, running)
    }
    assert states == {
        finished.id: "finished",
        raised.id: "failed",  # W&B's with-block finishes with exit code 1 on an exception
        exited.id: "failed",
        running.id: "running",
    }
    running.finish()


def test_runs_are_filtered_by_state_as_w_and_b_scripts_filter_them(ws):
    with artifacts.init(project="proj") as finished:
        pass
    exited = artifacts.init(project="proj")
    exited.finish(exit_code=1)
    running = artifacts.init(project="proj")
    api = artifacts.Api(overrides={"project": "proj"})

    def ids(state: str) -> list[str]:
        return [r.id for r in api.runs("proj", filters={"state": state})]

    assert (ids("finished"), ids("failed"), ids("running")) == (
        [finished.id],
        [exited.id],
        [running.id],
    )
    assert [r.id for r in api.runs("proj", {"state": "finished", "jobType": None})] == [finished.id]
    running.finish()


def test_api_projects_walk_a_store_as_w_and_b_storage_cleanup_scripts(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="vision") as run:
        run.log_artifact("a.txt", name="images", type="dataset")
        run.log_artifact("a.txt", name="net", type="model")
    with artifacts.init(project="text") as run:
        run.log_artifact("a.txt", name="corpus", type="dataset")
    with artifacts.init(project="runs-only"):
        pass
    api = artifacts.Api()
    assert api.default_entity == "team"
    assert [p.name for p in api.projects()] == ["runs-only", "text", "vision"]
    found = []
    for project in api.projects("team"):  # the walk of W&B's cleanup scripts
        for artifact_type in project.artifacts_types():
            for collection in artifact_type.collections():
                found += [v.qualified_name for v in collection.versions()]
    assert found == ["team/text/corpus:v0", "team/vision/images:v0", "team/vision/net:v0"]
    vision = api.project("vision")
    assert (vision.name, vision.entity, vision.path) == ("vision", "team", ["team", "vision"])
    assert [c.name for c in vision.collections()] == ["images", "net"]
    assert api.projects("nobody") == []


def test_api_artifact_of_another_type_raises_w_and_bs_value_error(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", type="dataset")
    api = artifacts.Api(overrides={"project": "proj"})
    with pytest.raises(ValueError, match="'dataset', not 'model'"):  # W&B's Api: ValueError
        api.artifact("data:v0", type="model")
    assert api.artifact_exists("data:v0", type="model") is False


def test_add_dir_and_file_references_of_a_missing_path_are_w_and_bs_value_errors(ws):
    write(ws / "a.txt", "a")
    draft = artifacts.Artifact("data", "dataset")
    with pytest.raises(ValueError, match="not a directory.*add_file"):  # W&B: ValueError
        draft.add_dir("a.txt")
    with pytest.raises(ValueError, match="no such directory"):
        draft.add_dir("missing")
    with pytest.raises(ValueError, match="no such file or directory"):  # W&B: ValueError
        draft.add_reference((ws / "missing.csv").as_uri())
    with pytest.raises(artifacts.errors.LocalPathError):  # and our UsageError, as before
        draft.add_dir("missing")


def test_tags_logged_with_unchanged_files_go_to_the_latest_version_as_its_aliases_do(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        first = run.log_artifact("a.txt", name="data", tags=["raw"])
        again = run.log_artifact("a.txt", name="data", aliases=["best"], tags=["checked"])
    assert again.version == first.version == "v0"  # no new version: the content is the same
    assert (again.aliases, again.tags) == (["latest", "best"], ["raw", "checked"])
    api = artifacts.Api(overrides={"project": "proj"})
    assert api.artifact("data:v0").tags == ["raw", "checked"]
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", tags=["raw"])  # nothing new: no record
    assert len(api.artifact("data:v0").annotation_history()) == 1


def test_log_artifact_refuses_tags_w_and_b_refuses_and_keeps_each_tag_once(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        with pytest.raises(ValueError, match="no/slash"):  # W&B's validate_tags: ValueError
            run.log_artifact("a.txt", name="data", tags=["ok", "no/slash"])
        assert artifacts.Api(overrides={"project": "proj"}).artifact_exists("data") is False
        logged = run.log_artifact("a.txt", name="data", tags=["raw", "raw", "two words"])
    assert logged.tags == ["raw", "two words"]  # deduplicated, first kept, as W&B's


def test_a_recorded_runs_edits_are_saved_by_update_as_w_and_bs(ws):
    with artifacts.init(project="proj", config={"lr": 0.1}, tags=["baseline"]) as run:
        pass
    api = artifacts.Api(overrides={"project": "proj"})
    found = api.run(run.id)
    found.tags.append("best")  # W&B's way to tag a finished run: edit, then update()
    found.config["score"] = 0.9
    found.notes, found.name, found.group, found.job_type = "winner", "champion", "final", "eval"
    other = api.run(run.id)  # another script edits the same run meanwhile
    other.tags.append("reviewed")
    other.config["epochs"] = 3
    other.update()
    found.update()  # applies its own edits over the other's: none is lost
    again = api.run(run.id)
    assert again.tags == ["baseline", "reviewed", "best"]
    assert again.config == {"lr": 0.1, "epochs": 3, "score": 0.9}
    assert (again.notes, again.name, again.group, again.job_type) == (
        "winner",
        "champion",
        "final",
        "eval",
    )
    again.tags.remove("baseline")
    del again.config["lr"]
    again.update()
    assert (api.run(run.id).tags, api.run(run.id).config) == (
        ["reviewed", "best"],
        {"epochs": 3, "score": 0.9},
    )
    again.tags.append("x" * 65)
    with pytest.raises(ValueError, match="64"):
        again.update()
    assert api.run(run.id).tags == ["reviewed", "best"]


def test_a_store_may_be_given_as_a_path_object_as_w_and_b_takes_its_dirs(ws, tmp_path):
    from pathlib import Path

    write(ws / "a.txt", "a")
    store = Path(tmp_path / "elsewhere" / ".artifacts")
    with artifacts.init(project="proj", store=store) as run:
        run.log_artifact("a.txt", name="data")
    assert artifacts.Api(store=store).artifact("proj/data").version == "v0"


def test_a_recorded_runs_log_artifact_declares_an_output_as_w_and_bs(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as maker:
        maker.log_artifact("a.txt", name="data")
    with artifacts.init(project="proj") as evaluator:
        pass
    api = artifacts.Api(overrides={"project": "proj"})
    data = api.artifact("data:v0")
    recorded = api.run(evaluator.id)
    assert recorded.log_artifact(data, aliases=["evaluated"], tags=["checked"]) is data
    assert [a.name for a in api.run(evaluator.id).logged_artifacts()] == ["data:v0"]
    again = api.artifact("data:evaluated")
    assert (again.version, again.tags) == ("v0", ["checked"])
    assert again.logged_by().id == maker.id  # the version's maker stays its maker
    recorded.log_artifact(data)  # recorded once
    assert api.run(evaluator.id).logged == [data.id]

    # W&B refuses a draft, and a version of another project, with a ValueError
    with pytest.raises(ValueError, match="draft"):
        recorded.log_artifact(artifacts.Artifact("draft", "dataset"))
    with artifacts.init(project="other") as run:
        run.log_artifact("a.txt", name="elsewhere")
    with pytest.raises(ValueError, match="team/proj"):
        recorded.log_artifact(api.artifact("other/elsewhere:v0"))
    with pytest.raises(ValueError, match="no/slash"):  # checked before anything is written
        recorded.log_artifact(api.artifact("other/elsewhere:v0"), tags=["no/slash"])


def test_runs_filters_take_w_and_bs_in_nin_eq_and_ne_operators(ws):
    with artifacts.init(project="proj", tags=["baseline"], config={"lr": 0.1}) as base:
        pass
    with artifacts.init(project="proj", tags=["sweep", "big"], config={"lr": 0.5}) as big:
        pass
    failed = artifacts.init(project="proj", tags=["sweep"])
    failed.finish(exit_code=1)
    api = artifacts.Api(overrides={"project": "proj"})

    def ids(filters: dict) -> set[str]:
        return {r.id for r in api.runs("proj", filters=filters)}

    assert ids({"tags": {"$in": ["baseline", "big"]}}) == {base.id, big.id}  # W&B docs' form
    assert ids({"tags": {"$nin": ["sweep"]}}) == {base.id}
    assert ids({"state": {"$in": ["finished", "crashed"]}}) == {base.id, big.id}
    assert ids({"state": {"$ne": "finished"}}) == {failed.id}
    assert ids({"config.lr": {"$eq": 0.5}}) == {big.id}
    with pytest.raises(artifacts.UsageError, match=r"\$gt"):  # others stay refused
        api.runs("proj", filters={"config.lr": {"$gt": 0.2}})
    with pytest.raises(artifacts.UsageError, match=r"\$or"):
        api.runs("proj", filters={"$or": [{"state": "failed"}]})


def test_a_recorded_runs_display_name_is_its_name_as_in_w_and_b(ws):
    with artifacts.init(project="proj", name="baseline-1") as run:
        pass
    found = artifacts.Api(overrides={"project": "proj"}).run(run.id)
    assert found.display_name == found.name == "baseline-1"
    found.display_name = "baseline"  # W&B's attribute for the name update() stores
    found.update()
    assert artifacts.Api(overrides={"project": "proj"}).run(run.id).name == "baseline"


def test_logging_a_name_with_another_type_is_w_and_bs_value_error(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        run.log_artifact("a.txt", name="data", type="dataset")
        with pytest.raises(ValueError, match="dataset"):  # W&B: "already exists with type"
            run.log_artifact("a.txt", name="data", type="model")


def test_w_and_b_exception_types_for_a_distributed_call_without_id_and_a_bad_use(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:  # no group
        with pytest.raises(TypeError, match="distributed_id"):  # W&B: TypeError
            run.upsert_artifact("a.txt", name="parts")
        with pytest.raises(TypeError, match="distributed_id"):
            run.finish_artifact("a.txt", name="parts")
        with pytest.raises(ValueError, match="artifact name"):  # W&B: ValueError
            run.use_artifact(42)
