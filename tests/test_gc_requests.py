"""What a gc costs in requests on a bucket (docs/performance.md, "gc").

gc learns what a store and its fossils hold (cas.inventory) from listings, which
carry each key's size and modification time, a thousand keys a page: a request per
object (a probe for its form, a HEAD for its time) made a bucket of 10,000 large
files cost tens of thousands of serial round trips before gc decided anything.
Requests are counted by a proxy in front of a real moto server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cas import Repository, keys
from cas.gc import gc
from cas.objects import encode_header, object_id
from cas.packs import LOOSE_THRESHOLD
from cas.storage import Storage
from tests.httpproxy import FaultProxy
from tests.servers import new_s3_spec, open_storage_from_spec

pytest.importorskip("s3fs")

LARGE = 100  # large blobs loose in the store, and as many among its fossils
SMALL = 5  # small objects loose in the store: gc reads each to learn what it references


def fill(storage: Storage, tmp_path: Path) -> None:
    """Unreachable objects, all young: large blobs in the store and its fossils (laid
    out directly, a request each: a large blob is its content alone under its key, of
    any size), small loose objects, and one large blob kept whole, as older stores did."""
    store = Repository(storage, str(tmp_path / "fill-cache")).objects
    assert store.fossils is not None
    for i in range(LARGE):
        for area in (store, store.fossils):
            content = f"{area.storage.url} {i}".encode()
            blob_id = object_id(encode_header("blob", len(content)) + content)
            area.storage.put(keys.content_key(blob_id), content)
    for i in range(SMALL):
        payload = os.urandom(100 + i)
        store.put_raw(encode_header("blob", len(payload)) + payload)
    whole = encode_header("blob", LOOSE_THRESHOLD) + os.urandom(LOOSE_THRESHOLD)
    storage.put(keys.loose_key(object_id(whole)), whole)


def test_gc_learns_a_bucket_from_listings_not_a_request_per_object(
    moto_server: Any, tmp_path: Path
) -> None:
    spec = new_s3_spec(moto_server)
    fill(open_storage_from_spec(spec), tmp_path)
    with FaultProxy(moto_server.endpoint_url, lambda request: None) as proxy:
        options = {**spec["options"], "endpoint_url": proxy.endpoint_url}
        repo = Repository(open_storage_from_spec({**spec, "options": options}), str(tmp_path))
        report = gc(repo, dry_run=True)
    assert (report.kept_for_grace, report.fossils_waiting) == (LARGE + SMALL + 1, LARGE)
    requests = [(r.method, r.path, r.headers.get("range")) for r, _ in proxy.log]
    reads = [(m, p, span) for m, p, span in requests if m == "GET" and "/objects/" in p]
    # Besides: the config, the clock (a PUT and its HEAD), and a page each of the
    # listings of refs, the loose forms and packs of the store and of its fossils, and
    # the store's again to learn which fossils it holds.
    assert len(requests) - len(reads) <= 20, requests
    # Each small object read whole; the large one kept whole only its header: a blob.
    assert sorted(span is None for _, _, span in reads) == [False] + [True] * SMALL
