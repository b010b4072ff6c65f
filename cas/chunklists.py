"""The chunk list format (docs/format.md, 4.2): how a large blob stored as chunks
lists them.

A chunked blob keeps its id (the blake3 of its whole object bytes); what is
stored under ``chunked/<its id>`` is its chunk list::

    CASCHNK1 || u64 BE size || u32 BE count || fences || entries
    fence = u64 BE: the content offset where entry 1024 j (j = 1, 2, ...) starts
    entry = chunk id (32 bytes) || u32 BE length

Each chunk is an ordinary small blob, packed. The fences let a range read fetch
only the header and the block of 1,024 entries that covers it.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

from .errors import InvalidObjectError
from .objects import ObjectId

MAGIC = b"CASCHNK1"
_HEADER = struct.Struct(">8sQI")  # magic, content size, chunk count
_FENCE = struct.Struct(">Q")
_ENTRY = struct.Struct(">32sI")  # chunk id, length
BLOCK = 1024  # entries between two fences
MAX_CHUNK = 1 << 20  # a chunk's length is at most this: chunks are always packed
HEAD_GUESS = 4096  # read first: the header and, for files up to ~32 GiB, every fence


@dataclass(frozen=True)
class ChunkList:
    """A chunked blob's content: chunk ``i`` is ``ids[i]``, ``lengths[i]`` bytes."""

    size: int
    ids: tuple[ObjectId, ...]
    lengths: tuple[int, ...]

    def encode(self) -> bytes:
        return encode(list(self.ids), list(self.lengths))

    def encoded_size(self) -> int:
        count = len(self.ids)
        return _HEADER.size + _FENCE.size * fence_count(count) + _ENTRY.size * count


def encode(ids: list[ObjectId], lengths: list[int]) -> bytes:
    size = sum(lengths)
    parts = [_HEADER.pack(MAGIC, size, len(ids))]
    at = 0
    for i, length in enumerate(lengths):
        if i and i % BLOCK == 0:
            parts.append(_FENCE.pack(at))
        at += length
    parts.extend(_ENTRY.pack(i, n) for i, n in zip(ids, lengths, strict=True))
    return b"".join(parts)


def fence_count(count: int) -> int:
    return max(count - 1, 0) // BLOCK


@dataclass(frozen=True)
class Head:
    """A chunk list's header and fences: enough to find the block covering an offset."""

    size: int
    count: int
    fences: tuple[int, ...]  # the offset where block j + 1 starts

    def entries_at(self) -> int:
        """Where the entries start in the chunk list's bytes."""
        return _HEADER.size + _FENCE.size * len(self.fences)

    def length(self) -> int:
        return self.entries_at() + _ENTRY.size * self.count

    def block_start(self, block: int) -> int:
        return self.fences[block - 1] if block else 0

    def block_end(self, block: int) -> int:
        return self.fences[block] if block < len(self.fences) else self.size

    def block_of(self, offset: int) -> int:
        """The block whose content range holds ``offset``."""
        return bisect.bisect_right(self.fences, offset)

    def block_span(self, block: int) -> tuple[int, int]:
        """Where block ``block``'s entries lie in the chunk list's bytes."""
        first = block * BLOCK
        last = min(first + BLOCK, self.count)
        start = self.entries_at() + _ENTRY.size * first
        return start, start + _ENTRY.size * (last - first)


def head_length(data: bytes, name: str) -> int:
    """How many bytes the header and fences take, from the header's first bytes."""
    if len(data) < _HEADER.size:
        raise InvalidObjectError(f"chunk list of {name} is truncated")
    count = _HEADER.unpack_from(data)[2]
    return _HEADER.size + _FENCE.size * fence_count(count)


def decode_head(data: bytes, name: str) -> Head:
    """The header and fences from the first bytes of a chunk list (at least
    :data:`HEAD_GUESS` of them, or all); InvalidObjectError if they are not sound."""
    fences_end = head_length(data, name)
    magic, size, count = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise InvalidObjectError(f"chunk list of {name} has a bad magic")
    if count == 0 or size < count:
        raise InvalidObjectError(f"chunk list of {name} lists no chunk, or empty ones")
    if len(data) < fences_end:
        raise InvalidObjectError(f"chunk list of {name} is truncated")
    fences = tuple(f for (f,) in _FENCE.iter_unpack(data[_HEADER.size : fences_end]))
    if any(b <= a for a, b in zip((0, *fences), (*fences, size), strict=True)):
        raise InvalidObjectError(f"chunk list of {name} has fences out of order")
    return Head(size, count, fences)


def decode_block(head: Head, block: int, data: bytes, name: str) -> list[tuple[ObjectId, int]]:
    """The (chunk id, length) entries of one block, checked against its fences."""
    entries = list(_ENTRY.iter_unpack(data))
    expected = min(BLOCK, head.count - block * BLOCK)
    if len(data) != _ENTRY.size * expected:
        raise InvalidObjectError(f"chunk list of {name} is truncated")
    if any(not 0 < n <= MAX_CHUNK for _, n in entries):
        raise InvalidObjectError(f"chunk list of {name} has a chunk of a bad length")
    if sum(n for _, n in entries) != head.block_end(block) - head.block_start(block):
        raise InvalidObjectError(f"chunk list of {name} does not add up to its fences")
    return entries


def decode(data: bytes, name: str) -> ChunkList:
    """A whole chunk list, every entry checked."""
    head = decode_head(data, name)
    if len(data) != head.length():
        raise InvalidObjectError(f"chunk list of {name} has {len(data)} bytes, not {head.length()}")
    ids: list[ObjectId] = []
    lengths: list[int] = []
    for block in range(len(head.fences) + 1):
        start, end = head.block_span(block)
        for chunk_id, length in decode_block(head, block, data[start:end], name):
            ids.append(chunk_id)
            lengths.append(length)
    return ChunkList(head.size, tuple(ids), tuple(lengths))
