"""W&B's module-level run calls (wandb 0.31's ``wandb.run``, ``wandb.log_artifact``…) as
the scripts of its guides write them: ``wandb.init()``, then calls on the module."""

from __future__ import annotations

import pytest

import artifacts
from tests.helpers import tree_of, write


def test_module_level_calls_act_on_the_active_run_as_w_and_bs(ws):
    write(ws / "a.txt", "a")
    write(ws / "model.pt", "weights")
    assert artifacts.run is None  # W&B's wandb.run before init
    run = artifacts.init(job_type="train")
    assert artifacts.run is run
    data = artifacts.Artifact("data", "dataset")
    data.add_file("a.txt")
    assert artifacts.log_artifact(data, aliases=["best"]) is data
    assert artifacts.run.use_artifact("data:best").version == "v0"
    assert tree_of(artifacts.use_artifact("data:latest").download()) == {"a.txt": b"a"}
    artifacts.log_model("model.pt", name="net")
    with open(artifacts.use_model("net:latest")) as f:  # the one file's path
        assert f.read() == "weights"
    artifacts.link_model("model.pt", registered_model_name="classifier")
    artifacts.finish()
    assert artifacts.run is None
    record = artifacts.Api().run(run.id)
    assert (record.state, [a.name for a in record.used_artifacts()]) == (
        "finished",
        ["data:v0", "net:v0"],
    )
    artifacts.finish()  # no run: nothing to do, as in W&B

    failed = artifacts.init()
    artifacts.finish(exit_code=3, quiet=True)
    assert artifacts.Api().run(failed.id).state == "failed"


def test_module_level_calls_before_init_say_to_call_init_as_w_and_bs(ws):
    for call in ("log_artifact", "use_artifact", "log_model", "use_model", "link_model"):
        with pytest.raises(artifacts.Error, match=rf"artifacts.init\(\) before .*{call}"):
            getattr(artifacts, call)("data:latest")
    with artifacts.init():
        pass
    with pytest.raises(artifacts.errors.UsageError, match="init"):  # after finish too
        artifacts.log_artifact(artifacts.Artifact("data", "dataset"))
