"""Logging and reading versions: ``log``, ``ls``, ``versions``, ``show``, ``diff``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from cas import ObjectId
from cas.errors import CasError, InvalidNameError, UsageError

from .. import trees, ttl
from ..artifact import Artifact
from ..files import read_descriptor
from ..ref_names import alias_ref
from ..registry import Registry, RunRecord
from ..runs import init
from . import context
from .commands import Commands
from .output import (
    PROG,
    Failed,
    bar,
    count,
    human,
    one_line,
    print_json,
    printable,
    progress_shown,
    table,
    warn,
    when,
)


def cmd_log(args: argparse.Namespace) -> int:
    path = args.path
    if not path:
        raise UsageError("an empty PATH (an unset variable?): give a file or a directory")
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file or directory", path)
    metadata = context.json_object(args.metadata, "--metadata")
    if args.name is not None:
        if not args.name:
            raise UsageError("--name is empty (an unset variable?): give the artifact's name")
        where = context.new_artifact(args, args.name)
    else:
        try:
            where = context.new_artifact(args, os.path.basename(os.path.abspath(path)))
        except InvalidNameError as exc:
            raise UsageError(f"{exc}; name the artifact with --name NAME") from None
    artifact = Artifact(where.name, args.type, description=args.description, metadata=metadata)
    with reading(path):
        # Logged right after it is staged: "immutable" spares the log a second stat of
        # each file it reads (artifacts.staleness), which would find nothing to say.
        if os.path.isdir(path):
            artifact.add_dir(path, policy="immutable")
        else:
            artifact.add_file(path, policy="immutable")
    entity, project = where.entity, where.project
    # Like artifacts.init() in a script: the store is created if there is none.
    store = context.writable_store_url(args)
    with reading(path), init(project, entity, store=store, job_type="cli-log") as run:
        if progress_shown():
            with bar(artifact.staged_bytes(), "hashing") as hashing:
                run.log_artifact(artifact, aliases=args.alias, on_stored=hashing.update)
                hashing.update(hashing.total - hashing.n)  # files the stat cache vouched for
        else:  # no bar: tqdm is not even imported
            run.log_artifact(artifact, aliases=args.alias)
    # Identical files reuse the latest version, which names the run that made it: not
    # this one, even when another terminal made it while this one was hashing.
    logged_by = artifact.logged_by()
    created = logged_by is not None and logged_by.id == run.id
    label = artifact.qualified_name
    if args.json:
        print_json({"version": label, "created": created, "id": artifact.id})
    else:
        print(label if created else f"unchanged: {label}")
    return 0


@contextlib.contextmanager
def reading(path: str) -> Iterator[None]:
    """Say what to do about a file or directory of ``path`` the log may not read: the
    OS says only "Permission denied". (A store below ``path`` is not read: not one.)"""
    try:
        yield
    except PermissionError as exc:
        from cas.storage.store_dirs import store_holding  # here: it imports hashlib

        name, top = exc.filename, os.path.abspath(path)
        if not isinstance(name, str) or store_holding(name) is not None:
            raise
        if os.path.commonpath([top, os.path.abspath(name)]) != top:
            raise
        fix = "make it readable" + (f", or move it out of {path}" if os.path.isdir(top) else "")
        raise UsageError(f"cannot read {name}: {exc.strerror}; {fix}") from None


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


def cmd_ls(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    if args.all and args.namespace:
        raise UsageError("give [ENTITY/]PROJECT or --all, not both")
    if args.all:
        spaces = registry.namespaces()
    else:
        spaces = [context.namespace(args, args.namespace)]
    rows = []
    types: set[str] = set()  # of every artifact listed, whatever --type keeps
    damaged = 0
    for entity, project in spaces:
        for name in registry.artifact_names(entity, project):
            label = name if not args.all else f"{entity}/{project}/{name}"
            try:
                row = _ls_row(registry, entity, project, name)
            except CasError as exc:  # one damaged artifact must not hide the others
                damaged += 1
                warn(f"{label}: damaged: {one_line(exc)} (run `{PROG} fsck`)")
                row = {"type": "?", "latest": "?", "size": 0, "aliases": {}, "damaged": True}
            if row is not None and not row.get("damaged"):
                types.add(row["type"])
            if row is not None and args.type in (None, row["type"]):
                rows.append({"name": label, **row})
    if args.json:
        print_json(rows)
    elif not rows:
        where = "this store" if args.all else f"{spaces[0][0]}/{spaces[0][1]}"
        if args.type is not None and types:
            there = ", ".join(sorted(types))
            line = f"no artifacts of type {args.type!r} in {where} (types there: {there})"
            print(printable(line), file=sys.stderr)  # a type is any string a store holds
        else:
            print(f"no artifacts in {where}", file=sys.stderr)
    else:
        table(
            ["NAME", "TYPE", "LATEST", "SIZE", "ALIASES"],
            [
                [
                    r["name"],
                    r["type"],
                    r["latest"],
                    "damaged" if r.get("damaged") else human(r["size"]),
                    ", ".join(f"{a}:{v}" for a, v in r["aliases"].items() if a != "latest"),
                ]
                for r in rows
            ],
        )
    if damaged:
        raise Failed(f"{count(damaged, 'artifact')} could not be read")
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
    registry = context.open_registry(args)
    spec = context.spec(args, args.name)
    start = registry.resolve(spec)
    aliases = _alias_map(registry, spec.entity, spec.project, spec.name)
    rows = [
        {
            "version": f"v{v.number}",
            "aliases": aliases.get(v.commit_id, []),
            "time": when(v.commit.meta.get("time")),
            "time_ns": v.commit.meta.get("time"),
            "size": v.commit.meta.get("size", 0),
            "run": v.commit.meta.get("run"),
            "id": v.commit_id.hex(),
        }
        for v in registry.history(start)
    ]
    if args.json:
        print_json(rows)
    else:
        table(
            ["VERSION", "ALIASES", "CREATED", "SIZE", "RUN"],
            [
                [r["version"], ", ".join(r["aliases"]), r["time"], human(r["size"]), r["run"]]
                for r in rows
            ],
        )
    return 0


def _run_info(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "job_type": record.job_type,
        "started": when(record.started),
    }


def cmd_show(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    version = registry.resolve(context.spec(args, args.spec))
    artifact = Artifact.from_version(registry, version)
    meta = version.commit.meta
    logged_by = artifact.logged_by()
    registry.not_deleted(version)  # its files may be gone: say who deleted it

    def files() -> Iterator[dict[str, Any]]:
        # Walked as printed, and walked again rather than kept: a version may hold
        # millions of files, and show's memory must not grow with them.
        for path, entry in trees.walk(registry.objects, version.tree):
            yield {
                "path": path,
                "size": entry.size,
                "digest": entry.id.hex(),
                **(
                    {"ref": read_descriptor(registry.objects, entry)["uri"]}
                    if entry.kind == "ref"
                    else {}
                ),
            }

    info = {
        "name": version.label,
        "type": version.type,
        "id": version.commit_id.hex(),
        "digest": version.tree.hex(),
        "created": when(meta.get("time")),
        "size": meta.get("size", 0),
        "aliases": artifact.aliases,
        "tags": artifact.tags,
        "description": artifact.description,
        "metadata": artifact.metadata,
        "ttl": _ttl_info(registry, version, artifact.ttl_policy()),
        "logged_by": _run_info(logged_by) if logged_by else None,
        "used_by": [_run_info(r) for r in artifact.used_by()],
    }
    if args.json:
        _print_json_streaming(info, "files", files())
        return 0
    _print_show(info, files)
    return 0


def _print_json_streaming(info: dict[str, Any], key: str, items: Iterator[Any]) -> None:
    """``print_json({**info, key: list(items)})``, byte for byte, holding one item."""
    head = json.dumps({**info, key: []}, indent=2, default=str)
    assert head.endswith(f'"{key}": []\n}}')
    sys.stdout.write(head[: -len("[]\n}")] + "[")
    first = True
    for item in items:
        text = json.dumps(item, indent=2, default=str).replace("\n", "\n    ")
        sys.stdout.write(("\n    " if first else ",\n    ") + text)
        first = False
    sys.stdout.write("]\n}\n" if first else "\n  ]\n}\n")


def _ttl_info(registry: Registry, version: Any, policy: ttl.Policy) -> dict[str, Any]:
    """The TTL as set (``30d``, ``none``, ``inherit``), what it comes to, and when."""
    default = ttl.default(registry.repo, version.entity, version.project)
    seconds = ttl.effective(policy, default)
    expires = ttl.expires_at(version.commit.meta["time"], seconds)
    return {"policy": ttl.describe(policy), "seconds": seconds, "expires": when(expires)}


def _print_show(info: dict[str, Any], files: Callable[[], Iterator[dict[str, Any]]]) -> None:
    print(printable(f"{info['name']} ({info['type']})"))
    for key in ("id", "digest", "created"):
        print(f"  {key + ':':13}{info[key]}")
    print(f"  {'size:':13}{human(info['size'])}")
    print(f"  {'aliases:':13}{printable(', '.join(info['aliases'])) or '-'}")
    if info["tags"]:
        print(f"  {'tags:':13}{printable(', '.join(info['tags']))}")
    if info["description"]:
        print(f"  {'description:':13}{printable(info['description'])}")
    if info["metadata"]:
        print(f"  {'metadata:':13}{json.dumps(info['metadata'], sort_keys=True)}")
    lives = info["ttl"]
    if lives["seconds"] is not None:
        inherited = f" {ttl.describe(lives['seconds'])}" if lives["policy"] == "inherit" else ""
        print(f"  {'ttl:':13}{lives['policy']}{inherited} (expires {lives['expires']})")
    print("lineage:")
    run = info["logged_by"]
    print(f"  {'logged by:':13}{printable(_describe_run(run)) if run else '-'}")
    used = info["used_by"]
    print(f"  {'used by:':13}{printable(', '.join(_describe_run(r) for r in used)) or '-'}")
    count = width = 0
    for f in files():  # a first walk for the count and the size column's width
        count, width = count + 1, max(width, len(human(f["size"])))
    print(f"files ({count}):")
    for f in files():
        ref = f"  -> {f['ref']}" if "ref" in f else ""
        print(f"  {human(f['size']).rjust(width)}  {printable(f['path'] + ref)}")


def _describe_run(run: dict[str, Any]) -> str:
    extra = ", ".join(x for x in (run["job_type"], run["started"]) if x)
    label = run["id"] if run["name"] == run["id"] else f"{run['name']} ({run['id']})"
    return f"run {label}" + (f" [{extra}]" if extra else "")


def cmd_diff(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    a = registry.resolve(context.spec(args, args.a))
    b = registry.resolve(context.spec(args, args.b))
    result = trees.diff(registry.objects, a.tree, b.tree)
    if args.json:
        print_json({"from": a.label, "to": b.label, **asdict(result)})
        return 0
    changes = [(p, "A") for p in result.added] + [(p, "D") for p in result.removed]
    changes += [(p, "M") for p in result.modified]
    for path, letter in sorted(changes):
        print(f"{letter} {printable(path)}")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "log",
        cmd_log,
        "log a file or directory as the next version of an artifact",
        "artifacts log data/ --name dataset --type dataset --alias best \\\n"
        "    --metadata '{\"rows\": 1000}'",
        json=True,
    )
    p.add_argument("path", metavar="PATH", help="file or directory to log")
    p.add_argument(
        "-n",
        "--name",
        metavar="[[ENTITY/]PROJECT/]NAME",
        help="artifact name, in the given project (default: PATH's base name)",
    )
    p.add_argument("-t", "--type", default="dataset", help="artifact type (default: dataset)")
    p.add_argument("-a", "--alias", action="append", default=[], help="alias to set (repeatable)")
    p.add_argument("-d", "--description", help="free text shown by `show`")
    p.add_argument("--metadata", metavar="JSON", help="a JSON object stored with the version")

    p = commands.add(
        "ls",
        cmd_ls,
        "list artifacts of the entity/project",
        "artifacts ls\nartifacts ls team/vision --type model --json",
        json=True,
    )
    p.add_argument(
        "namespace",
        metavar="[ENTITY/]PROJECT",
        nargs="?",
        help="where to list (default: --entity and --project)",
    )
    p.add_argument("-t", "--type", help="only artifacts of this type")
    p.add_argument("--all", action="store_true", help="every entity/project in the store")

    p = commands.add(
        "versions",
        cmd_versions,
        "list the versions of an artifact, newest first",
        "artifacts versions dataset\nartifacts versions team/vision/dataset --json",
        json=True,
    )
    p.add_argument("name", metavar="NAME[:VER]", help="artifact (history from VER back)")

    p = commands.add(
        "show",
        cmd_show,
        "show a version: metadata, lineage and files",
        "artifacts show dataset:v3\nartifacts show dataset:best --json",
        json=True,
    )
    p.add_argument("spec", metavar="NAME:VER")

    p = commands.add(
        "diff",
        cmd_diff,
        "files added (A), removed (D) and modified (M) between two versions",
        "artifacts diff dataset:v1 dataset:v2",
        json=True,
    )
    p.add_argument("a", metavar="NAME:A")
    p.add_argument("b", metavar="NAME:B")
