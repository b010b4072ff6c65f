"""Timing one subprocess: wall time with `time.perf_counter`, peak RSS of the child.

Peak RSS comes from GNU `/usr/bin/time -f %M` where present: a child spawned straight from
the harness would inherit the harness's own resident size as its `ru_maxrss` floor.
Without it, `os.wait4`'s figure is used (an upper bound by the harness's size).

A child may report the time of its measured section itself by printing a line
`BENCH_SECONDS=<float>` on stdout (used where interpreter start-up is not part of the
operation, e.g. W&B `add_dir` or the raw blake3 loop); that figure then replaces wall time.
Lines `BENCH_NOTE=<text>` are echoed to the harness's stderr (e.g. every repetition's time).
A line `BENCH_COUNT=<int>` reports a count the case is judged on (e.g. objects a push sent).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SECONDS_TAG = "BENCH_SECONDS="
NOTE_TAG = "BENCH_NOTE="
COUNT_TAG = "BENCH_COUNT="
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else ""


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed run: seconds, the child's peak resident set size in bytes (0 if unknown),
    and what the child counted (BENCH_COUNT; 0 if nothing)."""

    seconds: float
    peak_rss: int = 0
    count: int = 0


class CommandFailed(RuntimeError):
    """A timed command exited non-zero; carries the command and the tail of its output."""

    def __init__(self, cmd: Sequence[str], code: int, output: str) -> None:
        super().__init__(f"{' '.join(cmd)} exited {code}: {output[-2000:]}")
        self.cmd, self.code, self.output = list(cmd), code, output


@dataclass(frozen=True, slots=True)
class Ctx:
    """What one timed run gets.

    data:   the dataset directory; read it, never modify it (copies are hard links to it).
    work:   a fresh empty directory for this run, on the same filesystem; removed afterwards.
    shared: a directory kept across runs and cases of one tool on one dataset (for a prepared
            repository the incremental cases reuse); removed at the end of the harness run.
    run:    the run's index, 0..N-1 (e.g. the seed of the file a "one changed" run changes).
    """

    data: Path
    work: Path
    shared: Path
    run: int


def timed(
    cmd: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Sample:
    """Run `cmd` once and time it; raise CommandFailed on a non-zero exit.

    Output goes to a temporary file (no pipe back-pressure). `env` entries are added to
    the current environment.
    """
    args = [os.fspath(c) for c in cmd]
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.NamedTemporaryFile("r") as rss:
        wrap = [GNU_TIME, "-f", "%M", "-o", rss.name] if GNU_TIME else []
        # Flush what earlier commands and the untimed setup left dirty: otherwise the
        # kernel writes it back during this command, and whichever tool runs right after
        # a big write (the first case follows the datasets' 5 GB) pays for it.
        os.sync()
        start = time.perf_counter()
        proc = subprocess.Popen(
            wrap + args, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
        peak_kib = usage.ru_maxrss  # KiB on Linux
        if GNU_TIME and proc.returncode == 0:
            peak_kib = int(rss.read().split()[-1])
    if proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, output)
    count = 0
    for line in output.splitlines():
        if line.startswith(SECONDS_TAG):
            seconds = float(line[len(SECONDS_TAG) :])
        elif line.startswith(COUNT_TAG):
            count = int(line[len(COUNT_TAG) :])
        elif line.startswith(NOTE_TAG):
            print(f"      {line[len(NOTE_TAG) :]}", file=sys.stderr)
    return Sample(seconds, peak_kib * 1024, count)


def median(samples: Sequence[Sample]) -> Sample:
    """Median seconds, peak RSS and count of several runs."""
    return Sample(
        statistics.median(s.seconds for s in samples),
        int(statistics.median(s.peak_rss for s in samples)),
        int(statistics.median(s.count for s in samples)),
    )
