"""Names: artifact names, entry paths, and ``entity/project/name:version`` specs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from cas.errors import InvalidNameError
from cas.objects import validate_entry_name

ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
ALIAS = re.compile(r"[A-Za-z0-9_.=+@-]{1,128}")
VERSION = re.compile(r"v(0|[1-9][0-9]*)")


def validate_artifact_name(name: str) -> str:
    if not isinstance(name, str) or not ARTIFACT_NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidNameError(str(name), "artifact names are 1-128 of A-Z a-z 0-9 _ . -")
    return name


def validate_namespace(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAMESPACE.fullmatch(value) or value in (".", ".."):
        raise InvalidNameError(str(value), f"{what} names are 1-128 of A-Z a-z 0-9 _ . -")
    return value


def validate_alias(alias: str) -> str:
    if (
        not isinstance(alias, str)
        or not ALIAS.fullmatch(alias)
        or VERSION.fullmatch(alias)
        or alias in (".", "..")  # a ref segment cannot be either
    ):
        raise InvalidNameError(
            str(alias),
            "aliases are 1-128 of A-Z a-z 0-9 _ . = + @ -, not '.', '..' or of the form vN",
        )
    return alias


def split_path(path: str) -> tuple[str, ...]:
    """An entry path as its segments, refusing anything that could escape a root."""
    if not isinstance(path, str) or not path:
        raise InvalidNameError(str(path), "entry paths must be non-empty")
    if path.startswith("/"):
        raise InvalidNameError(path, "entry paths may not start with '/'")
    if "\\" in path or "\0" in path:
        raise InvalidNameError(path, "entry paths may not contain a backslash or NUL")
    parts = path.split("/")
    if any(p == "" for p in parts):
        raise InvalidNameError(path, "entry paths may not have empty segments")
    if any(p in (".", "..") for p in parts):
        raise InvalidNameError(path, "entry paths may not contain '.' or '..' segments")
    for part in parts:
        validate_entry_name(part)
    return tuple(parts)


def logical_path(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """A user's name for a path in a version, read as W&B's ``LogicalPath`` reads it (a
    path object; ``./a//b/`` is ``a/b``), as its segments, checked by :func:`split_path`."""
    text = os.fspath(path)
    return split_path(str(PurePosixPath(text)) if text else text)


def logical_prefix(name: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """A directory of a version named by a user (``add_dir``'s ``name``); None, "" and
    "/" are the root."""
    text = os.fspath(name).strip("/") if name is not None else ""
    return logical_path(text) if text else ()


@dataclass(frozen=True)
class Spec:
    """``entity/project/name:selector``; the selector is ``latest``, ``vN`` or an alias."""

    entity: str
    project: str
    name: str
    selector: str

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}:{self.selector}"


def split_path_of(
    path: str, entity: str, project: str, text: str, expected: str
) -> tuple[str, str, str]:
    """``[[entity/]project/]name`` as (entity, project, name), the parts left out taken
    from ``entity`` and ``project``; more parts are an InvalidNameError on ``text``."""
    parts = path.split("/")
    if len(parts) > 3:
        raise InvalidNameError(text, expected)
    defaults = (entity, project)[: 3 - len(parts)]
    return (*defaults, *parts)  # type: ignore[return-value]


def parse_spec(text: str, entity: str, project: str, default: str = "latest") -> Spec:
    if not isinstance(text, str) or not text:
        raise InvalidNameError(str(text), "expected NAME[:VERSION]")
    body, sep, selector = text.partition(":")
    if sep and not selector:
        raise InvalidNameError(text, "empty version after ':'")
    selector = selector or default
    entity, project, name = split_path_of(
        body, entity, project, text, "expected [[ENTITY/]PROJECT/]NAME[:VERSION]"
    )
    if selector != "latest" and not VERSION.fullmatch(selector):
        validate_alias(selector)
    return Spec(
        validate_namespace(entity, "entity"),
        validate_namespace(project, "project"),
        validate_artifact_name(name),
        selector,
    )
