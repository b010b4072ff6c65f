"""``artifacts init``: create a store."""

from __future__ import annotations

import argparse
import os

from cas import Repository
from cas.storage import check_url
from cas.storage.store_dirs import check_not_in_store

from ..cache import parse_size
from ..runs import STORE_DIR
from .commands import Commands
from .context import given_store, lasting, local_dir
from .output import human


def cmd_init(args: argparse.Namespace) -> int:
    # Like `git init`: here, unless a store is named; never a parent's .artifacts.
    url = given_store(args) or os.environ.get("ARTIFACTS_STORE")
    url = lasting(url or os.path.join(os.getcwd(), STORE_DIR))
    check_url(url)  # `s3:/bucket` would be a directory named s3:, `file://` this one
    local = local_dir(url)
    if local is not None:
        check_not_in_store(local)
    repo = Repository.open(os.path.abspath(local) if local is not None else url)
    existed = repo.made()
    repo.update_config(lambda config: None)  # writes config.json: marks the store as made
    if args.chunks is not None:
        if args.chunks in ("off", "changed"):
            repo.set_chunking("never" if args.chunks == "off" else "changed")
        else:
            repo.set_chunking("always", parse_size(args.chunks))
    print(f"{'store already exists' if existed else 'initialised empty store'} at {repo.url}")
    if args.chunks is not None:
        when, threshold = repo.chunking()
        if when == "never":
            print("files are stored whole")
        elif when == "always":
            print(f"files of {human(threshold or 0)} and more are stored as chunks")
        else:
            print(
                f"files of {human(threshold or 0)} and more are stored as chunks where that "
                "saves: when they replace one as large, and in a bucket"
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
        help="store every file of SIZE and more as content-defined chunks (slower to log: "
        "docs/performance.md); 'changed', the default: large files as chunks only where "
        "that saves (a file replacing one at its path, a file logged or pushed into a "
        "bucket), so that a changed file costs only its changed chunks (docs/chunks.md); "
        "'off': always whole. "
        "Readers older than layout version 3 cannot read chunks",
    )
