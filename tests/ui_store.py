"""A small store for the UI's tests: a raw dataset, a run that cleans it, a run that
trains a model on the clean one (linked into a registry), a version since deleted,
and a version whose file names hold markup, quotes and unicode."""

from __future__ import annotations

import os
from pathlib import Path

import artifacts
from tests.helpers import write

HOSTILE_NAMES = [
    "<script>alert(1)<script>.txt",  # no "/": that would make a directory
    "\"quoted' name&amp;.csv",
    "ünï ✓ 名前.txt",
    "100% ?#.txt",
    "<img src=x onerror=alert(2)>",
]


def logged(run, name: str, files: dict[str, str | bytes], type: str = "dataset", **kw):
    src = Path(os.getcwd()) / f"src-{name}-{len(os.listdir())}"
    for path, data in files.items():
        write(src / path, data)
    artifact = artifacts.Artifact(name, type, **kw)
    artifact.add_dir(str(src))
    return run.log_artifact(artifact)


def make_store() -> None:
    """In the working directory's store (tests.helpers.workspace)."""
    with artifacts.init(job_type="ingest") as run:
        logged(run, "raw-data", {"data.csv": "id,label\n1,cat\n2,dog\n"})
        old = logged(run, "old-data", {"x.txt": "old"})
    with artifacts.init(job_type="ingest") as run:
        logged(
            run,
            "raw-data",
            {"data.csv": "id,label\n1,cat\n2,dog\n3,bird\n", "notes.txt": "added birds\n"},
            description="with birds",
            metadata={"rows": 3},
        )
    with artifacts.init(job_type="clean", name="clean-run") as run:
        run.use_artifact("raw-data:v1")
        run.use_artifact("old-data:v0")
        logged(run, "clean-data", {"train.csv": "id,label\n1,cat\n3,bird\n"})
    with artifacts.init(job_type="train", name="train-run") as run:
        run.use_artifact("clean-data:latest")
        model = logged(run, "model", {"model.json": '{"layers": 3}'}, type="model")
        model.link("wandb-registry-model/classifier")
    old.delete(delete_aliases=True)
    with artifacts.init(job_type="hostile") as run:
        logged(run, "hostile", {name: f"file {i}\n" for i, name in enumerate(HOSTILE_NAMES)})
