"""The benchmark datasets, generated from a fixed seed into a cache directory.

D1 "big":  4 files x 256 MiB of random bytes (1 GiB).
D2 "many": 100,000 files of 1-8 KiB of random bytes, 100 directories x 1,000 files.
BIG:       one file of 4 GiB of random bytes (peak memory while hashing one huge file).
F512:      one file of 512 MiB of random bytes (a large file edited in place, issue 22).
M1:        1,000,000 files of 16 bytes, 1,000 directories x 1,000 files (peak memory of a
           version with a million entries; slow to make, about 1M inodes and 4 GB on disk).

`scale` (flag `--scale`, env `BENCH_SCALE`, default 1) shrinks them for smoke runs: the file
size of D1 and BIG and the files per directory of D2 and M1 are multiplied by it. A dataset lives in
`<cache>/s<scale>/<name>/` and is complete once `<name>.done` exists beside it; generation
is skipped then. The cache is `benchmarks/.data/` unless `BENCH_DATA` says otherwise.

    python -m benchmarks.datasets [--scale 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("BENCH_DATA", Path(__file__).resolve().parent / ".data"))
SEED = 20_240_601
MiB = 1 << 20
CHUNK = 8 * MiB
NAMES = ("d1", "d2", "big", "m1", "f512")


@dataclass(frozen=True, slots=True)
class Spec:
    """`dirs` directories of `files_per_dir` files each, sized uniformly in [min_size, max_size]
    bytes (dirs == 0: the files sit directly in the dataset directory)."""

    name: str
    dirs: int
    files_per_dir: int
    min_size: int
    max_size: int


def spec(name: str, scale: float = 1.0) -> Spec:
    if name == "d1":
        size = max(4096, int(256 * MiB * scale))
        return Spec("d1", 0, 4, size, size)
    if name == "d2":
        return Spec("d2", 100, max(1, round(1000 * scale)), 1024, 8192)
    if name == "big":
        size = max(4096, int(4096 * MiB * scale))
        return Spec("big", 0, 1, size, size)
    if name == "f512":
        size = max(4096, int(512 * MiB * scale))
        return Spec("f512", 0, 1, size, size)
    if name == "m1":
        return Spec("m1", 1000, max(1, round(1000 * scale)), 16, 16)
    raise ValueError(f"unknown dataset {name!r} (expected one of {', '.join(NAMES)})")


def env_scale() -> float:
    return float(os.environ.get("BENCH_SCALE", "1"))


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        for start in range(0, size, CHUNK):
            f.write(rng.randbytes(min(CHUNK, size - start)))


def _generate(s: Spec, dest: Path) -> tuple[int, int]:
    rng = random.Random(f"{SEED}:{s.name}")
    files = total = 0
    for d in range(max(1, s.dirs)):
        folder = dest / f"dir{d:03d}" if s.dirs else dest
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(s.files_per_dir):
            size = rng.randint(s.min_size, s.max_size)
            _write_random(folder / f"file{i:04d}.bin", size, rng)
            files, total = files + 1, total + size
    return files, total


def ensure(name: str, scale: float | None = None) -> Path:
    """Return the dataset directory, generating it first unless it is already complete."""
    scale = env_scale() if scale is None else scale
    s = spec(name, scale)
    root = CACHE / f"s{scale:g}"
    dest, marker = root / name, root / f"{name}.done"
    if marker.exists():
        return dest
    tmp = root / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    files, total = _generate(s, tmp)
    tmp.rename(dest)
    facts = {"files": files, "bytes": total, "seed": SEED, "scale": scale}
    marker.write_text(json.dumps(facts) + "\n")
    took = time.perf_counter() - start
    print(f"[datasets] {name}: {files} files, {total / 1e6:.0f} MB, {took:.1f} s", file=sys.stderr)
    return dest


def info(dataset: Path) -> dict[str, float]:
    """The marker's facts about a generated dataset: files, bytes, seed, scale."""
    return json.loads((dataset.parent / f"{dataset.name}.done").read_text())


def files(root: Path) -> list[Path]:
    """All files under `root`, sorted."""
    return sorted(Path(top, n) for top, _, names in os.walk(root) for n in names)


def warm(root: Path) -> None:
    """Read every file once so the page cache is warm for the timed runs."""
    for path in files(root):
        with open(path, "rb", buffering=0) as f:
            while f.read(CHUNK):
                pass


def copy_tree(src: Path, dst: Path, link: bool = True) -> None:
    """Copy a tree to `dst` (which must not exist): hard links by default (fast; the copy
    shares inodes with `src`, so change files in it only via `change_one_file`)."""
    subprocess.run(["cp", "-al" if link else "-r", str(src), str(dst)], check=True)


def remove(path: Path) -> None:
    """Delete a tree if present (`rm -rf` is several times faster than shutil on 100k files)."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=False)


def change_one_file(root: Path, seed: int = 0) -> Path:
    """Replace one file under `root` (chosen by `seed`) with new random bytes of the same size.

    The file is written anew and renamed over the old one, never changed in place, so a
    hard-linked copy changes without touching the dataset it links to.
    """
    return change_files(root, 1, seed)[0]


def change_files(root: Path, count: int, seed: int = 0) -> list[Path]:
    """`change_one_file` of `count` files, with one listing of `root`."""
    rng = random.Random(f"{SEED}:change:{seed}")
    paths = files(root)
    changed = []
    for _ in range(count):
        path = paths[rng.randrange(len(paths))]
        tmp = path.with_name(path.name + ".new")
        _write_random(tmp, path.stat().st_size, rng)
        os.replace(tmp, path)
        changed.append(path)
    return changed


def variant(src: Path, dst: Path, seed: int = 0, link: bool = True) -> Path:
    """Make `dst` a copy of `src` with one file changed; return the changed file."""
    copy_tree(src, dst, link=link)
    return change_one_file(dst, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("names", nargs="*", default=["d1", "d2"], help=f"of {NAMES}")
    args = parser.parse_args()
    for name in args.names:
        print(ensure(name, args.scale))


if __name__ == "__main__":
    main()
