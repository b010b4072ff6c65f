"""The main flow on the embedded default: a local store and a local-directory remote.

Run with `make demo`. Everything happens in a fresh directory, .demo/, so the
demo can be re-run; each step prints what it did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import artifacts
import remotes
from artifacts.refpolicy import ARTIFACT_REFS

HERE = os.path.abspath(".demo")


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def show(artifact: artifacts.Artifact) -> str:
    files = ", ".join(sorted(artifact.manifest.entries))
    return f"{artifact.qualified_name} aliases={artifact.aliases} files=[{files}]"


DISTRIBUTED_RUN = textwrap.dedent(
    """
    import sys, artifacts
    image, finish = sys.argv[1], sys.argv[2] == "finish"
    with artifacts.init(project="demo") as run:
        artifact = artifacts.Artifact("predictions", "eval")
        artifact.add_file(image)
        if finish:
            run.finish_artifact(artifact, distributed_id="my_dist_artifact")
            print(f"  finisher merged the parts into {artifact.qualified_name}")
        else:
            run.upsert_artifact(artifact, distributed_id="my_dist_artifact")
            print(f"  run {run.id} upserted {image}")
    """
)


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    os.makedirs(HERE)
    os.chdir(HERE)
    print(f"store: {HERE}/.artifacts (the nearest .artifacts/ directory)")
    write("data/train.csv", "x,y\n1,2\n3,4\n")
    write("data/test.csv", "x,y\n5,6\n")
    write("dir_to_remove/dup.csv", "x,y\n1,2\n")

    with artifacts.init(project="demo") as run:
        dataset = artifacts.Artifact("my_artifact", "dataset")
        dataset.add_dir("data", name="data")
        dataset.add_dir("dir_to_remove", name="dir_to_remove")
        run.log_artifact(dataset)
        print(f"1. logged      {show(dataset)}")

    with artifacts.init(project="demo") as run:
        again = artifacts.Artifact("my_artifact", "dataset")
        again.add_dir("data", name="data")
        again.add_dir("dir_to_remove", name="dir_to_remove")
        run.log_artifact(again, aliases=["baseline"])
        print(f"2. re-logged   unchanged content, no new version: {show(again)}")

    write("data/train.csv", "x,y\n1,2\n3,4\n7,8\n")
    with artifacts.init(project="demo") as run:
        changed = artifacts.Artifact("my_artifact", "dataset")
        changed.add_dir("data", name="data")
        changed.add_dir("dir_to_remove", name="dir_to_remove")
        run.log_artifact(changed)
        print(f"3. changed     {show(changed)}")

    write("file_to_add.txt", "new batch\n")
    write("fixed_test.csv", "x,y\n5,7\n")
    with artifacts.init(project="demo", job_type="modify dataset") as run:
        saved_artifact = run.use_artifact("my_artifact:latest")
        draft_artifact = saved_artifact.new_draft()
        draft_artifact.add_file("file_to_add.txt")  # add
        draft_artifact.remove("dir_to_remove/")  # remove
        draft_artifact.add_file("fixed_test.csv", name="data/test.csv")  # modify
        run.log_artifact(draft_artifact)
        print(f"4. draft       {show(draft_artifact)}")
        print(f"   used by     {[r.job_type for r in saved_artifact.used_by()]}")

    print("5. distributed: three processes (two upsert at once, then one finishes)")
    for i in (1, 2, 3):
        write(f"image{i}.png", f"image {i}\n")
    script = os.path.join(HERE, "dist_run.py")
    write(script, DISTRIBUTED_RUN)
    upserts = [
        subprocess.Popen([sys.executable, script, f"image{i}.png", "upsert"]) for i in (1, 2)
    ]
    if any(p.wait() for p in upserts):
        raise SystemExit("an upsert run failed")
    subprocess.run([sys.executable, script, "image3.png", "finish"], check=True)

    repo = artifacts.runs.open_registry().repo
    remotes.add_remote(repo, "origin", os.path.join(HERE, "remote"))
    pushed = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    print(f"6. push        {pushed.objects_uploaded} objects, {len(pushed.refs_updated)} refs")
    again_pushed = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    print(f"   push again  {again_pushed.objects_uploaded} objects (nothing new)")
    clone = remotes.clone(
        os.path.join(HERE, "remote"), os.path.join(HERE, "clone"), policy=ARTIFACT_REFS
    )
    with artifacts.init(project="demo", store=clone.url) as run:
        copy = run.use_artifact("my_artifact:v2")
        root = copy.download(os.path.join(HERE, "clone", "my_artifact"))
        copy.verify(root)
        print(f"7. clone       {show(copy)} downloaded to {root} and verified")


if __name__ == "__main__":
    main()
