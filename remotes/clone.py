"""clone: a new local store holding another's versions, built aside and renamed into
place once whole, so a clone that fails or is killed can be run again."""

from __future__ import annotations

import os
import shutil

from cas import Repository
from cas.errors import UsageError
from cas.storage import check_url
from cas.storage.store_dirs import holds_store_keys, is_store_dir, store_holding

from .config import add_remote, list_remotes, local_root, normalized_url
from .errors import RemoteAccessDeniedError, RemoteNotFoundError
from .policy import RefPolicy
from .sync import pull, reason_of


def clone(url: str, path: str, progress: bool = False, *, policy: RefPolicy) -> Repository:
    """A new local store at ``path/.artifacts`` with ``origin`` = ``url``, pulled.

    The store is built in ``path/.artifacts.partial`` and renamed into place only
    once complete, so a clone that fails or is killed leaves no ``.artifacts`` to
    block the next one; the next clone of the same address resumes the partial
    store (objects already copied are not fetched again).
    """
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"{path} is a file, not a directory: give a directory to clone into")
    holder = store_holding(path)
    if holder is not None:
        raise UsageError(f"{path} is in the store at {holder}; clone somewhere else")
    store = os.path.join(path, ".artifacts")
    if os.path.exists(store):
        raise UsageError(
            f"{store} already exists: clone into another directory, or update that store "
            "with `artifacts pull`"
        )
    _check_something_to_clone(url)
    partial = os.path.join(path, ".artifacts.partial")
    if os.path.isdir(partial) and _origin_of(partial) != normalized_url(url):
        shutil.rmtree(partial)  # an unfinished clone of another store: start afresh
    repo = Repository.open(partial)  # makes path: a full disk is said of the store
    try:
        add_remote(repo, "origin", url)
        pull(repo, "origin", progress, policy=policy)
    finally:
        repo.close()
    os.rename(partial, store)
    return Repository.open(store)


def _origin_of(store: str) -> str | None:
    repo = Repository.open(store)
    try:
        return list_remotes(repo).get("origin")
    finally:
        repo.close()


def _check_something_to_clone(url: str) -> None:
    """Refuse an address that holds no store, before anything is made on either side:
    a mistyped address would otherwise give an empty clone, and opening a local
    directory as a store would create the store's layout in it. A store just made by
    ``init`` is one: a team's members clone it before anything is logged."""
    check_url(url)
    root = local_root(url)
    if root is not None and not (is_store_dir(root) or holds_store_keys(root)):
        raise RemoteNotFoundError(f"nothing to clone: {url} is not a store")
    other = Repository.open(url)
    try:
        made = other.made()
    except PermissionError as exc:
        raise RemoteAccessDeniedError("origin", other.url, "read it", reason_of(exc)) from exc
    if not made:
        raise RemoteNotFoundError(
            f"nothing to clone: {url} holds no store; make one there with "
            f"`artifacts init --store {url}`, or check the address"
        )
