"""A script configured by W&B's environment variables (``WANDB_PROJECT``, ``WANDB_RUN_ID``…)
logs where it meant to: each is read after ours (``ARTIFACTS_…``), which win."""

from __future__ import annotations

import os

import pytest

import artifacts
from tests.helpers import tree_of, write

WANDB = {
    "WANDB_PROJECT": "vision",
    "WANDB_ENTITY": "acme",
    "WANDB_RUN_ID": "run7",
    "WANDB_RESUME": "allow",
    "WANDB_JOB_TYPE": "train",
    "WANDB_RUN_GROUP": "sweep1",
    "WANDB_TAGS": "baseline,big",
    "WANDB_NOTES": "first try",
    "WANDB_NAME": "bold-run",
}


def test_w_and_bs_variables_configure_a_run_and_api(ws, monkeypatch):
    for name in ("ARTIFACTS_PROJECT", "ARTIFACTS_ENTITY"):
        monkeypatch.delenv(name)
    for name, value in WANDB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(ws / "downloads"))
    write(ws / "a.txt", "a")
    with artifacts.init() as run:
        data = artifacts.Artifact("data", "dataset")
        data.add_file("a.txt")
        run.log_artifact(data)
    assert run.path == "acme/vision/run7"
    with artifacts.init() as again:  # WANDB_RESUME=allow: the same run goes on
        assert again.resumed
    record = artifacts.Api().run("run7")  # Api's entity and project from them too
    got = (record.job_type, record.group, record.tags, record.notes, record.name)
    assert got == ("train", "sweep1", ["baseline", "big"], "first try", "bold-run")
    root = artifacts.Api().artifact("data:v0").download()
    assert root == str(ws / "downloads" / "data:v0") and tree_of(root) == {"a.txt": b"a"}


def test_ours_and_inits_arguments_win_over_w_and_bs(ws, monkeypatch):
    for name, value in WANDB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ARTIFACTS_RUN_ID", "mine")
    monkeypatch.setenv("ARTIFACTS_TAGS", "ours")
    with artifacts.init(job_type="eval", name="given") as run:
        pass
    assert run.path == f"{os.environ['ARTIFACTS_ENTITY']}/{os.environ['ARTIFACTS_PROJECT']}/mine"
    record = artifacts.Api().run(run.path)
    assert (record.job_type, record.name, record.tags) == ("eval", "given", ["ours"])


def test_a_w_and_b_variable_holding_no_name_is_refused_naming_it(ws, monkeypatch):
    monkeypatch.delenv("ARTIFACTS_PROJECT")
    monkeypatch.setenv("WANDB_PROJECT", "a/b")
    with pytest.raises(artifacts.UsageError, match=r"\$WANDB_PROJECT is 'a/b'"):
        artifacts.init()
