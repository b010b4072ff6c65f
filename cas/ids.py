"""Object ids as people type them: 64 hex digits, or a unique prefix of at least 4."""

from __future__ import annotations

from .errors import NotFoundError, UsageError
from .objects import ObjectId
from .store import ObjectStore

MIN_PREFIX = 4  # shorter prefixes match too many objects to be worth a listing


def resolve_id(store: ObjectStore, text: str) -> ObjectId:
    """The id ``text`` names in ``store``: in full, or by the one object it is a prefix of."""
    text = text.lower()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    elif MIN_PREFIX <= len(text) < 64 and all(c in "0123456789abcdef" for c in text):
        found = [i for i in store if i.hex().startswith(text)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UsageError(f"object id prefix {text} is ambiguous ({len(found)} objects)")
        raise NotFoundError(f"no object id starts with {text}")
    raise UsageError(f"not an object id: {text!r} (expected 64 hex digits, or a prefix)")
