"""``artifacts gc``: delete what no ref reaches."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from . import context
from .commands import Commands
from .output import count, human, print_json


def cmd_gc(args: argparse.Namespace) -> int:
    from cas.gc import gc

    report = gc(context.open_repo(args), grace_seconds=args.grace)
    if args.json:
        print_json(asdict(report))
    else:
        freed = human(report.bytes_freed)
        print(f"deleted {count(report.objects_deleted, 'object')}, freed {freed}")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
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
