"""The hidden directory beside a new download root, where the root is written whole.

The process writing one holds an ``flock`` on it for as long as it is in use. A
process killed there (SIGKILL, the OOM killer, a CI timeout's SIGTERM: no cleanup
runs) leaves it behind, unlocked; the next download beside the same root removes
it, so a half-written copy does not linger in the project, where ``artifacts log .``
would take it in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil


def make_staging_dir(parent: str, name: str) -> tuple[str, int]:
    """A new staging directory in ``parent`` for the root ``name``, and the descriptor
    holding its lock (close it once the directory is renamed or removed)."""
    prefix = f".{name[:40]}.part-"
    _remove_abandoned(parent, prefix)
    while True:
        path = os.path.join(parent, prefix + os.urandom(4).hex())  # not secrets: hashlib
        try:
            # It becomes the root: made as any directory is, through the umask (not
            # mkdtemp's 0o700, which left every download root private).
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # Waits only for a remover that found the directory before we locked it.
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            return path, lock  # no locks on this filesystem: then nothing is removed
        if os.fstat(lock).st_nlink:
            return path, lock
        os.close(lock)  # removed as abandoned before we locked it: make another


def _remove_abandoned(parent: str, prefix: str) -> None:
    with os.scandir(parent) as entries:
        found = [
            e.path for e in entries if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False)
        ]
    for path in found:
        try:
            lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone meanwhile
        try:
            with contextlib.suppress(OSError):  # in use, or no locks here: left alone
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(lock)
