"""``artifacts gc``: move what no ref reaches to fossils, and delete old fossils."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..deletion import released
from . import context
from .commands import Commands
from .output import count, human, print_json, printable


def cmd_gc(args: argparse.Namespace) -> int:
    from cas.gc import gc

    repo = context.open_repo(args)
    # A deleted version's commit stays, its data goes: gc must not follow its tree.
    report = gc(repo, grace_seconds=args.grace, dry_run=args.dry_run, released=released(repo))
    if args.json:
        print_json(asdict(report))
        return 0
    would = "would " if report.dry_run else ""
    print(
        f"{would}delete {count(report.objects_deleted, 'fossil')} "
        f"({human(report.bytes_freed)}), {would}move "
        f"{count(report.objects_fossilized, 'object')} to fossils, {would}restore "
        f"{count(report.objects_restored, 'fossil')}"
    )
    print(
        f"kept for a later pass: {count(report.fossils_waiting, 'fossil')} not yet old "
        f"enough to delete, {count(report.kept_for_grace, 'object')} inside the grace period"
    )
    for name in report.unreadable_refs:
        print(printable(f"unreadable ref not followed: {name}"))
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "gc",
        cmd_gc,
        "move objects no ref reaches (older than the grace period) to fossils, and delete "
        "old fossils",
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
    p.add_argument(
        "--dry-run", action="store_true", help="say what gc would do, and change nothing"
    )
