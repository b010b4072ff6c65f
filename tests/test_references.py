"""References (issue 15, item 5): directories and bucket prefixes expand to one entry per
object, up to ``max_objects``; a download hands back the logged bytes (the recorded
S3 version or GCS generation) or raises ``ReferenceChangedError``, and nothing wrong
takes a file's name; ``checksum=False`` records the URI only.

Buckets are real servers on 127.0.0.1 (moto, fake-gcs-server), reached through the
environment as a user reaches them (see tests/test_remotes.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

import artifacts
from artifacts import Artifact, ReferenceChangedError, UsageError
from artifacts.files import Reference, read_descriptor
from tests.helpers import tree_of, write
from tests.servers import GCSServer, S3Server
from tests.test_remotes import use_gcs_env, use_s3_env


def log(artifact: Artifact) -> Artifact:
    with artifacts.init() as run:
        return run.log_artifact(artifact)


def descriptors(artifact: Artifact) -> dict[str, dict[str, Any]]:
    """Each reference entry's stored descriptor, by path."""
    store = artifact._version()[0].objects
    return {path: read_descriptor(store, entry) for path, entry in artifact._files()}


def refused_download(artifact: Artifact, root: Path, uri: str) -> None:
    """The download raises ReferenceChangedError naming ``uri``; no file takes a name."""
    before = tree_of(root) if root.exists() else None
    with pytest.raises(ReferenceChangedError, match=uri.replace("+", r"\+")) as caught:
        artifact.download(str(root))
    assert caught.value.uri == uri
    assert (tree_of(root) if root.exists() else None) == before


# ---- file:// -----------------------------------------------------------------------


def test_a_directory_file_reference_adds_one_entry_per_file(ws):
    src = ws / "outside"
    write(src / "a.txt", b"aaa")
    write(src / "sub" / "b.txt", b"bb")
    artifact = Artifact("refs", "dataset")
    entries = artifact.add_reference(f"file://{src}", name="data")
    assert sorted((e.path, e.size, e.ref) for e in entries) == [
        ("data/a.txt", 3, f"file://{src}/a.txt"),
        ("data/sub/b.txt", 2, f"file://{src}/sub/b.txt"),
    ]
    log(artifact)
    assert tree_of(artifact.download(str(ws / "dl"))) == {
        "data/a.txt": b"aaa",
        "data/sub/b.txt": b"bb",
    }
    artifact.verify(str(ws / "dl"))


def test_a_directory_reference_past_max_objects_is_refused(ws):
    for name in "abc":
        write(ws / "outside" / name, name)
    artifact = Artifact("refs", "dataset")
    with pytest.raises(UsageError, match="more than 2 objects.*max_objects"):
        artifact.add_reference(f"file://{ws}/outside", max_objects=2)
    assert len(artifact.add_reference(f"file://{ws}/outside", max_objects=3)) == 3
    # -1 said "referenced object not found" of a directory there, "5" a TypeError.
    for bad in (0, -1, "5", 2.5, True):
        with pytest.raises(UsageError, match="max_objects is a whole number > 0"):
            Artifact("d", "dataset").add_reference(f"file://{ws}/outside", max_objects=bad)


def test_a_file_reference_whose_file_changed_is_refused(ws):
    target = write(ws / "outside" / "f.bin", b"logged bytes")
    artifact = Artifact("refs", "dataset")
    artifact.add_reference(f"file://{target}")
    log(artifact)
    write(target, b"other bytes!")  # same size, other bytes
    refused_download(artifact, ws / "dl", f"file://{target}")
    write(ws / "into" / "keep.txt", "mine")  # a directory with files: written in place
    refused_download(artifact, ws / "into", f"file://{target}")
    assert tree_of(ws / "into") == {"keep.txt": b"mine"}


def test_without_checksum_only_the_uri_is_recorded_and_so_said(ws):
    target = write(ws / "outside" / "f.bin", b"logged bytes")
    uri = f"file://{target}"
    artifact = Artifact("refs", "dataset")
    [entry] = artifact.add_reference(uri, checksum=False)
    assert entry.digest == uri
    log(artifact)
    assert descriptors(artifact)["f.bin"]["checksum"] is False
    write(target, b"changed, and longer")  # nothing was promised about the bytes
    assert tree_of(artifact.download(str(ws / "dl"))) == {"f.bin": b"changed, and longer"}
    artifact.verify(str(ws / "dl"))


def test_an_unchecked_descriptor_of_an_older_store_is_still_read(ws):
    """Before "checksum" was written, an unchecked reference was only its URI as digest."""
    target = write(ws / "outside" / "f.bin", b"old")
    uri = f"file://{target}"
    artifact = Artifact("refs", "dataset")
    artifact._draft.stage(("f.bin",), Reference({"uri": uri, "digest": uri, "size": 3}), False)
    log(artifact)
    write(target, b"changed")
    assert tree_of(artifact.download(str(ws / "dl"))) == {"f.bin": b"changed"}


# ---- buckets -----------------------------------------------------------------------


def s3_bucket(server: S3Server, monkeypatch: pytest.MonkeyPatch, versioned: bool) -> Any:
    """A filesystem on a fresh bucket (its name: ``fs.bucket``), reachable from the env."""
    use_s3_env(monkeypatch, server.endpoint_url, server.key, server.secret)
    fs = fsspec.filesystem(
        "s3", skip_instance_cache=True, use_listings_cache=False, **server.options()
    )
    fs.bucket = f"refs-{uuid.uuid4().hex[:16]}"
    fs.mkdir(fs.bucket)
    if versioned:
        fs.make_bucket_versioned(fs.bucket)
    return fs


def gcs_bucket(server: GCSServer, monkeypatch: pytest.MonkeyPatch, versioned: bool) -> Any:
    import cas.storage.gcs  # noqa: F401 - configures gcsfs before it is imported

    use_gcs_env(monkeypatch, server)
    fs = fsspec.filesystem(
        "gs", skip_instance_cache=True, use_listings_cache=False, **server.options()
    )
    fs.bucket = f"refs-{uuid.uuid4().hex[:16]}"
    fs.mkdir(fs.bucket, enable_versioning=versioned)
    return fs


BUCKETS = {"s3-moto": ("s3", s3_bucket, "moto_server"), "gcs": ("gs", gcs_bucket, "gcs_server")}


@pytest.fixture(params=list(BUCKETS.values()), ids=list(BUCKETS))
def bucket(request, ws, monkeypatch):
    """(scheme, make_bucket(versioned) -> filesystem on a fresh bucket)."""
    scheme, factory, server_fixture = request.param
    server = request.getfixturevalue(server_fixture)
    return scheme, lambda versioned: factory(server, monkeypatch, versioned)


def test_a_bucket_prefix_adds_one_entry_per_object(bucket, ws):
    scheme, make_bucket = bucket
    fs = make_bucket(versioned=False)
    fs.pipe({f"{fs.bucket}/data/a.txt": b"aaa", f"{fs.bucket}/data/sub/b.txt": b"bb"})
    fs.pipe(f"{fs.bucket}/database.csv", b"not under data/")
    prefix = f"{scheme}://{fs.bucket}/data/"
    artifact = Artifact("refs", "dataset")
    entries = artifact.add_reference(prefix)
    assert sorted((e.path, e.size, e.ref) for e in entries) == [
        ("a.txt", 3, f"{prefix}a.txt"),
        ("sub/b.txt", 2, f"{prefix}sub/b.txt"),
    ]
    log(artifact)
    assert tree_of(artifact.download(str(ws / "dl"))) == {"a.txt": b"aaa", "sub/b.txt": b"bb"}
    artifact.verify(str(ws / "dl"))
    with pytest.raises(UsageError, match="more than 1 objects.*max_objects"):
        Artifact("refs", "dataset").add_reference(prefix.rstrip("/"), max_objects=1)


def test_a_changed_object_of_an_unversioned_bucket_is_refused(bucket, ws):
    scheme, make_bucket = bucket
    fs = make_bucket(versioned=False)
    fs.pipe(f"{fs.bucket}/f.bin", b"logged bytes")
    uri = f"{scheme}://{fs.bucket}/f.bin"
    artifact = Artifact("refs", "dataset")
    artifact.add_reference(uri)
    log(artifact)
    fs.pipe(f"{fs.bucket}/f.bin", b"other bytes!")  # same size
    refused_download(artifact, ws / "dl", uri)
    fs.rm(f"{fs.bucket}/f.bin")
    refused_download(artifact, ws / "dl", uri)


def test_a_versioned_bucket_gives_back_the_logged_version(bucket, ws):
    scheme, make_bucket = bucket
    fs = make_bucket(versioned=True)
    fs.pipe(f"{fs.bucket}/f.bin", b"logged bytes")
    uri = f"{scheme}://{fs.bucket}/f.bin"
    artifact = Artifact("refs", "dataset")
    artifact.add_reference(uri)
    log(artifact)
    assert descriptors(artifact)["f.bin"]["version"]
    fs.pipe(f"{fs.bucket}/f.bin", b"a newer version, longer")
    assert tree_of(artifact.download(str(ws / "dl"))) == {"f.bin": b"logged bytes"}
    artifact.verify(str(ws / "dl"))


def test_an_unchecked_bucket_reference_makes_no_call(ws, monkeypatch):
    # No server, no credentials: recording the URI alone must not reach for either.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    artifact = Artifact("refs", "dataset")
    [entry] = artifact.add_reference("s3://nowhere/some/prefix/", checksum=False)
    assert (entry.path, entry.digest, entry.ref) == (
        "prefix",
        "s3://nowhere/some/prefix/",
        "s3://nowhere/some/prefix/",
    )


# ---- http(s) ----------------------------------------------------------------------------


@pytest.fixture
def http_server(tmp_path: Path) -> Any:
    """A real http server on 127.0.0.1 serving ``tmp_path/served``; stopped by ``.stop()``
    (then nothing answers on its port)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    server.url, server.served, server.stop = f"http://127.0.0.1:{server.server_port}", served, stop
    yield server
    if thread.is_alive():
        stop()


def test_an_http_reference_to_a_server_that_never_answers_fails_within_the_timeout(
    ws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It waited for aiohttp's own five minutes twice (HEAD, then GET), then said
    "referenced object not found", of a server that was only slow or down."""
    import socket
    import time

    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "2")
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.listen(64)  # the kernel accepts connections; nobody answers
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}/model.bin"
        start = time.monotonic()
        with pytest.raises(artifacts.CasError, match="did not answer: silent for 2 s") as raised:
            Artifact("m", "model").add_reference(uri)
        assert time.monotonic() - start < 30
    assert "not found" not in str(raised.value)


def test_an_http_reference_is_not_found_only_when_the_server_says_so(ws, http_server) -> None:
    write(http_server.served / "model.bin", b"weights")
    with pytest.raises(UsageError, match="referenced object not found"):
        Artifact("m", "model").add_reference(f"{http_server.url}/missing.bin")
    artifact = Artifact("m", "model")
    artifact.add_reference(f"{http_server.url}/model.bin")
    logged = log(artifact)
    assert tree_of(logged.download(str(ws / "dl"))) == {"model.bin": b"weights"}
    http_server.stop()
    with pytest.raises(artifacts.CasError, match="did not answer") as raised:
        logged.download(str(ws / "again"))
    assert "no longer exists" not in str(raised.value)  # the server is down, not the file
