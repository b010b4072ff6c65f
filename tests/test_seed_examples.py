"""The seed page's flows, end to end, with its code as written (``wandb`` -> ``artifacts``).

The page: create a new version from a single run, from distributed runs (Run 1,
Run 2, then Run 3), and incrementally from an existing version (add, modify,
remove; log inside a run or save outside one).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import artifacts
from tests.helpers import tree_of, workspace
from tests.processes import python, wait_ok

ROOT = Path(__file__).resolve().parent.parent

IMAGES = {
    "image1.png": b"\x89PNG\r\n\x1a\n" + b"one" * 100,
    "image2.png": b"\x89PNG\r\n\x1a\n" + b"two" * 200,
    "image3.png": b"\x89PNG\r\n\x1a\n" + b"three" * 300,
}

# The page's three distributed runs, verbatim but for the import.
RUN_1 = """\
import artifacts

with artifacts.init() as run:
    artifact = artifacts.Artifact("artifact_name", "artifact_type")
    # `.add`、`.add_file`、`.add_dir`、`.add_reference` を使用して
    # アーティファクト にファイルとアセットを追加
    artifact.add_file("image1.png")
    run.upsert_artifact(artifact, distributed_id="my_dist_artifact")
"""

RUN_2 = """\
import artifacts

with artifacts.init() as run:
    artifact = artifacts.Artifact("artifact_name", "artifact_type")
    # `.add`、`.add_file`、`.add_dir`、`.add_reference` を使用して
    # アーティファクト にファイルとアセットを追加
    artifact.add_file("image2.png")
    run.upsert_artifact(artifact, distributed_id="my_dist_artifact")
"""

RUN_3 = """\
import artifacts

with artifacts.init() as run:
    artifact = artifacts.Artifact("artifact_name", "artifact_type")
    # `.add`、`.add_file`、`.add_dir`、`.add_reference` を使用して
    # artifact にファイルとアセットを追加
    artifact.add_file("image3.png")
    run.finish_artifact(artifact, distributed_id="my_dist_artifact")
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's project, with its images."""
    workspace(tmp_path, monkeypatch, project="seed")
    for name, data in IMAGES.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def fetch(spec: str, root: str) -> tuple[artifacts.Artifact, dict[str, bytes]]:
    """A version and its downloaded files, read back through a run of our own."""
    with artifacts.init(job_type="check") as run:
        artifact = run.use_artifact(spec)
        return artifact, tree_of(artifact.download(root))


# ---- single run ------------------------------------------------------------------------


def test_single_run_logs_v0_then_v1_only_when_the_content_changes(ws):
    def page_example():
        with artifacts.init() as run:
            artifact = artifacts.Artifact("artifact_name", "artifact_type")

            # `.add`、`.add_file`、`.add_dir`、`.add_reference` を使用して
            # artifact にファイルとアセットを追加
            artifact.add_file("image1.png")
            run.log_artifact(artifact)
        return artifact

    first = page_example()
    assert (first.name, first.type, first.version) == ("artifact_name:v0", "artifact_type", "v0")
    assert first.aliases == ["latest"]

    again = page_example()  # the same content: W&B keeps v0
    assert again.version == "v0" and again.id == first.id

    (ws / "image1.png").write_bytes(b"a changed image")
    changed = page_example()  # changed content: a new version, v1
    assert changed.version == "v1"

    v0, files0 = fetch("artifact_name:v0", "dl0")
    v1, files1 = fetch("artifact_name:latest", "dl1")
    assert files0 == {"image1.png": IMAGES["image1.png"]}
    assert files1 == {"image1.png": b"a changed image"}
    assert v1.id == changed.id


# ---- distributed runs ------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_distributed_runs_as_three_processes(ws):
    for name, code in (("run1.py", RUN_1), ("run2.py", RUN_2), ("run3.py", RUN_3)):
        (ws / name).write_text(code, encoding="utf-8")

    # Run 1 and Run 2 at the same time; Run 3 only after both have finished.
    one, two = python("run1.py", cwd=ws), python("run2.py", cwd=ws)
    wait_ok(one)
    wait_ok(two)
    with artifacts.init(job_type="check") as run:
        with pytest.raises(artifacts.ArtifactNotFoundError):
            run.use_artifact("artifact_name")  # nothing is committed before Run 3
    wait_ok(python("run3.py", cwd=ws))

    version, files = fetch("artifact_name:latest", "dl")
    assert version.version == "v0"
    assert version.type == "artifact_type"
    assert files == IMAGES
    version.verify("dl")
    run_3 = version.logged_by()  # Run 3 committed it, in its own process
    assert run_3 is not None and run_3.ended is not None and run_3.job_type is None

    # Running Run 3 again (a retry, say) finds its version already committed, with its
    # files and no new part: the finish is idempotent and latest keeps every part.
    wait_ok(python("run3.py", cwd=ws))
    latest, files = fetch("artifact_name:latest", "dl2")
    assert files == IMAGES
    assert latest.version == "v0"


# ---- a new version from an existing one ------------------------------------------------


def make_my_artifact(ws: Path) -> dict[str, bytes]:
    """v0 of "my_artifact", and the files it holds."""
    files = {
        "images/image1.png": IMAGES["image1.png"],
        "images/image2.png": IMAGES["image2.png"],
        "labels.csv": b"image,label\nimage1.png,cat\nimage2.png,dog\n",
        "dir_to_remove/dup1.png": IMAGES["image1.png"],
        "dir_to_remove/nested/dup2.png": IMAGES["image2.png"],
    }
    for path, data in files.items():
        (ws / "dataset" / path).parent.mkdir(parents=True, exist_ok=True)
        (ws / "dataset" / path).write_bytes(data)
    with artifacts.init(job_type="make dataset") as run:
        artifact = artifacts.Artifact("my_artifact", "dataset")
        artifact.add_dir("dataset")
        run.log_artifact(artifact)
    assert artifact.version == "v0"
    shutil.rmtree(ws / "dataset")  # an incremental change needs none of it on disk
    return files


def test_incremental_add_and_remove_as_written_on_the_page(ws):
    v0_files = make_my_artifact(ws)
    (ws / "file_to_add.txt").write_bytes(b"a new file\n")

    with artifacts.init(job_type="modify dataset") as run:
        saved_artifact = run.use_artifact(
            "my_artifact:latest"
        )  # アーティファクトを取得して run に入力する
        draft_artifact = saved_artifact.new_draft()  # ドラフトバージョンを作成する

        # ドラフトバージョン内のファイルの一部を変更する
        draft_artifact.add_file("file_to_add.txt")
        draft_artifact.remove("dir_to_remove/")
        run.log_artifact(
            draft_artifact
        )  # 変更をログして新しいバージョンを作成し、run の出力としてマークする

    expected = {p: d for p, d in v0_files.items() if not p.startswith("dir_to_remove/")}
    expected["file_to_add.txt"] = b"a new file\n"
    v1, files = fetch("my_artifact:latest", "dl1")
    assert v1.version == "v1"
    assert files == expected
    _, files0 = fetch("my_artifact:v0", "dl0")
    assert files0 == v0_files  # v0 is unchanged
    assert v1.logged_by().job_type == "modify dataset"
    assert run.id in {r.id for r in saved_artifact.used_by()}

    # The same change again makes no new version.
    with artifacts.init() as run:
        draft = run.use_artifact("my_artifact:v0").new_draft()
        draft.add_file("file_to_add.txt")
        draft.remove("dir_to_remove/")
        assert run.log_artifact(draft).version == "v1"


def test_incremental_step_by_step_add_modify_and_log(ws):
    v0_files = make_my_artifact(ws)
    (ws / "file_to_add.txt").write_bytes(b"added")
    (ws / "labels.csv").write_bytes(b"image,label\nimage1.png,dog\nimage2.png,cat\n")

    with artifacts.init() as run:
        saved_artifact = run.use_artifact("my_artifact:latest")
        draft_artifact = saved_artifact.new_draft()
        draft_artifact.add_file("file_to_add.txt")  # add
        draft_artifact.add_file("labels.csv")  # modify: an existing entry is replaced
        run.log_artifact(draft_artifact)

    assert draft_artifact.version == "v1"
    _, files = fetch("my_artifact:v1", "dl")
    assert files == {
        **v0_files,
        "file_to_add.txt": b"added",
        "labels.csv": b"image,label\nimage1.png,dog\nimage2.png,cat\n",
    }


def test_incremental_save_outside_a_run(ws):
    v0_files = make_my_artifact(ws)
    (ws / "file_to_add.txt").write_bytes(b"saved without a run")
    with artifacts.init() as run:
        saved_artifact = run.use_artifact("my_artifact:latest")

    assert artifacts.current_run() is None
    draft_artifact = saved_artifact.new_draft()
    draft_artifact.add_file("file_to_add.txt")
    draft_artifact.save()

    assert draft_artifact.version == "v1"
    _, files = fetch("my_artifact:latest", "dl")
    assert files == {**v0_files, "file_to_add.txt": b"saved without a run"}

    again = saved_artifact.new_draft()
    again.add_file("file_to_add.txt")
    assert again.save().version == "v1"  # identical: no new version
