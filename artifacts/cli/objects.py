"""The object store underneath: ``cat-object``, ``fsck``."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from cas import Commit, Repository, Tree
from cas.errors import InvalidObjectError, RefConflictError, UsageError
from cas.fsck import fsck
from cas.ids import resolve_id
from cas.repair import set_damaged_refs_aside
from cas.walk import obj_kind

from ..deletion import released
from ..ref_recovery import how_to_restore
from . import context
from .commands import Commands
from .output import PROG, Failed, bar, count, human, print_json, printable, progress_shown

_SPOOLED_IN_MEMORY = 64 << 20  # a larger blob waits in $TMPDIR to be verified


@contextlib.contextmanager
def _spool_full_named() -> Iterator[None]:
    """A full disk met spooling a large blob is said of $TMPDIR: the OS names no place,
    and the user never asked for a file there."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        full = "no space left on" if exc.errno == errno.ENOSPC else "disk quota exceeded on"
        raise UsageError(
            f"{full} the device holding {tempfile.gettempdir()}, where cat-object "
            "keeps a blob over 64 MiB until it is verified: free some space there, or set "
            "TMPDIR to a directory with room"
        ) from None


def cmd_cat_object(args: argparse.Namespace) -> int:
    store = context.open_repo(args).objects
    object_id = resolve_id(store, args.id)
    # Try it as a blob first: streamed and verified, and printed only once verified.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOLED_IN_MEMORY) as spool:
        try:
            with _spool_full_named():
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
            print_json({"kind": kind, "entries": entries})
        else:
            print(f"kind: {kind}")
            for e in entries:
                mode = "x" if e["exec"] else "-"
                print(f"{e['kind']:4} {mode} {e['id']} {e['size']:>12}  {printable(e['name'])}")
        return 0
    assert isinstance(obj, Commit)
    body = {
        "kind": kind,
        "tree": obj.tree.hex(),
        "parents": [p.hex() for p in obj.parents],
        "meta": obj.meta,
    }
    if args.json:
        print_json(body)
    else:
        print(f"kind: {kind}")
        print(f"tree: {body['tree']}")
        for parent in body["parents"]:
            print(f"parent: {parent}")
        print("meta: " + json.dumps(obj.meta, indent=2, sort_keys=True, default=str))
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    repo = context.open_repo(args)
    for given in args.restore:
        _restore(repo, given)
    repaired: dict[str, Any] = {}
    aside = set_damaged_refs_aside(repo) if args.repair is not None else []
    for ref, where in aside:
        if not args.json:
            print(printable(f"set aside damaged ref {ref}: its bytes are in {where}"))
            print(printable(f"  {how_to_restore(repo, ref)}"))
    if args.repair is not None:
        repaired["refs_set_aside"] = [{"ref": ref, "kept": where} for ref, where in aside]
    if args.repair:
        from remotes import repair

        result = repair(repo, args.repair, released=released(repo))
        report = result.report
        repaired = {
            **repaired,
            "repaired": result.repaired,
            "packs_rewritten": result.packs_rewritten,
            "indexes_mended": result.indexes_mended,
            "unrepaired": result.unrepaired,
        }
    elif progress_shown():
        with bar(None, "checking", unit="obj") as checking:
            report = fsck(repo, lambda: checking.update(1), released(repo))
    else:
        report = fsck(repo, released=released(repo))
    if args.json:
        print_json({**asdict(report), **repaired, "ok": report.ok})
    else:
        if args.repair:
            mended = len(repaired["indexes_mended"])
            print(
                f"repaired {count(len(repaired['repaired']), 'object')} from {args.repair} "
                f"({count(len(repaired['packs_rewritten']), 'pack')} rebuilt, "
                f"{mended} pack {'index' if mended == 1 else 'indexes'} mended); "
                f"{len(repaired['unrepaired'])} left unrepaired"
            )
        print(
            f"checked {count(report.refs, 'ref')}, {count(report.objects, 'object')} "
            f"({count(report.blobs, 'blob')}, {human(report.blob_bytes)})"
        )
        for p in report.problems:
            what = f"{p.kind} " if p.kind else ""
            used = f", a chunk of {', '.join(p.used_by)}" if p.used_by else ""
            reached = f" (reached from {p.ref}{used})" if p.ref else ""  # not a pack index
            print(printable(f"{p.problem} {what}{p.object_id}{reached}: {p.message}"))
    if report.ok:
        return 0
    damaged_refs = any(p.kind == "ref" for p in report.problems)
    hint = f"; `{PROG} fsck --repair` sets damaged refs aside" if damaged_refs else ""
    raise Failed(f"fsck found {count(len(report.problems), 'missing or damaged object')}{hint}")


def _restore(repo: Repository, given: str) -> None:
    """``REF=ID``: set a ref that is unset (one fsck --repair set aside) to an object."""
    ref, equals, text = given.partition("=")
    if not equals:
        raise UsageError(f"--restore takes REF=ID, not {given!r}")
    object_id = resolve_id(repo.objects, text)
    repo.objects.get_raw(object_id)  # it must be there, and sound
    try:
        repo.refs.set_if_equals(ref, None, object_id)
    except RefConflictError:
        raise UsageError(f"ref {ref} is set: --restore only sets a ref that is not") from None
    print(printable(f"restored ref {ref} to {object_id.hex()}"))


def register(commands: Commands) -> None:
    p = commands.add(
        "cat-object",
        cmd_cat_object,
        "print an object: a blob's raw bytes, a tree's entries, a commit's fields",
        "artifacts cat-object 3f2a9c...   # full id or a unique prefix\n"
        "artifacts cat-object -t 3f2a9c",
        json=True,
    )
    p.add_argument("id", metavar="ID", help="object id in hex (64 digits, or a unique prefix)")
    p.add_argument("-t", "--type", action="store_true", help="print only the object's kind")

    p = commands.add(
        "fsck",
        cmd_fsck,
        "verify every object reachable from every ref; exit 1 if any is missing or corrupt",
        "artifacts fsck\nartifacts fsck --repair          # set aside refs that cannot be read\n"
        "artifacts fsck --repair origin   # and good copies of objects from a remote",
        json=True,
    )
    p.add_argument(
        "--repair",
        metavar="REMOTE",
        nargs="?",
        const="",
        help="set aside refs that cannot be read, keeping their bytes, and say how to "
        "restore each; with REMOTE, also replace missing or corrupt objects with verified "
        "copies from it",
    )
    p.add_argument(
        "--restore",
        metavar="REF=ID",
        action="append",
        default=[],
        help="set REF, unset (a damaged ref set aside), to the object ID, before checking",
    )
