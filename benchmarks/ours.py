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
    flat/           D2's files hard-linked into one directory (flat_* cases)
    drafts-flat/    a store holding one version of flat/
    m-store/, m-remote/  a version of 1M flat entries built by trees, and its remote
    .cache/         XDG_CACHE_HOME of every command (remote pack indexes)
    added, changed, pushed-dir, s3-pushed, s3-bucket: what has been done so far
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import s3server
from benchmarks.datasets import change_files, change_one_file, copy_tree, info, remove
from benchmarks.timing import Ctx, Sample, timed
from cas.chunked import MAX_CHUNK

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
NESTED_FILE = "dir000/file0000.bin"  # the file the drafts of D2 change


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


# The first download leaves 1-2 GiB dirty (its files, and the cache it filled): synced
# untimed, as before every timed command (timing.timed), or the second pays for the
# first's writeback while `cp -r` starts clean.
CACHED_DOWNLOAD = """
import os, sys, time
import artifacts
name, first, second = sys.argv[1:4]
with artifacts.init(job_type="download") as run:
    version = run.use_artifact(name)
    version.download(first)  # fills the download cache
    os.sync()
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
        draft.add_file(path, name=sys.argv[3])
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
    return _python(ctx, DRAFT_SCRIPT, store, str(DRAFT_REPS), NESTED_FILE, store=store)


def draft_100k(ctx: Ctx) -> Sample | float:
    return _draft(ctx, 100)


def draft_10k(ctx: Ctx) -> Sample | float:
    return _draft(ctx, 10)


GC_LOOP = """
import os, sys
from cas import Repository
from cas.gc import gc
repo = Repository.open(sys.argv[1])
share = None if sys.argv[3] == "full" else float(sys.argv[3])
passes = 0
while not os.path.exists(sys.argv[2]):
    gc(repo, grace_seconds=0, cpu_share=share)
    passes += 1
print(passes)
"""


def _draft_10k_beside_gc(ctx: Ctx, share: str) -> Sample | float:
    """The drafts of `draft_10k`, with gc (grace 0) running in a loop in another process,
    at full speed or at a share of one CPU (`artifacts gc --max-cpu`)."""
    store = _draft_store(ctx, 10)
    stop = ctx.shared / "gc.stop"
    remove(stop)
    loop = subprocess.Popen(
        [PYTHON, "-c", GC_LOOP, store, stop, share],
        env={**os.environ, **_env(ctx, store)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        sample = _python(ctx, DRAFT_SCRIPT, store, str(DRAFT_REPS), NESTED_FILE, store=store)
    finally:
        stop.touch()
        passes, _ = loop.communicate(timeout=600)
    if loop.returncode != 0:
        raise RuntimeError(f"the gc loop failed (exit {loop.returncode})")
    print(f"  gc passes beside the drafts: {passes.strip()}")
    return sample


def draft_10k_beside_gc(ctx: Ctx) -> Sample | float:
    return _draft_10k_beside_gc(ctx, "full")


GC_SHARE = "0.1"


def draft_10k_beside_paced_gc(ctx: Ctx) -> Sample | float:
    return _draft_10k_beside_gc(ctx, GC_SHARE)


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


CHUNKED_PUT = """
import sys
from cas import Repository
r = Repository.open(sys.argv[1])
r.objects.chunk_threshold = 16 << 20
r.objects.put_blob_file(sys.argv[2])
"""


def big_chunked(ctx: Ctx) -> Sample | float:
    """`ObjectStore.put_blob_file` of the 4 GiB file stored as chunks, on or off by default."""
    store = ctx.work / "store"
    return _python(ctx, CHUNKED_PUT, store, _only_file(ctx.data), store=store)


# Bytes [start, end) of a file through artifacts:// (fsspec's cat_file reads no more).
RANGE_READ = """
import sys, time
import fsspec
store, path, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fs = fsspec.filesystem("artifacts", store=store)
began = time.perf_counter()
data = fs.cat_file(path, start=start, end=end)
print(f"BENCH_SECONDS={time.perf_counter() - began}")
assert len(data) == end - start, len(data)
"""
RANGE = 1 << 20
RANGE_BOUND = 2 * RANGE + MAX_CHUNK  # the bound: twice the range and one chunk


def big_range_read_s3(ctx: Ctx) -> Sample | float:
    """1 MiB from the middle of the 4 GiB file, logged and pushed to a moto bucket, which
    keeps it as chunks (untimed, once per harness run: the default setting cuts a large
    file copied in), read through artifacts://: the count is the bytes the
    server sent for it. An untimed read of the file's first range first fetches what any
    reader of the bucket fetches once (refs, the version, the remote's pack indexes)."""
    store, note = ctx.shared / "chunked-store", ctx.shared / "chunked-bucket"
    big = _only_file(ctx.data)
    if not note.exists():
        remove(store)
        artifacts(ctx, ["log", big, "--name", "big", "--type", "model"], store)
        bucket = s3server.new_bucket()
        artifacts(ctx, ["remote", "add", "s3", f"s3://{bucket}/store"], store)
        artifacts(ctx, ["push", "s3"], store, env=s3server.env())
        note.write_text(bucket)
    url = f"s3://{note.read_text().strip()}/store"
    path = f"{NAMESPACE['ARTIFACTS_ENTITY']}/{NAMESPACE['ARTIFACTS_PROJECT']}/big:latest/{big.name}"
    env = _env(ctx, store, s3server.env())

    def read(start: int) -> Sample:
        cmd = [PYTHON, "-c", RANGE_READ, url, path, str(start), str(start + RANGE)]
        return timed(cmd, cwd=ctx.work, env=env)

    read(0)
    before = s3server.bytes_sent()
    sample = read(big.stat().st_size // 2 - RANGE // 2)
    return Sample(sample.seconds, sample.peak_rss, s3server.bytes_sent() - before)


# ---------------------------------------------------------------- a large file edited (issue 22)


def f512_log(ctx: Ctx) -> Sample | float:
    """`artifacts log` of one 512 MiB file into a new store."""
    return artifacts(
        ctx, ["log", _only_file(ctx.data), "--name", "f", "--type", "model"], ctx.work / "store"
    )


def _edited_versions(ctx: Ctx, edit: str) -> tuple[Path, Path]:
    """A store holding the file as version 1 (logged untimed) and the file edited by
    ``edit``: "middle" rewrites 1 MiB in its middle, "start" inserts 100 bytes first."""
    store, original = ctx.work / "store", _only_file(ctx.data)
    artifacts(ctx, ["log", original, "--name", "f", "--type", "model"], store)
    edited = ctx.work / "edited" / original.name
    edited.parent.mkdir()
    noise = random.Random(ctx.run).randbytes(1 << 20)
    with open(original, "rb") as src, open(edited, "wb") as out:
        if edit == "start":
            out.write(noise[:100])
        shutil.copyfileobj(src, out, 8 << 20)
        if edit == "middle":
            out.seek(out.tell() // 2)
            out.write(noise)
    return store, edited


def _store_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in store.rglob("*") if p.is_file())


def _growth(ctx: Ctx, edit: str) -> Sample:
    """The edited file logged as version 2: its time, and the bytes the store grew."""
    store, edited = _edited_versions(ctx, edit)
    before = _store_bytes(store)
    sample = artifacts(ctx, ["log", edited, "--name", "f", "--type", "model"], store)
    return Sample(sample.seconds, sample.peak_rss, _store_bytes(store) - before)


def f512_edit_middle(ctx: Ctx) -> Sample | float:
    return _growth(ctx, "middle")


def f512_insert_start(ctx: Ctx) -> Sample | float:
    return _growth(ctx, "start")


def f512_edit_push_s3(ctx: Ctx) -> Sample | float:
    """Push version 2 (1 MiB rewritten in the middle) to a moto bucket holding version 1."""
    store, edited = _edited_versions(ctx, "middle")
    bucket = s3server.new_bucket()
    try:
        artifacts(ctx, ["remote", "add", "s3", f"s3://{bucket}/store"], store)
        artifacts(ctx, ["push", "s3"], store, env=s3server.env())
        artifacts(ctx, ["log", edited, "--name", "f", "--type", "model"], store)
        return timed(
            [PYTHON, "-c", BYTES_PUSH, *CLI, "push", "s3", "--json"],
            cwd=ctx.work,
            env=_env(ctx, store, s3server.env()),
        )
    finally:
        s3server.drop_bucket(bucket)


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


# ---------------------------------------------------------------- large flat directories


def _flat_tree(ctx: Ctx) -> Path:
    """D2's files hard-linked into one directory (`dir000/file0000.bin` becomes
    `dir000_file0000.bin`): the same bytes, no data copied; made once, untimed."""
    flat = ctx.shared / "flat"
    if not (ctx.shared / "flat.done").exists():
        remove(flat)
        flat.mkdir(parents=True)
        for sub in sorted(ctx.data.iterdir()):
            for file in sub.iterdir():
                os.link(file, flat / f"{sub.name}_{file.name}")
        (ctx.shared / "flat.done").touch()
    return flat


def flat_100k_add(ctx: Ctx) -> Sample | float:
    """First log of D2's files in one directory, into a new store."""
    return _log(ctx, ctx.work / "store", _flat_tree(ctx))


def nested_100k_add(ctx: Ctx) -> Sample | float:
    """The same first log of D2 as it is (100 directories), timed beside the flat one."""
    return _log(ctx, ctx.work / "store", ctx.data)


def flat_100k_draft(ctx: Ctx) -> Sample | float:
    """The drafts of `draft_100k`, changing one file of the flat version."""
    store = ctx.shared / "drafts-flat"
    if not (ctx.shared / "drafts-flat.done").exists():
        remove(store)
        artifacts(ctx, ["log", _flat_tree(ctx), "--name", "entries", "--type", "dataset"], store)
        (ctx.shared / "drafts-flat.done").touch()
    flat_file = NESTED_FILE.replace("/", "_")
    return _python(ctx, DRAFT_SCRIPT, store, str(DRAFT_REPS), flat_file, store=store)


# A version "entries" of one directory of `count` 16-byte files, built through trees: a
# million files would take longer to create than everything timed here. Its entries
# are freed before the timed cases run (a million live objects slow every allocation).
MILLION_SETUP = """
import sys
import artifacts
from cas import Blob, pages, TreeEntry
store, count = sys.argv[1], int(sys.argv[2])
with artifacts.init(store=store, job_type="setup") as run:
    registry = run.registry
    with registry.repo.writing(), registry.objects.writer() as writer:
        entries = [
            TreeEntry(f"f{i:07d}", "blob", writer.add(Blob(b"%016d" % i)), 16)
            for i in range(count)
        ]
        root, size = pages.build(writer, entries)
    registry.log(run.entity, run.project, "entries", "dataset", root, size, {})
"""

# The next version of "entries" with 10 files changed, spread over the directory (10
# pages apart at full scale): a draft, untimed.
TEN_CHANGES = """
import os, sys, tempfile
import artifacts
store, count = sys.argv[1], int(sys.argv[2])
tmp = tempfile.mkdtemp()
with artifacts.init(store=store, job_type="changes") as run:
    draft = run.use_artifact("entries:latest").new_draft()
    for i in range(5, count, count // 10):
        path = os.path.join(tmp, str(i))
        with open(path, "wb") as f:
            f.write(os.urandom(16))
        draft.add_file(path, name=f"f{i:07d}")
    run.log_artifact(draft)
"""

DIFF_SCRIPT = """
import statistics, sys, time
import artifacts
from artifacts.trees import diff
store, reps = sys.argv[1], int(sys.argv[2])
with artifacts.init(store=store, job_type="diff") as run:
    a, b = run.use_artifact("entries:v0"), run.use_artifact("entries:v1")
    objects = run.registry.objects
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        found = diff(objects, bytes.fromhex(a.digest), bytes.fromhex(b.digest))
        times.append(time.perf_counter() - start)
    assert len(found.modified) == 10, found
print("BENCH_NOTE=diff ms: " + " ".join(f"{t * 1e3:.1f}" for t in times))
print(f"BENCH_SECONDS={statistics.median(times)}")
"""

MILLION = 1_000_000


def _million_count(ctx: Ctx) -> int:
    return max(20, round(MILLION * float(info(ctx.data)["scale"])))


def _million_store(ctx: Ctx) -> Path:
    """A store with v0 (the flat 1M-entry version) and v1 (10 entries changed), and a
    directory remote `origin`; made once, untimed."""
    store, remote = ctx.shared / "m-store", ctx.shared / "m-remote"
    if not (ctx.shared / "m-store.done").exists():
        remove(store)
        remove(remote)
        count = str(_million_count(ctx))
        _python(ctx, MILLION_SETUP, store, count, store=store)
        _python(ctx, TEN_CHANGES, store, count, store=store)
        artifacts(ctx, ["remote", "add", "origin", remote], store)
        (ctx.shared / "m-store.done").touch()
    return store


def flat_1m_draft(ctx: Ctx) -> Sample | float:
    store = _million_store(ctx)
    middle = f"f{_million_count(ctx) // 2:07d}"
    return _python(ctx, DRAFT_SCRIPT, store, str(DRAFT_REPS), middle, store=store)


def flat_1m_diff(ctx: Ctx) -> Sample | float:
    """In-process `trees.diff` of v0 and v1 (what `artifacts diff` does), median of 7."""
    store = _million_store(ctx)
    return _python(ctx, DIFF_SCRIPT, store, str(DRAFT_REPS), store=store)


def flat_1m_push(ctx: Ctx) -> Sample | float:
    """`artifacts push origin` of a new version with 10 entries changed (made untimed,
    the remote holding every version before); the count is the objects it sent."""
    store = _million_store(ctx)
    artifacts(ctx, ["push", "origin"], store)
    _python(ctx, TEN_CHANGES, store, str(_million_count(ctx)), store=store)
    return _python(ctx, COUNTED_PUSH, *CLI, "push", "origin", "--json", store=store)


# `artifacts push --json`, timed, and the objects it sent as BENCH_COUNT.
COUNTED_PUSH = """
import json, subprocess, sys, time
start = time.perf_counter()
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout
print(f"BENCH_SECONDS={time.perf_counter() - start}")
print(f"BENCH_COUNT={json.loads(out)['objects_uploaded']}")
"""
# The same, counting the bytes it sent.
BYTES_PUSH = COUNTED_PUSH.replace("objects_uploaded", "bytes_uploaded")


# ---------------------------------------------------------------- many processes: Dask

DASK_WORKERS = 4
DISTRIBUTED_ID = "d2-bench"

# D2 logged by DASK_WORKERS worker processes, each upserting a quarter of its directories
# as a part straight into the bucket, then finished here. The cluster's start and the
# workers' imports are untimed (a real cluster is up before its jobs come); the tasks and
# the finish are timed. The version's root id goes to argv[4] for the one-process log.
DASK_PARTS = """
import importlib, os, sys, time
import artifacts
from distributed import Client, LocalCluster
store, data, workers, digest_file, did = sys.argv[1:6]
workers = int(workers)

def upsert(dirs, part):
    artifact = artifacts.Artifact("d2", "dataset")
    for d in dirs:
        artifact.add_dir(os.path.join(data, d), name=d)
    artifacts.upsert_part(artifact, did, part, store=store)

dirs = sorted(os.listdir(data))
with LocalCluster(
    n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None
) as cluster, Client(cluster) as client:
    client.run(importlib.import_module, "artifacts.distributed")
    client.run(importlib.import_module, "cas.storage.s3")
    start = time.perf_counter()
    parts = [
        client.submit(upsert, dirs[i::workers], str(i), pure=False) for i in range(workers)
    ]
    client.gather(parts)
    upserted = time.perf_counter() - start
    with artifacts.init(store=store, job_type="finish") as run:
        version = run.finish_artifact(artifacts.Artifact("d2", "dataset"), distributed_id=did)
    took = time.perf_counter() - start
with open(digest_file, "w") as f:
    f.write(version.digest)
print(f"BENCH_NOTE=parts {upserted:.2f} s, finish {took - upserted:.2f} s")
print(f"BENCH_SECONDS={took}")
"""

# The same D2 logged by one process into a fresh bucket; its root id must be the Dask one.
ONE_PROCESS_LOG = """
import os, sys, time
import artifacts
store, data, digest_file = sys.argv[1:4]
with artifacts.init(store=store, job_type="log") as run:
    start = time.perf_counter()
    artifact = artifacts.Artifact("d2", "dataset")
    artifact.add_dir(data)
    version = run.log_artifact(artifact)
    took = time.perf_counter() - start
if os.path.exists(digest_file):
    with open(digest_file) as f:
        dask_digest = f.read()
    if dask_digest != version.digest:
        sys.exit(f"root ids differ: Dask {dask_digest}, one process {version.digest}")
    print("BENCH_NOTE=same root id as the Dask parts: " + version.digest[:16])
print(f"BENCH_SECONDS={took}")
"""


def _in_bucket(ctx: Ctx, script: str, *args: str | os.PathLike[str]) -> Sample:
    """`script` with a fresh bucket's store URL as its first argument (dropped after)."""
    bucket = s3server.new_bucket()
    try:
        return timed(
            [PYTHON, "-c", script, f"s3://{bucket}/store", *args],
            cwd=ctx.work,
            env={**_env(ctx, ctx.work / "unused"), **s3server.env()},
        )
    finally:
        s3server.drop_bucket(bucket)


def d2_dask_parts(ctx: Ctx) -> Sample | float:
    probe = subprocess.run([PYTHON, "-c", "import distributed"], capture_output=True)
    if probe.returncode != 0:
        raise NotImplementedError("pending: dask[distributed] is not installed (make rebuilds)")
    digest = ctx.shared / "dask-digest"
    remove(digest)
    return _in_bucket(ctx, DASK_PARTS, ctx.data, str(DASK_WORKERS), digest, DISTRIBUTED_ID)


def d2_one_process_s3_log(ctx: Ctx) -> Sample | float:
    return _in_bucket(ctx, ONE_PROCESS_LOG, ctx.data, ctx.shared / "dask-digest")


# ---------------------------------------------------------------- the web UI (in-process)

# 99 more versions of the draft store's 100k-entry version, one changed file each.
UI_VERSIONS_SETUP = """
import os, sys, tempfile
import artifacts
store = sys.argv[1]
path = os.path.join(tempfile.mkdtemp(), "change.bin")
with artifacts.init(store=store, job_type="setup") as run:
    for i in range(99):
        with open(path, "wb") as f:
            f.write(os.urandom(64))
        draft = run.use_artifact("entries:latest").new_draft()
        draft.add_file(path, name="dir000/file0000.bin", overwrite=True)
        run.log_artifact(draft)
"""

# 200 runs in a chain: each uses the 5 versions the one before logged and logs 5 more.
UI_LINEAGE_SETUP = """
import os, sys, tempfile
import artifacts
store = sys.argv[1]
src = tempfile.mkdtemp()
for r in range(200):
    with artifacts.init(store=store, job_type="step") as run:
        for i in range(5):
            if r:
                run.use_artifact(f"part{i}:v{r - 1}")
            path = os.path.join(src, f"part{i}.txt")
            with open(path, "w") as f:
                f.write(f"{r} {i}")
            art = artifacts.Artifact(f"part{i}", "dataset")
            art.add_file(path)
            run.log_artifact(art)
"""

# The median of 5 first views of each page, each by a new app that has served only the
# project's page (a running server has opened the store: its pack indexes are read).
UI_PAGES = """
import statistics, sys, time
from starlette.testclient import TestClient
from artifacts.ui import create_app
store, urls = sys.argv[1], sys.argv[2:]
notes = []
worst = 0.0
for url in urls:
    times = []
    for _ in range(5):
        client = TestClient(create_app(store))
        assert client.get("/bench/bench").status_code == 200
        start = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, (url, answer.text[-300:])
    notes.append(f"{url}: {statistics.median(times) * 1e3:.0f} ms")
    worst = max(worst, statistics.median(times))
print("BENCH_NOTE=" + "; ".join(notes))
print(f"BENCH_SECONDS={worst}")
"""


def ui_versions_100k(ctx: Ctx) -> Sample | float:
    """The versions page of 100 versions, and the root and a directory page of one."""
    store = _draft_store(ctx, 100)
    done = ctx.shared / "ui-versions.done"
    if not done.exists():
        _python(ctx, UI_VERSIONS_SETUP, store, store=store)
        done.touch()
    base = "/bench/bench/entries"
    urls = [base, f"{base}/latest", f"{base}/latest/files/dir050"]
    return _python(ctx, UI_PAGES, store, *urls, store=store)


def ui_lineage_1000(ctx: Ctx) -> Sample | float:
    """The lineage page of the last of 1,000 versions logged by a chain of 200 runs."""
    store = ctx.shared / "ui-lineage"
    done = ctx.shared / "ui-lineage.done"
    if not done.exists():
        remove(store)
        _python(ctx, UI_LINEAGE_SETUP, store, store=store)
        done.touch()
    return _python(ctx, UI_PAGES, store, "/bench/bench/part0/v199/~lineage", store=store)
