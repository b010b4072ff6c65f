"""Peer tools (git, DVC, W&B Artifacts, raw limits) and their timed operations.

Python peers live in their own virtualenvs under `benchmarks/.peers/<tool>/`, installed once
(a `.installed` marker holds the version). A tool that cannot be installed or found is a
`Missing` with the reason; the report shows it, it is never skipped silently.

Each operation is a `PeerFn(tool, ctx) -> Sample` that times exactly one subprocess. Set-up
(copies, `init`, an earlier add) is untimed; git gets hard-linked copies, DVC real ones.
Repositories live in `ctx.shared/repo` so the last "add" run leaves a prepared repository
for the incremental cases that follow.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import s3server
from benchmarks.datasets import change_one_file, copy_tree, remove
from benchmarks.timing import Ctx, Sample, timed

PEERS_DIR = Path(os.environ.get("BENCH_PEERS", Path(__file__).resolve().parent / ".peers"))

# virtualenv name -> (pip requirements, distribution whose version is reported)
VENVS: dict[str, tuple[list[str], str]] = {
    "dvc": (["dvc"], "dvc"),
    "wandb": (["wandb"], "wandb"),
    "raw": (["blake3"], "blake3"),  # the harness's own venv for the raw blake3 limit
}


@dataclass(frozen=True, slots=True)
class Tool:
    """An installed peer: `bin` holds its executables, `python` runs helper scripts."""

    name: str
    version: str
    bin: Path
    python: Path

    def exe(self, name: str) -> str:
        return str(self.bin / name)


@dataclass(frozen=True, slots=True)
class Missing:
    """A peer that could not be installed or found, and why."""

    name: str
    reason: str


def _venv_version(python: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout


def _ensure_venv(name: str) -> Tool | Missing:
    reqs, dist = VENVS[name]
    venv = PEERS_DIR / name
    python, marker = venv / "bin" / "python", venv / ".installed"
    if not marker.exists():
        print(f"[peers] installing {' '.join(reqs)} into {venv}", file=sys.stderr)
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
        ]
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                return Missing(name, f"{' '.join(step[:4])}...: {' | '.join(tail)}")
        marker.write_text(_venv_version(python, dist))
    return Tool(name, f"{dist} {marker.read_text().strip()}", venv / "bin", python)


def _ensure_git() -> Tool | Missing:
    git = shutil.which("git")
    if git is None:
        return Missing("git", "git not found on PATH")
    version = subprocess.run([git, "--version"], capture_output=True, text=True).stdout.strip()
    return Tool("git", version, Path(git).parent, Path(sys.executable))


def _ensure_restic() -> Tool | Missing:
    """restic from Debian's package (`apt-get install -y restic`), as the issue measured it."""
    restic = shutil.which("restic")
    if restic is None:
        return Missing("restic", "restic not found on PATH: apt-get install -y restic")
    version = subprocess.run([restic, "version"], capture_output=True, text=True).stdout
    return Tool("restic", version.strip(), Path(restic).parent, Path(sys.executable))


def _ensure_ours() -> Tool | Missing:
    """Our own virtualenv, for baselines made of our tool or of its dependencies (boto3)."""
    try:
        version = importlib.metadata.version("artifacts")
    except importlib.metadata.PackageNotFoundError:
        return Missing("ours", "the artifacts package is not installed in this interpreter")
    python = Path(sys.executable)
    return Tool("ours", f"artifacts {version}", python.parent, python)


def ensure(name: str) -> Tool | Missing:
    """Install (once) or find the peer `name`: "git", "cp", "ours" or a key of VENVS."""
    if name == "git":
        return _ensure_git()
    if name == "ours":
        return _ensure_ours()
    if name == "restic":
        return _ensure_restic()
    if name == "cp":
        cp = shutil.which("cp")
        return (
            Tool("cp", "coreutils cp", Path(cp).parent, Path(sys.executable))
            if cp
            else (Missing("cp", "cp not found on PATH"))
        )
    if name in VENVS:
        return _ensure_venv(name)
    return Missing(name, "unknown peer")


# ---------------------------------------------------------------------------- operations

PeerFn = Callable[[Tool, Ctx], Sample]


@dataclass(frozen=True, slots=True)
class PeerOp:
    """One peer's way of doing a case: which tool, the timed function, the command shown."""

    tool: str
    fn: PeerFn
    command: str
    reuse: bool = True  # may a later case on the same dataset reuse this op's timing?


def _fresh_repo(ctx: Ctx, link: bool) -> Path:
    """Empty `ctx.shared/repo` and put a copy of the dataset in it: hard links (fast) when the
    tool does not care, a real copy when it does (DVC relinks files whose st_nlink > 1)."""
    repo = ctx.shared / "repo"
    remove(ctx.shared)
    repo.mkdir(parents=True)
    copy_tree(ctx.data, repo / ctx.data.name, link=link)
    return repo


def _prepared(ctx: Ctx, prepare: Callable[[Ctx], object]) -> Path:
    """The repository left by an earlier add (made now, untimed, if there is none)."""
    repo = ctx.shared / "repo"
    if not (ctx.shared / "added").exists():
        prepare(ctx)
    return repo


# git: a throwaway identity, no user/system config, no auto-gc running behind the timings.
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
GIT_COMMIT = "git add -A && git commit -q -m x"


def _git(tool: Tool, repo: Path, script: str) -> Sample:
    return timed(["sh", "-c", script], cwd=repo, env=GIT_ENV)


def git_add(tool: Tool, ctx: Ctx) -> Sample:
    repo = _fresh_repo(ctx, link=True)  # git only reads the work tree
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "gc.auto", "0"],
        ["git", "config", "maintenance.auto", "false"],
    ):
        subprocess.run(cmd, cwd=repo, env={**os.environ, **GIT_ENV}, check=True)
    sample = _git(tool, repo, GIT_COMMIT)
    (ctx.shared / "added").touch()
    return sample


def git_status(tool: Tool, ctx: Ctx) -> Sample:
    return _git(tool, _prepared(ctx, lambda c: git_add(tool, c)), "git status")


def git_one_changed(tool: Tool, ctx: Ctx) -> Sample:
    repo = _prepared(ctx, lambda c: git_add(tool, c))
    change_one_file(repo / ctx.data.name, seed=ctx.run)
    return _git(tool, repo, GIT_COMMIT)


# DVC: no analytics or update checks; the hash-state database (site cache) lives with the
# repository, so no run sees another run's hashes (copies share inodes and mtimes).
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}


def _dvc(tool: Tool, repo: Path, *args: str | Path) -> Sample:
    return timed([tool.exe("dvc"), *map(str, args)], cwd=repo, env=DVC_ENV)


def dvc_add(tool: Tool, ctx: Ctx) -> Sample:
    repo = _fresh_repo(ctx, link=False)  # hard links would make `dvc add` relink every file
    _dvc(tool, repo, "init", "--no-scm", "-q")
    _dvc(tool, repo, "config", "core.analytics", "false")
    _dvc(tool, repo, "config", "core.check_update", "false")
    _dvc(tool, repo, "config", "core.site_cache_dir", ctx.shared / "site")
    sample = _dvc(tool, repo, "add", ctx.data.name)
    (ctx.shared / "added").touch()
    return sample


def dvc_readd(tool: Tool, ctx: Ctx) -> Sample:
    return _dvc(tool, _prepared(ctx, lambda c: dvc_add(tool, c)), "add", ctx.data.name)


def dvc_one_changed(tool: Tool, ctx: Ctx) -> Sample:
    repo = _prepared(ctx, lambda c: dvc_add(tool, c))
    change_one_file(repo / ctx.data.name, seed=ctx.run)
    return _dvc(tool, repo, "add", ctx.data.name)


def dvc_push(tool: Tool, ctx: Ctx) -> Sample:
    """Push everything to a new local-directory remote (left in `ctx.shared/remote`)."""
    repo = _prepared(ctx, lambda c: dvc_add(tool, c))
    remote = ctx.shared / "remote"
    remove(remote)
    _dvc(tool, repo, "remote", "add", "-f", "-d", "r", remote)
    sample = _dvc(tool, repo, "push")
    (ctx.shared / "pushed").touch()
    return sample


def dvc_push_again(tool: Tool, ctx: Ctx) -> Sample:
    repo = _prepared(ctx, lambda c: dvc_add(tool, c))
    if not (ctx.shared / "pushed").exists():
        dvc_push(tool, ctx)
    return _dvc(tool, repo, "push")


# W&B: build an artifact from a directory, offline; only add_dir is timed (in the child).
WANDB_SCRIPT = """
import sys, time
import wandb
art = wandb.Artifact("x", "dataset")
start = time.perf_counter()
art.add_dir(sys.argv[1])
print(f"BENCH_SECONDS={time.perf_counter() - start}")
print("entries", len(art.manifest.entries), file=sys.stderr)
"""


def wandb_add_dir(tool: Tool, ctx: Ctx) -> Sample:
    home = ctx.work / "wandb"
    env = {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(home),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_DATA_DIR": str(home / "data"),
        "WANDB_CONFIG_DIR": str(home / "config"),
        "HOME": str(home),
    }
    return timed([tool.python, "-c", WANDB_SCRIPT, ctx.data], env=env)


# raw limits: a plain copy, and blake3 of every file in one thread (in the `raw` venv).
BLAKE3_SCRIPT = """
import os, sys, time
from blake3 import blake3
CHUNK = 8 << 20
start = time.perf_counter()
n = 0
for top, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        h = blake3()
        with open(os.path.join(top, name), "rb", buffering=0) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        h.digest()
        n += 1
print(f"BENCH_SECONDS={time.perf_counter() - start}")
print("files", n, file=sys.stderr)
"""


def raw_cp(tool: Tool, ctx: Ctx) -> Sample:
    return timed([tool.exe("cp"), "-r", ctx.data, ctx.work / "copy"])


def raw_cp_sync(tool: Tool, ctx: Ctx) -> Sample:
    """A copy that is on disk when it returns, as a log is (docs/reliability.md, power loss)."""
    return timed(["sh", "-c", 'cp -r "$0" "$1" && sync', ctx.data, ctx.work / "copy"])


def raw_blake3(tool: Tool, ctx: Ctx) -> Sample:
    return timed([tool.python, "-c", BLAKE3_SCRIPT, ctx.data])


RESTIC_ENV = {"RESTIC_PASSWORD": "bench", "RESTIC_PROGRESS_FPS": "0"}


def restic_backup(tool: Tool, ctx: Ctx) -> Sample:
    """restic's first backup of the dataset into a new local repository (init untimed)."""
    repo = ctx.work / "restic"
    env = {
        **RESTIC_ENV,
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_CACHE_DIR": str(ctx.work / "cache"),
    }
    timed([tool.exe("restic"), "init", "-q"], env=env)
    return timed([tool.exe("restic"), "backup", "-q", ctx.data], env=env)


# One PUT per file to the harness's moto server: the baseline of pushing D2 file by file.
# Timed on the first PUT_SAMPLE files (sorted paths) and scaled linearly to all of them.
PUT_SAMPLE = 2000
PUT_SCRIPT = """
import os, sys, time
import boto3
bucket, root, sample = sys.argv[1], sys.argv[2], int(sys.argv[3])
paths = sorted(os.path.join(top, n) for top, _, names in os.walk(root) for n in names)
timed = paths[:sample]
s3 = boto3.client("s3")  # endpoint and credentials from the environment
s3.put_object(Bucket=bucket, Key="warm-up", Body=b"")  # connection set-up, untimed
start = time.perf_counter()
for path in timed:
    with open(path, "rb") as f:
        s3.put_object(Bucket=bucket, Key="files/" + os.path.relpath(path, root), Body=f.read())
took = time.perf_counter() - start
print(f"BENCH_NOTE={len(timed)} of {len(paths)} files put in {took:.2f} s "
      f"({len(timed) / took:.0f} PUT/s); scaled x{len(paths) / len(timed):.1f}")
print(f"BENCH_SECONDS={took * len(paths) / len(timed)}")
"""
PUT_COMMAND = (
    f"boto3 put_object per file, sequential, to the same moto; first {PUT_SAMPLE:,} files "
    "timed, scaled linearly to all"
)


def s3_put_per_file(tool: Tool, ctx: Ctx) -> Sample:
    bucket = s3server.new_bucket("baseline")
    try:
        return timed(
            [tool.python, "-c", PUT_SCRIPT, bucket, ctx.data, str(PUT_SAMPLE)],
            env=s3server.env(),
        )
    finally:
        s3server.drop_bucket(bucket)
