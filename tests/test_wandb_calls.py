"""W&B's calls as its users write them, keyword for keyword (wandb 0.31): parameters a
script passes to ``wandb`` must be taken, and mean here what they mean there."""

from __future__ import annotations

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
