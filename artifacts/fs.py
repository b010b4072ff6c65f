"""Read artifact versions through fsspec: ``artifacts://entity/project/name:v3/path``.

::

    import pandas as pd
    df = pd.read_csv("artifacts://team/vision/dataset:v3/train.csv",
                     storage_options={"store": "s3://bucket/artifacts"})

The path is ``ENTITY/PROJECT/NAME[:VERSION]/PATH``; the version is ``vN``, an
alias, or (left out) ``latest``. Listing ``""``, ``ENTITY`` and
``ENTITY/PROJECT`` shows entities, projects and artifacts. The store is the
``store=`` option, else the one ``Api()`` reads: the active run's, else the last
run's, else ``ARTIFACTS_STORE``, else the nearest ``.artifacts/``.

Files are fsspec buffered files that fetch only the ranges read; what is
verified is said in docs/fsspec.md (:class:`~artifacts.fs_files.BlobFile`).
Versions are immutable, so every write raises :class:`ReadOnlyError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from glob import has_magic
from typing import Any

import fsspec
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem
from fsspec.utils import isfilelike

from cas import Repository, pages
from cas.errors import InvalidNameError, UsageError
from cas.objects import TreeEntry

from . import trees
from .errors import ArtifactNotFoundError
from .files import read_descriptor
from .fs_files import BlobFile, fetched, got_whole
from .fs_versions import one_version_per_call, resolve
from .lineage import runs_store
from .names import parse_spec, split_path
from .registry import Registry, Version
from .runs import find_store_url


class ReadOnlyError(UsageError, PermissionError):
    """A write to ``artifacts://``: versions never change, log a new one instead."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"artifacts:// is read-only, cannot write {path!r}: log a new version instead "
            "(`artifacts log` or run.log_artifact)"
        )


def _times(version: Version) -> dict[str, float]:
    """A version's files were all created, and last changed, when it was logged."""
    nanoseconds = version.commit.meta.get("time")
    if not isinstance(nanoseconds, int):  # a damaged or foreign version: no time to give
        return {}
    return {"created": nanoseconds / 1e9, "mtime": nanoseconds / 1e9}


def _resolve_store(store: str | None) -> str:
    url = find_store_url(store)
    if url.startswith("file://"):
        url = url[len("file://") :]
    return url if "://" in url else os.path.abspath(url)


class _ByStore(type(AbstractFileSystem)):  # type: ignore[misc]
    # fsspec caches instances by their arguments: resolve ``store=None`` first,
    # so a changed ARTIFACTS_STORE or working directory gets its own instance.
    def __call__(cls, store: str | None = None, **kwargs: Any) -> Any:
        run = runs_store() if store is None else None
        if run is None:
            return super().__call__(store=_resolve_store(store), **kwargs)
        # The store Api() reads: the run's, through its connection (its options; a
        # memory:// store is only there). Not cached: runs come and go under one URL.
        fs = super().__call__(store=run.repo.url, skip_instance_cache=True, **kwargs)
        fs.registry = run
        return fs


# fsspec's calls that read many paths, or one path several times (get_file: isdir,
# then open), each see one version of an alias (artifacts.fs_versions); walk resolves
# its version once itself.
@one_version_per_call(
    "cat", "cat_ranges", "du", "expand_path", "find", "get", "get_file", "glob", "sizes", "tree"
)
class ArtifactsFileSystem(AbstractFileSystem, metaclass=_ByStore):
    """A read-only view of every version in one artifact store."""

    protocol = "artifacts"
    root_marker = ""

    def __init__(self, store: str | None = None, **kwargs: Any) -> None:
        super().__init__(store=store, **kwargs)
        self.store_url = _resolve_store(store)
        # Opening a local store creates it: a reader must not leave an empty one behind.
        if "://" not in self.store_url and not os.path.isdir(self.store_url):
            raise FileNotFoundError(2, "no artifact store", self.store_url)
        self.registry = Registry(Repository.open(self.store_url))

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("artifacts://"):
            path = path[len("artifacts://") :]
        return path.strip("/")

    # ---- resolving paths -------------------------------------------------

    def _resolve(self, path: str) -> tuple[str, Version, TreeEntry | None]:
        """(normalised path, version, entry at the path or None for the root).

        Reads the head ref, the version chain back to the version asked for,
        and only the trees along the path.
        """
        path = self._strip_protocol(path)
        parts = path.split("/")
        if len(parts) < 3:
            raise FileNotFoundError(2, "not a file of a version", path)
        entity, project, name, inner = parts[0], parts[1], parts[2], parts[3:]
        try:
            version = resolve(self.registry, parse_spec(name, entity, project))
            if not inner:
                return path, version, None
            entry = trees.lookup(self.registry.objects, version.tree, split_path("/".join(inner)))
        except (ArtifactNotFoundError, InvalidNameError):  # a damaged store still raises
            raise FileNotFoundError(2, "no such file or directory", path) from None
        if entry is None:
            raise self._missing(path, version, split_path("/".join(inner)))
        return path, version, entry

    def _missing(self, path: str, version: Version, inner: tuple[str, ...]) -> OSError:
        """NotADirectoryError for a path under a file (as LocalFileSystem), else not found."""
        for depth in range(1, len(inner)):
            above = trees.lookup(self.registry.objects, version.tree, inner[:depth])
            if above is None:
                break
            if above.kind != "tree":
                return NotADirectoryError(20, "not a directory", path)
        return FileNotFoundError(2, "no such file or directory", path)

    def _entry_info(self, path: str, entry: TreeEntry, version: Version) -> dict[str, Any]:
        # ETag and mtime are what caches (HF datasets, fsspec's) key remote files by: the
        # content's id, so a new version under the same path (:latest) is a new key.
        info = {"name": path, "size": entry.size, "id": entry.id.hex(), "ETag": entry.id.hex()}
        if entry.kind == "tree":
            return {**info, "type": "directory", **_times(version)}
        return {
            **info,
            "type": "file",
            "kind": entry.kind,
            "executable": entry.executable,
            **_times(version),
        }

    def _version_info(self, path: str, version: Version) -> dict[str, Any]:
        return {
            "name": path,
            "size": version.commit.meta.get("size", 0),
            "type": "directory",
            "version": f"v{version.number}",
            "artifact_type": version.type,
            "id": version.commit_id.hex(),
            "ETag": version.commit_id.hex(),
            **_times(version),
        }

    def created(self, path: str) -> datetime:
        return self.modified(path)  # a version never changes after it is logged

    def modified(self, path: str) -> datetime:
        mtime = self.info(path).get("mtime")
        if mtime is None:
            raise FileNotFoundError(2, "no time is recorded for", path)
        return datetime.fromtimestamp(mtime, tz=timezone.utc)

    # ---- reading ---------------------------------------------------------

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        parts = path.split("/") if path else []
        if len(parts) < 3:
            if path and path not in {i["name"] for i in self._namespaces(parts[:-1])}:
                raise FileNotFoundError(2, "no such entity or project", path)
            return {"name": path, "size": 0, "type": "directory"}
        path, version, entry = self._resolve(path)
        return (
            self._version_info(path, version)
            if entry is None
            else self._entry_info(path, entry, version)
        )

    def _namespaces(self, parts: list[str]) -> list[dict[str, Any]]:
        """Entities (``parts == []``) or one entity's projects."""
        spaces = self.registry.namespaces()
        if not parts:
            names = sorted({e for e, _ in spaces})
        else:
            names = sorted({f"{e}/{p}" for e, p in spaces if e == parts[0]})
        return [{"name": n, "size": 0, "type": "directory"} for n in names]

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        parts = path.split("/") if path else []
        if len(parts) < 2:
            found = self._namespaces(parts)
            if parts and not found:
                raise FileNotFoundError(2, "no such entity", path)
        elif len(parts) == 2:
            found = self._artifacts(*parts)
            if not found:
                raise FileNotFoundError(2, "no such project", path)
        else:
            path, version, entry = self._resolve(path)
            if entry is not None and entry.kind != "tree":
                found = [self._entry_info(path, entry, version)]
            else:
                store = self.registry.objects
                listed = pages.entries(store, version.tree if entry is None else entry.id)
                found = [self._entry_info(f"{path}/{e.name}", e, version) for e in listed]
        return found if detail else [f["name"] for f in found]

    def walk(
        self,
        path: str,
        maxdepth: int | None = None,
        topdown: bool = True,
        on_error: Any = "omit",
        **kwargs: Any,
    ) -> Iterator[tuple[str, Any, Any]]:
        """fsspec's walk (and so find, glob, du, get), over one version: the version is
        resolved once, so one logged meanwhile under ``:latest`` or an alias does not
        mix its directories into the listing. Above versions, fsspec's own."""
        path = self._strip_protocol(path)
        if len(path.split("/")) < 3:
            yield from super().walk(path, maxdepth, topdown, on_error, **kwargs)
            return
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        try:
            path, version, entry = self._resolve(path)
        except OSError as e:
            if on_error == "raise":
                raise
            if callable(on_error):
                on_error(e)
            return
        detail = kwargs.get("detail", False)
        if entry is not None and entry.kind != "tree":  # a file walks as itself
            files = {"": self._entry_info(path, entry, version)}
            yield path, {} if detail else [], files if detail else [""]
            return
        tree = version.tree if entry is None else entry.id
        yield from self._walk_tree(path, version, tree, maxdepth, topdown, detail)

    def _walk_tree(
        self,
        path: str,
        version: Version,
        tree: bytes,
        maxdepth: int | None,
        topdown: bool,
        detail: bool,
    ) -> Iterator[tuple[str, Any, Any]]:
        dirs: dict[str, Any] = {}
        files: dict[str, Any] = {}
        trees_below: dict[str, bytes] = {}
        for e in pages.entries(self.registry.objects, tree):
            info = self._entry_info(f"{path}/{e.name}", e, version)
            if e.kind == "tree":
                dirs[e.name], trees_below[e.name] = info, e.id
            else:
                files[e.name] = info
        shown_dirs, shown_files = (dirs, files) if detail else (list(dirs), list(files))
        if topdown:  # the caller may prune shown_dirs, as with os.walk
            yield path, shown_dirs, shown_files
        if maxdepth is None or maxdepth > 1:
            below = None if maxdepth is None else maxdepth - 1
            for name in list(shown_dirs):
                yield from self._walk_tree(
                    f"{path}/{name}", version, trees_below[name], below, topdown, detail
                )
        if not topdown:
            yield path, shown_dirs, shown_files

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        """fsspec's glob, with wildcards in the entity, project and artifact parts expanded.

        Listings name artifacts alone (their latest version), which fsspec's glob
        cannot match against ``NAME:VERSION``: so ``team/*/ds:v0/x`` and
        ``team/proj/ds:v*/x`` are expanded here, a part with a ``:`` against
        every version label (``v0``…, ``latest``, aliases), one without against
        artifact names. ``**`` in those parts is left to fsspec (latest versions).
        """
        path = self._strip_protocol(path)
        parts = path.split("/")
        head, rest = parts[:3], parts[3:]
        if not any(has_magic(p) for p in head) or any("**" in p for p in head):
            return super().glob(path, maxdepth=maxdepth, **kwargs)
        found: dict[str, Any] = {}
        for prefix in self._expand(head):
            if rest:
                more = super().glob("/".join([prefix, *rest]), maxdepth=maxdepth, detail=True)
                found.update(more)
            elif self.exists(prefix):
                found[prefix] = self.info(prefix)
        return found if kwargs.get("detail") else sorted(found)

    def _expand(self, patterns: list[str]) -> list[str]:
        """The existing ENTITY[/PROJECT[/NAME[:VERSION]]] prefixes the patterns match."""
        prefixes = [""]
        for pattern in patterns:
            matched = []
            for prefix in prefixes:
                above = prefix.split("/") if prefix else []
                names = [pattern] if not has_magic(pattern) else self._names(above, ":" in pattern)
                matched += [
                    f"{prefix}/{n}" if prefix else n for n in names if fnmatchcase(n, pattern)
                ]
            prefixes = matched
        return prefixes

    def _names(self, above: list[str], versions: bool) -> list[str]:
        """Entities, an entity's projects, or a project's artifacts (NAME:LABEL with versions)."""
        if len(above) < 2:
            return [i["name"].split("/")[-1] for i in self._namespaces(above)]
        names = self.registry.artifact_names(*above)
        if not versions:
            return names
        return [f"{n}:{label}" for n in names for label in self.registry.version_labels(*above, n)]

    def _artifacts(self, entity: str, project: str) -> list[dict[str, Any]]:
        found = []
        for name in self.registry.artifact_names(entity, project):
            head = self.registry.head(entity, project, name)
            if head is not None:
                found.append(self._version_info(f"{entity}/{project}/{name}", head))
        return found

    def _file(self, path: str) -> tuple[str, TreeEntry]:
        path, _, entry = self._resolve(path)
        if entry is None or entry.kind == "tree":
            raise IsADirectoryError(21, "is a directory", path)
        return path, entry

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Any = None,
        autocommit: bool = True,
        cache_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        if mode != "rb":
            raise ReadOnlyError(path)
        path, entry = self._file(path)
        if entry.kind == "ref":
            return fetched(read_descriptor(self.registry.objects, entry))
        return BlobFile(
            self,
            path,
            entry,
            self.registry.objects,
            block_size=block_size,
            cache_options=cache_options,
            **kwargs,
        )

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Bytes ``[start:end]`` as a slice of the file gives them, read without read-ahead
        (fsspec's own reads from ``start`` to the end when ``end`` comes before it)."""
        with self.open(path, "rb", cache_type="none", **kwargs) as f:
            start, end, _ = slice(start, end).indices(f.seek(0, os.SEEK_END))
            if end <= start:
                return b""
            f.seek(start)
            return f.read(end - start)

    def get_file(
        self, rpath: str, lpath: Any = None, callback: Any = DEFAULT_CALLBACK, outfile: Any = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        """fsspec's, but a local file takes its name only once read whole and verified."""
        get = super().get_file
        if outfile is not None or isfilelike(lpath) or self.isdir(rpath):
            return get(rpath, lpath, callback, outfile, **kwargs)
        return got_whole(lambda out: get(rpath, None, callback, out, **kwargs), lpath)

    def ukey(self, path: str) -> str:
        return self.info(path)["id"]  # content addressed: the id is the content's key

    # ---- writing: refused ------------------------------------------------

    def _refuse(self, path: Any, *args: Any, **kwargs: Any) -> None:
        raise ReadOnlyError(str(path))

    pipe_file = put_file = cp_file = mv = rm_file = rm = _rm = _refuse
    mkdir = makedirs = rmdir = touch = _refuse


fsspec.register_implementation("artifacts", ArtifactsFileSystem, clobber=True)
