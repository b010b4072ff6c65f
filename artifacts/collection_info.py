"""What an artifact says of itself, apart from its versions (W&B's
``ArtifactCollection.description`` and ``.tags``): a record, a blob of canonical
msgpack under ``collection_ref`` (docs/format.md), moved by compare-and-swap. An
artifact never saved has none: no description, no tags.

``save`` applies one object's edits (its description if it changed it, the tags it
added and removed) over the newest record, as W&B's server applies the add and delete
of tags, so two scripts tagging the same artifact keep each other's tags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cas import ObjectId
from cas.errors import InvalidObjectError, UsageError
from cas.objects import Blob, canonical_packb

from .annotations import validate_tags
from .records import map_of
from .ref_names import collection_ref
from .registry import Registry

KEYS = ("description", "tags", "updated")


@dataclass(frozen=True)
class CollectionInfo:
    description: str | None = None
    tags: tuple[str, ...] = ()
    updated: int = 0  # ns since the epoch; 0: never saved

    def to_blob(self) -> Blob:
        return Blob(canonical_packb({**self.__dict__, "tags": list(self.tags)}))

    @classmethod
    def from_blob(cls, blob_id: ObjectId, data: bytes) -> CollectionInfo:
        """The record ``data`` holds, checked: a store may be hostile or damaged."""
        fields = map_of(data, KEYS)
        problem = None
        if fields is None:
            problem = f"it is not a map of {', '.join(KEYS)}"
        elif not isinstance(fields["description"], (str, type(None))):
            problem = "its description is not a string"
        elif not isinstance(fields["tags"], list) or not all(
            isinstance(t, str) for t in fields["tags"]
        ):
            problem = "its tags are not a list of strings"
        elif not isinstance(fields["updated"], int):
            problem = "its time is not an integer"
        if problem:
            raise InvalidObjectError(f"blob {blob_id.hex()} is not an artifact's record: {problem}")
        return cls(fields["description"], tuple(fields["tags"]), fields["updated"])


def read(registry: Registry, entity: str, project: str, name: str) -> CollectionInfo:
    blob_id = registry.refs.read(collection_ref(entity, project, name))
    return CollectionInfo() if blob_id is None else _read_blob(registry, blob_id)


def _read_blob(registry: Registry, blob_id: ObjectId) -> CollectionInfo:
    return CollectionInfo.from_blob(blob_id, registry.objects.read_blob(blob_id))


def save(
    registry: Registry,
    where: tuple[str, str, str],
    loaded: CollectionInfo,
    description: str | None,
    tags: list[str],
) -> CollectionInfo:
    """Apply the edits from ``loaded`` to (``description``, ``tags``) over the newest
    record of artifact ``where`` (entity, project, name); the record written."""
    if description is not None and not isinstance(description, str):
        raise UsageError(f"a description is a string or None, not {type(description).__name__}")
    wanted = validate_tags(tags)
    added = [t for t in wanted if t not in loaded.tags]
    removed = set(loaded.tags) - set(wanted)
    written: list[CollectionInfo] = []

    def compute(old: ObjectId | None) -> ObjectId:
        base = CollectionInfo() if old is None else _read_blob(registry, old)
        kept = [t for t in base.tags if t not in removed]
        changed = description if description != loaded.description else base.description
        made = CollectionInfo(changed, tuple(dict.fromkeys(kept + added)), time.time_ns())
        written[:] = [made]
        return registry.objects.put(made.to_blob())

    with registry.repo.writing():
        registry.repo.update_ref(collection_ref(*where), compute)
    return written[0]
