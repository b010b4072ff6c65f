"""Moving file bytes fast: kernel copies, preallocation, mapped and threaded hashing.

Private to ``cas``: the object store uses it to take files in as blobs. The
tunables below were measured (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat
import sys
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import blake3

from . import objects
from .errors import UsageError
from .objects import ObjectId

HASH_CHUNK = 8 << 20  # big enough for blake3's threads, small enough to stay flat
HASH_WINDOW = 16 << 20  # how much of a big file is mapped at once while hashing it
# Copied and hashed a buffer at a time where the kernel cannot copy: small enough
# to stay in the CPU's cache between the hash and the write (512 KiB measured
# twice as slow here, 128 KiB 6 % slower).
COPY_CHUNK = 256 << 10
SEGMENT = 32 << 20  # copied, hashed and started towards the disk at a time
# Segments a copy may run ahead of their hash: hashed while still in the page cache, and
# an interrupt waits for no more than these.
AHEAD = 4
# The cores we may run on: the affinity mask, not the machine's count.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
HASH_THREADS = CORES  # one per core: measured faster here than blake3's AUTO


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """A descriptor to read the regular file at ``path``, and its stat as opened (what
    :func:`written_since` compares).

    Opened without waiting: a FIFO that took a staged file's place would otherwise
    wait for a writer forever (and a device could read forever). For a regular
    file ``O_NONBLOCK`` changes nothing.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise UsageError(
                f"{path} is no longer a regular file (a FIFO, device or directory took its "
                "place since it was added); log it again once it holds the file"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, opened


def written_since(fd: int, before: os.stat_result) -> bool:
    """Was the file open at ``fd`` written since ``before`` was taken? Its mtime or ctime
    moved: bytes read meanwhile may mix what it held before and after the write. (The
    kernel moves them as a write starts: one under way since before, and still, shows
    nothing, as GNU tar's "file changed as we read it" does not.)"""
    after = os.fstat(fd)
    return (after.st_mtime_ns, after.st_ctime_ns) != (before.st_mtime_ns, before.st_ctime_ns)


def changed_while_read(path: str) -> UsageError:
    return UsageError(
        f"{path} was written to while it was being read: try again once it has stopped changing"
    )


SMALL_READS = 3  # a small file written to while read is read again, this many times in all


def read_small(path: str, size: int) -> bytes:
    """The whole file, expected to be ``size`` bytes and small; one written to while it
    was read (a log being appended) is read again, a few times, then refused.

    Plain ``os.read`` of exactly what is needed: a buffered ``read(n)`` allocates
    ``n`` bytes up front, and allocating a megabyte per small file costs ten
    times the read itself.
    """
    for _ in range(SMALL_READS):
        fd, opened = open_regular(path)
        try:
            data = _read_all(fd, size)
            if not written_since(fd, opened):
                return data
        finally:
            os.close(fd)
    raise changed_while_read(path)


def _read_all(fd: int, size: int) -> bytes:
    data = os.read(fd, size + 1)  # one byte more shows a file that grew
    if len(data) == size:
        return data
    chunks = [data]  # it grew, shrank, or the read was short: read to the end
    while chunk := os.read(fd, HASH_CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def copy_hashed(src: int, dst: int, size: int, threads: int) -> tuple[int, ObjectId]:
    """Copy file ``src`` into the empty file ``dst``: (bytes copied, the id of the
    blob they make if there are ``size`` of them), hashing what was written.

    The kernel copies a segment at a time while a thread hashes the segments
    already copied (by ``threads`` of blake3's), mapped a window at a time so
    memory stays flat, and another starts each segment towards the disk: started
    inline, that call waits while the disk takes it. 512 MiB copied, hashed and on
    disk: 0.26 s, against 0.60 s inline; the first log of D1, a file per core: 0.60-0.69 s,
    against 0.81-1.39 s reading, hashing and writing a buffer at a time, which is left for
    where the kernel cannot copy.
    """
    _preallocate(dst, size)
    writeback = ThreadPoolExecutor(1, "writeback")
    try:
        result = _kernel_copy_hashed(src, dst, size, threads, writeback)
        if result is None:
            result = _buffered_copy_hashed(src, dst, size, writeback)
    except BaseException:
        writeback.shutdown(cancel_futures=True)  # interrupted: what is queued waits for no one
        raise
    writeback.shutdown()
    return result


def _kernel_copy_hashed(
    src: int, dst: int, size: int, threads: int, writeback: Executor
) -> tuple[int, ObjectId] | None:
    """:func:`copy_hashed` by the kernel; None, with both files rewound and ``dst``
    empty, where the kernel cannot copy."""
    hasher = blake3.blake3(max_threads=threads)
    hasher.update(objects.encode_header("blob", size))
    copied = 0
    hashed: list[Future[None]] = []
    hashing = ThreadPoolExecutor(1, "hash")  # one thread: the segments go in order
    try:
        while n := _kernel_copy_segment(src, dst):
            writeback.submit(_start_writeback, dst, copied, n)
            hashed.append(hashing.submit(_hash_range, hasher, dst, copied, n))
            copied += n
            if len(hashed) > AHEAD:
                hashed[-AHEAD - 1].result()
    except BaseException:
        hashing.shutdown(cancel_futures=True)  # interrupted: what is queued waits for no one
        raise
    hashing.shutdown(cancel_futures=n is None)
    if n is None:
        os.lseek(src, 0, os.SEEK_SET)
        os.lseek(dst, 0, os.SEEK_SET)
        os.ftruncate(dst, 0)
        return None
    for done in hashed:
        done.result()  # a failed hash raises here
    return copied, hasher.digest()


def _kernel_copy_segment(src: int, dst: int) -> int | None:
    """Copy up to a segment in the kernel: the bytes copied (0 at the end), or None
    where the kernel cannot (not every pair of filesystems can, EXDEV, nor every
    kernel). Only the copy's own refusal is taken so, never a failed hash."""
    try:
        return os.copy_file_range(src, dst, SEGMENT)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        return None


def _buffered_copy_hashed(
    src: int, dst: int, size: int, writeback: Executor
) -> tuple[int, ObjectId]:
    hasher = blake3.blake3(max_threads=1)
    hasher.update(objects.encode_header("blob", size))
    buffer = bytearray(COPY_CHUNK)
    view = memoryview(buffer)
    copied = flushed = 0
    while n := os.readv(src, [buffer]):
        hasher.update(view[:n])  # hashed before written: the buffer is ours alone
        _write_all(dst, view[:n])
        copied += n
        if copied - flushed >= SEGMENT:
            writeback.submit(_start_writeback, dst, flushed, copied - flushed)
            flushed = copied
    writeback.submit(_start_writeback, dst, flushed, copied - flushed)
    return copied, hasher.digest()


def _hash_range(hasher: Any, fd: int, start: int, length: int) -> None:
    """Hash ``length`` bytes of file ``fd`` from ``start``, mapped a window at a time
    (a map starts at a multiple of the allocation granularity)."""
    end = start + length
    while start < end:
        base = start - start % mmap.ALLOCATIONGRANULARITY
        span = min(HASH_WINDOW, end - base)
        with mmap.mmap(fd, span, offset=base, access=mmap.ACCESS_READ) as window:
            with memoryview(window) as view:
                hasher.update(view[start - base :])
        start = base + span


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes of ``fd`` at ``offset`` to the disk.

    The ref that will reach this blob waits until it is on disk (``Storage.sync``);
    started now, the disk works while the rest is copied and hashed, and that wait
    is short. Linux's ``sync_file_range``, which returns once the disk has taken
    the bytes; elsewhere nothing starts before the sync.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _load_sync_file_range() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = _load_sync_file_range()


def _preallocate(fd: int, size: int) -> None:
    """Reserve the copy's blocks before writing it: measured 10 % faster here than
    ext4's delayed allocation and much steadier, and a full disk fails at once."""
    if size and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise


def write_parts(fd: int, parts: list[bytes | memoryview]) -> None:
    """Write ``parts`` back to back at ``fd``'s position, a system call per
    :data:`_IOV_MAX` of them, with no copy to join them."""
    for first in range(0, len(parts), _IOV_MAX):
        batch = parts[first : first + _IOV_MAX]
        written, total = os.writev(fd, batch), sum(len(p) for p in batch)
        if written < total:  # a write may be short (rare): the rest joined
            rest = memoryview(b"".join(batch))[written:]
            _write_all(fd, rest)


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


def _write_all(fd: int, data: memoryview) -> None:
    while data:  # a write may be short
        data = data[os.write(fd, data) :]
