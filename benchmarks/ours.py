"""Our tool's side of each benchmark case: one function per case.

Contract, the same as the peers' (see `benchmarks.timing.Ctx`):

    def d2_add(ctx: Ctx) -> Sample | float

- Time one run of the operation and return a `Sample` (seconds, peak RSS in bytes) or just
  the seconds. Time only the operation; do set-up (copies, init, an earlier add) untimed.
  The easy way to measure like the peers do is `timed([...cli...], cwd=...)`, which runs a
  subprocess and returns a Sample with its peak RSS.
- `ctx.data` is the dataset (never modify it; `copy_tree(ctx.data, dst)` makes a hard-linked
  copy, `change_one_file(dir, seed=ctx.run)` changes one file of such a copy safely).
- `ctx.work` is fresh and empty for every run; `ctx.shared` survives across runs and across
  the cases of one dataset (in CASES order), so "d2_add" can leave its repository there for
  "d2_nothing_changed" and "d2_one_changed" to reuse.
- Raising NotImplementedError shows "pending" in the report; any other exception shows
  "failed".

Every timed operation is one subprocess of our CLI (`.venv/bin/artifacts`, else
`python -m artifacts`) with `ARTIFACTS_STORE` set, except the in-process draft timings and
the pure `cas` hashing path, which run a small script in our interpreter.

What a dataset's `ctx.shared` holds (made by the first-log case, or on demand, untimed):

    store/          the local store the first log made, later versions on top
    <name>/         the hard-linked work tree that is logged (d1/, d2/)
    remote/         the local-directory remote of the push cases
    drafts-<n>/     stores holding one version of the first n directories (draft cases)
    .cache/         XDG_CACHE_HOME of every command (remote pack indexes)
    added, changed, pushed-dir, s3-pushed, s3-bucket: what has been done so far
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import s3server
from benchmarks.datasets import change_files, change_one_file, copy_tree, remove
from benchmarks.timing import Ctx, Sample, timed

ROOT = Path(__file__).resolve().parents[1]
_VENV_BIN = ROOT / ".venv" / "bin"
CLI: list[str] = (
    [str(_VENV_BIN / "artifacts")]
    if (_VENV_BIN / "artifacts").exists()
    else [sys.executable, "-m", "artifacts"]
)
PYTHON = str(_VENV_BIN / "python") if (_VENV_BIN / "python").exists() else sys.executable

NAMESPACE = {"ARTIFACTS_ENTITY": "bench", "ARTIFACTS_PROJECT": "bench"}
DRAFT_REPS = 7  # draft cases: median of this many drafts, each one a new version


def _env(ctx: Ctx, store: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "ARTIFACTS_STORE": str(store),
        "XDG_CACHE_HOME": str(ctx.shared / ".cache"),
        **NAMESPACE,
        **(extra or {}),
    }


def artifacts(
    ctx: Ctx,
    args: Sequence[str | os.PathLike[str]],
    store: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Sample:
    """Time one `artifacts ARGS` with ARTIFACTS_STORE=store (also used untimed for set-up)."""
    return timed([*CLI, *args], cwd=cwd or ctx.work, env=_env(ctx, store, env))


def _python(ctx: Ctx, script: str, *args: str | os.PathLike[str], store: Path) -> Sample:
    return timed([PYTHON, "-c", script, *args], cwd=ctx.work, env=_env(ctx, store))


# ---------------------------------------------------------------- a store with the dataset

_MARKS = ("added", "changed", "pushed-dir", "s3-pushed")


def _paths(ctx: Ctx) -> tuple[Path, Path]:
    return ctx.shared / "store", ctx.shared / ctx.data.name


def _log(ctx: Ctx, store: Path, tree: Path, type_: str = "dataset") -> Sample:
    return artifacts(ctx, ["log", tree, "--name", tree.name, "--type", type_], store)


def _first_log(ctx: Ctx) -> Sample:
    """Log a hard-linked copy of the dataset into a new store in ctx.shared."""
    store, tree = _paths(ctx)
    _drop_bucket(ctx)
    for name in ("store", "remote", ".cache", ctx.data.name, *_MARKS):
        remove(ctx.shared / name)
    copy_tree(ctx.data, tree)
    sample = _log(ctx, store, tree)
    (ctx.shared / "added").touch()
    return sample


def _prepared(ctx: Ctx) -> tuple[Path, Path]:
    """The store and tree a first log left (made now, untimed, if there is none)."""
    if not (ctx.shared / "added").exists():
        _first_log(ctx)
    return _paths(ctx)


def d1_add(ctx: Ctx) -> Sample | float:
    return _first_log(ctx)


def d2_add(ctx: Ctx) -> Sample | float:
    return _first_log(ctx)


def d2_nothing_changed(ctx: Ctx) -> Sample | float:
    store, tree = _prepared(ctx)
    return _log(ctx, store, tree)


def d2_one_changed(ctx: Ctx) -> Sample | float:
    store, tree = _prepared(ctx)
    change_one_file(tree, seed=ctx.run)
    sample = _log(ctx, store, tree)
    (ctx.shared / "changed").touch()
    return sample


def d2_diff(ctx: Ctx) -> Sample | float:
    """`diff` of v0 (the first log) and v1 (one file changed)."""
    store, tree = _prepared(ctx)
    if not (ctx.shared / "changed").exists():
        change_one_file(tree, seed=1000)
        _log(ctx, store, tree)
        (ctx.shared / "changed").touch()
    name = ctx.data.name
    return artifacts(ctx, ["diff", f"{name}:v0", f"{name}:v1"], store)


# ---------------------------------------------------------------- push, clone


def _push_dir(ctx: Ctx) -> Sample:
    """Push the store to a new local-directory remote `origin` (ctx.shared/remote)."""
    store, _ = _prepared(ctx)
    remote = ctx.shared / "remote"
    remove(remote)
    (ctx.shared / "pushed-dir").unlink(missing_ok=True)
    artifacts(ctx, ["remote", "add", "origin", remote], store)
    sample = artifacts(ctx, ["push", "origin"], store)
    (ctx.shared / "pushed-dir").touch()
    return sample


def d1_push(ctx: Ctx) -> Sample | float:
    return _push_dir(ctx)


def d2_push(ctx: Ctx) -> Sample | float:
    return _push_dir(ctx)


def d2_push_nothing_new(ctx: Ctx) -> Sample | float:
    store, _ = _prepared(ctx)
    if not (ctx.shared / "pushed-dir").exists():
        _push_dir(ctx)
    return artifacts(ctx, ["push", "origin"], store)


def d2_clone_download(ctx: Ctx) -> Sample | float:
    """`clone` the local-directory remote, then `download` the latest version: both timed."""
    _prepared(ctx)
    if not (ctx.shared / "pushed-dir").exists():
        _push_dir(ctx)
    where = ctx.work / "clone"
    store = where / ".artifacts"
    cloned = artifacts(ctx, ["clone", ctx.shared / "remote", where], store)
    out = ctx.work / "out"
    got = artifacts(ctx, ["download", f"{ctx.data.name}:latest", out], store, cwd=where)
    return Sample(cloned.seconds + got.seconds, max(cloned.peak_rss, got.peak_rss))


def _drop_bucket(ctx: Ctx) -> None:
    note = ctx.shared / "s3-bucket"
    if note.exists():
        s3server.drop_bucket(note.read_text().strip())  # frees the server's memory
        note.unlink()


def _push_s3(ctx: Ctx) -> Sample:
    """Push the store to remote `s3`: a fresh bucket on the harness's moto server."""
    store, _ = _prepared(ctx)
    _drop_bucket(ctx)
    (ctx.shared / "s3-pushed").unlink(missing_ok=True)
    bucket = s3server.new_bucket()
    (ctx.shared / "s3-bucket").write_text(bucket)
    artifacts(ctx, ["remote", "add", "s3", f"s3://{bucket}/store"], store)
    sample = artifacts(ctx, ["push", "s3"], store, env=s3server.env())
    (ctx.shared / "s3-pushed").touch()
    return sample


def d2_push_s3(ctx: Ctx) -> Sample | float:
    return _push_s3(ctx)


def d2_push_s3_nothing_new(ctx: Ctx) -> Sample | float:
    store, _ = _prepared(ctx)
    if not (ctx.shared / "s3-pushed").exists():
        _push_s3(ctx)
    return artifacts(ctx, ["push", "s3"], store, env=s3server.env())


CACHED_DOWNLOAD = """
import sys, time
import artifacts
name, first, second = sys.argv[1:4]
with artifacts.init(job_type="download") as run:
    version = run.use_artifact(name)
    version.download(first)  # fills the download cache
    start = time.perf_counter()
    version.download(second)
    print(f"BENCH_SECONDS={time.perf_counter() - start}")
"""


def d1_download_s3_cached(ctx: Ctx) -> Sample | float:
    """The second download of the latest version from the S3 bucket it was pushed to,
    in-process (interpreter and s3fs start-up aside: cp has none): the first, untimed,
    filled the download cache, so this one copies from there."""
    store, _ = _prepared(ctx)
    if not (ctx.shared / "s3-pushed").exists():
        _push_s3(ctx)
    bucket = (ctx.shared / "s3-bucket").read_text().strip()
    env = {
        **s3server.env(),
        "ARTIFACTS_STORE": f"s3://{bucket}/store",
        "ARTIFACTS_CACHE_DIR": str(ctx.shared / ".download-cache"),
    }
    first, second = ctx.work / "first", ctx.work / "second"
    name = f"{ctx.data.name}:latest"
    sample = timed(
        [PYTHON, "-c", CACHED_DOWNLOAD, name, first, second],
        cwd=ctx.work,
        env={**_env(ctx, store), **env},
    )
    remove(first)
    return sample


# ---------------------------------------------------------------- drafts (in-process)

DRAFT_SETUP = """
import os, sys
import artifacts
store, data, dirs = sys.argv[1], sys.argv[2], int(sys.argv[3])
with artifacts.init(store=store, job_type="setup") as run:
    art = artifacts.Artifact("entries", "dataset")
    for d in sorted(os.listdir(data))[:dirs]:
        art.add_dir(os.path.join(data, d), name=d)
    run.log_artifact(art)
"""

# One change per draft: replace one file of the latest version with new bytes. Imports,
# run start-up and writing the new files are outside the timed section.
DRAFT_SCRIPT = """
import os, shutil, statistics, sys, tempfile, time
import artifacts
store, reps = sys.argv[1], int(sys.argv[2])
tmp = tempfile.mkdtemp()
changes = []
for i in range(reps):
    path = os.path.join(tmp, f"change{i}.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(4096))
    changes.append(path)
times = []
with artifacts.init(store=store, job_type="draft") as run:
    for path in changes:
        start = time.perf_counter()
        draft = run.use_artifact("entries:latest").new_draft()
        draft.add_file(path, name="dir000/file0000.bin")
        run.log_artifact(draft)
        times.append(time.perf_counter() - start)
shutil.rmtree(tmp)
print("BENCH_NOTE=draft ms: " + " ".join(f"{t * 1e3:.1f}" for t in times))
print(f"BENCH_SECONDS={statistics.median(times)}")
"""


def _draft_store(ctx: Ctx, dirs: int) -> Path:
    """A store holding a version of the first `dirs` directories of the dataset (D2: 1,000
    entries each at full scale), made once, untimed."""
    store = ctx.shared / f"drafts-{dirs}"
    done = ctx.shared / f"drafts-{dirs}.done"
    if not done.exists():
        remove(store)
        _python(ctx, DRAFT_SETUP, store, ctx.data, str(dirs), store=store)
        done.touch()
    return store


def _draft(ctx: Ctx, dirs: int) -> Sample:
    """Median time of one-change drafts of the version of `_draft_store`."""
    store = _draft_store(ctx, dirs)
    return _python(ctx, DRAFT_SCRIPT, store, str(DRAFT_REPS), store=store)


def draft_100k(ctx: Ctx) -> Sample | float:
    return _draft(ctx, 100)


def draft_10k(ctx: Ctx) -> Sample | float:
    return _draft(ctx, 10)


GC_LOOP = """
import os, sys
from cas import Repository
from cas.gc import gc
repo = Repository.open(sys.argv[1])
passes = 0
while not os.path.exists(sys.argv[2]):
    gc(repo, grace_seconds=0)
    passes += 1
print(passes)
"""


def draft_10k_beside_gc(ctx: Ctx) -> Sample | float:
    """The drafts of `draft_10k`, with gc (grace 0) running in a loop in another process."""
    store = _draft_store(ctx, 10)
    stop = ctx.shared / "gc.stop"
    remove(stop)
    loop = subprocess.Popen(
        [PYTHON, "-c", GC_LOOP, store, stop],
        env={**os.environ, **_env(ctx, store)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        sample = _python(ctx, DRAFT_SCRIPT, store, str(DRAFT_REPS), store=store)
    finally:
        stop.touch()
        passes, _ = loop.communicate(timeout=600)
    if loop.returncode != 0:
        raise RuntimeError(f"the gc loop failed (exit {loop.returncode})")
    print(f"  gc passes beside the drafts: {passes.strip()}")
    return sample


# ---------------------------------------------------------------- peak memory

CAS_PUT = """
import sys
from cas import Repository
r = Repository.open(sys.argv[1])
r.objects.put_blob_file(sys.argv[2])
"""


def _only_file(root: Path) -> Path:
    (name,) = os.listdir(root)
    return root / name


def big_log(ctx: Ctx) -> Sample | float:
    """`artifacts log` of one 4 GiB file into a new store (peak RSS is the point)."""
    store = ctx.work / "store"
    big = _only_file(ctx.data)
    return artifacts(ctx, ["log", big, "--name", "big", "--type", "model"], store)


def big_cas(ctx: Ctx) -> Sample | float:
    """The bare `cas` path for the same file: `ObjectStore.put_blob_file`."""
    store = ctx.work / "store"
    return _python(ctx, CAS_PUT, store, _only_file(ctx.data), store=store)


def m1_log(ctx: Ctx) -> Sample | float:
    """`artifacts log` of a million 16-byte files into a new store (a hard-linked copy,
    left in ctx.shared for the diff and push cases)."""
    return _first_log(ctx)


M1_CHANGED = 10


def m1_diff(ctx: Ctx) -> Sample | float:
    """`diff` of v0 (the first log) and v1 (10 files changed)."""
    store, tree = _prepared(ctx)
    if not (ctx.shared / "changed").exists():
        change_files(tree, M1_CHANGED, seed=1000)
        _log(ctx, store, tree)
        (ctx.shared / "changed").touch()
    name = ctx.data.name
    return artifacts(ctx, ["diff", f"{name}:v0", f"{name}:v1"], store)


def m1_push(ctx: Ctx) -> Sample | float:
    """`push` of the store (a million files) to an empty local-directory remote."""
    return _push_dir(ctx)
