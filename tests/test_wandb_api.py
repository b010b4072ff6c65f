"""wandb's documented examples of the calls of issue 19, run with ``wandb`` replaced by
``artifacts``: one section per part of the issue."""

from __future__ import annotations

from pathlib import Path

from artifacts.cache import DownloadCache
from artifacts.cli import main

# ---- item 6: the download cache ------------------------------------------------
# From `wandb artifact cache cleanup --help` (wandb 0.31, wandb/cli/cli.py); W&B's
# command is `wandb artifact cache cleanup`, ours `artifacts cache cleanup`.


def test_wandb_cache_cleanup_example(download_cache_dir: Path) -> None:
    """$ wandb artifact cache cleanup 10GB"""
    cache = DownloadCache(str(download_cache_dir))
    cache.put_bytes(bytes(32), b"x")
    assert main(["cache", "cleanup", "10GB"]) == 0
    assert cache.has(bytes(32)), "well under 10GB: nothing to trim"


def test_wandb_cache_cleanup_remove_temp_example(download_cache_dir: Path) -> None:
    """$ wandb artifact cache cleanup --remove-temp 5GB"""
    (download_cache_dir / "tmp").mkdir(parents=True)
    (download_cache_dir / "tmp" / "partial").write_bytes(b"x")
    assert main(["cache", "cleanup", "--remove-temp", "5GB"]) == 0
    assert not (download_cache_dir / "tmp" / "partial").exists()
