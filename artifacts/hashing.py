"""The id a file would have as a blob, computed without storing it."""

from __future__ import annotations

import os

import blake3

from cas.objects import encode_header
from cas.store import HASH_CHUNK, HASH_THREADS


def blob_id_of_file(path: str) -> bytes:
    hasher = blake3.blake3(max_threads=HASH_THREADS)
    hasher.update(encode_header("blob", os.path.getsize(path)))
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            hasher.update(chunk)
    return hasher.digest()
