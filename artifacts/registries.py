"""Registries, as W&B's Registry has them: an organization's shared namespaces of
collections whose versions are links to versions logged elsewhere (artifacts.links).

A registry named ``R`` of organization ``O`` is the namespace ``O/wandb-registry-R/``:
its collections are artifacts there, fenced by the same IAM prefixes as any team's
(docs/sharing.md). An organization here is an entity (by default the active one). A
registry's settings (description, accepted artifact types, visibility) are a record:
a blob of canonical msgpack under ``registry_settings_ref`` (docs/format.md), changed
by compare-and-swap. W&B's core registries, ``model`` and ``dataset``, exist in every
organization without a record (until one is saved), accepting the types they are named
after, as W&B configures them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from cas import ObjectId
from cas.errors import AccessDeniedError, InvalidObjectError
from cas.objects import Blob, canonical_packb

from .errors import RegistryError, RegistryNotFoundError
from .names import validate_namespace
from .records import map_of
from .ref_names import registry_settings_ref
from .registry import Registry

PREFIX = "wandb-registry-"
CORE = {"model": ("model",), "dataset": ("dataset",)}  # W&B's core registries, their types
VISIBILITIES = ("organization", "restricted")
KEYS = ("artifact_types", "created", "description", "updated", "visibility")


@dataclass(frozen=True)
class Settings:
    """What a registry says of itself. No ``artifact_types``: every type is accepted."""

    description: str | None = None
    artifact_types: tuple[str, ...] = ()
    visibility: str = "organization"
    created: int = 0  # ns since the epoch; 0 for a core registry never saved
    updated: int = 0
    saved: bool = field(default=False, compare=False)  # read from a record

    def to_blob(self) -> Blob:
        fields = {k: getattr(self, k) for k in KEYS}
        fields["artifact_types"] = list(self.artifact_types)
        return Blob(canonical_packb(fields))

    @classmethod
    def from_blob(cls, blob_id: ObjectId, data: bytes) -> Settings:
        """The settings ``data`` holds, checked: a store may be hostile or damaged."""
        fields = map_of(data, KEYS)
        problem = None
        if fields is None:
            problem = f"it is not a map of {', '.join(KEYS)}"
        elif not isinstance(fields["description"], (str, type(None))):
            problem = "its description is not a string"
        elif not isinstance(fields["artifact_types"], list) or not all(
            isinstance(t, str) and t for t in fields["artifact_types"]
        ):
            problem = "its artifact types are not a list of names"
        elif fields["visibility"] not in VISIBILITIES:
            problem = "its visibility is neither 'organization' nor 'restricted'"
        elif not all(isinstance(fields[k], int) for k in ("created", "updated")):
            problem = "its times are not integers"
        if problem:
            raise InvalidObjectError(
                f"blob {blob_id.hex()} is not a registry's settings: {problem}"
            )
        fields["artifact_types"] = tuple(fields["artifact_types"])
        return cls(**fields, saved=True)

    def accepts(self, artifact_type: str) -> bool:
        return not self.artifact_types or artifact_type in self.artifact_types


def project_of(name: str) -> str:
    """The namespace project of registry ``name`` (given with or without the prefix)."""
    name = name.removeprefix(PREFIX)
    if not name:
        raise RegistryError("a registry needs a name")
    return validate_namespace(PREFIX + name, "registry")


def is_registry_project(project: str) -> bool:
    return project.startswith(PREFIX) and project != PREFIX


def settings(registry: Registry, organization: str, name: str) -> Settings | None:
    """The settings of registry ``name`` of ``organization``; None if it does not exist."""
    project = project_of(name)
    blob_id = registry.refs.read(registry_settings_ref(organization, project))
    if blob_id is not None:
        return Settings.from_blob(blob_id, registry.objects.read_blob(blob_id))
    core = CORE.get(project.removeprefix(PREFIX))
    return None if core is None else Settings(artifact_types=core)


def existing(registry: Registry, organization: str, name: str) -> Settings:
    found = settings(registry, organization, name)
    if found is None:
        raise RegistryNotFoundError(
            organization, name.removeprefix(PREFIX), "Api().create_registry(name, visibility)"
        )
    return found


def check_settings(
    description: Any, artifact_types: Iterable[str] | None, visibility: Any
) -> tuple[str, ...]:
    """The artifact types as a tuple, all three checked by W&B's rules."""
    if visibility not in VISIBILITIES:
        raise RegistryError(f"visibility is 'organization' or 'restricted', not {visibility!r}")
    if description is not None and not isinstance(description, str):
        raise RegistryError("a registry's description is a string or None")
    types = [artifact_types] if isinstance(artifact_types, str) else list(artifact_types or ())
    for kind in types:
        if not isinstance(kind, str) or not kind or len(kind) > 128 or re.search("[/:]", kind):
            raise RegistryError(f"invalid artifact type {kind!r}: 1-128 characters, no '/' or ':'")
    return tuple(dict.fromkeys(types))


def create(
    registry: Registry,
    organization: str,
    name: str,
    visibility: str,
    description: str | None,
    artifact_types: Iterable[str] | None,
) -> Settings:
    """Make registry ``name``; refused if the organization has one of that name."""
    project = project_of(name)
    types = check_settings(description, artifact_types, visibility)
    if settings(registry, organization, name) is not None:
        raise RegistryError(f"registry {name!r} already exists in organization {organization!r}")
    now = time.time_ns()
    made = Settings(description, types, visibility, now, now, saved=True)
    ref = registry_settings_ref(organization, project)
    with registry.repo.writing():
        registry.refs.set_if_equals(ref, None, registry.objects.put(made.to_blob()))
    return made


def save(registry: Registry, organization: str, name: str, wanted: Settings) -> Settings:
    """Store ``wanted``'s description, types and visibility over the newest settings
    (compare-and-swap, retried). Accepted types may be added, never removed (W&B)."""
    types = check_settings(wanted.description, wanted.artifact_types, wanted.visibility)
    ref = registry_settings_ref(organization, project_of(name))
    written: list[Settings] = []

    def compute(old: ObjectId | None) -> ObjectId:
        base = existing(registry, organization, name)
        removed = [t for t in base.artifact_types if t not in types]
        if removed:
            raise RegistryError(f"accepted artifact types cannot be removed: {removed}")
        now = time.time_ns()
        made = replace(base, description=wanted.description, artifact_types=types)
        made = replace(made, visibility=wanted.visibility, updated=now, created=base.created or now)
        written[:] = [made]
        return registry.objects.put(made.to_blob())

    with registry.repo.writing():
        registry.repo.update_ref(ref, compute)
    return written[0]


def delete(registry: Registry, organization: str, name: str) -> None:
    """Remove an empty registry's settings (a registry with collections is refused)."""
    project = project_of(name)
    existing(registry, organization, name)
    if registry.artifact_names(organization, project):
        raise RegistryError(f"registry {name!r} still has collections: unlink their versions first")
    ref = registry_settings_ref(organization, project)
    old = registry.refs.read(ref)
    if old is None:
        raise RegistryError(f"{name!r} is a core registry: it cannot be deleted")
    with registry.repo.writing():
        registry.refs.delete_if_equals(ref, old)


def names(registry: Registry, organization: str) -> list[str]:
    """The registries of ``organization`` we may read: the core ones and those with
    settings (lists the refs under the organization's registry prefix, and no other)."""
    found = set(CORE)
    for ref in registry.refs.names(f"{organization}/{PREFIX}"):
        project = ref.split("/")[1]
        if is_registry_project(project) and ref == registry_settings_ref(organization, project):
            found.add(project.removeprefix(PREFIX))
    return sorted(n for n in found if _visible(registry, organization, n))


def _visible(registry: Registry, organization: str, name: str) -> bool:
    try:
        return settings(registry, organization, name) is not None
    except AccessDeniedError:  # a restricted registry, hidden from us (docs/sharing.md)
        return False


# ---- W&B's Registry objects (Api().registry(), .registries()) ----------------------


def matches(filter: dict[str, Any] | None, fields: dict[str, Any]) -> bool:
    """Does an object with ``fields`` pass W&B's ``filter``: ``{"name": "x"}``,
    ``{"name": {"$regex": "x"}}``, ``$and``/``$or`` of those? A list field (``alias``,
    ``tag``) passes if one of its items does."""
    for key, wanted in (filter or {}).items():
        if key in ("$and", "$or"):
            results = [matches(part, fields) for part in wanted]
            if not (all(results) if key == "$and" else any(results)):
                return False
            continue
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise RegistryError(f"a filter here can match {known}, $and and $or; not {key!r}")
        value = fields[key]
        values = value if isinstance(value, list) else [value]
        if not any(_passes(v, wanted) for v in values):
            return False
    return True


def _passes(value: Any, wanted: Any) -> bool:
    if not isinstance(wanted, dict):
        return value == wanted
    if set(wanted) != {"$regex"}:
        raise RegistryError(f"a filter here matches values or $regex, not {wanted!r}")
    try:
        return isinstance(value, str) and re.search(wanted["$regex"], value) is not None
    except re.error as e:
        raise RegistryError(f"invalid $regex {wanted['$regex']!r}: {e}") from None
