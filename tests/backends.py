"""The backends the tests run on, by their one set of names, and how to make each.

* ``memory``: :class:`~cas.storage.MemoryStorage`;
* ``local``: :class:`~cas.storage.LocalStorage` in the test's ``tmp_path``;
* ``fsspec-memory``, ``fsspec-file``: the generic
  :class:`~cas.storage.fsspec.FsspecStorage` on fsspec's ``memory://`` (a root
  of the test's own: that filesystem is one per process) and ``file://``;
* ``s3-moto``, ``s3-seaweed``, ``gcs``: a fresh, empty bucket on a real server
  started by ``tests/servers.py`` (only when a test asks for it). When that
  module or the backend's code is not there, these skip with the reason.

Parametrize tests with these names, and only these.

A *spec* (``{"url": ..., "options": {...}}``) names a store as plain data, so
another process can open it: see :func:`storage_spec` and :func:`open_spec`.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cas import open_storage
from cas.storage import LocalStorage, MemoryStorage, Storage
from cas.storage.fsspec import FsspecStorage

try:
    from tests import servers
except ImportError as exc:  # tests/servers.py cannot be imported here
    servers = None  # type: ignore[assignment]
    SERVERS_MISSING = f"tests/servers.py is not available ({exc})"
else:
    SERVERS_MISSING = ""

LOCAL_BACKENDS = ["memory", "local", "fsspec-memory", "fsspec-file"]
# param -> (session fixture of tests/servers.py, servers.py function making a spec)
REMOTE_BACKENDS = {
    "s3-moto": ("moto_server", "new_s3_spec"),
    "s3-seaweed": ("seaweed_server", "new_s3_spec"),
    "gcs": ("gcs_server", "new_gcs_spec"),
}
BACKENDS = LOCAL_BACKENDS + list(REMOTE_BACKENDS)

Spec = dict[str, Any]


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
    """A fresh, empty store of ``backend``; remote ones on a fresh bucket."""
    if backend == "memory":
        return MemoryStorage()
    if backend == "local":
        return LocalStorage(str(tmp_path / "store"))
    if backend == "fsspec-memory":
        return FsspecStorage(f"memory://store-{uuid.uuid4().hex}")
    if backend == "fsspec-file":
        return FsspecStorage(f"file://{tmp_path / 'store'}")
    return open_spec(storage_spec(request, backend, tmp_path))
