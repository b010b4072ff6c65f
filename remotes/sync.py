"""push, fetch, pull and rebase between two repositories (clone: :mod:`remotes.clone`).

Refs are sent after the objects they reach, each by compare-and-swap, so a
reader of either side never sees a ref to a missing object and two pushes
that race cannot both win. What we last saw of a remote is kept in local
*remote-tracking* refs ``remotes/<remote>/<ref>``.

How each ref moves depends on its kind (a head, a ref that belongs with a head,
a record), which the caller's :class:`~remotes.policy.RefPolicy` says.
Whatever its kind, a ref we did not change since we last fetched it is the
other side's to move: push does not send it back over a newer value (that
would revert a finished run's record or a grown part), and pull takes the
remote's. A store that refuses our credentials raises
:class:`~remotes.errors.RemoteAccessDeniedError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass, field

from cas import ObjectId, Repository
from cas.errors import AccessDeniedError, RefConflictError, UsageError
from cas.threads import worker_pool

from .config import (
    TRACKING,
    naming_remote,
    open_remote,
    tracking_space,
)
from .errors import PushRejectedError, RemoteAccessDeniedError
from .policy import RefPolicy
from .transfer import copy_objects, missing


@dataclass
class PushResult:
    objects_uploaded: int = 0
    bytes_uploaded: int = 0
    refs_updated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Refs the remote changed since we last fetched them, and we did not: not sent
    # (sending would undo the remote's change); `pull` brings the new values here.
    behind: list[str] = field(default_factory=list)


@dataclass
class FetchResult:
    objects_downloaded: int = 0
    bytes_downloaded: int = 0
    refs_updated: list[str] = field(default_factory=list)


@dataclass
class PullResult:
    objects_downloaded: int = 0
    fast_forwarded: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)


def _own_refs(
    repo: Repository, policy: RefPolicy, names: Collection[str] | None
) -> dict[str, ObjectId]:
    wanted = set(names) if names else None
    return {
        n: t
        for n, t in repo.refs.list("").items()
        if not n.startswith((TRACKING + "/", "locks/"))
        and (wanted is None or policy.selects(n, wanted))
    }


def _check_named(local: Collection[str], names: Collection[str] | None, policy: RefPolicy) -> None:
    """Refuse a name that selects no head here: it would send (or rebase) nothing, and
    say so nowhere."""
    for name in names or ():
        if not any(policy.is_head(ref) and policy.selects(ref, {name}) for ref in local):
            raise UsageError(f"nothing named {name!r} here: give the name of one this store holds")


def _is_ancestor(repo: Repository, ancestor: ObjectId, head: ObjectId) -> bool:
    """Is ``ancestor`` on the first-parent chain of ``head`` (versions are a chain)?"""
    current: ObjectId | None = head
    while current is not None:
        if current == ancestor:
            return True
        parents = repo.objects.get_commit(current).parents
        current = parents[0] if parents else None
    return False


def _released(policy: RefPolicy, refs: Collection[str]) -> set[ObjectId]:
    """The commits ``refs`` release: their trees are neither sent nor asked for."""
    return {c for name in refs if (c := policy.releases(name)) is not None}


def _order(policy: RefPolicy, ref: str) -> int:
    """Releasing records land first, then heads, then the rest."""
    return 0 if policy.releases(ref) is not None else 1 if policy.is_head(ref) else 2


def _tracking(space: str, name: str) -> str:
    return f"{TRACKING}/{space}/{name}"


def _set_tracking(repo: Repository, space: str, name: str, target: ObjectId | None) -> None:
    repo.update_ref(_tracking(space, name), lambda old: target)


def push(
    repo: Repository,
    remote: str,
    names: list[str] | None = None,
    force: bool = False,
    progress: bool = False,
    *,
    policy: RefPolicy,
) -> PushResult:
    """Send objects, then move the remote's refs by compare-and-swap."""
    local = _own_refs(repo, policy, names)
    _check_named(local, names, policy)
    other = open_remote(repo, remote, create=True)
    space = tracking_space(repo, remote)
    try:
        with naming_remote(remote, other.url):
            theirs = _read_refs(other, local)
            if theirs == local:
                _record_tracking(repo, space, local)
                return PushResult()
            # A remote that holds none of our refs is new, or was emptied: what we saw
            # of it before says nothing about what it holds now.
            trust_tracking = any(theirs.values())
            # The local store's lock too: gc must not delete or rewrite what we send.
            with repo.writing(), other.writing():
                return _push(
                    repo, other, remote, space, policy, names, force, progress, trust_tracking
                )
    except RemoteAccessDeniedError:
        raise
    except PermissionError as exc:
        raise RemoteAccessDeniedError(remote, other.url, "push", reason_of(exc)) from exc


def _read_refs(other: Repository, local: dict[str, ObjectId]) -> dict[str, ObjectId | None]:
    """What the remote holds of each of our refs: a read per ref, in parallel, and
    no writes, so that a re-push with nothing new stays cheap."""
    with worker_pool(16) as pool:
        return dict(zip(local, pool.map(other.refs.read, local), strict=True))


def _record_tracking(repo: Repository, space: str, refs: dict[str, ObjectId]) -> None:
    for name, target in refs.items():
        if repo.refs.read(_tracking(space, name)) != target:
            _set_tracking(repo, space, name, target)


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, AccessDeniedError):  # RemoteAccessDeniedError gives the hint itself
        return f"access denied to {exc.key}"
    return str(exc).strip() or type(exc).__name__


def _push(
    repo: Repository,
    other: Repository,
    remote: str,
    space: str,
    policy: RefPolicy,
    names: list[str] | None,
    force: bool,
    progress: bool,
    trust_tracking: bool,
) -> PushResult:
    result = PushResult()
    local = _own_refs(repo, policy, names)
    ids = missing(repo.objects, other.objects, local.values(), _released(policy, local))
    sent = copy_objects(repo.objects, other.objects, ids, progress)
    result.objects_uploaded, result.bytes_uploaded = sent.objects, sent.bytes
    rejected: list[str] = []
    denied: list[str] = []
    # Releasing records first: a head must not land where it reaches a commit whose tree
    # is not sent. Then heads: a head that is refused keeps the refs of it back too.
    for name, target in sorted(local.items(), key=lambda item: _order(policy, item[0])):
        head = policy.head_of(name)
        if head is not None and any(r == head or policy.head_of(r) == head for r in rejected):
            continue
        theirs = other.refs.read(name)
        if theirs == target:
            _set_tracking(repo, space, name, target)
            continue
        if theirs is not None and policy.releases(name) is not None:
            continue  # deleted there too: either record says so
        seen = repo.refs.read(_tracking(space, name)) if trust_tracking else None
        if seen == target and not (force and names):
            # Unchanged here since we fetched it; the remote changed it since: theirs is
            # newer. (Without this, pushing a pulled run record or part would revert it.)
            # Only a ref named to a forced push is sent anyway: forcing one diverged
            # artifact must not revert every other one the remote moved on.
            result.behind.append(name)
            continue
        if theirs is not None and policy.is_head(name):
            behind = not repo.objects.has(theirs) or not _is_ancestor(repo, theirs, target)
            if behind and not force:
                rejected.append(name)
                continue
            if behind:
                result.warnings.append(f"forced {name}: remote versions after ours were dropped")
                warnings.warn(result.warnings[-1], stacklevel=3)
        elif theirs is not None and head is not None and not force:
            if theirs != seen:
                result.warnings.append(f"kept the remote's {name}: it moved since we last saw it")
                continue
        try:
            other.refs.set_if_equals(name, theirs, target)
        except RefConflictError:
            rejected.append(name)  # it moved while we pushed: the next pull will show how
            continue
        except PermissionError:
            denied.append(name)  # e.g. another team's namespace in a shared store
            if policy.releases(name) is not None:
                break  # no head may follow a release that did not land
            continue
        _set_tracking(repo, space, name, target)
        result.refs_updated.append(name)
    if denied:
        what = f"write {', '.join(sorted(denied))}"
        if result.refs_updated:
            what += f" (the other {len(result.refs_updated)} ref(s) were pushed)"
        raise RemoteAccessDeniedError(remote, other.url, what)
    if rejected:
        raise PushRejectedError(sorted(rejected), remote)
    return result


def fetch(
    repo: Repository, remote: str, progress: bool = False, *, policy: RefPolicy | None = None
) -> FetchResult:
    """Bring the remote's objects here and record its refs as remote-tracking refs
    (without the ``policy``, the trees of commits its refs release are asked for too)."""
    other = open_remote(repo, remote)
    try:
        with naming_remote(remote, other.url), repo.writing():
            return _fetch(repo, other, tracking_space(repo, remote), progress, policy)
    except PermissionError as exc:
        raise RemoteAccessDeniedError(remote, other.url, "read it", reason_of(exc)) from exc


def _fetch(
    repo: Repository, other: Repository, space: str, progress: bool, policy: RefPolicy | None
) -> FetchResult:
    theirs = {n: t for n, t in other.refs.list("").items() if not n.startswith("locks/")}
    released = _released(policy, theirs) if policy is not None else set()
    ids = missing(other.objects, repo.objects, theirs.values(), released)
    got = copy_objects(other.objects, repo.objects, ids, progress)
    result = FetchResult(got.objects, got.bytes)
    for name, target in theirs.items():
        if repo.refs.read(_tracking(space, name)) != target:
            _set_tracking(repo, space, name, target)
            result.refs_updated.append(name)
    prefix = f"{TRACKING}/{space}/"
    for tracking_name in repo.refs.list(prefix):
        if tracking_name[len(prefix) :] not in theirs:  # gone from the remote
            _set_tracking(repo, space, tracking_name[len(prefix) :], None)
    return result


def pull(repo: Repository, remote: str, progress: bool = False, *, policy: RefPolicy) -> PullResult:
    """Fetch, then fast-forward local heads; report heads that diverged.

    Other refs follow the remote where we did not change them since the last
    fetch; ours win where we did.
    """
    prefix = f"{TRACKING}/{tracking_space(repo, remote)}/"
    seen_before = {n[len(prefix) :]: t for n, t in repo.refs.list(prefix).items()}
    fetched = fetch(repo, remote, progress, policy=policy)
    result = PullResult(objects_downloaded=fetched.objects_downloaded)
    now = {n[len(prefix) :]: t for n, t in repo.refs.list(prefix).items()}
    for name, target in sorted(now.items(), key=lambda item: (_order(policy, item[0]), item[0])):
        ours = repo.refs.read(name)
        if ours == target:
            continue
        if policy.is_head(name):
            if ours is None or _is_ancestor(repo, ours, target):
                repo.refs.set_if_equals(name, ours, target)
                result.fast_forwarded.append(name)
            elif not _is_ancestor(repo, target, ours):
                result.diverged.append(name)
        elif ours is None or ours == seen_before.get(name):
            repo.refs.set_if_equals(name, ours, target)
            result.copied.append(name)
    for name, target in sorted(seen_before.items()):
        # Removed on the remote (an alias moved off, a part merged into a version):
        # drop our copy too, unless we changed it or the policy keeps it.
        if name not in now and not policy.is_kept(name):
            if repo.refs.read(name) == target:
                repo.refs.delete_if_equals(name, target)
    return result


def rebase(
    repo: Repository, remote: str, names: list[str] | None = None, *, policy: RefPolicy
) -> list[str]:
    """Re-apply local-only commits of each diverged head on top of the remote's.

    Nothing is lost: the policy builds each re-applied commit from the local one
    (same tree), and the refs that belong with the head follow it.
    Returns the heads that moved. Run ``pull`` first so the remote's commits
    are here.
    """
    _check_named(_own_refs(repo, policy, names), names, policy)
    prefix = f"{TRACKING}/{tracking_space(repo, remote)}/"
    moved = []
    for tracking_name, upstream in sorted(repo.refs.list(prefix).items()):
        name = tracking_name[len(prefix) :]
        if not policy.is_head(name) or (names and not policy.selects(name, names)):
            continue
        ours = repo.refs.read(name)
        if ours is None or _is_ancestor(repo, ours, upstream) or _is_ancestor(repo, upstream, ours):
            continue
        with repo.writing():  # gc must not take the new commits before the ref moves
            _reapply(repo, policy, name, ours, upstream)
        moved.append(name)
    return moved


def _reapply(
    repo: Repository, policy: RefPolicy, name: str, ours: ObjectId, upstream: ObjectId
) -> None:
    theirs_chain = set()
    current: ObjectId | None = upstream
    while current is not None:
        theirs_chain.add(current)
        parents = repo.objects.get_commit(current).parents
        current = parents[0] if parents else None
    local_only = []
    current = ours
    while current is not None and current not in theirs_chain:
        local_only.append(current)
        parents = repo.objects.get_commit(current).parents
        current = parents[0] if parents else None
    tip, tip_commit = upstream, repo.objects.get_commit(upstream)
    renamed: dict[ObjectId, ObjectId] = {}
    for old in reversed(local_only):
        new_commit = policy.rebased(repo.objects.get_commit(old), old, tip, tip_commit)
        if new_commit is None:
            renamed[old] = tip  # the remote's latest already holds it
            continue
        tip, tip_commit = repo.objects.put(new_commit), new_commit
        renamed[old] = tip
    repo.refs.set_if_equals(name, ours, tip)
    for ref, target in _own_refs(repo, policy, None).items():
        if target in renamed and policy.head_of(ref) == name:
            repo.refs.set_if_equals(ref, target, renamed[target])
