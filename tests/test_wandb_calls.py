"""W&B's calls as its users write them, keyword for keyword (wandb 0.31): parameters a
script passes to ``wandb`` must be taken, and mean here what they mean there."""

from __future__ import annotations

import os

import pytest

import artifacts
from tests.helpers import tree_of, write


def test_upsert_and_finish_take_w_and_b_path_name_type_and_keywords(ws):
    write(ws / "shard0" / "a.txt", "a")
    write(ws / "shard1" / "b.txt", "b")
    with artifacts.init(group="g") as worker:
        part = worker.upsert_artifact(
            artifact_or_path="shard0", name="shards", type="dataset", distributed_id="d1"
        )
    assert (part.type, part.distributed_id) == ("dataset", "d1")
    with artifacts.init(group="g") as finisher:
        # W&B's order, positionally
        final = finisher.finish_artifact("shard1", "shards", "dataset", ["best"], "d1")
    assert final.name == "shards:v0"
    assert sorted(final.aliases) == ["best", "latest"]
    assert tree_of(final.download()) == {"a.txt": b"a", "b.txt": b"b"}


def test_download_skips_missing_references_only_when_allowed_as_in_w_and_b(ws):
    kept = write(ws / "kept.csv", "k")
    gone = write(ws / "gone.csv", "g")
    with artifacts.init() as run:
        draft = artifacts.Artifact("refs", "dataset")
        draft.add_reference(f"file://{kept}")
        draft.add_reference(f"file://{gone}")
        draft.add_file(write(ws / "own.txt", "o"))
        version = run.log_artifact(draft)
    os.remove(gone)

    with pytest.raises(FileNotFoundError, match="gone.csv"):  # W&B's class for it
        version.download(str(ws / "strict"))
    with pytest.raises(artifacts.ReferenceChangedError):
        version.download(str(ws / "strict"))
    with pytest.warns(UserWarning, match="gone.csv"):
        root = version.download(str(ws / "lenient"), True)  # W&B's positional order
    assert tree_of(root) == {"kept.csv": b"k", "own.txt": b"o"}

    write(ws / "kept.csv", "changed")  # there but other bytes: never skipped
    with pytest.raises(artifacts.ReferenceChangedError) as raised, pytest.warns(UserWarning):
        version.download(str(ws / "changed"), allow_missing_references=True, multipart=False)
    assert not isinstance(raised.value, FileNotFoundError)
