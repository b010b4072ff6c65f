"""``artifacts init``: create a store."""

from __future__ import annotations

import argparse
import os

from cas import Repository

from ..cache import parse_size
from ..run import STORE_DIR
from .commands import Commands
from .context import local_dir
from .output import human


def cmd_init(args: argparse.Namespace) -> int:
    # Like `git init`: here, unless a store is named; never a parent's .artifacts.
    url = getattr(args, "store", None) or os.environ.get("ARTIFACTS_STORE")
    url = url or os.path.join(os.getcwd(), STORE_DIR)
    local = local_dir(url)
    repo = Repository.open(os.path.abspath(local) if local is not None else url)
    existed = repo.storage.exists("config.json") or any(repo.refs.names(""))
    repo.update_config(lambda config: None)  # writes config.json: marks the store as made
    if args.chunks is not None:
        threshold = None if args.chunks == "off" else parse_size(args.chunks)
        repo.set_chunk_threshold(threshold)
    print(f"{'store already exists' if existed else 'initialised empty store'} at {repo.url}")
    if args.chunks is not None:
        print(
            "files are stored whole"
            if threshold is None
            else f"files of {human(threshold)} and more are stored as chunks"
        )
    return 0


def register(commands: Commands) -> None:
    parser = commands.add(
        "init",
        cmd_init,
        "create a store (.artifacts/ here, or --store URL)",
        "artifacts init\nartifacts init --store s3://team-bucket/artifacts\n"
        "artifacts init --chunks 16MiB",
    )
    parser.add_argument(
        "--chunks",
        metavar="SIZE",
        help="store files of SIZE and more as content-defined chunks, so that a changed "
        "file costs only its changed chunks (slower to log: docs/performance.md); 'off' "
        "stores them whole again. Readers older than layout version 3 cannot read chunks",
    )
