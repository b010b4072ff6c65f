"""Bringing fossils back: objects gc moved aside that something reaches again.

gc's first step moves an unreachable object out of the store into the fossil
area (``fossils/``, laid out as a store of its own), where writers never look.
An object there is brought back when a ref or a present object reaches it: by
the next gc, or by a writer that reads it inside its lease. Restoring goes
children first, so a present tree or commit always has everything it reaches.
"""

from __future__ import annotations

from . import chunked, keys, largeblobs, objects
from .errors import KeyNotFoundError, ObjectNotFoundError
from .objects import ObjectId
from .store import ObjectStore
from .walk import references


def restore(store: ObjectStore, roots: set[ObjectId]) -> set[ObjectId]:
    """Make ``roots`` and everything they reach present again, copying from the
    fossils what is only there, children first; the ids it copied.

    Raises ObjectNotFoundError for an object that is neither present nor a fossil:
    nothing referencing it is copied.
    """
    fossils = store.fossils
    assert fossils is not None
    order: list[ObjectId] = []  # fossils to copy, each after everything it reaches
    seen: set[ObjectId] = set()
    stack: list[tuple[ObjectId, bool]] = [(i, False) for i in roots]
    while stack:
        object_id, children_done = stack.pop()
        if children_done:
            order.append(object_id)
            continue
        if object_id in seen:
            continue
        seen.add(object_id)
        if store.has(object_id):
            continue  # present: everything it reaches is present too
        if not fossils.has(object_id):
            raise ObjectNotFoundError(object_id, store.storage.url)
        stack.append((object_id, True))
        key = fossils.loose_location(object_id)
        if key == keys.content_key(object_id):
            continue  # a large blob: its content alone, referencing nothing
        if key == keys.chunked_key(object_id):
            children = list(chunked.read_list(fossils.storage, object_id).ids)
        else:
            children = references(objects.decode(fossils.get_raw(object_id)))
        stack.extend((child, False) for child in children)
    for object_id in order:
        _copy_back(store, object_id)
    return set(order)


def _copy_back(store: ObjectStore, object_id: ObjectId) -> None:
    fossils = store.fossils
    assert fossils is not None
    key = fossils.loose_location(object_id)
    if key == keys.chunked_key(object_id):  # its chunks are back: the list follows
        store.put_chunk_list(object_id, fossils.storage.get(key))
        return
    if key != keys.content_key(object_id):
        store.put_raw(fossils.get_raw(object_id))
        return
    try:  # a large blob is streamed, never read whole, and checked on the way
        largeblobs.stream_from(store, fossils, object_id)
    except KeyNotFoundError:
        raise ObjectNotFoundError(object_id, store.storage.url) from None
