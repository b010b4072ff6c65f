"""Deleting versions (issue 20, item 2): gone from listings and resolving, kept in
lineage as DELETED, and their data freed by gc although later versions still name
their commits as parents.

Code written for ``wandb`` runs with ``wandb`` replaced by ``artifacts``. Sections:
W&B's usage; reading around deleted versions; gc and fsck; the record's bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import artifacts
from artifacts import deletion
from artifacts.deletion_records import Deletion, deletion_ref, released_by
from artifacts.errors import ArtifactNotFoundError, VersionDeletedError
from artifacts.registry import Registry
from cas import Repository
from cas.errors import UsageError
from cas.fsck import fsck
from tests.helpers import ENTITY, PROJECT, write

MiB = 1024 * 1024
# gc keeps what it moved if it stalled over half a lease meanwhile (cas.gc): 0.2 s
# was outrun by a loaded machine copying 3 MiB, and the test found nothing freed.
LEASE = 0.5


def log(run: Any, data: bytes, name: str = "ckpt", aliases: list[str] | None = None) -> Any:
    src = Path(os.getcwd()) / f"src-{name}-{len(data)}-{data[:8].hex()}"
    write(src / "weights.bin", data)
    artifact = artifacts.Artifact(name, "model")
    artifact.add_dir(str(src))
    return run.log_artifact(artifact, aliases=aliases or [])


def three_versions(big: bytes = b"big" * 1000) -> list[Any]:
    with artifacts.init() as run:
        return [log(run, big), log(run, b"small"), log(run, b"newest")]


# ---- W&B's usage -------------------------------------------------------------------


def test_wandb_delete_usage_runs_with_artifacts(ws):
    three_versions()
    api = artifacts.Api()
    artifact = api.artifact("ckpt:v1")
    artifact.delete()
    assert [a.version for a in api.artifact_collection("model", "ckpt").versions()] == [
        "v2",
        "v0",
    ]
    with pytest.raises(ArtifactNotFoundError, match=r"ckpt:v1 was deleted by \S+ at .* UTC"):
        api.artifact("ckpt:v1")
    assert api.artifact("ckpt:latest").version == "v2"
    assert not api.artifact_exists("ckpt:v1")


def test_a_version_with_aliases_is_refused_unless_delete_aliases(ws):
    with artifacts.init() as run:
        log(run, b"a", aliases=["best"])
        log(run, b"b")
    api = artifacts.Api()
    repo = api._store.repo
    refs_before = repo.refs.list("")
    with pytest.raises(UsageError, match="has aliases best: remove them first"):
        api.artifact("ckpt:v0").delete()
    assert repo.refs.list("") == refs_before  # nothing changed
    assert api.artifact("ckpt:best").version == "v0"
    api.artifact("ckpt:v0").delete(delete_aliases=True)
    with pytest.raises(ArtifactNotFoundError, match="no version has alias 'best'"):
        api.artifact("ckpt:best")


def test_latest_is_not_an_alias_and_moves_to_the_newest_version_left(ws):
    three_versions()
    api = artifacts.Api()
    api.artifact("ckpt:latest").delete()  # v2: it holds only "latest"
    assert api.artifact("ckpt:latest").version == "v1"
    assert api.artifact("ckpt:v1").aliases == ["latest"]
    with artifacts.init() as run:
        assert log(run, b"after").version == "v3"  # the numbers go on
    assert [a.version for a in api.artifact_collection("model", "ckpt").versions()] == [
        "v3",
        "v1",
        "v0",
    ]


def test_logging_the_deleted_latest_versions_files_again_makes_a_new_version(ws):
    with artifacts.init() as run:
        first = log(run, b"same")
    first.delete()
    with artifacts.init() as run:
        again = log(run, b"same")
    assert again.version == "v1" and again.state == "COMMITTED"
    assert artifacts.Api().artifact("ckpt:latest").version == "v1"


def test_deleting_a_deleted_version_says_so(ws):
    three_versions()
    artifact = artifacts.Api().artifact("ckpt:v0")
    artifact.delete()
    with pytest.raises(VersionDeletedError, match="ckpt:v0 was already deleted by"):
        artifact.delete()


def test_a_draft_cannot_be_deleted(ws):
    with pytest.raises(artifacts.errors.ArtifactNotLoggedError):
        artifacts.Artifact("x", "model").delete()


def test_a_collection_delete_deletes_every_version_and_its_aliases(ws):
    with artifacts.init() as run:
        log(run, b"a", aliases=["best"])
        log(run, b"b")
        log(run, b"other", name="other")
    api = artifacts.Api()
    api.artifact_collection("model", "ckpt").delete()
    assert [c.name for c in api.artifact_collections(PROJECT, "model")] == ["other"]
    with pytest.raises(ArtifactNotFoundError, match="was deleted"):
        api.artifact("ckpt:latest")
    assert [a.version for a in api.artifacts("model", "other")] == ["v0"]
    repo = api._store.repo
    assert not repo.refs.list(f"{ENTITY}/{PROJECT}/artifacts/ckpt/aliases/")


# ---- reading around deleted versions -----------------------------------------------


def test_lineage_shows_a_deleted_version_as_deleted_and_it_cannot_be_downloaded(ws):
    with artifacts.init() as run:
        version = log(run, b"data")
        run_id = run.id
    with artifacts.init() as user:
        user.use_artifact("ckpt:v0")
        user_id = user.id
    version.delete()
    api = artifacts.Api()
    logged = api.run(run_id).logged_artifacts()
    assert [(a.version, a.state) for a in logged] == [("v0", "DELETED")]
    assert [a.state for a in api.run(user_id).used_artifacts()] == ["DELETED"]
    with pytest.raises(VersionDeletedError, match="ckpt:v0 was deleted by"):
        logged[0].download(str(ws / "dl"))
    with artifacts.init() as run, pytest.raises(VersionDeletedError):
        run.use_artifact("ckpt:v0")


def test_the_cli_lists_and_shows_no_deleted_version(ws, capsys):
    from artifacts.cli import main

    three_versions()
    artifacts.Api().artifact("ckpt:v1").delete()
    capsys.readouterr()
    assert main(["versions", "ckpt"]) == 0
    out = capsys.readouterr().out
    assert "v2" in out and "v0" in out and "v1" not in out
    assert main(["show", "ckpt:v1"]) == 1
    assert "ckpt:v1 was deleted by" in capsys.readouterr().err


# ---- gc and fsck -------------------------------------------------------------------


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_gc_frees_deleted_versions_in_the_middle_of_a_history(ws):
    """The issue's acceptance, on a local store (tests/test_deletion_remotes.py: buckets)."""
    big = os.urandom(3 * MiB)
    v0, v1, v2 = three_versions(big)
    v1.delete()
    v0.delete()
    repo = Repository.open(str(ws / ".artifacts"))
    repo.set_lease_seconds(LEASE)
    before = store_bytes(ws / ".artifacts")
    collect(repo)
    assert before - store_bytes(ws / ".artifacts") >= 3 * MiB
    assert fsck(repo, released=deletion.released(repo)).ok
    artifacts.Api().artifact("ckpt:v2").download(str(ws / "dl"))
    assert (ws / "dl" / "weights.bin").read_bytes() == b"newest"


def collect(repo: Repository) -> None:
    """gc twice, two leases apart: objects move to the fossils, then go for good."""
    from cas.gc import gc

    gc(repo, grace_seconds=0, released=deletion.released(repo))
    import time

    time.sleep(2 * repo.lease_seconds() + 0.1)
    gc(repo, grace_seconds=0, released=deletion.released(repo))


def test_blobs_a_deleted_version_shares_with_a_kept_one_stay(ws):
    with artifacts.init() as run:
        src = Path(os.getcwd()) / "src"
        write(src / "shared.bin", "shared bytes")
        write(src / "own.bin", "first")
        first = artifacts.Artifact("ckpt", "model")
        first.add_dir(str(src))
        first = run.log_artifact(first)
        write(src / "own.bin", "second")
        second = artifacts.Artifact("ckpt", "model")
        second.add_dir(str(src))
        run.log_artifact(second)
    first.delete()
    repo = Repository.open(str(ws / ".artifacts"))
    repo.set_lease_seconds(LEASE)
    collect(repo)
    assert fsck(repo, released=deletion.released(repo)).ok
    artifacts.Api().artifact("ckpt:v1").download(str(ws / "dl"))
    assert (ws / "dl" / "shared.bin").read_text() == "shared bytes"
    assert (ws / "dl" / "own.bin").read_text() == "second"


def test_other_artifacts_and_later_versions_are_untouched(ws):
    three_versions()
    with artifacts.init() as run:
        log(run, b"other", name="other")
    artifacts.Api().artifact("ckpt:v0").delete()
    repo = Repository.open(str(ws / ".artifacts"))
    repo.set_lease_seconds(LEASE)
    collect(repo)
    api = artifacts.Api()
    for spec, data in (("ckpt:v1", b"small"), ("ckpt:v2", b"newest"), ("other:v0", b"other")):
        root = api.artifact(spec).download(str(ws / spec.replace(":", "-")))
        assert (Path(root) / "weights.bin").read_bytes() == data


# ---- the record's bytes (docs/format.md) ---------------------------------------------


def test_the_deletion_record_vector_of_the_format_doc(format_vectors):
    commit = bytes.fromhex("0aa7dc8615a45dad7604fe9f275e1d8b738508c20ae0fa20bc4a549326a1ca70")
    record = Deletion(commit, 1700000000000000000, "alice", None, "delete")
    blob = record.to_blob()
    assert format_vectors["deletion-record"]["bytes"] == blob.to_bytes()
    assert format_vectors["deletion-record"]["id"] == blob.id
    assert Deletion.from_bytes(blob.data, commit) == record


def test_a_deletion_ref_names_the_commit_it_releases():
    commit = bytes(range(32))
    assert released_by(deletion_ref("e", "p", "n", commit)) == commit
    for other in ("e/p/artifacts/n/latest", "e/p/artifacts/n/deleted/xyz", "e/p/runs/r"):
        assert released_by(other) is None
    assert released_by("e/p/artifacts/n/deleted/" + commit.hex().upper()) is None


def test_only_the_stores_own_deletions_release_a_commit_whose_tree_is_here(ws):
    """A remote-tracking copy of a deletion (another store's) does not free a version
    this store still has."""
    three_versions()
    repo = Repository.open(str(ws / ".artifacts"))
    registry = Registry(repo)
    v0 = registry.resolve(artifacts.names.parse_spec("ckpt:v0", ENTITY, PROJECT))
    record = repo.objects.put(Deletion(v0.commit_id, 1, None, None, "delete").to_blob())
    ref = deletion_ref(ENTITY, PROJECT, "ckpt", v0.commit_id)
    repo.refs.set_if_equals(f"remotes/origin/{ref}", None, record)
    assert deletion.released(repo) == set()
    repo.refs.set_if_equals(ref, None, record)
    assert deletion.released(repo) == {v0.commit_id}


def test_finding_the_released_commits_reads_only_the_deletion_refs(ws, monkeypatch):
    """On a bucket a ref is a request: gc must not read every head, alias and
    annotation ref of the store to find the few deletions."""
    three_versions()
    artifacts.Api().artifact(f"{ENTITY}/{PROJECT}/ckpt:v0").delete()
    repo = Repository.open(str(ws / ".artifacts"))
    read: list[str] = []
    real_read = repo.refs.read
    monkeypatch.setattr(repo.refs, "read", lambda name: read.append(name) or real_read(name))
    assert len(deletion.released(repo)) == 1
    assert read and all(released_by(name) is not None for name in read), read


# ---- the CLI -----------------------------------------------------------------------


def cli(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from artifacts.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_rm_deletes_a_version_and_says_what_to_do_otherwise(ws):
    with artifacts.init() as run:
        log(run, b"a", aliases=["best"])
        log(run, b"b")
    code, _, err = cli("rm", "ckpt:v0")
    assert code == 1 and err.count("\n") == 1
    assert "has aliases best: remove them first" in err and "--delete-aliases" in err
    code, out, _ = cli("rm", "ckpt:v0", "--delete-aliases", "--json")
    assert code == 0 and '"deleted"' in out and f"{ENTITY}/{PROJECT}/ckpt:v0" in out
    code, _, err = cli("rm", "ckpt:v0")
    assert code == 1 and "ckpt:v0 was already deleted by" in err
    code, _, err = cli("rm", "ckpt")
    assert code == 1 and "add --all" in err
    assert artifacts.Api().artifact("ckpt:latest").version == "v1"
    code, out, _ = cli("rm", "ckpt", "--all")
    assert code == 0 and out == f"deleted {ENTITY}/{PROJECT}/ckpt:v1\n"
    code, _, err = cli("rm", "nothing", "--all")
    assert code == 1 and "not found" in err


def test_cli_gc_and_fsck_pass_the_released_commits(ws):
    big = os.urandom(3 * MiB)
    three_versions(big)
    assert cli("rm", "ckpt:v1")[0] == 0 and cli("rm", "ckpt:v0")[0] == 0
    Repository.open(str(ws / ".artifacts")).set_lease_seconds(LEASE)
    before = store_bytes(ws / ".artifacts")
    assert cli("gc", "--grace", "0")[0] == 0
    import time

    time.sleep(2 * LEASE + 0.1)
    assert cli("gc", "--grace", "0")[0] == 0
    assert before - store_bytes(ws / ".artifacts") >= 3 * MiB
    code, out, err = cli("fsck")
    assert code == 0, out + err


def test_a_delete_killed_at_any_instant_leaves_each_version_deleted_or_not(ws):
    import signal
    import subprocess
    import sys

    with artifacts.init() as run:
        for n in range(12):
            version = log(run, f"data {n}".encode(), aliases=[f"a{n}"])
            version.description = f"edited {n}"
            version.save()
    repo = Repository.open(str(ws / ".artifacts"))
    prefix = f"{ENTITY}/{PROJECT}/artifacts/ckpt/"
    child = subprocess.Popen(
        [sys.executable, "-m", "artifacts", "rm", "ckpt", "--all"],
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    while child.poll() is None and not repo.refs.list(prefix + "deleted/"):
        pass
    assert child.poll() is None, child.communicate()[1]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    refs = repo.refs.list(prefix)
    deleted = {released_by(r) for r in refs if "/deleted/" in r}
    assert deleted, "the child was killed before it deleted anything"
    registry = Registry(repo)
    for version in registry.chain(registry.version(ENTITY, PROJECT, refs[prefix + "latest"])):
        if version.commit_id not in deleted:  # not deleted: untouched
            assert refs[prefix + f"aliases/a{version.number}"] == version.commit_id
            assert prefix + f"annotations/{version.commit_id.hex()}" in refs
    assert fsck(repo, released=deletion.released(repo)).ok
    assert cli("rm", "ckpt", "--all")[0] == 0  # finishes the cleanup
    left = repo.refs.list(prefix)
    assert not [r for r in left if "/aliases/" in r or "/annotations/" in r]
    assert len([r for r in left if "/deleted/" in r]) == 12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rm", "ckpt:v0"], "has aliases best: remove them first"),
        (["rm", "ckpt"], "would delete every version: add --all"),
        (["rm", "ckpt:v0", "--all"], "--all deletes a whole artifact"),
        (["rm", "ckpt:v7"], "not found: the latest version is v1"),
        (["rm", "nothing:v0"], "artifact team/proj/nothing not found"),
    ],
)
def test_cli_rm_refuses_in_one_line_and_deletes_nothing(ws, argv, message):
    with artifacts.init() as run:
        log(run, b"a", aliases=["best"])
        log(run, b"b")
    repo = Repository.open(str(ws / ".artifacts"))
    refs = repo.refs.list("")
    code, out, err = cli(*argv)
    assert code == 1 and out == ""
    assert err.startswith("artifacts: error: ") and message in err and err.count("\n") == 1
    assert repo.refs.list("") == refs
