"""Editable annotations (issue 20, item 1): a logged version's description, metadata,
tags and aliases change, as in W&B, and ``save()`` stores them; its files never do.

Code written for ``wandb`` runs with ``wandb`` replaced by ``artifacts``. Sections: W&B's
usage; the history and concurrent editors (in-process, then two real processes); older
stores; push, pull and rebase; gc and fsck; the record's bytes; the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import artifacts
import remotes
from artifacts import annotations
from artifacts.cli import main
from artifacts.ref_names import annotation_ref
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry, Version
from cas import Commit, Repository
from cas.errors import InvalidObjectError
from cas.fsck import fsck
from cas.gc import gc
from remotes.errors import PushRejectedError
from tests.helpers import ENTITY, PROJECT, pushed_and_cloned, tree_of, write
from tests.processes import START_TIMEOUT, preload, run_processes, start_barrier

preload(__name__)
EMPTY_TREE = "ea0c5cf4c63d18f6ed012cc79e8d60c008c76648023c6635b4009f2e541a29c2"


def logged(run: Any, name: str = "model", data: str = "weights") -> artifacts.Artifact:
    src = Path(os.getcwd()) / f"src-{name}-{data}"
    write(src / "w.bin", data)
    artifact = artifacts.Artifact(name, "model", description="first", metadata={"lr": 0.1})
    artifact.add_dir(str(src))
    return run.log_artifact(artifact, tags=["baseline"])


def fresh(spec: str = "model:v0", store: str | None = None) -> artifacts.Artifact:
    """The version as a new reader sees it."""
    return artifacts.Api(store=store).artifact(spec)


# ---- W&B's usage -------------------------------------------------------------------


def test_a_logged_versions_description_metadata_and_tags_are_edited_and_saved(ws):
    with artifacts.init() as run:
        version = logged(run)
        tree, commit = version.digest, version.id
        version.description = "after evaluation"
        version.metadata["accuracy"] = 0.93
        version.tags.append("reviewed")
        version.save()
        assert version.annotation_history()[0].run == run.id  # who edited, for lineage
    again = fresh()
    assert again.description == "after evaluation"
    assert again.metadata == {"lr": 0.1, "accuracy": 0.93}
    assert again.tags == ["baseline", "reviewed"]
    assert (again.digest, again.id) == (tree, commit)  # the version itself never changed
    assert tree_of(again.download(str(ws / "out"))) == {"w.bin": b"weights"}


def test_metadata_and_tags_may_be_assigned_whole_and_a_key_or_tag_removed(ws):
    with artifacts.init() as run:
        logged(run)
    version = fresh()
    version.metadata = {"epochs": 3}  # "lr" goes
    version.tags = ["prod ready", "v-2"]  # "baseline" goes
    version.save()
    again = fresh()
    assert again.metadata == {"epochs": 3}
    assert again.tags == ["prod ready", "v-2"]
    assert [a.version for a in again.collection.versions(tags=["v-2"])] == ["v0"]
    assert again.collection.versions(tags=["baseline"]) == []


def test_a_nested_metadata_value_edited_in_place_is_saved(ws):
    with artifacts.init() as run:
        draft = artifacts.Artifact("model", "model", metadata={"eval": {"acc": 0.5}})
        draft.add_file(write(ws / "w.bin", "w"))
        version = run.log_artifact(draft)
    version.metadata["eval"]["acc"] = 0.9
    version.save()
    assert fresh().metadata == {"eval": {"acc": 0.9}}
    assert fresh().annotation_history()[0].change == {"metadata_set": {"eval": {"acc": 0.9}}}


def test_aliases_are_added_and_removed_by_save_as_in_w_and_b(ws):
    with artifacts.init() as run:
        logged(run)
        logged(run, data="better")
    old = fresh("model:v0")
    assert old.aliases == []
    old.aliases.append("best")
    old.save()
    assert fresh("model:best").version == "v0"
    new = fresh("model:v1")
    new.aliases = ["latest", "best", "production"]  # "best" moves here from v0
    new.save()
    assert fresh("model:best").version == "v1"
    assert fresh("model:production").version == "v1"
    assert fresh("model:v1").aliases == ["latest", "best", "production"]
    new.aliases.remove("production")
    new.save()
    with pytest.raises(artifacts.ArtifactNotFoundError):
        fresh("model:production")


def test_latest_cannot_be_given_away_nor_taken_and_nothing_changes(ws):
    with artifacts.init() as run:
        logged(run)
        logged(run, data="better")
    old = fresh("model:v0")
    old.aliases.extend(["best", "latest"])
    with pytest.raises(artifacts.UsageError, match="latest"):
        old.save()
    head = fresh("model:v1")
    head.aliases.remove("latest")
    with pytest.raises(artifacts.UsageError, match="latest"):
        head.save()
    assert fresh("model:v0").aliases == [] and fresh("model:latest").version == "v1"


def test_use_artifact_with_aliases_adds_them(ws):
    with artifacts.init() as run:
        logged(run)
    with artifacts.init(job_type="eval") as run:
        used = run.use_artifact("model:v0", aliases=["evaluated", "prod"])
        assert used.aliases == ["latest", "evaluated", "prod"]
    assert fresh("model:prod").id == used.id


def test_a_bad_tag_is_refused_as_w_and_b_refuses_it(ws):
    with artifacts.init() as run:
        version = logged(run)
    with pytest.raises(ValueError, match="invalid tag"):
        version.tags = ["no/slashes"]
    version.tags.append("bad:tag")
    with pytest.raises(ValueError, match="invalid tag"):
        version.save()
    assert fresh().tags == ["baseline"]


def test_setters_that_cannot_be_honoured_raise(ws):
    draft = artifacts.Artifact("model", "model")
    with pytest.raises(artifacts.ArtifactNotLoggedError):
        draft.tags = ["x"]  # W&B: a draft has no tags yet (log_artifact(tags=...) gives them)
    with artifacts.init() as run:
        version = logged(run)
    with pytest.raises(artifacts.ArtifactFinalizedError):
        version.name = "other"  # files, name and type stay what was logged
    with pytest.raises(artifacts.ArtifactFinalizedError):
        version.type = "dataset"
    assert version.type == "model"


def test_a_description_set_on_a_draft_is_the_logged_one(ws):
    with artifacts.init() as run:
        draft = artifacts.Artifact("model", "model", description="first")
        draft.description = "changed before logging"
        draft.metadata["k"] = 1
        draft.add_file(write(ws / "w.bin", "w"))
        run.log_artifact(draft)
    assert (fresh().description, fresh().metadata) == ("changed before logging", {"k": 1})


# ---- the history and concurrent editors ------------------------------------------------


def test_each_save_is_a_record_in_the_versions_history(ws):
    with artifacts.init() as run:
        version = logged(run)
    assert version.annotation_history() == []
    assert version.updated_at == version.created_at
    version.description = "second"
    version.save()
    version.metadata["lr"] = 0.2
    version.tags.remove("baseline")
    version.save()
    version.save()  # nothing changed: no record
    history = fresh().annotation_history()
    assert [r.change for r in history] == [
        {"metadata_set": {"lr": 0.2}, "tags_remove": ["baseline"]},
        {"description": "second"},
    ]
    assert history[0].annotations == annotations.Annotations("second", {"lr": 0.2}, [])
    assert history[0].user and history[0].time >= history[1].time
    assert fresh().updated_at >= fresh().created_at


def test_two_editors_of_one_version_keep_each_others_edits(ws):
    with artifacts.init() as run:
        logged(run)
    one, two = fresh(), fresh()  # both read the same state
    one.metadata["a"] = 1
    one.description = "by one"
    one.save()
    two.metadata["b"] = 2
    two.description = "by two"  # the same field: the last save wins...
    two.tags.append("by-two")
    two.save()
    assert two.metadata == {"lr": 0.1, "a": 1, "b": 2}  # ...and the saver sees the merge
    final = fresh()
    assert (final.description, final.metadata) == ("by two", {"lr": 0.1, "a": 1, "b": 2})
    assert final.tags == ["baseline", "by-two"]
    # ...and both edits stay in the history.
    assert [r.change.get("description") for r in final.annotation_history()] == ["by two", "by one"]


def _edit_many(store: str, who: str, rounds: int, barrier: Any) -> int:
    os.environ["ARTIFACTS_STORE"] = store
    version = artifacts.Api().artifact("model:v0")
    barrier.wait(START_TIMEOUT)
    for i in range(rounds):
        version.metadata[f"{who}-{i}"] = i
        version.save()
    return len(version.metadata)


def test_two_processes_editing_one_versions_metadata_lose_no_edit(ws, tmp_path):
    with artifacts.init() as run:
        logged(run)
    store, rounds = str(ws / ".artifacts"), 50
    barrier = start_barrier(2)
    calls = [(_edit_many, (store, who, rounds, barrier)) for who in ("one", "two")]
    run_processes(calls, tmp_path / "procs", timeout=240)

    wanted = {f"{who}-{i}": i for who in ("one", "two") for i in range(rounds)}
    final = fresh()
    assert final.metadata == {"lr": 0.1, **wanted}
    history = final.annotation_history()
    assert len(history) == 2 * rounds  # one record per edit
    edits = [r.change["metadata_set"] for r in history]
    assert sorted(k for e in edits for k in e) == sorted(wanted)  # each edit is there, once


# ---- older stores ---------------------------------------------------------------------


def test_a_version_without_records_reads_as_its_commit_says(ws):
    with artifacts.init() as run:
        version = logged(run)
    registry = Registry(Repository.open(str(ws / ".artifacts")))
    assert registry.refs.list(f"{ENTITY}/{PROJECT}/artifacts/model/annotations/") == {}
    meta = registry.commit(bytes.fromhex(version.id)).meta
    again = fresh()
    assert (again.description, again.metadata, again.tags) == (
        meta["description"],
        meta["metadata"],
        meta["tags"],
    )


def test_a_record_of_another_version_or_malformed_is_refused_not_believed(ws, capsys):
    with artifacts.init() as run:
        logged(run)
        logged(run, data="better")
    v0, v1 = fresh("model:v0"), fresh("model:v1")
    v1.description = "of v1"
    v1.save()
    registry = Registry(Repository.open(str(ws / ".artifacts")))
    ref_of = {
        v.version: annotation_ref(ENTITY, PROJECT, "model", bytes.fromhex(v.id)) for v in (v0, v1)
    }
    registry.refs.set_if_equals(ref_of["v0"], None, registry.refs.read(ref_of["v1"]))
    with pytest.raises(InvalidObjectError, match="another version"):
        fresh("model:v0")
    meta = dict(registry.commit(registry.refs.read(ref_of["v1"])).meta, change={"tags_add": "x"})
    bad = registry.objects.put(Commit(bytes.fromhex(v1.digest), (), meta))
    registry.refs.set_if_equals(ref_of["v1"], registry.refs.read(ref_of["v1"]), bad)
    capsys.readouterr()
    assert main(["show", "model:v1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("artifacts: error: ") and "not an annotation record" in err


# ---- push, pull and rebase ------------------------------------------------------------


def _edit(store: Path, **change: Any) -> None:
    version = fresh("model:v0", str(store))
    for key, value in change.items():
        version.metadata[key] = value
    version.save()


def test_edits_travel_by_push_and_pull_and_diverged_edits_are_rebased(ws):
    with artifacts.init() as run:
        logged(run)
    local = Repository.open(str(ws / ".artifacts"))
    remote_url = str(ws / "remote")
    remotes.add_remote(local, "origin", remote_url)
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    other = remotes.clone(remote_url, str(ws / "other"), policy=ARTIFACT_REFS)

    _edit(ws / ".artifacts", a=1)
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    assert remotes.pull(other, "origin", policy=ARTIFACT_REFS).fast_forwarded
    assert fresh("model:v0", other.url).metadata == {"lr": 0.1, "a": 1}

    _edit(ws / ".artifacts", b=2)  # both sides edit: the chains diverge
    _edit(Path(other.url), c=3)
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    with pytest.raises(PushRejectedError):
        remotes.push(other, "origin", policy=ARTIFACT_REFS)
    ref = annotation_ref(ENTITY, PROJECT, "model", bytes.fromhex(fresh().id))
    assert remotes.pull(other, "origin", policy=ARTIFACT_REFS).diverged == [ref]
    assert remotes.rebase(other, "origin", policy=ARTIFACT_REFS) == [ref]
    remotes.push(other, "origin", policy=ARTIFACT_REFS)
    remotes.pull(local, "origin", policy=ARTIFACT_REFS)
    for store in (ws / ".artifacts", Path(other.url), Path(remote_url)):
        version = fresh("model:v0", str(store))
        assert version.metadata == {"lr": 0.1, "a": 1, "b": 2, "c": 3}, store
        assert len(version.annotation_history()) == 3
    assert fsck(Repository.open(remote_url)).ok


def test_a_rebased_version_keeps_the_annotations_of_the_one_it_re_applies(ws):
    with artifacts.init() as run:
        logged(run)
    local, other = pushed_and_cloned(ws)
    with artifacts.init(store=other.url) as run:
        logged(run, data="theirs")
    remotes.push(other, "origin", policy=ARTIFACT_REFS)
    with artifacts.init() as run:
        logged(run, data="ours")  # our v1, which rebase makes v2
    mine = fresh("model:v1")
    mine.description = "ours, annotated"
    mine.save()
    remotes.pull(local, "origin", policy=ARTIFACT_REFS)
    remotes.rebase(local, "origin", policy=ARTIFACT_REFS)
    rebased = fresh("model:v2")
    assert rebased.id != mine.id and rebased.description == "ours, annotated"
    rebased.tags.append("rebased")
    rebased.save()
    again = fresh("model:v2")
    assert (again.description, again.tags) == ("ours, annotated", ["baseline", "rebased"])
    assert len(again.annotation_history()) == 2  # the record made before rebase, and this


# ---- gc and fsck ---------------------------------------------------------------------


def test_gc_keeps_every_record_and_fsck_finds_them_sound(ws):
    with artifacts.init() as run:
        version = logged(run)
    for i in range(3):
        version.metadata["i"] = i
        version.save()
    repo = Repository.open(str(ws / ".artifacts"))
    gc(repo, grace_seconds=0)
    gc(repo, grace_seconds=0)
    assert [r.annotations.metadata["i"] for r in fresh().annotation_history()] == [2, 1, 0]
    assert fsck(repo).ok


# ---- the record's bytes (docs/format.md) ---------------------------------------------


def test_the_annotation_record_vectors_of_the_format_doc(format_vectors):
    version = Commit(bytes.fromhex(EMPTY_TREE), (), {})  # commit-root of the doc
    annotated = Version(ENTITY, PROJECT, version.id, version)
    first = annotations.record_commit(
        annotated,
        None,
        annotations.Annotations("evaluated", {"acc": 0.5}, ["reviewed"]),
        {"description": "evaluated", "metadata_set": {"acc": 0.5}, "tags_add": ["reviewed"]},
        1700000000000000000,
        None,
        "alice",
    )
    second = annotations.record_commit(
        annotated,
        first.id,
        annotations.Annotations("evaluated", {"acc": 0.5}, []),
        {"tags_remove": ["reviewed"]},
        1700000001000000000,
        "run1",
        None,
    )
    for name, made in (("annotation-first", first), ("annotation-second", second)):
        assert format_vectors[name]["bytes"] == made.to_bytes(), name
        assert format_vectors[name]["id"] == made.id, name
        record = annotations.read_record(made.id, Commit.from_payload(made.payload()), version.id)
        assert record.annotations == annotations.apply(
            annotations.Annotations("evaluated", {"acc": 0.5}, ["reviewed"])
            if made is second
            else annotations.Annotations(None, {}, []),
            record.change,
        )


# ---- the CLI -------------------------------------------------------------------------


def test_cli_edit_and_tag_change_a_version_and_show_tells(ws, capsys):
    with artifacts.init() as run:
        logged(run)
    edit = ["edit", "model:v0", "-d", "after eval", "--metadata", "acc=0.93"]
    assert main([*edit, "--metadata", "note=good run", "--unset", "lr"]) == 0
    assert main(["tag", "add", "model:v0", "reviewed", "prod ready"]) == 0
    assert main(["tag", "rm", "model:v0", "baseline"]) == 0
    capsys.readouterr()
    assert main(["show", "model:v0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["description"] == "after eval"
    assert shown["metadata"] == {"acc": 0.93, "note": "good run"}
    assert shown["tags"] == ["reviewed", "prod ready"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["edit", "model:v0"], "nothing to edit"),
        (["edit", "model:v0", "--metadata", "novalue"], "KEY=VALUE"),
        (["edit", "model:v0", "--unset", "nokey"], "no metadata key 'nokey'"),
        (["tag", "add", "model:v0", "a/b"], "invalid tag"),
        (["tag", "rm", "model:v0", "absent"], "no tag 'absent'"),
        (["edit", "model:v9", "-d", "x"], "not found"),
    ],
)
def test_cli_edit_and_tag_refuse_in_one_line(ws, capsys, argv, message):
    with artifacts.init() as run:
        logged(run)
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("artifacts: error: ") and message in err and err.count("\n") == 1
    assert fresh().annotation_history() == []
