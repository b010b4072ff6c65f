"""Other stores: ``remote``, ``push``, ``fetch``, ``pull``, ``rebase``, ``clone``.

``remotes`` is imported by each command, not here: the other commands need not pay for it.
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import asdict

from cas.errors import UsageError

from ..ref_names import ref_label
from ..refpolicy import ARTIFACT_REFS
from . import context
from .commands import Commands
from .output import PROG, count, human, print_json, progress_shown, warn


def cmd_remote(args: argparse.Namespace) -> int:
    from remotes import add_remote, list_remotes, remove_remote, set_remote_url

    repo = context.open_repo(args)
    if args.remote_cmd == "add":
        add_remote(repo, args.name, context.lasting(args.url))
        print(f"added remote {args.name} -> {list_remotes(repo)[args.name]}")
    elif args.remote_cmd == "set-url":
        set_remote_url(repo, args.name, context.lasting(args.url))
        print(f"remote {args.name} -> {list_remotes(repo)[args.name]}")
    elif args.remote_cmd == "rm":
        remove_remote(repo, args.name)
        print(f"removed remote {args.name}")
    else:
        found = list_remotes(repo)
        if args.json:
            print_json(found)
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
        print(f"  {label} {ref_label(ref)}")


def cmd_push(args: argparse.Namespace) -> int:
    from remotes import push

    with _collect_warnings() as caught:
        repo = context.open_repo(args)
        result = push(
            repo,
            context.remote(args),
            args.names or None,
            args.force,
            progress_shown(),
            policy=ARTIFACT_REFS,
        )
    for message in dict.fromkeys(result.warnings + caught):  # each once, in order
        warn(message)
    if args.json:
        print_json(asdict(result))
        return 0
    size = human(result.bytes_uploaded)
    print(f"pushed {count(result.objects_uploaded, 'object')} ({size}) to {args.remote}")
    _refs_lines("updated", result.refs_updated)
    # Ours unchanged since we fetched them, changed on the remote since: not sent.
    _refs_lines("not sent (changed on the remote; `artifacts pull` brings it)", result.behind)
    if not result.refs_updated and not result.behind:
        print("  everything up to date")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from remotes import fetch

    remote = context.remote(args)
    result = fetch(context.open_repo(args), remote, progress_shown(), policy=ARTIFACT_REFS)
    if args.json:
        print_json(asdict(result))
        return 0
    print(f"fetched {count(result.objects_downloaded, 'object')} from {args.remote}")
    _refs_lines("new", result.refs_updated)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from remotes import pull

    remote = context.remote(args)
    result = pull(context.open_repo(args), remote, progress_shown(), policy=ARTIFACT_REFS)
    if args.json:
        print_json(asdict(result))
        return 0
    print(f"pulled {count(result.objects_downloaded, 'object')} from {args.remote}")
    _refs_lines("fast-forwarded", result.fast_forwarded)
    _refs_lines("diverged", result.diverged)
    if result.diverged:
        print(f"  run `{PROG} rebase {args.remote}` to put local versions after the remote's")
    return 0


def cmd_rebase(args: argparse.Namespace) -> int:
    from remotes import rebase

    remote = context.remote(args)
    moved = rebase(context.open_repo(args), remote, args.names or None, policy=ARTIFACT_REFS)
    if args.json:
        print_json(moved)
        return 0
    if not moved:
        print("nothing to rebase")
    _refs_lines("rebased", moved)
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    from remotes import clone

    if not args.dir:  # an unset variable: the working directory it would clone into
        raise UsageError("an empty DIR (an unset variable?): give a directory, such as ./work")
    repo = clone(context.lasting(args.url), args.dir, progress_shown(), policy=ARTIFACT_REFS)
    print(f"cloned {args.url} into {repo.url}")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "remote",
        cmd_remote,
        "manage named remotes",
        "artifacts remote add origin s3://team-bucket/artifacts",
    )
    below = commands.below(p, dest="remote_cmd", metavar="add|set-url|ls|rm")
    a = below.add(
        "add",
        cmd_remote,
        "name a remote store",
        "artifacts remote add origin s3://team-bucket/artifacts",
    )
    a.add_argument("name", metavar="NAME")
    a.add_argument("url", metavar="URL")
    a = below.add(
        "set-url",
        cmd_remote,
        "point a remote at another store",
        "artifacts remote set-url origin s3://new-bucket/artifacts",
    )
    a.add_argument("name", metavar="NAME")
    a.add_argument("url", metavar="URL")
    below.add("ls", cmd_remote, "list remotes", "artifacts remote ls", json=True)
    a = below.add("rm", cmd_remote, "forget a remote", "artifacts remote rm origin")
    a.add_argument("name", metavar="NAME")

    p = commands.add(
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
        p = commands.add(name, func, summary, example, json=True)
        p.add_argument("remote", metavar="REMOTE", nargs="?", default="origin")

    p = commands.add(
        "rebase",
        cmd_rebase,
        "put local-only versions after a remote's (after a pull reported divergence)",
        "artifacts pull && artifacts rebase origin dataset && artifacts push",
        json=True,
    )
    p.add_argument("remote", metavar="REMOTE", nargs="?", default="origin")
    p.add_argument("names", metavar="NAME", nargs="*", help="only these artifacts")

    p = commands.add(
        "clone",
        cmd_clone,
        "make DIR/.artifacts a copy of a store, with it as remote `origin`",
        "artifacts clone s3://team-bucket/artifacts ./work",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("dir", metavar="DIR")
