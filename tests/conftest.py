"""Shared fixtures: one ``storage`` fixture over every backend, and a ``repo`` on it.

Backends are named by the ``backend`` fixture's params:

* ``memory``: :class:`~cas.storage.MemoryStorage`;
* ``local``: :class:`~cas.storage.LocalStorage` in the test's ``tmp_path``;
* ``fsspec-memory``, ``fsspec-file``: the generic
  :class:`~cas.storage.fsspec.FsspecStorage` on fsspec's ``memory://`` (a root
  of the test's own: that filesystem is one per process) and ``file://``;
* ``s3-moto``, ``s3-seaweed``, ``gcs``: a fresh, empty bucket on a real server
  started by ``tests/servers.py`` (only when a test asks for it). When that
  module or the backend's code is not there, these params skip with the reason.

A *spec* (``{"url": ..., "options": {...}}``) names a store as plain data, so
another process can open it: see :func:`storage_spec` and :func:`open_spec`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cas import Repository, open_storage
from cas.storage import LocalStorage, MemoryStorage, Storage
from cas.storage.fsspec import FsspecStorage

try:
    from tests import servers
    from tests.servers import gcs_server, moto_server, seaweed_server  # noqa: F401 - fixtures
except ImportError as exc:  # tests/servers.py is not written yet, or cannot be imported
    servers = None  # type: ignore[assignment]
    SERVERS_MISSING = f"tests/servers.py is not available ({exc})"
else:
    SERVERS_MISSING = ""

ROOT = Path(__file__).resolve().parent.parent
LOCAL_BACKENDS = ["memory", "local", "fsspec-memory", "fsspec-file"]
# param -> (session fixture of tests/servers.py, servers.py function making a spec)
REMOTE_BACKENDS = {
    "s3-moto": ("moto_server", "new_s3_spec"),
    "s3-seaweed": ("seaweed_server", "new_s3_spec"),
    "gcs": ("gcs_server", "new_gcs_spec"),
}
BACKENDS = LOCAL_BACKENDS + list(REMOTE_BACKENDS)

Spec = dict[str, Any]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (the ``storage`` fixture's param)."""
    return request.param


def storage_spec(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Spec:
    """A spec for a fresh, empty, durable store of ``backend`` (any but memory).

    Remote servers are started lazily, on the first test that needs them.
    """
    if backend == "local":
        return {"url": str(tmp_path / "store"), "options": {}}
    if backend not in REMOTE_BACKENDS:
        raise ValueError(f"no spec for backend {backend!r}")
    if servers is None:
        pytest.skip(f"{backend}: {SERVERS_MISSING}")
    fixture, make_spec = REMOTE_BACKENDS[backend]
    server = request.getfixturevalue(fixture)
    try:
        return getattr(servers, make_spec)(server)
    except ImportError as exc:  # e.g. cas/storage/gcs.py not written yet
        pytest.skip(f"{backend}: backend unavailable ({exc})")


def open_spec(spec: Spec) -> Storage:
    """Open the store a spec names; works in any process."""
    url = spec["url"]
    if "://" not in url or url.startswith("file://"):
        return open_storage(url)
    if servers is None:
        pytest.skip(SERVERS_MISSING)
    try:
        return servers.open_storage_from_spec(spec)
    except ImportError as exc:
        pytest.skip(f"{url}: backend unavailable ({exc})")


def make_storage(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Storage:
    if backend == "memory":
        return MemoryStorage()
    if backend == "local":
        return LocalStorage(str(tmp_path / "store"))
    if backend == "fsspec-memory":
        return FsspecStorage(f"memory://store-{uuid.uuid4().hex}")
    if backend == "fsspec-file":
        return FsspecStorage(f"file://{tmp_path / 'store'}")
    return open_spec(storage_spec(request, backend, tmp_path))


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
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARTIFACTS_ENTITY", "team")
    monkeypatch.setenv("ARTIFACTS_PROJECT", "proj")
    monkeypatch.delenv("ARTIFACTS_STORE", raising=False)
    (tmp_path / ".artifacts").mkdir()  # never pick up a store above the tmp dir
    return tmp_path


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
