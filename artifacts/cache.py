"""The download cache: blobs fetched from a bucket store, kept on this machine by id.

W&B keeps one (``~/.cache/wandb/artifacts``); so do we: the second download of a
version, in any process, copies its files from here instead of fetching them again.
Only bucket stores use it (a local store already is such a directory).

Layout, under :func:`cache_dir`::

    <2 hex>/<62 hex>    a blob's bytes (its content alone), named by its id
    tmp/                files being written, renamed into place once complete; each
                        is locked by its writer until then (artifacts.partfiles):
                        deleted by a download stopped by Ctrl-C, and one a killed
                        download left, by the next download through the cache

Nothing unverified enters: an entry is copied from a file just checked against its
id, written under a temporary name and renamed, so processes filling the cache at
once never see (or leave) a partial entry. Nothing is trusted blindly on the way
out: a file is copied from an entry only while the entry still bears the stamp put
on it when it was stored (see :func:`_stamped`); otherwise the copy is hashed, and
an entry that does not match its id is dropped and the blob fetched again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable
from decimal import Decimal

from cas import ObjectStore
from cas.errors import UsageError
from cas.storage.store_dirs import store_holding

from .hashing import blob_id_of_file
from .partfiles import LiveParts, remove_if_abandoned

DEFAULT_MAX_BYTES = 10 << 30
LARGEST_SIZE = 2**63 - 1  # a size as config.json and msgpack keep it
# The mtime of a stored entry: any write sets the mtime to the present, so an entry
# that still has this one was not written to since it was stored.
STAMP_MTIME_NS = 86_400_000_000_019
# Its atime is set this far past the moment it is stamped: ahead of the ctime the
# stamping gives it (the kernel's clock for it is coarse, a tick behind at most), so
# that reading it does not move the atime (relatime), and close enough that a stamp
# put back later, which moves the ctime, shows.
STAMP_AHEAD_NS = 50_000_000
STAMP_MARGIN_NS = 2 * STAMP_AHEAD_NS  # how far behind its atime a stamped ctime may be
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
# A temporary file's name in tmp/: a PartFile's, or (an older release's) <pid>-<n>.
_TEMP_NAME = re.compile(r"(\.part-)?\d+-\d+")
# An entry's folder and name: only those are ever deleted as entries.
_ENTRY_FOLDER, _ENTRY_NAME = re.compile("[0-9a-f]{2}"), re.compile("[0-9a-f]{62}")


def cache_dir() -> str:
    """``$ARTIFACTS_CACHE_DIR``, else ``$XDG_CACHE_HOME/artifacts/files``, else
    ``~/.cache/artifacts/files``."""
    if os.environ.get("ARTIFACTS_CACHE_DIR"):
        return os.environ["ARTIFACTS_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "artifacts", "files")


def parse_size(text: str) -> int:
    """Bytes in ``"10GB"``, ``"500 MB"``, ``"1.5GiB"`` or ``"1024"`` (W&B's sizes: KB,
    MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(?:([kmgt]?)(i?)b?)?\s*", text, re.IGNORECASE)
    if match is None:
        raise UsageError(f"not a size: {text!r}; give one like 10GB, 500MB or 1024")
    number, unit, binary = match.group(1), (match.group(2) or "").lower(), match.group(3)
    power = "bkmgt".index(unit or "b")
    # Exact: a float lost a long number's last digits, and 400 of them were infinite.
    size = int(Decimal(number) * (1024**power if binary else _UNITS[unit]))
    if size > LARGEST_SIZE:
        raise UsageError(f"{text!r} is more than any disk holds: give at most 8 EiB")
    return size


def max_bytes() -> int:
    """``$ARTIFACTS_CACHE_MAX_SIZE`` (``"50GB"``), else 10 GiB."""
    configured = os.environ.get("ARTIFACTS_CACHE_MAX_SIZE")
    return parse_size(configured) if configured else DEFAULT_MAX_BYTES


def download_cache(store: ObjectStore, skip_cache: bool | None = None) -> DownloadCache | None:
    """The cache to download ``store``'s blobs through: None for a store on this machine
    (or in memory), or if ``skip_cache``."""
    capabilities = store.storage.capabilities
    if skip_cache or capabilities.local or not capabilities.durable:
        return None
    cache = DownloadCache(cache_dir(), max_bytes())
    # What a download killed there left (SIGKILL, a power loss): tidied when we may,
    # never a reason to fail (a tmp/ of another user's, shut to us).
    with contextlib.suppress(OSError):
        cache.remove_temp()
    return cache


class DownloadCache:
    def __init__(self, root: str, limit: int = DEFAULT_MAX_BYTES) -> None:
        store = store_holding(root)
        if store is not None:  # its objects are laid out as entries are: trimmed, lost
            raise UsageError(
                f"the download cache {root} is in the store at {store}: set "
                "ARTIFACTS_CACHE_DIR to a directory of its own"
            )
        self.root = root
        self.limit = limit
        self.added = 0  # bytes this instance stored: trim() has work only if some
        self.full = False  # its disk filled: nothing more is stored this time
        self._writing = LiveParts()  # its files in tmp/, deleted by close()

    def path(self, blob_id: bytes) -> str:
        name = blob_id.hex()
        return os.path.join(self.root, name[:2], name[2:])

    def has(self, blob_id: bytes) -> bool:
        return os.path.isfile(self.path(blob_id))

    def copy_to(self, blob_id: bytes, size: int, dest: str) -> bool:
        """Copy the blob into ``dest`` (a file no one else writes) and say True; False if
        the cache has no good copy of it (a bad one is dropped)."""
        entry = self.path(blob_id)
        try:
            before = os.stat(entry)
            if before.st_size != size:
                self._drop(entry)
                return False
            shutil.copyfile(entry, dest)  # the kernel's copy (copy_file_range, sendfile)
            after = os.stat(entry)
        except FileNotFoundError:
            return False  # not cached, or trimmed meanwhile
        # The stamp as it was before the copy: reading an entry whose atime is behind
        # its ctime moves the atime to the present (relatime), which just after a
        # rewrite looks like a stamp.
        unchanged = _stamped(before) and _same_file(before, after)
        if unchanged or blob_id_of_file(dest) == blob_id:
            if not unchanged:
                self.put_file(blob_id, dest)  # a fresh entry, with a fresh stamp
            return True
        self._drop(entry)
        return False

    def put_file(self, blob_id: bytes, path: str) -> None:
        """Store a copy of ``path``, whose bytes were just verified to be the blob's."""
        self._put(blob_id, lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, blob_id: bytes, data: bytes) -> None:
        """Store ``data``, just verified to be the blob's payload."""

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        self._put(blob_id, write)

    def _put(self, blob_id: bytes, write: Callable[[str], object]) -> None:
        if self.full:
            return
        try:
            self._write_entry(blob_id, write)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # Only a cache: the download it would have saved a second time goes on.
            self.full = True
            warnings.warn(
                f"the download cache at {self.root} is on a full disk ({exc.strerror}): "
                "downloading without it; free some space there, or set "
                "ARTIFACTS_CACHE_DIR to a place with room",
                stacklevel=2,
            )

    def _write_entry(self, blob_id: bytes, write: Callable[[str], object]) -> None:
        entry = self.path(blob_id)
        tmp_dir = os.path.join(self.root, "tmp")
        os.makedirs(tmp_dir, exist_ok=True)
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        # In tmp/, locked until renamed: remove_temp tells it from a killed download's.
        with self._writing.part(lambda: os.path.join(tmp_dir, blob_id.hex())) as (_, part):
            write(part.path)
            os.replace(part.path, entry)  # whole, or not at all; a racing writer's is the same
            # Stamped in place: the rename moves the ctime too, and may take long
            # (ext4 writes back the data of a file renamed over another first:
            # 0.1-0.4 s for 256 MiB here), leaving a stamp made before it stale.
            os.utime(part.fd, ns=(time.time_ns() + STAMP_AHEAD_NS, STAMP_MTIME_NS))
            self.added += os.fstat(part.fd).st_size

    def _drop(self, entry: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry)

    def entries(self) -> list[tuple[os.stat_result, str]]:
        """(stat, path) of every entry, oldest first: by atime, the time it was stored
        (or stored again after a check), moved by reads only as relatime does, daily."""
        found = []
        for folder in _listdir(self.root):
            if not _ENTRY_FOLDER.fullmatch(folder):
                continue  # tmp/, or no folder of ours (a cache dir set to ~)
            here = os.path.join(self.root, folder)
            for name in filter(_ENTRY_NAME.fullmatch, _listdir(here)):
                with contextlib.suppress(FileNotFoundError):
                    found.append((os.stat(os.path.join(here, name)), os.path.join(here, name)))
        found.sort(key=lambda item: item[0].st_atime_ns)
        return found

    def trim(self, target: int | None = None) -> int:
        """Delete entries, oldest first, until they fill at most ``target`` bytes (default:
        the cache's limit); returns the bytes reclaimed."""
        target = self.limit if target is None else target
        entries = self.entries()
        total = sum(st.st_size for st, _ in entries)
        reclaimed = 0
        for st, path in entries:
            if total - reclaimed <= target:
                break
            self._drop(path)
            reclaimed += st.st_size
        self.added = 0
        return reclaimed

    def close(self) -> None:
        """At the end of a download: delete the files still being written into tmp/
        (by threads of a download stopped by Ctrl-C, which the command's exit does not
        wait for, as artifacts.partfiles.LiveParts does for its destination's); then
        trim to the limit, if this instance stored anything."""
        self._writing.abandon()
        if self.added:
            self.trim()

    def remove_temp(self) -> int:
        """Delete the files killed downloads left being written, not those a running
        one writes (artifacts.partfiles); returns their bytes."""
        tmp_dir = os.path.join(self.root, "tmp")
        # Only names of ours: a cache dir set to the wrong place (ARTIFACTS_CACHE_DIR=~)
        # must not cost the files of a tmp/ there.
        found = [name for name in _listdir(tmp_dir) if _TEMP_NAME.fullmatch(name)]
        return sum(remove_if_abandoned(os.path.join(tmp_dir, name)) for name in found)


def _stamped(st: os.stat_result) -> bool:
    """Not written since it was stored: the mtime it was given, and the ctime of that
    moment (writing the mtime back moves the ctime, which no one can set)."""
    ahead = st.st_atime_ns - st.st_ctime_ns
    return st.st_mtime_ns == STAMP_MTIME_NS and 0 <= ahead <= STAMP_MARGIN_NS


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
