"""From the command line to what commands work on: the store, the registry, names."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from cas import Repository
from cas.errors import UsageError
from cas.storage import check_url
from cas.storage.store_dirs import (
    check_not_in_store,
    holds_store_keys,
    is_store_dir,
    may_hold_store,
)

from ..artifact import Artifact
from ..lineage import local_dir
from ..names import Spec, parse_spec, validate_namespace
from ..registry import Registry
from ..runs import default_entity, default_project, find_store_url
from .output import PROG


def store_url(args: argparse.Namespace) -> str:
    return lasting(find_store_url(given_store(args)))


def given_store(args: argparse.Namespace) -> str | None:
    """``--store``, if given: an empty one is refused, not taken as none."""
    return _option(args, "store")


def remote(args: argparse.Namespace) -> str:
    """REMOTE: a remote's name or a store's address; empty is an unset variable, not a
    remote (a rebase of it found nothing to do, a push no remote named '')."""
    if args.remote == "":
        raise UsageError(
            "REMOTE is empty (an unset variable?): give a remote's name or a store's "
            "address, or leave it out for origin"
        )
    return lasting(args.remote)


def lasting(url: str) -> str:
    """``url``, unless it names a store that ends with this command (a log into one
    printed its version and kept nothing)."""
    if url.startswith("memory://"):
        raise UsageError(
            f"{url}: a memory:// store lives only as long as one process, and this "
            "command's ends now: give a path or a bucket"
        )
    return url


def open_repo(args: argparse.Namespace) -> Repository:
    """The store the command names; an error if it is a local one that does not exist,
    or a directory that is no store."""
    url = store_url(args)
    check_url(url)  # a mistyped URL is said as such, not as "no store at s3:/bucket"
    local = local_dir(url)
    # Opening a local store creates its directory (and a tmp/ in it): only writers may.
    # (A file there is refused by the local storage itself, for writers too.)
    if local is not None:
        if not os.path.lexists(local):
            if os.path.isdir(f"{local}.partial"):  # what a clone stopped half-way leaves
                where = os.path.dirname(os.path.abspath(local))
                raise UsageError(
                    f"no store at {local}: a clone into {where} did not finish; "
                    f"run the clone again to resume it (`{PROG} clone URL {where}`)"
                )
            raise UsageError(f"no store at {local}; create one with `{PROG} init`")
        if os.path.isdir(local) and not (is_store_dir(local) or holds_store_keys(local)):
            raise _not_a_store(local)
    return Repository.open(url)


def writable_store_url(args: argparse.Namespace) -> str:
    """The store a writer may create: not among a directory's other files."""
    url = store_url(args)
    local = local_dir(url)
    if local is not None:
        check_not_in_store(local)
        if os.path.isdir(local) and not may_hold_store(local):
            raise _not_a_store(local)
    return url


def _not_a_store(local: str) -> UsageError:
    return UsageError(
        f"{local} is not a store (no refs/, packs/ or config.json in it): give the "
        f"store's directory (a project's .artifacts/), or make one there with "
        f"`{PROG} init --store {local}`"
    )


def open_registry(args: argparse.Namespace) -> Registry:
    return Registry(open_repo(args))


def entity(args: argparse.Namespace) -> str:
    given = _option(args, "entity")
    return validate_namespace(given, "entity") if given else default_entity()


def organization(args: argparse.Namespace) -> str:
    """``--org``, else the entity (W&B: a registry's organization)."""
    given = _option(args, "org")
    return validate_namespace(given, "organization") if given else entity(args)


def project(args: argparse.Namespace) -> str:
    given = _option(args, "project")
    return validate_namespace(given, "project") if given else default_project()


def _option(args: argparse.Namespace, name: str) -> str | None:
    given = getattr(args, name, None)
    if given == "":  # an unset variable: not the default it would silently fall back to
        raise UsageError(f"--{name} is empty (an unset variable?): give a {name} or leave it out")
    return given


def spec(args: argparse.Namespace, text: str) -> Spec:
    return parse_spec(text, entity(args), project(args))


def namespace(args: argparse.Namespace, text: str | None) -> tuple[str, str]:
    """(entity, project) of W&B's ``[ENTITY/]PROJECT`` argument, else of the options."""
    if text is None:
        return entity(args), project(args)
    parts = text.split("/")
    if len(parts) > 2:
        raise UsageError(f"expected [ENTITY/]PROJECT, not {text!r}")
    given_entity = parts[0] if len(parts) == 2 else entity(args)
    return validate_namespace(given_entity, "entity"), validate_namespace(parts[-1], "project")


def new_artifact(args: argparse.Namespace, text: str) -> Spec:
    """Where ``--name [[ENTITY/]PROJECT/]NAME`` logs: a name, without a version."""
    if ":" in text:
        raise UsageError(f"--name {text!r} names a version: give [[ENTITY/]PROJECT/]NAME")
    return spec(args, text)


def load(registry: Registry, version_spec: Spec, type: str | None = None) -> Artifact:
    """The version ``version_spec`` names; if ``type`` is given, it must be the artifact's."""
    return Artifact.from_version(registry, registry.resolve(version_spec, type))


def json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, like '{{\"rows\": 10}}'")
    return value
