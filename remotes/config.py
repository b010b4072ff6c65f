"""Named remotes, kept in the local store's config under ``"remotes"``."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cas import Repository
from cas.errors import InvalidNameError, StorageError
from cas.storage import check_url
from cas.storage.store_dirs import check_not_in_store, may_hold_store

from .errors import RemoteExistsError, RemoteNotFoundError

TRACKING = "remotes"  # local refs remotes/<remote>/<ref> record what a remote held
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def list_remotes(repo: Repository) -> dict[str, str]:
    return dict(repo.read_config().get("remotes", {}))


def add_remote(repo: Repository, name: str, url: str) -> None:
    """Name a remote. A name taken by another URL is refused, as git does: a typo here
    would send every later push elsewhere. The same URL again changes nothing."""
    url = _checked(name, url)

    def change(config: dict[str, Any]) -> None:
        before = config.get("remotes", {}).get(name, url)
        if before != url:
            raise RemoteExistsError(
                f"remote {name} already exists ({before}): "
                f"`artifacts remote set-url {name} {url}` points it there"
            )
        config.setdefault("remotes", {})[name] = url

    repo.update_config(change)


def set_remote_url(repo: Repository, name: str, url: str) -> None:
    """Point remote ``name`` at another store."""
    url = _checked(name, url)
    before: list[str] = []

    def change(config: dict[str, Any]) -> None:
        remotes = config.get("remotes", {})
        if name not in remotes:
            raise _no_remote(name)
        before[:] = [remotes[name]]
        remotes[name] = url

    repo.update_config(change)
    if before != [url]:
        _forget(repo, name)  # what we saw of the old store says nothing of the new one


def _checked(name: str, url: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidNameError(name, "remote names are 1-64 of A-Z a-z 0-9 _ . -")
    check_url(url)
    return normalized_url(url)


def normalized_url(url: str) -> str:
    """The URL as a remote records it: a local path made absolute."""
    return url if "://" in url else os.path.abspath(url)


def remove_remote(repo: Repository, name: str) -> None:
    if name not in list_remotes(repo):
        raise RemoteNotFoundError(f"no remote named {name!r}")
    repo.update_config(lambda config: config["remotes"].pop(name))
    _forget(repo, name)


def _forget(repo: Repository, name: str) -> None:
    """Drop the remote-tracking refs of remote ``name``."""
    for ref in list(repo.refs.list(f"{TRACKING}/{name}/")):
        repo.refs.delete_if_equals(ref, repo.refs.get(ref))


def remote_url(repo: Repository, remote: str) -> str:
    remotes = list_remotes(repo)
    if remote in remotes:
        return remotes[remote]
    if _is_address(remote):
        return remote
    raise _no_remote(remote)


def _no_remote(name: str) -> RemoteNotFoundError:
    return RemoteNotFoundError(
        f"no remote named {name!r}; add one with `artifacts remote add {name} URL`"
    )


def tracking_space(repo: Repository, remote: str) -> str:
    """Where what ``remote`` held is recorded, below ``remotes/``: its name, or for a
    store given by its address in place of a name, ``@`` and a digest of the address
    (a ref segment, and no remote's name holds ``@``: the two never meet)."""
    if remote in list_remotes(repo) or not _is_address(remote):
        return remote
    url = normalized_url(remote.removeprefix("file://"))
    return "@" + hashlib.sha256(url.encode()).hexdigest()[:32]


def _is_address(remote: str) -> bool:
    return "://" in remote or os.path.isabs(remote)


def open_remote(repo: Repository, remote: str, create: bool = False) -> Repository:
    """The remote's store. Only a push may create one: reading from a local path
    that holds none fails instead of leaving an empty store there."""
    url = remote_url(repo, remote)
    root = local_root(url)
    if not create and root is not None and not os.path.isdir(root):
        raise RemoteNotFoundError(f"no store at {url}")
    if create and root is not None:
        check_not_in_store(root)
    if root is not None and os.path.isdir(root) and not may_hold_store(root):
        # A mistyped path (`push ~`): a push would lay a store out among its files.
        raise RemoteNotFoundError(
            f"{url} is not a store (it holds other files, and no refs/, packs/ or "
            "config.json): give a store, or a new or empty directory to push to"
        )
    return Repository.open(url)


def local_root(url: str) -> str | None:
    """The directory of a local store's URL (a path or ``file://``); None for others."""
    root = url.removeprefix("file://")
    return None if "://" in root else root


@contextmanager
def naming_remote(remote: str, url: str) -> Iterator[None]:
    """Errors saying the remote's storage cannot be used name the remote as well."""
    try:
        yield
    except StorageError as exc:
        if exc.url == url and remote != url:
            exc.args = (f"remote {remote}: {exc}",)
        raise
