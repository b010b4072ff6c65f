"""W&B's run modes: ``init(mode="disabled")`` (or ``WANDB_MODE=disabled``) writes
nothing, its calls doing nothing as W&B's do; ``"offline"`` is online here."""

from __future__ import annotations

import os

import pytest

import artifacts
from tests.helpers import write


def _everything(root) -> dict[str, bytes]:
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def test_a_disabled_run_writes_nothing_and_its_calls_do_nothing_as_w_and_bs(ws):
    write(ws / "a.txt", "a")
    with artifacts.init(project="p") as run:  # the store holds a version already
        data = artifacts.Artifact("data", "dataset")
        data.add_file("a.txt")
        run.log_artifact(data)
    store = ws / ".artifacts"
    before = _everything(store)
    with artifacts.init(mode="disabled", config={"lr": 0.1}, id="d1") as run:
        assert artifacts.run is run and run.disabled
        # ws sets $ARTIFACTS_PROJECT and $ARTIFACTS_ENTITY; else W&B's "dummy"
        assert (run.id, run.name, run.project, run.entity) == ("d1", "dummy-d1", "proj", "team")
        run.config.epochs = 3
        assert dict(artifacts.config) == {"lr": 0.1, "epochs": 3}
        artifacts.log({"loss": 0.5})
        run.summary["best"] = 1
        assert dict(run.summary) == {"loss": 0.5, "best": 1}
        draft = artifacts.Artifact("data", "dataset")
        draft.add_file("a.txt")
        logged = artifacts.log_artifact(draft)  # W&B's: an object whose every call is itself
        assert logged.wait().version is logged
        assert run.use_artifact("data:latest") is None  # as W&B's disabled run
        assert draft.save() is not None and draft.is_draft()
        for call in (run.log_model, run.link_model, run.use_model, run.upsert_artifact):
            assert call("a.txt", "x") is None
        assert run.save("*.txt") is False
        run.define_metric("loss", summary="min")
        run.watch(object())
        run.alert("t", "x")
    assert artifacts.run is None
    assert _everything(store) == before
    with pytest.raises(artifacts.RunNotFoundError):
        artifacts.Api().run("p/d1")


def test_a_disabled_run_creates_no_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARTIFACTS_STORE", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")  # as W&B's CI switch
    for name in ("ARTIFACTS_PROJECT", "ARTIFACTS_ENTITY", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(name, raising=False)
    with artifacts.init() as run:
        assert run.disabled and (run.project, run.entity) == ("dummy", "dummy")
        artifacts.log({"a": 1})
    assert os.listdir(tmp_path) == []


def test_offline_is_online_here_and_a_mode_w_and_b_lacks_is_refused(ws):
    with artifacts.init(mode="offline") as run:
        assert not run.disabled
    assert artifacts.Api().run(run.path).state == "finished"
    with artifacts.init(settings=artifacts.Settings(mode="disabled")) as run:
        assert run.disabled
    with artifacts.init(settings={"mode": "disabled"}) as run:  # W&B takes a dict too
        assert run.disabled
    with pytest.raises(artifacts.UsageError, match="mode must be"):
        artifacts.init(mode="off")
