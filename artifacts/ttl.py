"""A version's time to live (TTL), as W&B has it: a number of seconds counted from
when the version was logged, no TTL at all, or the project's default (inherit).

A **policy** is one of: ``int`` (seconds, > 0), ``None`` (no TTL: never expires),
``ArtifactTTL.INHERIT`` (the project's default). A draft's policy goes into its
version's commit (``meta["ttl"]``: seconds or nil; absent means inherit, which is
what every version logged before TTL existed reads as); an edit of a logged version's
policy is an annotation record (artifacts.annotations), where ``"inherit"`` says
inherit. The default of a project is the store's own setting (W&B: a team admin's),
in the store config, never pushed or pulled: no default means no TTL.
See docs/format.md ("Artifacts layout") and docs/artifacts.md ("TTL").
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum
from typing import Any

from cas import Repository
from cas.errors import InvalidObjectError, UsageError

from .errors import InvalidTTLError

INHERIT_STORED = "inherit"  # how an annotation record says "inherit"
_DURATION = re.compile(r"([1-9][0-9]*)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# The longest TTL set: its expiry is a date (datetime's end at year 9999), and a
# version meant to live for ever has none. One stored longer (an earlier release took
# any) still reads: as the longest timedelta there is.
LONGEST = 365_000 * 86400
_LONGEST_TIMEDELTA = int(timedelta.max.days) * 86400


class ArtifactTTL(Enum):
    """W&B's ``ArtifactTTL``: ``INHERIT`` is the project's default TTL."""

    INHERIT = 0


Policy = int | None | ArtifactTTL


def check(ttl: Any) -> Policy:
    """The policy ``artifact.ttl = ttl`` sets, refused as W&B refuses it."""
    if ttl is None or ttl is ArtifactTTL.INHERIT:
        return ttl
    if not isinstance(ttl, timedelta):
        raise InvalidTTLError(
            f"a TTL is a datetime.timedelta, None or ArtifactTTL.INHERIT, not {ttl!r}"
        )
    if ttl.total_seconds() <= 0:
        raise InvalidTTLError(f"a TTL has to be positive, not {ttl.total_seconds()} seconds")
    if ttl.total_seconds() > LONGEST:
        raise InvalidTTLError(
            f"a TTL is at most 1000 years (365000 days), not {ttl.days} days; "
            "None keeps the version for ever"
        )
    return int(ttl.total_seconds())  # whole seconds, as W&B stores it


def as_timedelta(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=min(seconds, _LONGEST_TIMEDELTA))


def to_stored(policy: Policy) -> int | str | None:
    """The value of a record's ``ttl`` (and of a version commit's, but for inherit,
    which a commit says by having no ``ttl``)."""
    return INHERIT_STORED if policy is ArtifactTTL.INHERIT else policy


def from_stored(value: Any) -> Policy:
    """The policy a stored ``ttl`` says, checked: a store may be damaged or hostile."""
    if value == INHERIT_STORED:
        return ArtifactTTL.INHERIT
    if value is None or (type(value) is int and value > 0):
        return value
    raise InvalidObjectError(f"a stored TTL is seconds > 0, nil or 'inherit', not {value!r}")


def commit_meta(policy: Policy) -> dict[str, Any]:
    """The ``ttl`` key of a new version's commit: none for inherit."""
    return {} if policy is ArtifactTTL.INHERIT else {"ttl": policy}


def of_version(meta: dict[str, Any]) -> Policy:
    """The policy a version was logged with: its commit's ``ttl``, inherit if none. A
    link (artifacts.links) has none, whatever it holds: W&B turns TTL off for a linked
    version, so that what a registry serves never expires."""
    if "link" in meta:
        return None
    if "ttl" not in meta:
        return ArtifactTTL.INHERIT
    if meta["ttl"] == INHERIT_STORED:
        raise InvalidObjectError("a version commit says inherit by having no TTL, not 'inherit'")
    return from_stored(meta["ttl"])


def effective(policy: Policy, default: int | None) -> int | None:
    """Seconds to live, or None for never: an inherited policy is the default."""
    return default if policy is ArtifactTTL.INHERIT else policy


def expires_at(logged_ns: int, seconds: int | None) -> int | None:
    """When a version logged at ``logged_ns`` expires (ns), if it does."""
    return None if seconds is None else logged_ns + seconds * 10**9


# ---- the project defaults (the store config) ------------------------------------------


def defaults(repo: Repository) -> dict[str, int]:
    """``{"<entity>/<project>": seconds}``: every project's default TTL."""
    found = repo.read_config().get("ttl_defaults", {})
    if not isinstance(found, dict) or not all(type(v) is int and v > 0 for v in found.values()):
        raise InvalidObjectError("the store config's ttl_defaults is not a map of seconds > 0")
    return found


def default(repo: Repository, entity: str, project: str) -> int | None:
    """The default TTL of a project's versions that inherit theirs (None: no TTL)."""
    return defaults(repo).get(f"{entity}/{project}")


def set_default(repo: Repository, entity: str, project: str, seconds: int | None) -> None:
    """Make ``seconds`` the project's default TTL; None removes the default."""
    if seconds is not None and (type(seconds) is not int or not 0 < seconds <= LONGEST):
        raise UsageError(
            f"a default TTL is a number of seconds > 0, at most {LONGEST} (1000 years), "
            f"not {seconds!r}"
        )

    def change(config: dict[str, Any]) -> None:
        found = config.setdefault("ttl_defaults", {})
        if seconds is None:
            found.pop(f"{entity}/{project}", None)
        else:
            found[f"{entity}/{project}"] = seconds

    repo.update_config(change)


# ---- as a person writes it (the CLI) ---------------------------------------------------


def parse(text: str) -> Policy:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``; ``none``; ``inherit``."""
    if text in ("none", INHERIT_STORED):
        return None if text == "none" else ArtifactTTL.INHERIT
    match = _DURATION.fullmatch(text)
    if match is None:
        raise UsageError(
            f"--ttl takes a duration such as 30d, 12h, 90m, 45s or 2w, or none, or inherit; "
            f"not {text!r}"
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds > LONGEST:
        raise UsageError(
            f"--ttl is at most 1000 years (365000d), not {text!r}; none keeps the version for ever"
        )
    return seconds


def describe(policy: Policy) -> str:
    """A policy as ``parse`` reads it back: the largest whole unit."""
    if policy is None:
        return "none"
    if policy is ArtifactTTL.INHERIT:
        return INHERIT_STORED
    unit = next(u for u in "wdhms" if policy % _UNIT_SECONDS[u] == 0)
    return f"{policy // _UNIT_SECONDS[unit]}{unit}"
