"""Shared fixtures: one ``storage`` fixture over every backend, and a ``repo`` on it.

The backends, by name, are those of tests/backends.py (``memory``, ``local``,
``fsspec-memory``, ``fsspec-file``, ``s3-moto``, ``s3-seaweed``, ``gcs``): the
``backend`` fixture runs over all of them; ``remote_spec`` and ``s3_server`` over the
bucket ones alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cas import Repository, pages
from cas.storage import Storage
from tests.backends import (
    BACKENDS,
    REMOTE_BACKENDS,
    SERVERS_MISSING,
    Spec,
    make_storage,
    open_spec,
    servers,
    storage_spec,
)
from tests.helpers import workspace

if servers is not None:  # the session fixtures of the servers, shared by every module
    from tests.servers import gcs_server, moto_server, seaweed_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def download_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's download cache (artifacts.cache) is its own, under ``tmp_path``."""
    monkeypatch.setenv("ARTIFACTS_CACHE_DIR", str(tmp_path / "download-cache"))
    monkeypatch.delenv("ARTIFACTS_CACHE_MAX_SIZE", raising=False)
    monkeypatch.delenv("ARTIFACTS_ARTIFACT_DIR", raising=False)  # downloads: ./artifacts
    return tmp_path / "download-cache"


@pytest.fixture(autouse=True)
def no_run_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test's runs take settings from the environment it runs in (artifacts.env)."""
    for name in list(os.environ):
        if name.startswith("WANDB_"):
            monkeypatch.delenv(name)
    for name in (
        "DIR",
        "MODE",
        "RUN_ID",
        "RESUME",
        "JOB_TYPE",
        "RUN_GROUP",
        "TAGS",
        "NOTES",
        "NAME",
    ):
        monkeypatch.delenv(f"ARTIFACTS_{name}", raising=False)


@pytest.fixture(autouse=True)
def no_last_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test's ``Api()`` reads the store of an earlier test's run (artifacts.api)."""
    monkeypatch.setattr("artifacts.lineage._last_store", None)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (the ``storage`` fixture's param)."""
    return request.param


@pytest.fixture
def storage(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, empty storage of each backend in turn."""
    store = make_storage(request, backend, tmp_path)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def repo(storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    """A repository over ``storage``; remote pack-index caches go under ``tmp_path``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return Repository(storage)


@pytest.fixture(params=list(REMOTE_BACKENDS))
def remote_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Spec:
    """The spec of a fresh, empty bucket on each remote backend in turn."""
    return storage_spec(request, request.param, tmp_path)


@pytest.fixture(params=[name for name in REMOTE_BACKENDS if name.startswith("s3-")])
def s3_server(request: pytest.FixtureRequest) -> Any:
    """Each S3 server in turn (only the ones a test asks for get started)."""
    if servers is None:
        pytest.skip(SERVERS_MISSING)
    fixture, _ = REMOTE_BACKENDS[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture
def make_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """``make_spec(backend)``: a spec for a fresh store, to hand to other processes."""

    def make(backend: str) -> Spec:
        return storage_spec(request, backend, tmp_path)

    return make


@pytest.fixture
def open_store() -> Any:
    """``open_store(spec)``: open the store a spec names (see :func:`open_spec`)."""
    return open_spec


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with its own store: ``.artifacts/`` in a fresh tmp dir."""
    return workspace(tmp_path, monkeypatch)


# ---- the vectors of docs/format.md --------------------------------------

FORMAT_DOC = ROOT / "docs" / "format.md"
_BLOCK = re.compile(r"```text\n(vector: .*?)```", re.S)
_FIELD = re.compile(r"^(vector|bytes|id):\s*(.*)$")


def parse_format_vectors(text: str) -> dict[str, dict[str, bytes]]:
    """``{name: {"bytes": ..., "id": ...}}`` from the ``vector:`` blocks of format.md.

    A block is a ```text fence whose first line is ``vector: NAME``, then
    ``bytes:`` with hex that may continue on indented lines, then optionally
    ``id:`` with 64 hex digits.
    """
    vectors: dict[str, dict[str, bytes]] = {}
    for block in _BLOCK.findall(text):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            match = _FIELD.match(line)
            if match:
                current = match.group(1)
                if current in fields:
                    raise ValueError(f"field {current!r} twice in a vector block:\n{block}")
                fields[current] = match.group(2).strip()
            elif line.startswith(" ") and current in ("bytes", "id"):
                fields[current] += line.strip()
            elif line.strip():
                raise ValueError(f"unexpected line {line!r} in a vector block")
        name = fields.pop("vector")
        if name in vectors:
            raise ValueError(f"vector {name!r} is written twice")
        vectors[name] = {key: bytes.fromhex(value) for key, value in fields.items()}
    return vectors


@pytest.fixture(scope="session")
def format_vectors() -> dict[str, dict[str, bytes]]:
    """The golden vectors written in docs/format.md."""
    return parse_format_vectors(FORMAT_DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def parse_vectors() -> Any:
    """The parser behind ``format_vectors``, for tests of the parser itself."""
    return parse_format_vectors


@pytest.fixture
def tiny_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Directory pages of a few entries (cas.pages), so that a few hundred entries make
    an index of several heights."""
    monkeypatch.setattr(pages, "MIN_PAGE", 3)
    monkeypatch.setattr(pages, "BOUNDARY_ODDS", 3)
    monkeypatch.setattr(pages, "MAX_PAGE", 8)
