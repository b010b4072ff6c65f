"""TTL (issue 20, item 3): ``artifact.ttl`` as in W&B, stored with the version, edited
through the annotation records, and the versions whose time is up found cheaply.

Code written for ``wandb`` runs with ``wandb`` replaced by ``artifacts``. Sections: W&B's
usage; what is stored; expiry; the record's bytes; the CLI.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import artifacts
import remotes
from artifacts import annotations, expiry, ttl
from artifacts.cli import main
from artifacts.names import parse_spec
from artifacts.ref_names import annotation_ref
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry, Version
from cas import Commit, Repository
from tests.helpers import ENTITY, PROJECT, pushed_and_cloned, write

DAY = 86400
NS = 10**9


def logged(run: Any, name: str = "model", data: str = "w", ttl: Any = "unset") -> Any:
    artifact = artifacts.Artifact(name, "model")
    artifact.add_file(write(Path(os.getcwd()) / f"src-{name}-{data}" / "w.bin", data))
    if ttl != "unset":
        artifact.ttl = ttl
    return run.log_artifact(artifact)


def fresh(spec: str = "model:v0", store: str | None = None) -> Any:
    return artifacts.Api(store=store).artifact(spec)


def registry_of(ws: Path) -> Registry:
    return Registry(Repository.open(str(ws / ".artifacts")))


# ---- W&B's usage (docs: "Manage artifact data retention") ----------------------------


def test_a_ttl_set_when_the_artifact_is_created_is_the_logged_versions(ws):
    write("my_file", "data")
    with artifacts.init(project="my-project-name", entity="my-entity") as run:
        artifact = artifacts.Artifact(name="artifact-name", type="dataset")
        artifact.add_file("my_file")

        artifact.ttl = timedelta(days=30)  # Set TTL policy
        run.log_artifact(artifact)
    assert artifact.ttl == timedelta(days=30)
    assert fresh("my-entity/my-project-name/artifact-name:v0").ttl == timedelta(days=30)


def test_a_ttl_is_set_edited_deactivated_and_inherited_after_logging(ws):
    with artifacts.init() as run:
        logged(run)
    with artifacts.init() as run:
        artifact = run.use_artifact("team/proj/model:latest")
        artifact.ttl = timedelta(days=365 * 2)  # Delete in two years
        artifact.save()
    assert fresh().ttl == timedelta(days=730)

    api = artifacts.Api()
    artifact = api.artifact("team/proj/model:latest")
    artifact.ttl = timedelta(days=365)  # Delete in one year
    artifact.save()
    assert fresh().ttl == timedelta(days=365)

    artifact = api.artifact("team/proj/model:latest")
    artifact.ttl = None
    artifact.save()
    assert artifact.ttl is None and fresh().ttl is None

    artifact.ttl = artifacts.ArtifactTTL.INHERIT
    with pytest.raises(artifacts.ArtifactNotLoggedError):
        artifact.ttl  # noqa: B018  (W&B: the inherited value is known once saved)
    artifact.save()
    assert artifact.ttl is None  # no project default: inheriting means no TTL
    ttl.set_default(api._store.repo, ENTITY, PROJECT, 7 * DAY)
    assert fresh().ttl == timedelta(days=7)
    assert [r.change.get("ttl", "-") for r in fresh().annotation_history()] == [
        "inherit",
        None,
        365 * DAY,
        730 * DAY,
    ]


def test_the_ttl_section_of_the_api_doc_runs_as_written(ws, capsys):
    doc = (Path(__file__).resolve().parent.parent / "docs" / "artifacts.md").read_text()
    section = doc.split("## 3c. TTL", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    write("my_file", "data")
    exec(code[1], {})
    assert capsys.readouterr().out == "None\n"
    history = fresh(f"{ENTITY}/my-project/scratch:v0").annotation_history()
    assert [r.change for r in history] == [{"ttl": "inherit"}, {"ttl": None}, {"ttl": 365 * DAY}]


def test_ttl_refuses_what_w_and_b_refuses(ws):
    draft = artifacts.Artifact("model", "model")
    with pytest.raises(artifacts.ArtifactNotLoggedError):
        draft.ttl  # noqa: B018  (inherited, and a draft: W&B cannot tell it either)
    for bad in (timedelta(0), timedelta(seconds=-5)):
        with pytest.raises(ValueError, match="positive"):
            draft.ttl = bad
    with pytest.raises(ValueError, match="timedelta"):
        draft.ttl = 30
    for too_long in (timedelta.max, timedelta(days=365_001)):  # no date to expire on
        with pytest.raises(ValueError, match="at most 1000 years"):
            draft.ttl = too_long
    draft.ttl = timedelta(days=365_000)
    with pytest.raises(ValueError, match="wandb-history"):
        artifacts.Artifact("h", "wandb-history").ttl = timedelta(days=1)
    draft.ttl = timedelta(hours=1, microseconds=5)
    assert draft.ttl == timedelta(hours=1)  # whole seconds, as W&B keeps them
    draft.ttl = None
    assert draft.ttl is None


def test_artifact_ttl_is_imported_as_w_and_b_users_import_it():
    from artifacts.sdk.artifacts.artifact_ttl import ArtifactTTL

    assert ArtifactTTL is artifacts.ArtifactTTL and ArtifactTTL.INHERIT.value == 0


def test_a_new_draft_inherits_as_in_w_and_b(ws):
    with artifacts.init() as run:
        version = logged(run, ttl=timedelta(days=1))
    draft = version.new_draft()
    with pytest.raises(artifacts.ArtifactNotLoggedError):
        draft.ttl  # noqa: B018
    draft.add_file(write(ws / "more.txt", "more"))
    draft.save()
    assert fresh("model:v1").ttl is None and fresh("model:v0").ttl == timedelta(days=1)


# ---- what is stored ------------------------------------------------------------------


def test_the_version_commit_holds_the_drafts_ttl_and_absent_means_inherit(ws):
    with artifacts.init() as run:
        v0 = logged(run, data="a", ttl=timedelta(days=2))
        v1 = logged(run, data="b", ttl=None)
        v2 = logged(run, data="c")
    registry = registry_of(ws)
    metas = [registry.commit(bytes.fromhex(v.id)).meta for v in (v0, v1, v2)]
    assert metas[0]["ttl"] == 2 * DAY
    assert "ttl" in metas[1] and metas[1]["ttl"] is None
    assert "ttl" not in metas[2]


def test_a_ttl_edit_and_a_description_edit_by_two_editors_both_hold(ws):
    with artifacts.init() as run:
        logged(run, ttl=timedelta(days=3))
    one, two = fresh(), fresh()
    one.ttl = timedelta(days=9)
    one.save()
    two.description = "by two"
    two.save()
    assert two.ttl == timedelta(days=9)  # the saver sees the merge
    final = fresh()
    assert (final.ttl, final.description) == (timedelta(days=9), "by two")
    # A record that did not touch the TTL says nothing of it: bytes as before TTL existed.
    newest = final.annotation_history()[0]
    assert newest.change == {"description": "by two"}
    assert newest.annotations.ttl == 9 * DAY


def test_a_record_without_ttl_leaves_the_versions_own(ws):
    with artifacts.init() as run:
        logged(run, ttl=timedelta(days=3))
    version = fresh()
    version.description = "edited"
    version.save()
    registry = registry_of(ws)
    record = registry.commit(
        registry.refs.read(annotation_ref(ENTITY, PROJECT, "model", bytes.fromhex(version.id)))
    )
    assert "ttl" not in record.meta and fresh().ttl == timedelta(days=3)


def test_a_malformed_stored_ttl_is_refused_not_believed(ws):
    with artifacts.init() as run:
        version = logged(run)
    registry = registry_of(ws)
    commit = registry.commit(bytes.fromhex(version.id))
    for bad in (0, -1, "30d", True, 1.5):
        with pytest.raises(artifacts.CasError, match="TTL"):
            ttl.of_version(Commit(commit.tree, (), {**commit.meta, "ttl": bad}).meta)


def test_ttl_edits_travel_by_push_and_pull(ws):
    with artifacts.init() as run:
        logged(run)
    local, other = pushed_and_cloned(ws)
    version = fresh()
    version.ttl = timedelta(hours=5)
    version.save()
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    remotes.pull(other, "origin", policy=ARTIFACT_REFS)
    assert fresh(store=other.url).ttl == timedelta(hours=5)


def test_a_ttl_edit_on_one_side_and_another_edit_on_the_other_both_survive_rebase(ws):
    with artifacts.init() as run:
        logged(run, ttl=timedelta(days=3))
    local, other = pushed_and_cloned(ws)
    theirs = fresh(store=other.url)
    theirs.ttl = timedelta(hours=1)
    theirs.save()
    remotes.push(other, "origin", policy=ARTIFACT_REFS)
    ours = fresh()
    ours.description = "ours"
    ours.save()
    remotes.pull(local, "origin", policy=ARTIFACT_REFS)
    remotes.rebase(local, "origin", policy=ARTIFACT_REFS)
    assert (fresh().ttl, fresh().description) == (timedelta(hours=1), "ours")
    ours = fresh()
    ours.ttl = timedelta(hours=2)
    ours.save()
    theirs = fresh(store=other.url)
    theirs.description = "theirs"
    theirs.save()
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    remotes.pull(other, "origin", policy=ARTIFACT_REFS)
    remotes.rebase(other, "origin", policy=ARTIFACT_REFS)
    final = fresh(store=other.url)
    assert (final.ttl, final.description) == (timedelta(hours=2), "theirs")


# ---- expiry --------------------------------------------------------------------------


def _labels(found: list[Version]) -> list[str]:
    return [f"{v.name}:v{v.number}" for v in found]


def test_expired_finds_the_versions_whose_time_is_up(ws):
    with artifacts.init() as run:
        logged(run, data="a", ttl=timedelta(days=1))
        logged(run, data="b", ttl=timedelta(days=10))
        logged(run, data="c", ttl=None)
        logged(run, data="d")  # inherits: no default, no TTL
        logged(run, name="other", ttl=timedelta(days=2))
    registry = registry_of(ws)
    logged_at = fresh("model:v0").created_at
    now = registry.commit(bytes.fromhex(fresh("model:v3").id)).meta["time"]
    assert logged_at and expiry.expired(registry, now) == []
    assert _labels(expiry.expired(registry, now + 3 * DAY * NS)) == ["model:v0", "other:v0"]
    assert _labels(expiry.expired(registry, now + 11 * DAY * NS)) == [
        "model:v0",
        "model:v1",
        "other:v0",
    ]
    ttl.set_default(registry.repo, ENTITY, PROJECT, 5 * DAY)
    assert _labels(expiry.expired(registry, now + 6 * DAY * NS)) == [
        "model:v0",
        "model:v3",
        "other:v0",
    ]


def test_an_edited_ttl_counts_from_when_the_version_was_logged(ws):
    with artifacts.init() as run:
        logged(run, ttl=None)
    registry = registry_of(ws)
    logged_ns = registry.commit(bytes.fromhex(fresh().id)).meta["time"]
    version = fresh()
    version.ttl = timedelta(days=1)
    version.save()
    assert expiry.expired(registry, logged_ns + DAY * NS - 1) == []
    assert _labels(expiry.expired(registry, logged_ns + DAY * NS)) == ["model:v0"]
    version.ttl = None
    version.save()
    assert expiry.expired(registry, logged_ns + 100 * DAY * NS) == []


def test_aliases_do_not_keep_an_expired_version_as_in_w_and_b(ws):
    with artifacts.init() as run:
        logged(run, ttl=timedelta(seconds=1))
    version = fresh()
    version.aliases.append("prod")
    version.save()
    registry = registry_of(ws)
    far = registry.commit(bytes.fromhex(version.id)).meta["time"] + 10 * NS
    assert _labels(expiry.expired(registry, far)) == ["model:v0"]  # "latest" and "prod" too


def test_expired_reads_each_version_commit_once_and_records_only_of_edited_ones(ws):
    with artifacts.init() as run:
        for i in range(6):
            logged(run, data=str(i), ttl=timedelta(days=1) if i % 2 else None)
    edited = fresh("model:v2")
    edited.ttl = timedelta(seconds=1)
    edited.save()
    registry = registry_of(ws)
    reads: list[bytes] = []
    get_commit = registry.objects.get_commit

    def counting(commit_id: bytes) -> Any:
        reads.append(commit_id)
        return get_commit(commit_id)

    registry.objects.get_commit = counting  # type: ignore[method-assign]
    found = expiry.expired(registry, registry.commit(bytes.fromhex(fresh().id)).meta["time"] * 2)
    assert _labels(found) == ["model:v1", "model:v2", "model:v3", "model:v5"]
    assert len(reads) == len(set(reads)) == 6 + 1  # six versions, one record


# ---- the record's bytes (docs/format.md) ---------------------------------------------


def test_the_ttl_record_vector_of_the_format_doc(format_vectors):
    empty_tree = "ea0c5cf4c63d18f6ed012cc79e8d60c008c76648023c6635b4009f2e541a29c2"
    version = Commit(bytes.fromhex(empty_tree), (), {})  # commit-root of the doc
    annotated = Version(ENTITY, PROJECT, version.id, version)
    made = annotations.record_commit(
        annotated,
        None,
        annotations.Annotations(None, {}, [], 30 * DAY),
        {"ttl": 30 * DAY},
        1700000000000000000,
        None,
        "alice",
    )
    assert format_vectors["annotation-ttl"]["bytes"] == made.to_bytes()
    assert format_vectors["annotation-ttl"]["id"] == made.id
    record = annotations.read_record(made.id, Commit.from_payload(made.payload()), [version.id])
    assert record.annotations.ttl == 30 * DAY and record.change == {"ttl": 30 * DAY}


# ---- the CLI -------------------------------------------------------------------------


def test_cli_edit_ttl_and_show_tells(ws, capsys):
    with artifacts.init() as run:
        logged(run)
    capsys.readouterr()
    assert main(["show", "model:v0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["ttl"]
    assert shown == {"policy": "inherit", "seconds": None, "expires": "-"}
    assert main(["edit", "model:v0", "--ttl", "30d"]) == 0
    assert fresh().ttl == timedelta(days=30)
    capsys.readouterr()
    assert main(["show", "model:v0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ttl"]["policy"] == "30d" and shown["ttl"]["seconds"] == 30 * DAY
    assert shown["ttl"]["expires"] > shown["created"]
    assert main(["show", "model:v0"]) == 0
    assert "ttl:         30d (expires " in capsys.readouterr().out
    assert main(["edit", "model:v0", "--ttl", "none"]) == 0
    assert fresh().ttl is None
    assert main(["edit", "model:v0", "--ttl", "inherit"]) == 0
    assert [r.change for r in fresh().annotation_history()][:2] == [
        {"ttl": "inherit"},
        {"ttl": None},
    ]


@pytest.mark.parametrize(
    "value", ["0d", "-3h", "30", "forever", "1.5d", "", "365001d", "99999999999999999d"]
)
def test_cli_edit_refuses_a_bad_ttl_in_one_line(ws, capsys, value):
    with artifacts.init() as run:
        logged(run)
    capsys.readouterr()
    assert main(["edit", "model:v0", f"--ttl={value}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("artifacts: error: ") and "--ttl" in err and err.count("\n") == 1
    assert fresh().annotation_history() == []


def test_a_ttl_stored_longer_than_a_date_can_say_is_shown_and_read(ws, capsys):
    """`edit --ttl 999999999d` was taken, and then `show` of the version failed with
    "internal error: ValueError: year 2739933 is out of range", artifact.ttl with an
    OverflowError: such a record (an earlier release's) still reads."""
    with artifacts.init() as run:
        logged(run)
    registry = registry_of(ws)
    logged_version = registry.resolve(parse_spec("model:v0", ENTITY, PROJECT))
    annotations.update(registry, logged_version, {"ttl": 10**17}, None)
    assert fresh().ttl == timedelta(days=999_999_999)  # the longest a timedelta holds
    capsys.readouterr()
    assert main(["show", "model:v0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["ttl"]
    assert shown["seconds"] == 10**17 and shown["expires"] == "after 9999-12-31"
    assert main(["show", "model:v0"]) == 0
    assert "(expires after 9999-12-31)" in capsys.readouterr().out
