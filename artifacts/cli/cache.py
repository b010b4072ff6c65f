"""``artifacts cache cleanup SIZE``: trim the download cache (W&B's ``wandb artifact
cache cleanup``)."""

from __future__ import annotations

import argparse

from ..cache import DownloadCache, cache_dir, parse_size
from .commands import Commands
from .output import human


def cmd_cleanup(args: argparse.Namespace) -> int:
    cache = DownloadCache(cache_dir())
    reclaimed = cache.remove_temp() if args.remove_temp else 0
    reclaimed += cache.trim(parse_size(args.size))
    print(f"reclaimed {human(reclaimed)} from {cache.root}")
    return 0


def register(commands: Commands) -> None:
    group = commands.add(
        "cache",
        cmd_cleanup,  # what its one subcommand does: argparse requires the subcommand
        "manage the download cache of bucket stores",
        "artifacts cache cleanup 10GB",
    )
    below = commands.below(group, "cache_command", "cleanup")
    p = below.add(
        "cleanup",
        cmd_cleanup,
        "delete cached files, oldest first, until the cache holds at most SIZE",
        "artifacts cache cleanup 10GB\nartifacts cache cleanup --remove-temp 5GB",
    )
    p.add_argument("size", metavar="SIZE", help="10GB, 500MB, 1.5GiB or a number of bytes")
    p.add_argument(
        "--remove-temp",
        action="store_true",
        help="also delete partial files left by killed downloads (a running one's are kept)",
    )
