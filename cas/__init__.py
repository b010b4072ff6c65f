"""cas: a content-addressed object store.

Words used throughout:

- **object**: an immutable value stored under its **id**, the blake3 hash of
  its bytes. Three kinds: a **blob** (file contents), a **tree** (a directory:
  named entries pointing to blobs and subtrees) and a **commit** (a version: a
  tree, its parents, and metadata).
- **storage**: a dumb key/value file store (memory, local, any fsspec URL)
  with conditional writes. It knows nothing of objects.
- **object store**: objects on a storage, loose or in **packs**, verified
  against their id on every read.
- **ref**: a named pointer to an id, the only mutable state; it changes only
  by compare-and-swap.
- **repository**: a storage holding an object store, refs and a config.

This package imports nothing from ``artifacts`` or ``remotes``.
"""

from .errors import (
    CasError,
    CorruptObjectError,
    InvalidNameError,
    InvalidObjectError,
    KeyNotFoundError,
    NotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RefConflictError,
    ReferenceChangedError,
    RefNotFoundError,
    UsageError,
)
from .objects import Blob, Commit, ObjectId, Tree, TreeEntry
from .refs import RefStore
from .repo import Repository
from .storage import IfMatch, Storage, open_storage
from .store import ObjectStore, PackWriter

__all__ = [
    "Blob",
    "CasError",
    "Commit",
    "CorruptObjectError",
    "IfMatch",
    "InvalidNameError",
    "InvalidObjectError",
    "KeyNotFoundError",
    "NotFoundError",
    "ObjectId",
    "ObjectNotFoundError",
    "ObjectStore",
    "PackWriter",
    "PreconditionFailedError",
    "RefConflictError",
    "RefNotFoundError",
    "RefStore",
    "ReferenceChangedError",
    "Repository",
    "Storage",
    "Tree",
    "TreeEntry",
    "UsageError",
    "open_storage",
]
