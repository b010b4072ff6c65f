"""gc deletes the versions whose TTL ran out, then collects (issue 20, item 3): their
data is freed as a deleted version's, the others stay, and a dry run changes nothing.

Sections: the library (artifacts.collect); a bucket; the CLI.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import artifacts
from artifacts import deletion
from artifacts.collect import collect_garbage
from artifacts.deletion_records import read_deletion
from artifacts.errors import ArtifactNotFoundError, VersionDeletedError
from artifacts.registry import Registry
from cas import Repository
from cas.fsck import fsck
from tests.helpers import ENTITY, PROJECT, write
from tests.test_deletion import cli
from tests.test_deletion_remotes import collect, open_repo, stored_bytes

MiB = 1024 * 1024
NS = 10**9
DAY = 86400


def log_four(store: str | None = None, options: dict[str, Any] | None = None) -> bytes:
    """``ckpt``: v0 (3 MiB, TTL 1 s, alias ``best``), v1 (no TTL), v2 (TTL 10 days),
    v3 (inherits: no default, so no TTL); the 3 MiB."""
    big = os.urandom(3 * MiB)
    src = Path(os.getcwd()) / "src"
    policies = (timedelta(seconds=1), None, timedelta(days=10), artifacts.ArtifactTTL.INHERIT)
    with artifacts.init(PROJECT, ENTITY, store=store, store_options=options) as run:
        for n, (data, ttl) in enumerate(
            zip((big, b"one", b"two", b"three"), policies, strict=True)
        ):
            write(src / "weights.bin", data)
            artifact = artifacts.Artifact("ckpt", "model")
            artifact.add_dir(str(src))
            artifact.ttl = ttl
            run.log_artifact(artifact, aliases=["best"] if n == 0 else [])
    return big


def soon(registry: Registry) -> int:
    """A time (ns) past v0's TTL and not v2's."""
    head = registry.head(ENTITY, PROJECT, "ckpt")
    assert head is not None
    return head.commit.meta["time"] + 60 * NS


def labels(versions: list[Any]) -> list[str]:
    return [f"{v.entity}/{v.project}/{v.name}:v{v.number}" for v in versions]


def versions_left(store: str | None = None, options: Any = None) -> list[str]:
    api = artifacts.Api(store=store, store_options=options)
    return [v.version for v in api.artifact_collection("model", "ckpt").versions()]


# ---- the library ---------------------------------------------------------------------


def test_gc_deletes_expired_versions_aliases_and_all_and_frees_their_data(ws):
    log_four()
    repo = Repository.open(str(ws / ".artifacts"))
    repo.set_lease_seconds(0.2)
    registry = Registry(repo)
    before = stored_bytes(repo)
    collected = collect_garbage(registry, grace_seconds=0, now=soon(registry))
    assert labels(collected.expired) == [f"{ENTITY}/{PROJECT}/ckpt:v0"]
    assert collected.gc.objects_fossilized > 0  # its tree went at once: released
    record = read_deletion(repo, ENTITY, PROJECT, "ckpt", collected.expired[0].commit_id)
    assert record is not None and record.reason == "ttl"
    time.sleep(0.5)  # the fossils' life: two leases
    again = collect_garbage(registry, grace_seconds=0, now=soon(registry))
    assert again.expired == []  # deleted once, reported once
    assert before - stored_bytes(repo) >= 3 * MiB
    assert versions_left() == ["v3", "v2", "v1"]
    with pytest.raises(VersionDeletedError, match="ckpt:v0 was deleted"):
        artifacts.Api().artifact("ckpt:v0")
    with pytest.raises(ArtifactNotFoundError, match="no version has alias 'best'"):
        artifacts.Api().artifact("ckpt:best")
    assert fsck(repo, released=deletion.released(repo)).ok


def test_nothing_expires_before_its_time(ws):
    log_four()
    registry = Registry(Repository.open(str(ws / ".artifacts")))
    logged = registry.head(ENTITY, PROJECT, "ckpt").commit.meta["time"]  # type: ignore[union-attr]
    assert collect_garbage(registry, now=logged).expired == []
    assert versions_left() == ["v3", "v2", "v1", "v0"]


def test_a_dry_run_names_the_expired_versions_and_changes_nothing(ws):
    log_four()
    repo = Repository.open(str(ws / ".artifacts"))
    registry = Registry(repo)
    refs, keys = repo.refs.list(""), sorted(repo.storage.list(""))
    collected = collect_garbage(registry, grace_seconds=0, dry_run=True, now=soon(registry))
    assert labels(collected.expired) == [f"{ENTITY}/{PROJECT}/ckpt:v0"]
    assert collected.gc.dry_run and collected.gc.objects_fossilized > 0  # what would go
    assert repo.refs.list("") == refs
    assert sorted(k for k in repo.storage.list("") if not k.startswith("fossils/")) == [
        k for k in keys if not k.startswith("fossils/")
    ]
    assert artifacts.Api().artifact("ckpt:best").version == "v0"


# ---- a bucket --------------------------------------------------------------------------


def test_gc_frees_expired_versions_on_a_moto_bucket(ws, make_spec):
    spec = make_spec("s3-moto")
    url, options = spec["url"], spec.get("options")
    log_four(url, options)
    repo = open_repo(url, options)
    registry = Registry(repo)
    before = stored_bytes(repo)
    expired = collect_garbage(registry, grace_seconds=0, now=soon(registry)).expired
    assert labels(expired) == [f"{ENTITY}/{PROJECT}/ckpt:v0"]
    collect(repo)  # later passes: the fossils' life on a bucket
    assert before - stored_bytes(repo) >= 3 * MiB
    assert versions_left(url, options) == ["v3", "v2", "v1"]
    root = artifacts.Api(store=url, store_options=options).artifact("ckpt:v2").download()
    assert (Path(root) / "weights.bin").read_bytes() == b"two"
    assert fsck(repo, released=deletion.released(repo)).ok


# ---- the CLI ---------------------------------------------------------------------------


def test_cli_gc_deletes_and_reports_expired_versions_and_dry_run_only_lists_them(ws):
    log_four()
    time.sleep(1.1)  # v0's TTL of a second passes
    label = f"{ENTITY}/{PROJECT}/ckpt:v0"
    code, out, err = cli("gc", "--grace", "0", "--dry-run")
    assert code == 0, err
    assert out.splitlines()[0] == f"would delete 1 expired version: {label}"
    assert versions_left() == ["v3", "v2", "v1", "v0"]
    code, out, err = cli("gc", "--grace", "0", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["expired"] == [label]
    code, out, err = cli("gc", "--grace", "0")
    assert code == 0, err
    assert out.splitlines()[0] == f"deleted 1 expired version: {label}"
    assert versions_left() == ["v3", "v2", "v1"]
    code, out, err = cli("gc", "--grace", "0", "--json")
    assert code == 0 and json.loads(out)["expired"] == []
    assert not out.startswith("deleted")
