"""``artifacts init``: create a store."""

from __future__ import annotations

import argparse
import os

from cas import Repository

from ..run import STORE_DIR
from .commands import Commands
from .context import local_dir


def cmd_init(args: argparse.Namespace) -> int:
    # Like `git init`: here, unless a store is named; never a parent's .artifacts.
    url = getattr(args, "store", None) or os.environ.get("ARTIFACTS_STORE")
    url = url or os.path.join(os.getcwd(), STORE_DIR)
    local = local_dir(url)
    repo = Repository.open(os.path.abspath(local) if local is not None else url)
    existed = repo.storage.exists("config.json") or any(repo.refs.names(""))
    repo.update_config(lambda config: None)  # writes config.json: marks the store as made
    print(f"{'store already exists' if existed else 'initialised empty store'} at {repo.url}")
    return 0


def register(commands: Commands) -> None:
    commands.add(
        "init",
        cmd_init,
        "create a store (.artifacts/ here, or --store URL)",
        "artifacts init\nartifacts init --store s3://team-bucket/artifacts",
    )
