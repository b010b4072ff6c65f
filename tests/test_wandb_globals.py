"""W&B's module-level run calls (wandb 0.31's ``wandb.run``, ``wandb.log_artifact``…) as
the scripts of its guides write them: ``wandb.init()``, then calls on the module."""

from __future__ import annotations

import os
import sys

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


def test_a_runs_config_is_w_and_bs_and_every_change_is_recorded(ws):
    import argparse

    run = artifacts.init(config={"lr": 0.1, "layers": (64, 32)})
    config = artifacts.config  # W&B's wandb.config: the active run's
    assert config is run.config
    assert (config.lr, config["layers"], config.get("epochs", 5)) == (0.1, [64, 32], 5)
    config.epochs = 3  # W&B's ways of adding keys: each one recorded at once
    config["batch_size"] = 32
    config.update({"optimizer": "adam"})
    config.update(argparse.Namespace(dropout=0.5))  # as W&B's update takes argparse's
    config.setdefaults({"lr": 0.5, "seed": 7})  # lr is set: kept
    config.update({"--momentum": 0.9})  # W&B strips the dashes
    config.update({"lr": 0.1})  # the same value again is no change
    expected = {
        "lr": 0.1,
        "layers": [64, 32],
        "epochs": 3,
        "batch_size": 32,
        "optimizer": "adam",
        "dropout": 0.5,
        "seed": 7,
        "momentum": 0.9,
    }
    assert dict(config) == expected and config.as_dict() == expected
    assert artifacts.Api().run(run.id).config == expected  # before the run finishes

    # As W&B's: a key keeps its value unless allow_val_change; bad values are refused
    with pytest.raises(artifacts.errors.ConfigError, match="allow_val_change=True"):
        config.lr = 0.2
    config.update({"lr": 0.2}, allow_val_change=True)
    with pytest.raises(artifacts.UsageError, match="config"):
        config.update({"model": object()})
    with pytest.raises(AttributeError):
        config.nothing  # noqa: B018
    artifacts.finish()
    assert artifacts.Api().run(run.id).config == {**expected, "lr": 0.2}
    with pytest.raises(artifacts.ArtifactStateError, match="finished"):
        config.late = 1  # W&B refuses a finished run's config changes too
    assert "late" not in artifacts.Api().run(run.id).config
    with pytest.raises(artifacts.Error, match=r"artifacts.init\(\) before artifacts.config"):
        artifacts.config.lr  # noqa: B018


def test_a_runs_tags_and_notes_are_recorded_as_w_and_bs(ws):
    run = artifacts.init(project="proj", tags=["baseline", "resnet"], notes="first try")
    assert (run.tags, run.notes) == (("baseline", "resnet"), "first try")  # W&B's: a tuple
    run.tags = run.tags + ("v2",)  # W&B's way to add one
    run.notes = "second try"
    with pytest.warns(UserWarning, match="64"):
        run.tags = ["x" * 65]  # W&B warns and keeps the tags it had
    run.finish()
    api = artifacts.Api(overrides={"project": "proj"})
    record = api.run(run.id)
    assert (record.tags, record.notes) == (["baseline", "resnet", "v2"], "second try")
    with artifacts.init(project="proj", tags="other"):  # one string is one tag, as in W&B
        pass
    assert [r.id for r in api.runs("proj", filters={"tags": "v2"})] == [run.id]
    with pytest.raises(artifacts.ArtifactStateError, match="finished"):
        run.notes = "too late"
    with artifacts.init(project="proj", notes="draft") as cleared:
        cleared.notes = None  # W&B's: no notes
        assert cleared.notes is None
    with pytest.raises(ValueError, match="64"):  # W&B's settings refuse it at init
        artifacts.init(project="proj", tags=["y" * 65])


def test_a_runs_path_start_time_and_resumed_are_w_and_bs(ws):
    import time

    before = time.time()
    with artifacts.init(project="proj", id="r1") as run:
        assert run.path == "team/proj/r1"  # W&B's entity/project/run_id, which Api().run takes
        assert artifacts.Api().run(run.path).id == "r1"
        assert before - 1 <= run.start_time <= time.time()  # seconds since the epoch
        assert run.resumed is False
        started = run.start_time
    with artifacts.init(project="proj", id="r1", resume="allow") as again:
        assert again.resumed is True
        assert again.start_time == started  # the run's start, kept when it is continued


def test_a_scripts_w_and_b_setup_calls_are_taken(ws):
    """W&B scripts start with wandb.login() and pass wandb.Settings to init: there is no
    server here, so both are taken and mean nothing; the run logs to its store."""
    assert artifacts.login() is True
    assert artifacts.login(key="0" * 40, relogin=True, host="https://api.wandb.ai") is True
    settings = artifacts.Settings(start_method="thread", console="off")
    assert settings.start_method == "thread"
    write(ws / "a.txt", "a")
    with artifacts.init(settings=settings) as run:
        assert run.log_artifact("a.txt", name="data").version == "v0"


def test_init_leaves_out_the_config_keys_w_and_b_is_told_to(ws):
    import argparse

    args = argparse.Namespace(lr=0.1, api_token="secret", epochs=3)
    with artifacts.init(config=args, config_exclude_keys=["api_token"]) as run:
        assert dict(run.config) == {"lr": 0.1, "epochs": 3}
    assert "api_token" not in artifacts.Api().run(run.id).config  # never recorded
    with artifacts.init(config=args, config_include_keys=("lr",)) as run:
        assert dict(run.config) == {"lr": 0.1}
    with pytest.raises(artifacts.UsageError, match="not both"):  # W&B refuses both too
        artifacts.init(config=args, config_include_keys=["lr"], config_exclude_keys=["lr"])


def test_a_runs_name_set_after_init_is_recorded_as_w_and_bs(ws):
    run = artifacts.init(project="proj", group="sweep-1", job_type="train")
    run.name = f"{run.id}-lr-0.1"  # W&B scripts rename their run once it has an id
    assert artifacts.Api().run(run.id).name == f"{run.id}-lr-0.1"
    with pytest.raises(AttributeError):  # read-only in W&B
        run.group = "other"
    with pytest.raises(AttributeError):
        run.job_type = "eval"
    assert (run.group, run.job_type) == ("sweep-1", "train")
    run.finish()
    with pytest.raises(artifacts.ArtifactStateError, match="finished"):
        run.name = "too late"


def test_a_resumable_run_id_is_made_by_w_and_bs_util_generate_id(ws):
    import re

    run_id = artifacts.util.generate_id()  # W&B's resume guides: wandb.util.generate_id()
    assert re.fullmatch(r"[a-z0-9]{8}", run_id) and len(artifacts.util.generate_id(12)) == 12
    with artifacts.init(id=run_id, resume="allow") as run:
        assert run.id == run_id and not run.resumed
    with artifacts.init(id=run_id, resume="allow") as run:
        assert run.resumed


def test_w_and_b_import_paths_of_its_classes_give_ours(ws):
    """Typed code imports W&B's classes from their modules (with wandb replaced)."""
    from artifacts.apis.public import Api, ArtifactCollection, ArtifactType, Project, Run
    from artifacts.sdk.artifacts.artifact import Artifact
    from artifacts.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry
    from artifacts.sdk.artifacts.exceptions import (
        ArtifactFinalizedError,
        ArtifactNotLoggedError,
        ArtifactStatusError,
    )
    from artifacts.sdk.wandb_run import Run as SdkRun

    assert Api is artifacts.Api and Artifact is artifacts.Artifact
    assert ArtifactManifestEntry is artifacts.Entry
    assert issubclass(ArtifactNotLoggedError, ArtifactStatusError)
    assert issubclass(ArtifactFinalizedError, ArtifactStatusError)
    assert issubclass(ArtifactStatusError, AttributeError)  # as W&B's
    write(ws / "a.txt", "a")
    with artifacts.init(project="proj") as run:
        assert isinstance(run, SdkRun)
        run.log_artifact("a.txt", name="data")
    api = artifacts.Api(overrides={"project": "proj"})
    assert isinstance(api.run(run.id), Run)
    assert isinstance(api.artifact_collection("unspecified", "data"), ArtifactCollection)
    assert isinstance(api.artifact_type("unspecified", "proj"), ArtifactType)
    assert isinstance(api.project("proj"), Project)


def test_log_code_logs_a_runs_code_as_w_and_bs(ws):
    write(ws / "train.py", "print(1)")
    write(ws / "lib" / "util.py", "x = 1")
    write(ws / "requirements.txt", "numpy")
    write(ws / "Dockerfile.gpu", "FROM python")
    write(ws / "data.csv", "a,b")
    with artifacts.init(project="proj") as run:
        code = run.log_code()  # W&B's default: .py files, requirements.txt, Dockerfile*
        assert code.type == "code" and code.name.startswith("source-proj-")
        assert sorted(code.manifest.entries) == [
            "Dockerfile.gpu",
            "lib/util.py",
            "requirements.txt",
            "train.py",
        ]
        csv = run.log_code(".", name="tables", include_fn=lambda path: path.endswith(".csv"))
        assert (csv.name, list(csv.manifest.entries)) == ("tables:v0", ["data.csv"])
        no_lib = run.log_code(
            name="no-lib",
            exclude_fn=lambda path, root: os.path.relpath(path, root).startswith("lib"),
        )
        assert sorted(no_lib.manifest.entries) == ["Dockerfile.gpu", "requirements.txt", "train.py"]
        with pytest.warns(UserWarning, match="no code"):  # W&B warns and logs nothing
            assert run.log_code(root="lib", name="none", include_fn=lambda p: False) is None
    assert [a.type for a in artifacts.Api().run(run.id).logged_artifacts()] == ["code"] * 3


def test_a_config_file_given_to_init_is_loaded_as_w_and_bs(ws):
    write(ws / "sweep.yaml", "wandb_version: 1\nlr:\n  desc: step size\n  value: 0.1\n")
    write(ws / "sweep.json", '{"epochs": {"value": 3}, "layers": {"value": [64, 32]}}')
    write(ws / "config-defaults.yaml", "lr:\n  value: 0.5\nseed:\n  value: 7\n")
    with artifacts.init(config="sweep.yaml") as run:  # over config-defaults.yaml, as W&B
        assert dict(run.config) == {"lr": 0.1, "seed": 7}
    assert artifacts.Api().run(run.path).config == {"lr": 0.1, "seed": 7}
    with artifacts.init(config=ws / "sweep.json") as run:
        assert dict(run.config) == {"epochs": 3, "layers": [64, 32], "lr": 0.5, "seed": 7}
    os.remove(ws / "config-defaults.yaml")
    write(ws / "plain.yaml", "lr: 0.1\n")
    for name, says in (("plain.yaml", "lr: {value: 0.1}"), ("missing.yaml", "no config file")):
        with pytest.raises(artifacts.UsageError, match=says.replace("{", r"\{")):
            artifacts.init(config=name)
    assert artifacts.run is None  # refused before any run started


def test_without_pyyaml_a_yaml_config_says_what_to_do_and_json_still_loads(ws, monkeypatch):
    write(ws / "c.yaml", "lr:\n  value: 0.1\n")
    write(ws / "c.json", '{"lr": {"value": 0.1}}')
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(artifacts.UsageError, match="pip install pyyaml.*JSON"):
        artifacts.init(config="c.yaml")
    with artifacts.init(config="c.json") as run:
        assert dict(run.config) == {"lr": 0.1}


def test_inits_w_and_b_options_do_what_they_say_or_say_they_do_nothing(ws):
    with artifacts.init(config={"lr": 0.1}, allow_val_change=True) as run:
        run.config.lr = 0.2  # W&B's init(allow_val_change=True): no ConfigError
    assert artifacts.Api().run(run.path).config == {"lr": 0.2}
    with pytest.warns(UserWarning) as said:
        artifacts.init(fork_from="abc?_step=10", save_code=True, reinit=True).finish()
    messages = " ".join(str(w.message) for w in said)
    assert "fork_from" in messages and "save_code" in messages and "log_code" in messages
    assert "reinit" not in messages  # what W&B's process needs, no loss here
    with pytest.raises(TypeError, match="projet"):
        artifacts.init(projet="typo")  # W&B's init refuses it too
