"""``artifacts gc``: delete expired versions, move what no ref reaches to fossils, and
delete old fossils (artifacts.collect)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..collect import collect_garbage
from . import context
from .commands import Commands
from .output import count, human, print_json, printable


def cmd_gc(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    collected = collect_garbage(
        registry, grace_seconds=args.grace, dry_run=args.dry_run, cpu_share=args.max_cpu
    )
    report, expired = collected.gc, [v.label for v in collected.expired]
    if args.json:
        print_json({"expired": expired, **asdict(report)})
        return 0
    would = "would " if report.dry_run else ""
    if expired:
        deleted = "would delete" if report.dry_run else "deleted"
        print(
            printable(f"{deleted} {count(len(expired), 'expired version')}: {', '.join(expired)}")
        )
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


def cpu_share(text: str) -> float:
    share = float(text)
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"a share of the time is in (0, 1], not {text}")
    return share


def grace_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # nan too
        raise argparse.ArgumentTypeError(f"a grace period is seconds >= 0, not {text!r}")
    return seconds


def register(commands: Commands) -> None:
    p = commands.add(
        "gc",
        cmd_gc,
        "delete the versions whose TTL ran out, move objects no ref reaches (older than the "
        "grace period) to fossils, and delete old fossils",
        "artifacts gc --grace 3600",
        json=True,
    )
    p.add_argument(
        "--grace",
        metavar="SECONDS",
        type=grace_seconds,
        default=86400.0,
        help="keep unreachable objects younger than this (default: 86400)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="say what gc would do (the expired versions it would delete too), and change nothing",
    )
    p.add_argument(
        "--max-cpu",
        metavar="SHARE",
        type=cpu_share,
        help="be busy at most this share of the time (0.1: a tenth of one CPU), sleeping "
        "between objects, to leave writers beside it their speed",
    )
