"""Links and registries (issue 20, item 4), called as a W&B user calls them: code written
for ``wandb`` runs with ``wandb`` replaced by ``artifacts``. Where a test follows an
example of wandb's own docstrings (0.31), its name or a comment says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import artifacts
import remotes
from artifacts.errors import NotAModelError, RegistryError, RegistryNotFoundError
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registries import Settings
from cas import Repository
from cas.fsck import fsck
from tests.helpers import ENTITY, PROJECT, tree_of, write

MODEL = b"weights" * 1000


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def model(run, name: str = "net", data: bytes = MODEL, type: str = "model") -> artifacts.Artifact:
    artifact = artifacts.Artifact(name, type)
    artifact.add_file(write(Path(os.getcwd()) / f"src-{name}" / "weights.bin", data))
    return run.log_artifact(artifact)


# ---- linking ----------------------------------------------------------------------


def test_link_artifact_as_w_and_b_documents_it(ws: Path) -> None:
    """wandb_run.link_artifact's docstring example."""
    write(ws / "path/to/local/file", "data")
    registry_name, collection_name = "model", "collection_name"
    target_path = f"wandb-registry-{registry_name}/{collection_name}"
    with artifacts.init(entity=ENTITY, project=PROJECT) as run:
        artifact = artifacts.Artifact(name="artifact_name", type="model")
        artifact.add_file(local_path="path/to/local/file")
        linked = run.link_artifact(artifact=artifact, target_path=target_path)
    assert linked.qualified_name == f"{ENTITY}/wandb-registry-model/collection_name:v0"
    assert linked.is_link and not artifact.is_link
    assert linked.source_qualified_name == f"{ENTITY}/{PROJECT}/artifact_name:v0"
    assert (linked.source_entity, linked.source_project) == (ENTITY, PROJECT)
    assert (linked.source_name, linked.source_version) == ("artifact_name:v0", "v0")
    assert linked.linked_at is not None and artifact.linked_at is None
    assert linked.aliases == ["latest"]
    assert tree_of(linked.download(str(ws / "out"))) == {"file": b"data"}


def test_a_link_copies_no_data_and_shares_the_source_tree(ws: Path) -> None:
    with artifacts.init() as run:
        source = model(run)
        before = store_bytes(ws / ".artifacts")
        linked = source.link("wandb-registry-model/classifier", aliases=["staging"])
    assert linked.digest == source.digest
    # A commit and a few refs: nowhere near the model's bytes.
    assert store_bytes(ws / ".artifacts") - before < len(MODEL) // 4
    assert artifacts.Api().artifact(f"{ENTITY}/wandb-registry-model/classifier:staging").id == (
        linked.id
    )


def test_linking_a_version_twice_gives_back_its_link(ws: Path) -> None:
    with artifacts.init() as run:
        first = model(run, data=b"one")
        second = model(run, data=b"two")
        a = first.link("wandb-registry-model/clf")
        b = second.link("wandb-registry-model/clf")
        again = first.link("wandb-registry-model/clf", aliases=["best"])
        of_link = b.link("wandb-registry-model/clf")  # a link's link is its source's
    assert (a.version, b.version, again.version, of_link.version) == ("v0", "v1", "v0", "v1")
    assert again.aliases == ["best"]
    assert [v.version for v in artifacts.Api().registry("model").versions()] == ["v1", "v0"]


def test_production_moves_from_one_linked_model_to_the_next(ws: Path) -> None:
    with artifacts.init() as run:
        old = model(run, data=b"old").link("wandb-registry-model/clf", aliases=["production"])
        new = model(run, data=b"new").link("wandb-registry-model/clf")
    new.aliases.append("production")
    new.save()
    api = artifacts.Api()
    assert api.artifact(f"{ENTITY}/wandb-registry-model/clf:production").id == new.id
    assert api.artifact(old.qualified_name).aliases == []


def test_a_source_lists_its_links_and_a_link_resolves_its_source(ws: Path) -> None:
    artifacts.Api().create_registry("team-models", "organization")
    with artifacts.init() as run:
        source = model(run)
        one = source.link("wandb-registry-model/clf")
        two = source.link("wandb-registry-team-models/best")
        legacy = run.link_artifact(source, "model-registry/my-model")
        model(run, "other")
    fresh = artifacts.Api().artifact("net:v0")
    assert sorted(a.qualified_name for a in fresh.linked_artifacts) == sorted(
        a.qualified_name for a in (one, two, legacy)
    )
    assert one.linked_artifacts == []
    assert one.source_artifact.qualified_name == source.qualified_name
    assert source.source_artifact is source
    assert one.source_collection.name == "net" and one.collection.name == "clf"


def test_a_registry_refuses_a_type_it_does_not_accept_and_a_missing_one_says_so(ws) -> None:
    with artifacts.init() as run:
        data = model(run, "data", type="dataset")
        with pytest.raises(RegistryError, match="accepts artifact types model, not 'dataset'"):
            data.link("wandb-registry-model/clf")
        with pytest.raises(RegistryNotFoundError, match="create it with Api"):
            data.link("wandb-registry-nowhere/clf")
        assert data.link("wandb-registry-dataset/train").is_link
    assert artifacts.Api().registry("model").collections() == []


# ---- log_model, use_model, link_model (wandb_run's docstrings) ---------------------


def test_log_model_use_model_and_link_model(ws: Path) -> None:
    write(ws / "model" / "weights.bin", MODEL)
    with artifacts.init() as run:
        run.log_model(path="model", name="my-model", aliases=["best"])
        run.log_model(path="model/weights.bin")  # W&B's default name: run-<id>-<basename>
        default_name = f"run-{run.id}-weights.bin"
        linked = run.link_model(
            path="model", registered_model_name="my-registered-model", name="my-model"
        )
    assert linked.qualified_name == f"{ENTITY}/model-registry/my-registered-model:v0"
    assert linked.source_name == "my-model:v0"  # the same files: no new version
    with artifacts.init() as run:
        path = run.use_model(name="my-model:best")
        assert Path(path).read_bytes() == MODEL  # one file: its path
        assert Path(run.use_model(default_name)).name == "weights.bin"
        model(run, "data", type="dataset")
        with pytest.raises(NotAModelError):
            run.use_model("data:latest")
        with pytest.raises(artifacts.UsageError, match="name alone"):
            run.link_model("model", "team/proj/reg")


# ---- registries -------------------------------------------------------------------


def test_create_registry_registries_and_registry_as_w_and_b_documents_them(ws: Path) -> None:
    """Api.create_registry's, .registry's and .registries' docstring examples."""
    api = artifacts.Api()
    registry = api.create_registry(
        name="my-registry",
        visibility="restricted",
        organization=ENTITY,
        description="This is a test registry",
        artifact_types=["model"],
    )
    assert (registry.name, registry.full_name, registry.visibility) == (
        "my-registry",
        "wandb-registry-my-registry",
        "restricted",
    )
    with pytest.raises(RegistryError, match="already exists"):
        api.create_registry(name="my-registry", visibility="restricted")

    registry = api.registry(name="my-registry", organization=ENTITY)
    registry.description = "This is an updated description"
    registry.artifact_types.append("checkpoint")
    registry.save()
    again = artifacts.Api().registry("my-registry")
    assert again.description == "This is an updated description"
    assert again.artifact_types == ["model", "checkpoint"]
    again.artifact_types.remove("model")
    with pytest.raises(RegistryError, match="cannot be removed"):
        again.save()

    with artifacts.init() as run:
        model(run).link("wandb-registry-my-registry/my_collection", aliases=["best"])
    names = [r.name for r in api.registries(filter={"name": {"$regex": "model"}})]
    assert names == ["model"]
    found = api.registries().collections(filter={"name": "my_collection"})
    assert [c.name for c in found] == ["my_collection"]
    assert [a.qualified_name for a in found.versions(filter={"alias": "best"})] == [
        f"{ENTITY}/wandb-registry-my-registry/my_collection:v0"
    ]
    with pytest.raises(RegistryError, match="still has collections"):
        registry.delete()


def test_the_registry_settings_vector_of_the_format_doc(format_vectors) -> None:
    made = Settings(
        "Models we ship", ("model",), "restricted", 1700000000000000000, 1700000001000000000
    ).to_blob()
    assert format_vectors["registry-settings"]["bytes"] == made.to_bytes()
    assert format_vectors["registry-settings"]["id"] == made.id
    assert Settings.from_blob(made.id, made.data).visibility == "restricted"


def test_the_link_commit_vector_of_the_format_doc(format_vectors, ws: Path) -> None:
    from artifacts import links
    from artifacts.registry import Version
    from cas import Commit

    commit_root = bytes.fromhex("0aa7dc8615a45dad7604fe9f275e1d8b738508c20ae0fa20bc4a549326a1ca70")
    tree_empty = bytes.fromhex("ea0c5cf4c63d18f6ed012cc79e8d60c008c76648023c6635b4009f2e541a29c2")
    link = {"artifact": "net", "commit": commit_root, "entity": "team", "project": "proj"}
    meta = {
        **{"artifact": "clf", "description": None, "entity": "acme", "files": 0},
        **{"metadata": {}},
        **{"link": {**link, "version": 0}, "project": "wandb-registry-model", "run": None},
        **{"size": 0, "time": 1700000000000000000, "type": "model", "version": 0},
    }
    made = Commit(tree_empty, (), meta)
    assert format_vectors["link-commit"]["bytes"] == made.to_bytes()
    assert format_vectors["link-commit"]["id"] == made.id
    source = links.source_of(Version("acme", "wandb-registry-model", made.id, made))
    assert source == links.Source("team", "proj", "net", 0, commit_root)
    with artifacts.init() as run:  # a link made here has the vector's keys, no more
        linked = model(run).link("wandb-registry-model/clf")
    written = Repository.open(str(ws / ".artifacts")).objects.get_commit(bytes.fromhex(linked.id))
    assert written.meta.keys() == meta.keys()
    assert written.meta["link"].keys() == meta["link"].keys()


# ---- push and pull ----------------------------------------------------------------


def test_a_registry_goes_through_a_push_and_a_clone(ws: Path) -> None:
    artifacts.Api().create_registry("shipped", "organization", description="ours")
    with artifacts.init() as run:
        linked = model(run).link("wandb-registry-shipped/clf", aliases=["production"])
    repo = Repository.open(str(ws / ".artifacts"))
    remotes.add_remote(repo, "origin", str(ws / "remote"))
    remotes.push(repo, "origin", ["clf"], policy=ARTIFACT_REFS)
    clone = remotes.clone(str(ws / "remote"), str(ws / "b"), policy=ARTIFACT_REFS)
    assert fsck(clone).ok
    api = artifacts.Api(store=clone.url)
    assert api.registry("shipped").description == "ours"
    got = api.artifact(f"{ENTITY}/wandb-registry-shipped/clf:production")
    assert got.id == linked.id and got.is_link
    assert tree_of(got.download(str(ws / "out"))) == {"weights.bin": MODEL}
    with pytest.raises(artifacts.ArtifactNotFoundError, match="pull it"):
        got.source_artifact  # noqa: B018  (the source project was not pushed)


# ---- the CLI ----------------------------------------------------------------------


def test_the_cli_links_a_version_and_lists_registries(ws: Path, capsys) -> None:
    from artifacts.cli import main

    with artifacts.init() as run:
        model(run)
    assert main(["link", "net:v0", "wandb-registry-model/clf", "--alias", "staging"]) == 0
    assert "team/wandb-registry-model/clf:v0" in capsys.readouterr().out
    assert main(["registry", "ls"]) == 0
    out = capsys.readouterr().out
    assert "dataset" in out and "model" in out
    assert main(["link", "net:v0", "wandb-registry-nope/clf"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "create it with" in err[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["net:v0", "wandb-registry-model/clf:v1"], "a link target is [[ORG/]PROJECT/]COLLECTION"),
        (["net:v0", "a/b/c/d"], "a link target is [[ORG/]PROJECT/]COLLECTION"),
        (["net:v9", "wandb-registry-model/clf"], "not found: the latest version is v0"),
        (["net:v0", "wandb-registry-dataset/clf"], "accepts artifact types dataset, not 'model'"),
        (["net:v0", "wandb-registry-model/clf", "--alias", "a/b"], "invalid name 'a/b'"),
        (["net:v0", "wandb-registry-nope/clf"], "create it with"),
    ],
)
def test_the_cli_link_refuses_in_one_line_and_links_nothing(ws, capsys, argv, message) -> None:
    from artifacts.cli import main

    with artifacts.init() as run:
        model(run)
    refs = Repository.open(str(ws / ".artifacts")).refs.list("")
    capsys.readouterr()
    assert main(["link", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("artifacts: error: ")
    assert message in captured.err and captured.err.count("\n") == 1
    assert Repository.open(str(ws / ".artifacts")).refs.list("") == refs


def test_unlink_and_delete_of_a_link_remove_the_link_alone(ws) -> None:
    with artifacts.init() as run:
        source = model(run)
        linked = source.link("wandb-registry-model/clf", aliases=["production"])
        again = source.link("wandb-registry-model/other")
    with pytest.raises(artifacts.UsageError, match="is not a link"):
        source.unlink()
    linked.unlink()  # its alias goes with it, as in W&B
    again.delete()  # W&B: deleting a link unlinks it
    api = artifacts.Api()
    for gone in ("team/wandb-registry-model/clf:v0", "team/wandb-registry-model/other:v0"):
        with pytest.raises(artifacts.ArtifactNotFoundError, match="deleted"):
            api.artifact(gone)
    assert not api.artifact_exists("team/wandb-registry-model/clf:production")
    kept = api.artifact(source.qualified_name)
    assert kept.state == "COMMITTED" and kept.linked_artifacts == []
    with artifacts.init() as run:  # linking again makes a new link, the next version
        relinked = run.use_artifact(source.qualified_name).link("wandb-registry-model/clf")
    assert relinked.version == "v1" and relinked.source_artifact.id == source.id


# ---- TTL, and a source that expires or is deleted -------------------------------------


def test_a_link_has_no_ttl_and_refuses_one_as_w_and_b(ws) -> None:
    """W&B turns TTL off for a linked version and refuses setting it (artifact.ttl)."""
    from datetime import timedelta

    from artifacts import expiry, ttl
    from artifacts.registry import Registry

    with artifacts.init() as run:
        source = model(run)
        source.ttl = timedelta(seconds=1)
        source.save()
        linked = source.link("wandb-registry-model/clf")
    repo = Repository.open(str(ws / ".artifacts"))
    ttl.set_default(repo, ENTITY, "wandb-registry-model", 1)  # not even a default applies
    linked = artifacts.Api().artifact(linked.qualified_name)
    assert linked.ttl is None
    message = "Cannot set TTL for link artifact. Unlink the artifact first then set the TTL"
    with pytest.raises(ValueError, match=message):
        linked.ttl = timedelta(days=1)
    assert linked.ttl is None
    far = repo.objects.get_commit(bytes.fromhex(linked.id)).meta["time"] + 10**12
    assert [v.name for v in expiry.expired(Registry(repo), far)] == ["net"]  # the source alone


def test_cli_edit_refuses_a_ttl_on_a_link_in_one_line(ws, capsys) -> None:
    from artifacts.cli import main

    with artifacts.init() as run:
        model(run).link("wandb-registry-model/clf")
    assert main(["edit", "team/wandb-registry-model/clf:v0", "--ttl", "30d"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Cannot set TTL for link artifact" in err[0]


def test_a_link_outlives_its_expired_source_and_says_who_deleted_it(ws) -> None:
    from datetime import timedelta

    from artifacts import deletion
    from artifacts.collect import collect_garbage
    from artifacts.registry import Registry

    with artifacts.init() as run:
        draft = artifacts.Artifact("net", "model")
        draft.add_file(write(ws / "src" / "weights.bin", MODEL))
        draft.ttl = timedelta(seconds=1)
        source = run.log_artifact(draft)
        source.link("wandb-registry-model/clf", aliases=["production"])
    repo = Repository.open(str(ws / ".artifacts"))
    repo.set_lease_seconds(0.2)
    registry = Registry(repo)
    far = repo.objects.get_commit(bytes.fromhex(source.id)).meta["time"] + 10 * 10**9
    assert [v.name for v in collect_garbage(registry, 0, now=far).expired] == ["net"]
    import time

    time.sleep(0.5)  # the fossils' life: whatever the source alone held is gone now
    collect_garbage(registry, 0, now=far)
    assert fsck(repo, released=deletion.released(repo)).ok
    link = artifacts.Api().artifact(f"{ENTITY}/wandb-registry-model/clf:production")
    assert tree_of(link.download(str(ws / "out"))) == {"weights.bin": MODEL}
    assert link.source_qualified_name == f"{ENTITY}/{PROJECT}/net:v0"
    with pytest.raises(artifacts.ArtifactNotFoundError) as raised:
        assert link.source_artifact is None  # raises
    said = str(raised.value)
    assert "\n" not in said
    assert said.startswith(f"{ENTITY}/wandb-registry-model/clf:v0 links {ENTITY}/{PROJECT}/net:v0")
    assert re.search(r"was deleted by \S+ at .* UTC \(its TTL expired\)", said)


def test_lineage_of_a_version_counts_its_links_as_w_and_b_one_artifact(ws) -> None:
    """W&B's used_by(): "the runs that have used this artifact and its linked artifacts";
    a link and its source are one artifact there, so logged_by() is the source's run."""
    with artifacts.init(job_type="train") as trainer:
        source = model(trainer)
    with artifacts.init(job_type="promote") as promoter:
        link = promoter.link_artifact(source, "wandb-registry-model/net", aliases=["production"])
    with artifacts.init(job_type="deploy") as deployer:
        deployer.use_artifact("wandb-registry-model/net:production")
    with artifacts.init(job_type="eval") as evaluator:
        evaluator.use_artifact("net:v0")
    api = artifacts.Api()
    for version in (api.artifact("net:v0"), api.artifact(link.qualified_name)):
        assert sorted(r.job_type for r in version.used_by()) == ["deploy", "eval"]
        assert version.logged_by().id == trainer.id


def test_a_draft_of_a_link_is_a_draft_of_its_source_as_in_w_and_b(ws) -> None:
    """W&B's new_draft(): "if this artifact is saved it must be saved to the source
    sequence", never as a version of the registry's collection."""
    with artifacts.init() as run:
        source = model(run)
        run.link_artifact(source, "wandb-registry-model/net", aliases=["production"])
    with artifacts.init() as run:
        production = run.use_artifact("wandb-registry-model/net:production")
        production.description = "as linked"
        draft = production.new_draft()
        assert (draft.name, draft.description) == ("net", "as linked")
        draft.add_file(write(ws / "notes.txt", "fine-tuned"))
        logged = run.log_artifact(draft)
    assert logged.qualified_name == f"{ENTITY}/{PROJECT}/net:v1"
    assert set(logged.manifest.entries) == {"weights.bin", "notes.txt"}
    registry = artifacts.Api().artifact_collection("model", "wandb-registry-model/net")
    assert [v.version for v in registry.versions()] == ["v0"]  # links only


def test_link_model_to_a_path_is_w_and_bs_assertion_error(ws) -> None:
    write(ws / "model.pt", "weights")
    with artifacts.init() as run, pytest.raises(AssertionError, match="name alone"):
        run.link_model("model.pt", registered_model_name="team/model-registry/classifier")
