"""The ``artifacts`` command: git-like subcommands over an artifact store.

Which store: ``--store URL``, else ``ARTIFACTS_STORE``, else the nearest
``.artifacts/`` directory above the working directory (see :mod:`artifacts.run`).
Errors print one line, ``artifacts: error: ...``, and exit 1; ``--debug``
adds the traceback. Progress bars go to stderr, and only to a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from cas import Commit, ObjectId, Repository, Tree
from cas.errors import (
    CasError,
    InvalidObjectError,
    NotFoundError,
    UsageError,
)
from cas.fsck import fsck
from cas.objects import TreeEntry
from cas.store import ObjectStore, PackWriter
from cas.walk import obj_kind

from . import trees
from .artifact import Artifact
from .files import read_descriptor, write_files
from .names import Spec, parse_spec, validate_namespace
from .refpolicy import ARTIFACT_REFS
from .registry import Registry, Version, alias_ref
from .run import STORE_DIR, default_entity, find_store_url, init

PROG = "artifacts"
# C0 and C1 controls, DEL, and the line/paragraph separators: none belongs in a terminal line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
Handler = Callable[[argparse.Namespace], int | None]


# ---- output helpers ------------------------------------------------------


def _progress() -> bool:
    return sys.stderr.isatty()


def _bar(total: int | None, desc: str, unit: str = "B") -> Any:
    from tqdm import tqdm  # imported late: most commands never draw a bar

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        file=sys.stderr,
        disable=not _progress(),
        leave=False,
        dynamic_ncols=True,
    )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _when(ns: int | None) -> str:
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S") if ns else "-"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _printable(text: object) -> str:
    """``text`` with control characters escaped (``\\x1b``), so a name can't drive the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def _table(headers: Sequence[str], rows: list[Sequence[str]]) -> None:
    rows = [[_printable(c) for c in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {_printable(message)}", file=sys.stderr)


def _show_warning(message: Any, *_args: Any, **_kwargs: Any) -> None:
    _warn(str(message))  # one line, not Python's two-line file:line format


# ---- resolving the store and names ---------------------------------------


def _local_dir(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    return None if "://" in url else url


def _store_url(args: argparse.Namespace) -> str:
    return find_store_url(getattr(args, "store", None))


def _repo(args: argparse.Namespace, create: bool = False) -> Repository:
    url = _store_url(args)
    local = _local_dir(url)
    # Opening a local store creates its directory: only writers may do that.
    if not create and local is not None and not os.path.isdir(local):
        raise UsageError(f"no store at {local}; create one with `{PROG} init`")
    return Repository.open(url)


def _registry(args: argparse.Namespace, create: bool = False) -> Registry:
    return Registry(_repo(args, create))


def _entity(args: argparse.Namespace) -> str:
    given = getattr(args, "entity", None)
    return validate_namespace(given, "entity") if given else default_entity()


def _project(args: argparse.Namespace) -> str:
    given = getattr(args, "project", None) or os.environ.get("ARTIFACTS_PROJECT")
    return validate_namespace(given or "uncategorized", "project")


def _spec(args: argparse.Namespace, text: str) -> Spec:
    return parse_spec(text, _entity(args), _project(args))


def _load(registry: Registry, spec: Spec) -> Artifact:
    return Artifact._from_version(registry, registry.resolve(spec))


def _label(version: Version) -> str:
    return f"{version.entity}/{version.project}/{version.name}:v{version.number}"


def _alias_map(
    registry: Registry, entity: str, project: str, name: str
) -> dict[ObjectId, list[str]]:
    """commit id -> its aliases, from one listing (not one per version)."""
    prefix = alias_ref(entity, project, name, "")
    found: dict[ObjectId, list[str]] = {}
    for ref, target in sorted(registry.refs.list(prefix).items()):
        found.setdefault(target, []).append(ref[len(prefix) :])
    head = registry.head(entity, project, name)
    if head is not None:
        found.setdefault(head.commit_id, []).insert(0, "latest")
    return found


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, like '{{\"rows\": 10}}'")
    return value


# ---- init, log -----------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    # Like `git init`: here, unless a store is named; never a parent's .artifacts.
    url = getattr(args, "store", None) or os.environ.get("ARTIFACTS_STORE")
    url = url or os.path.join(os.getcwd(), STORE_DIR)
    local = _local_dir(url)
    repo = Repository.open(os.path.abspath(local) if local is not None else url)
    existed = repo.storage.exists("config.json") or any(repo.refs.names(""))
    repo.update_config(lambda config: None)  # writes config.json: marks the store as made
    print(f"{'store already exists' if existed else 'initialised empty store'} at {repo.url}")
    return 0


class _HashingWriter(PackWriter):
    """A pack writer that advances a progress bar as each file is stored."""

    def __init__(self, store: ObjectStore, bar: Any) -> None:
        super().__init__(store)
        self._bar = bar

    def add_file(self, path: str, size: int | None = None) -> tuple[ObjectId, int]:
        result = super().add_file(path, size)
        self._bar.update(result[1])
        return result


@contextlib.contextmanager
def _hashing_progress(registry: Registry, artifact: Artifact) -> Iterator[None]:
    # Artifact._build has no progress hook: route its writer through ours instead.
    total = artifact._staged_bytes()
    store = registry.objects
    with _bar(total, "hashing") as bar:
        store.writer = lambda: _HashingWriter(store, bar)  # type: ignore[method-assign]
        try:
            yield
        finally:
            del store.writer  # back to the class's method
            bar.update(bar.total - bar.n)  # files the stat cache skipped count as done


def cmd_log(args: argparse.Namespace) -> int:
    path = args.path
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file or directory", path)
    metadata = _json_object(args.metadata, "--metadata")
    name = args.name or os.path.basename(os.path.abspath(path))
    artifact = Artifact(name, args.type, description=args.description, metadata=metadata)
    if os.path.isdir(path):
        artifact.add_dir(path)
    else:
        artifact.add_file(path)
    entity, project = _entity(args), _project(args)
    # Like artifacts.init() in a script: the store is created if there is none.
    with init(project, entity, store=_store_url(args), job_type="cli-log") as run:
        registry = run.registry
        before = registry.head(entity, project, artifact.name)
        progress = (
            _hashing_progress(registry, artifact) if _progress() else contextlib.nullcontext()
        )
        with progress:
            run.log_artifact(artifact, aliases=args.alias)
    _, version = artifact._version()
    created = before is None or before.number != version.number
    if args.json:
        _print_json({"version": _label(version), "created": created, "id": artifact.id})
    else:
        print(_label(version) if created else f"unchanged: {_label(version)}")
    return 0


# ---- listing -------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.all:
        spaces = registry.namespaces()
    else:
        spaces = [(_entity(args), _project(args))]
    rows = []
    damaged = 0
    for entity, project in spaces:
        for name in registry.artifact_names(entity, project):
            label = name if not args.all else f"{entity}/{project}/{name}"
            try:
                row = _ls_row(registry, entity, project, name)
            except CasError as exc:  # one damaged artifact must not hide the others
                damaged += 1
                _warn(f"{label}: damaged: {_message(exc)} (run `{PROG} fsck`)")
                row = {"type": "?", "latest": "?", "size": 0, "aliases": {}, "damaged": True}
            if row is not None:
                rows.append({"name": label, **row})
    if args.json:
        _print_json(rows)
    elif not rows:
        where = "this store" if args.all else f"{spaces[0][0]}/{spaces[0][1]}"
        print(f"no artifacts in {where}", file=sys.stderr)
    else:
        _table(
            ["NAME", "TYPE", "LATEST", "SIZE", "ALIASES"],
            [
                [
                    r["name"],
                    r["type"],
                    r["latest"],
                    "damaged" if r.get("damaged") else _human(r["size"]),
                    ", ".join(f"{a}:{v}" for a, v in r["aliases"].items() if a != "latest"),
                ]
                for r in rows
            ],
        )
    if damaged:
        raise _Failed(f"{_count(damaged, 'artifact')} could not be read")
    return 0


def _ls_row(registry: Registry, entity: str, project: str, name: str) -> dict[str, Any] | None:
    head = registry.head(entity, project, name)
    if head is None:
        return None
    by_commit = _alias_map(registry, entity, project, name)
    aliases = {
        a: f"v{registry.version(entity, project, c).number}"
        for c, names in by_commit.items()
        for a in names
    }
    return {
        "type": head.type,
        "latest": f"v{head.number}",
        "size": head.commit.meta.get("size", 0),
        "aliases": aliases,
    }


def cmd_versions(args: argparse.Namespace) -> int:
    registry = _registry(args)
    spec = _spec(args, args.name)
    start = registry.resolve(spec)
    aliases = _alias_map(registry, spec.entity, spec.project, spec.name)
    rows = [
        {
            "version": f"v{v.number}",
            "aliases": aliases.get(v.commit_id, []),
            "time": _when(v.commit.meta.get("time")),
            "time_ns": v.commit.meta.get("time"),
            "size": v.commit.meta.get("size", 0),
            "run": v.commit.meta.get("run"),
            "id": v.commit_id.hex(),
        }
        for v in registry.history(start)
    ]
    if args.json:
        _print_json(rows)
    else:
        _table(
            ["VERSION", "ALIASES", "CREATED", "SIZE", "RUN"],
            [
                [r["version"], ", ".join(r["aliases"]), r["time"], _human(r["size"]), r["run"]]
                for r in rows
            ],
        )
    return 0


def _run_info(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "job_type": record.job_type,
        "started": _when(record.started),
    }


def cmd_show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    artifact = _load(registry, _spec(args, args.spec))
    _, version = artifact._version()
    meta = version.commit.meta
    logged_by = artifact.logged_by()
    files = [
        {
            "path": path,
            "size": entry.size,
            "digest": entry.id.hex(),
            **(
                {"ref": read_descriptor(registry.objects, entry)["uri"]}
                if entry.kind == "ref"
                else {}
            ),
        }
        for path, entry in trees.walk(registry.objects, version.tree)
    ]
    info = {
        "name": _label(version),
        "type": version.type,
        "id": version.commit_id.hex(),
        "digest": version.tree.hex(),
        "created": _when(meta.get("time")),
        "size": meta.get("size", 0),
        "aliases": artifact.aliases,
        "tags": artifact.tags,
        "description": artifact.description,
        "metadata": artifact.metadata,
        "logged_by": _run_info(logged_by) if logged_by else None,
        "used_by": [_run_info(r) for r in artifact.used_by()],
        "files": files,
    }
    if args.json:
        _print_json(info)
        return 0
    print(_printable(f"{info['name']} ({info['type']})"))
    for key in ("id", "digest", "created"):
        print(f"  {key + ':':13}{info[key]}")
    print(f"  {'size:':13}{_human(info['size'])}")
    print(f"  {'aliases:':13}{_printable(', '.join(info['aliases'])) or '-'}")
    if info["tags"]:
        print(f"  {'tags:':13}{_printable(', '.join(info['tags']))}")
    if info["description"]:
        print(f"  {'description:':13}{_printable(info['description'])}")
    if info["metadata"]:
        print(f"  {'metadata:':13}{json.dumps(info['metadata'], sort_keys=True)}")
    print("lineage:")
    run = info["logged_by"]
    print(f"  {'logged by:':13}{_printable(_describe_run(run)) if run else '-'}")
    used = info["used_by"]
    print(f"  {'used by:':13}{_printable(', '.join(_describe_run(r) for r in used)) or '-'}")
    print(f"files ({len(files)}):")
    width = max((len(_human(f["size"])) for f in files), default=0)
    for f in files:
        ref = f"  -> {f['ref']}" if "ref" in f else ""
        print(f"  {_human(f['size']).rjust(width)}  {_printable(f['path'] + ref)}")
    return 0


def _describe_run(run: dict[str, Any]) -> str:
    extra = ", ".join(x for x in (run["job_type"], run["started"]) if x)
    label = run["id"] if run["name"] == run["id"] else f"{run['name']} ({run['id']})"
    return f"run {label}" + (f" [{extra}]" if extra else "")


def cmd_diff(args: argparse.Namespace) -> int:
    registry = _registry(args)
    a = registry.resolve(_spec(args, args.a))
    b = registry.resolve(_spec(args, args.b))
    result = trees.diff(registry.objects, a.tree, b.tree)
    if args.json:
        _print_json({"from": _label(a), "to": _label(b), **asdict(result)})
        return 0
    changes = [(p, "A") for p in result.added] + [(p, "D") for p in result.removed]
    changes += [(p, "M") for p in result.modified]
    for path, letter in sorted(changes):
        print(f"{letter} {_printable(path)}")
    return 0


# ---- files ---------------------------------------------------------------


def _selected(artifact: Artifact, prefix: str | None) -> list[tuple[str, TreeEntry]]:
    files = artifact._files(prefix)
    if prefix and not files:
        raise NotFoundError(f"{artifact.qualified_name} has no files under {prefix!r}")
    return files


def _write(artifact: Artifact, root: str, files: list[tuple[str, TreeEntry]]) -> int:
    """write_files, with a bar on a terminal."""
    store = artifact._version()[0].objects
    if not _progress():
        return write_files(store, root, files)
    with _bar(sum(e.size for _, e in files), "downloading") as bar:
        return write_files(store, root, files, on_written=bar.update)


def cmd_download(args: argparse.Namespace) -> int:
    artifact = _load(_registry(args), _spec(args, args.spec))
    root = args.dir or artifact.default_root()
    files = _selected(artifact, args.path_prefix)
    written = _write(artifact, root, files)
    print(
        f"downloaded {len(files)} files ({_human(written)}) of {artifact.qualified_name} to {root}"
    )
    return 0


def cmd_checkout(args: argparse.Namespace) -> int:
    artifact = _load(_registry(args), _spec(args, args.spec))
    written: list[int] = []  # each file's size, as it is written
    removed: list[str] = []
    with _bar(artifact.size, "downloading") as bar:  # drawn only on a terminal
        artifact.checkout(
            args.dir,
            on_written=lambda size: (written.append(size), bar.update(size)),
            on_removed=removed.append,
        )
    extra = f", removed {_count(len(removed), 'other file')}" if removed else ""
    count = _count(len(written), "file")
    print(f"checked out {artifact.qualified_name} into {args.dir} ({count}{extra})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    artifact = _load(_registry(args), _spec(args, args.spec))
    if not os.path.isdir(args.dir):
        raise FileNotFoundError(2, "no such directory", args.dir)
    artifact.verify(args.dir)
    print(f"ok: {args.dir} matches {artifact.qualified_name}")
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    registry = _registry(args)
    version = registry.resolve(_spec(args, args.spec))
    if args.alias_cmd == "add":
        registry.set_alias(version, args.alias)
        print(f"{_label(version)} is now {args.alias!r}")
    else:
        registry.remove_alias(version, args.alias)
        print(f"removed alias {args.alias!r} from {_label(version)}")
    return 0


# ---- objects -------------------------------------------------------------


def _object_id(store: ObjectStore, text: str) -> ObjectId:
    text = text.lower()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    elif 4 <= len(text) < 64 and all(c in "0123456789abcdef" for c in text):
        found = [i for i in store if i.hex().startswith(text)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UsageError(f"object id prefix {text} is ambiguous ({len(found)} objects)")
        raise NotFoundError(f"no object id starts with {text}")
    raise UsageError(f"not an object id: {text!r} (expected 64 hex digits, or a prefix)")


def cmd_cat_object(args: argparse.Namespace) -> int:
    store = _repo(args).objects
    object_id = _object_id(store, args.id)
    # Try it as a blob first: streamed and verified, and printed only once verified.
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
        try:
            store.copy_blob_to(object_id, spool)
        except InvalidObjectError:
            obj: Any = store.get(object_id)  # a tree or commit (or truly invalid: it raises)
        else:
            if args.type:
                print("blob")
            else:
                spool.seek(0)
                sys.stdout.flush()
                shutil.copyfileobj(spool, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            return 0
    kind = obj_kind(obj)
    if args.type:
        print(kind)
        return 0
    if isinstance(obj, Tree):
        entries = [
            {"name": e.name, "kind": e.kind, "id": e.id.hex(), "size": e.size, "exec": e.executable}
            for e in obj.entries
        ]
        if args.json:
            _print_json({"kind": kind, "entries": entries})
        else:
            print(f"kind: {kind}")
            for e in entries:
                mode = "x" if e["exec"] else "-"
                print(f"{e['kind']:4} {mode} {e['id']} {e['size']:>12}  {_printable(e['name'])}")
        return 0
    assert isinstance(obj, Commit)
    body = {
        "kind": kind,
        "tree": obj.tree.hex(),
        "parents": [p.hex() for p in obj.parents],
        "meta": obj.meta,
    }
    if args.json:
        _print_json(body)
    else:
        print(f"kind: {kind}")
        print(f"tree: {body['tree']}")
        for parent in body["parents"]:
            print(f"parent: {parent}")
        print("meta: " + json.dumps(obj.meta, indent=2, sort_keys=True, default=str))
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    repo = _repo(args)
    repaired: dict[str, Any] = {}
    if args.repair:
        from remotes.transfer import repair

        result = repair(repo, args.repair)
        report = result.report
        repaired = {
            "repaired": result.repaired,
            "packs_rewritten": result.packs_rewritten,
            "unrepaired": result.unrepaired,
        }
    elif _progress():
        with _bar(None, "checking", unit="obj") as bar:
            report = fsck(repo, on_object=lambda: bar.update(1))
    else:
        report = fsck(repo)
    if args.json:
        _print_json({**asdict(report), **repaired, "ok": report.ok})
    else:
        if args.repair:
            print(
                f"repaired {_count(len(repaired['repaired']), 'object')} from {args.repair} "
                f"({_count(len(repaired['packs_rewritten']), 'pack')} rebuilt); "
                f"{len(repaired['unrepaired'])} left unrepaired"
            )
        print(
            f"checked {_count(report.refs, 'ref')}, {_count(report.objects, 'object')} "
            f"({_count(report.blobs, 'blob')}, {_human(report.blob_bytes)})"
        )
        for p in report.problems:
            what = f"{p.kind} " if p.kind else ""
            print(
                _printable(f"{p.problem} {what}{p.object_id} (reached from {p.ref}): {p.message}")
            )
    if report.ok:
        return 0
    raise _Failed(f"fsck found {_count(len(report.problems), 'missing or damaged object')}")


class _Failed(CasError):
    """The command ran, and found something wrong (its output says what)."""


# ---- remotes and gc ------------------------------------------------------


def cmd_remote(args: argparse.Namespace) -> int:
    from remotes import add_remote, list_remotes, remove_remote

    repo = _repo(args)
    if args.remote_cmd == "add":
        add_remote(repo, args.name, args.url)
        print(f"added remote {args.name} -> {list_remotes(repo)[args.name]}")
    elif args.remote_cmd == "rm":
        remove_remote(repo, args.name)
        print(f"removed remote {args.name}")
    else:
        found = list_remotes(repo)
        if args.json:
            _print_json(found)
        else:
            for name, url in sorted(found.items()):
                print(f"{name}\t{url}")
    return 0


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found: list[str] = []
        yield found
    found.extend(str(w.message) for w in caught)


def _refs_lines(label: str, refs: list[str]) -> None:
    for ref in refs:
        print(f"  {label} {ARTIFACT_REFS.describe(ref)}")


def cmd_push(args: argparse.Namespace) -> int:
    from remotes import push

    with _collect_warnings() as caught:
        result = push(
            _repo(args),
            args.remote,
            args.names or None,
            args.force,
            _progress(),
            policy=ARTIFACT_REFS,
        )
    for message in dict.fromkeys(result.warnings + caught):  # each once, in order
        _warn(message)
    if args.json:
        _print_json(asdict(result))
        return 0
    size = _human(result.bytes_uploaded)
    print(f"pushed {_count(result.objects_uploaded, 'object')} ({size}) to {args.remote}")
    _refs_lines("updated", result.refs_updated)
    # Ours unchanged since we fetched them, changed on the remote since: not sent.
    _refs_lines("not sent (changed on the remote; `artifacts pull` brings it)", result.behind)
    if not result.refs_updated and not result.behind:
        print("  everything up to date")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from remotes import fetch

    result = fetch(_repo(args), args.remote, _progress())
    if args.json:
        _print_json(asdict(result))
        return 0
    print(f"fetched {_count(result.objects_downloaded, 'object')} from {args.remote}")
    _refs_lines("new", result.refs_updated)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from remotes import pull

    result = pull(_repo(args), args.remote, _progress(), policy=ARTIFACT_REFS)
    if args.json:
        _print_json(asdict(result))
        return 0
    print(f"pulled {_count(result.objects_downloaded, 'object')} from {args.remote}")
    _refs_lines("fast-forwarded", result.fast_forwarded)
    _refs_lines("diverged", result.diverged)
    if result.diverged:
        print(f"  run `{PROG} rebase {args.remote}` to put local versions after the remote's")
    return 0


def cmd_rebase(args: argparse.Namespace) -> int:
    from remotes import rebase

    moved = rebase(_repo(args), args.remote, args.names or None, policy=ARTIFACT_REFS)
    if args.json:
        _print_json(moved)
        return 0
    if not moved:
        print("nothing to rebase")
    _refs_lines("rebased", moved)
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    from remotes import clone

    repo = clone(args.url, args.dir, _progress(), policy=ARTIFACT_REFS)
    print(f"cloned {args.url} into {repo.url}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from cas.gc import gc

    report = gc(_repo(args), grace_seconds=args.grace)
    if args.json:
        _print_json(asdict(report))
    else:
        freed = _human(report.bytes_freed)
        print(f"deleted {_count(report.objects_deleted, 'object')}, freed {freed}")
    return 0


# ---- the parser ----------------------------------------------------------


def _global_options() -> argparse.ArgumentParser:
    # SUPPRESS defaults: an option given before the command survives the
    # command's own parser, which would otherwise reset it to None.
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the store (default: $ARTIFACTS_STORE, else the nearest .artifacts/)",
    )
    group.add_argument(
        "--entity",
        default=argparse.SUPPRESS,
        help="entity of unqualified names (default: $ARTIFACTS_ENTITY, else your user name)",
    )
    group.add_argument(
        "--project",
        default=argparse.SUPPRESS,
        help="project of unqualified names (default: $ARTIFACTS_PROJECT, else uncategorized)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    return parent


def _installed_version() -> str:
    try:
        return importlib.metadata.version("artifacts")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Version datasets and models in a content-addressed store.",
        epilog=(
            "example:\n"
            "  artifacts init\n"
            "  artifacts log data/ --name dataset --type dataset\n"
            "  artifacts show dataset:latest\n\n"
            "Run `artifacts COMMAND --help` for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_installed_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, func: Handler, summary: str, example: str, group: Any = sub, json: bool = False
    ) -> argparse.ArgumentParser:
        p = group.add_parser(
            name,
            help=summary,
            description=summary,
            epilog="example:\n" + "\n".join("  " + line for line in example.splitlines()),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        p.set_defaults(func=func)
        if json:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    command(
        "init",
        cmd_init,
        "create a store (.artifacts/ here, or --store URL)",
        "artifacts init\nartifacts init --store s3://team-bucket/artifacts",
    )

    p = command(
        "log",
        cmd_log,
        "log a file or directory as the next version of an artifact",
        "artifacts log data/ --name dataset --type dataset --alias best \\\n"
        "    --metadata '{\"rows\": 1000}'",
        json=True,
    )
    p.add_argument("path", metavar="PATH", help="file or directory to log")
    p.add_argument("--name", help="artifact name (default: PATH's base name)")
    p.add_argument("--type", required=True, help="artifact type: dataset, model, ...")
    p.add_argument("--alias", action="append", default=[], help="alias to set (repeatable)")
    p.add_argument("--description", help="free text shown by `show`")
    p.add_argument("--metadata", metavar="JSON", help="a JSON object stored with the version")

    p = command(
        "ls",
        cmd_ls,
        "list artifacts of the entity/project",
        "artifacts ls\nartifacts ls --project vision --json",
        json=True,
    )
    p.add_argument("--all", action="store_true", help="every entity/project in the store")

    p = command(
        "versions",
        cmd_versions,
        "list the versions of an artifact, newest first",
        "artifacts versions dataset\nartifacts versions team/vision/dataset --json",
        json=True,
    )
    p.add_argument("name", metavar="NAME[:VER]", help="artifact (history from VER back)")

    p = command(
        "show",
        cmd_show,
        "show a version: metadata, lineage and files",
        "artifacts show dataset:v3\nartifacts show dataset:best --json",
        json=True,
    )
    p.add_argument("spec", metavar="NAME:VER")

    p = command(
        "diff",
        cmd_diff,
        "files added (A), removed (D) and modified (M) between two versions",
        "artifacts diff dataset:v1 dataset:v2",
        json=True,
    )
    p.add_argument("a", metavar="NAME:A")
    p.add_argument("b", metavar="NAME:B")

    p = command(
        "download",
        cmd_download,
        "write a version's files into a directory",
        "artifacts download dataset:v2 ./data\n"
        "artifacts download dataset:latest ./data --path-prefix images/",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("dir", metavar="DIR", nargs="?", help="default: ./artifacts/NAME:VER")
    p.add_argument("--path-prefix", metavar="P", help="only files whose path starts with P")

    p = command(
        "checkout",
        cmd_checkout,
        "make a directory hold exactly a version (deletes other files in it)",
        "artifacts checkout model:best ./model",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("dir", metavar="DIR")

    p = command(
        "verify",
        cmd_verify,
        "check that a directory holds exactly a version's files",
        "artifacts verify dataset:v2 ./data",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("dir", metavar="DIR")

    p = command(
        "alias", cmd_alias, "add or remove an alias", "artifacts alias add model:v3 production"
    )
    alias_sub = p.add_subparsers(dest="alias_cmd", metavar="add|rm", required=True)
    for action, summary, example in (
        ("add", "point ALIAS at a version", "artifacts alias add model:v3 production"),
        ("rm", "remove ALIAS from a version", "artifacts alias rm model:v3 production"),
    ):
        a = command(action, cmd_alias, summary, example, group=alias_sub)
        a.add_argument("spec", metavar="NAME:VER")
        a.add_argument("alias", metavar="ALIAS")

    p = command(
        "cat-object",
        cmd_cat_object,
        "print an object: a blob's raw bytes, a tree's entries, a commit's fields",
        "artifacts cat-object 3f2a9c...   # full id or a unique prefix\n"
        "artifacts cat-object -t 3f2a9c",
        json=True,
    )
    p.add_argument("id", metavar="ID", help="object id in hex (64 digits, or a unique prefix)")
    p.add_argument("-t", "--type", action="store_true", help="print only the object's kind")

    p = command(
        "fsck",
        cmd_fsck,
        "verify every object reachable from every ref; exit 1 if any is missing or corrupt",
        "artifacts fsck\nartifacts fsck --repair origin   # good copies from a remote",
        json=True,
    )
    p.add_argument(
        "--repair",
        metavar="REMOTE",
        help="replace missing or corrupt objects with verified copies from REMOTE",
    )

    p = command(
        "remote",
        cmd_remote,
        "manage named remotes",
        "artifacts remote add origin s3://team-bucket/artifacts",
    )
    remote_sub = p.add_subparsers(dest="remote_cmd", metavar="add|ls|rm", required=True)
    a = command(
        "add",
        cmd_remote,
        "name a remote store",
        "artifacts remote add origin s3://team-bucket/artifacts",
        group=remote_sub,
    )
    a.add_argument("name", metavar="NAME")
    a.add_argument("url", metavar="URL")
    command("ls", cmd_remote, "list remotes", "artifacts remote ls", group=remote_sub, json=True)
    a = command("rm", cmd_remote, "forget a remote", "artifacts remote rm origin", group=remote_sub)
    a.add_argument("name", metavar="NAME")

    p = command(
        "push",
        cmd_push,
        "send versions to a remote (refused if it has versions you lack)",
        "artifacts push\nartifacts push origin dataset model --force",
        json=True,
    )
    p.add_argument("remote", metavar="REMOTE", nargs="?", default="origin")
    p.add_argument("names", metavar="NAME", nargs="*", help="only these artifacts")
    p.add_argument("--force", action="store_true", help="overwrite the remote's versions")

    for name, func, summary, example in (
        ("fetch", cmd_fetch, "download a remote's objects and refs", "artifacts fetch origin"),
        ("pull", cmd_pull, "fetch, then fast-forward local versions", "artifacts pull"),
    ):
        p = command(name, func, summary, example, json=True)
        p.add_argument("remote", metavar="REMOTE", nargs="?", default="origin")

    p = command(
        "rebase",
        cmd_rebase,
        "put local-only versions after a remote's (after a pull reported divergence)",
        "artifacts pull && artifacts rebase origin dataset && artifacts push",
        json=True,
    )
    p.add_argument("remote", metavar="REMOTE", nargs="?", default="origin")
    p.add_argument("names", metavar="NAME", nargs="*", help="only these artifacts")

    p = command(
        "clone",
        cmd_clone,
        "make DIR/.artifacts a copy of a store, with it as remote `origin`",
        "artifacts clone s3://team-bucket/artifacts ./work",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("dir", metavar="DIR")

    p = command(
        "gc",
        cmd_gc,
        "delete objects no ref reaches (older than the grace period)",
        "artifacts gc --grace 3600",
        json=True,
    )
    p.add_argument(
        "--grace",
        metavar="SECONDS",
        type=float,
        default=86400.0,
        help="keep unreachable objects younger than this (default: 86400)",
    )
    return parser


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _ShowRetries(logging.Handler):
    """Prints the storage's "retrying … (attempt n)" records, one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{PROG}: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _retries_shown() -> Iterator[None]:
    """On a terminal, say so while a remote is being retried (the wait can be long)."""
    if not _progress():
        yield
        return
    from cas.storage.network import logger

    handler = _ShowRetries(logging.INFO)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``artifacts`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        with warnings.catch_warnings(), _retries_shown():
            warnings.showwarning = _show_warning  # catch_warnings restores Python's own
            return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`artifacts ls | head`): not an error worth a line.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CasError, OSError) as exc:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_printable(_message(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)"
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {_printable(_message(exc))}{hint}",
            file=sys.stderr,
        )
        return 1
