"""Run the benchmarks: generate the datasets, install the peers, time every case, report.

    python -m benchmarks.run [--scale 0.01] [--runs 3] [--slow-runs 1] [--only d2_add,d1]
                             [--peers git,dvc]

`--only` takes case names or prefixes (e.g. `d1`); `--peers` takes peer labels (git, dvc,
wandb, "raw cp", "raw cp+sync", "raw blake3", "one PUT per file", "10k entries") or "none"
to time only ours. The issue's targets (each case's `goals`) are judged at the end of the report.
"""

from __future__ import annotations

import argparse
import compileall
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import datasets, ours, peers, s3server  # noqa: E402
from benchmarks.cases import CASES, Case  # noqa: E402
from benchmarks.datasets import remove  # noqa: E402
from benchmarks.report import Check, Outcome, Row, write  # noqa: E402
from benchmarks.timing import Ctx, Sample, median  # noqa: E402

WORK = Path(__file__).resolve().parent / ".work"


def measure(fn: Callable[[Ctx], Sample | float], data: Path, shared: Path, runs: int) -> Outcome:
    """Median of `runs` runs of `fn`, each with a fresh `work` directory."""
    samples: list[Sample] = []
    shared.mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        work = WORK / "run"
        remove(work)
        work.mkdir(parents=True)
        try:
            result = fn(Ctx(data, work, shared, i))
        except NotImplementedError as e:
            return Outcome(note=str(e) or "pending")
        except Exception as e:  # noqa: BLE001 - one failing case must not stop the others
            traceback.print_exc()
            return Outcome(note=f"failed: {type(e).__name__}: {e}")
        finally:
            remove(work)
        samples.append(result if isinstance(result, Sample) else Sample(float(result)))
        print(f"    run {i + 1}/{runs}: {samples[-1].seconds:.3f} s", file=sys.stderr)
    return Outcome(median(samples), runs)


def judge(
    case: Case, ours: Outcome, measured: dict[str, tuple[str, Outcome]], checks: list[Check]
) -> dict[str, list[str]]:
    """Judge the case's goals (appended to `checks`); returns the verdicts to show on each
    peer's row (absolute goals, and those of a peer not measured, go on the first row)."""
    first = next(iter(measured))
    notes: dict[str, list[str]] = {}
    for goal in case.goals:
        theirs = measured[goal.peer][1] if goal.peer in measured else None
        status, value = goal.judge(ours, theirs)
        checks.append(Check(case.name, goal.describe(), status, value))
        row = goal.peer if goal.peer in measured else first
        notes.setdefault(row, []).append(f"{goal.describe()}: {status}")
    return notes


def selected(only: list[str]) -> list[Case]:
    return [c for c in CASES if not only or any(c.name.startswith(x) for x in only)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Time our tool and its peers on D1 and D2.")
    ap.add_argument(
        "--scale",
        type=float,
        default=datasets.env_scale(),
        help="dataset scale (env BENCH_SCALE; default 1 = full size)",
    )
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument(
        "--slow-runs", type=int, default=None, help="runs for cases marked slow (default: --runs)"
    )
    ap.add_argument(
        "--only",
        type=lambda s: s.split(","),
        default=[],
        help="comma-separated case names or prefixes",
    )
    ap.add_argument(
        "--peers",
        type=lambda s: s.split(","),
        default=None,
        help="comma-separated peer labels to run, or 'none'",
    )
    args = ap.parse_args(argv)
    slow_runs = args.slow_runs or args.runs

    cases = selected(args.only)
    if not cases:
        ap.error(f"no case matches {args.only}; cases: {', '.join(c.name for c in CASES)}")
    # Byte-compile our code as a pip install would: every timed command is a fresh
    # interpreter, and PYTHONDONTWRITEBYTECODE (set on some machines) would make each one
    # compile our modules again.
    for package in ("cas", "artifacts", "remotes"):
        compileall.compile_dir(ours.ROOT / package, quiet=1)
    data = {name: datasets.ensure(name, args.scale) for name in {c.dataset for c in cases}}
    tools: dict[str, peers.Tool | peers.Missing] = {}
    reused: dict[tuple[object, str], Outcome] = {}  # the same peer op on the same dataset
    remove(WORK)

    rows: list[Row] = []
    checks: list[Check] = []
    try:
        for case in cases:
            runs = slow_runs if case.slow else args.runs
            src = data[case.dataset]
            print(f"[run] {case.name} ({runs} runs)", file=sys.stderr)
            datasets.warm(src)
            mine = Outcome(note="n/a")
            if case.ours is not None:
                print("  ours", file=sys.stderr)
                mine = measure(case.ours, src, WORK / f"ours-{case.dataset}", runs)
            chosen = {k: v for k, v in case.peers.items() if args.peers is None or k in args.peers}
            measured: dict[str, tuple[str, Outcome]] = {}
            for label, op in chosen.items():
                tool = tools.get(op.tool) or tools.setdefault(op.tool, peers.ensure(op.tool))
                key = (op.fn, case.dataset)
                if isinstance(tool, peers.Missing):
                    theirs = Outcome(note=f"missing: {tool.reason}")
                elif op.reuse and key in reused:
                    theirs = reused[key]
                else:
                    print(f"  {label}: {op.command}", file=sys.stderr)
                    shared = WORK / f"{op.tool}-{case.dataset}"
                    theirs = measure(lambda ctx, t=tool, f=op.fn: f(t, ctx), src, shared, runs)
                    if op.reuse:
                        reused[key] = theirs
                measured[label] = (op.command, theirs)
            if not measured:
                measured[""] = ("", Outcome(note="n/a"))
            notes = judge(case, mine, measured, checks)
            for label, (command, theirs) in measured.items():
                check = "; ".join(notes.get(label, []))
                rows.append(Row(case.name, label, command, mine, theirs, case.target, check))
    finally:
        remove(WORK)
        s3server.stop()

    facts = {"scale": f"{args.scale:g}", "runs": f"{args.runs} (slow cases: {slow_runs})"}
    for name, path in sorted(data.items()):
        i = datasets.info(path)
        facts[name] = f"{i['files']} files, {i['bytes'] / 1e6:.0f} MB, seed {i['seed']}"
    for name, tool in sorted(tools.items()):
        facts[f"peer {name}"] = (
            tool.version if isinstance(tool, peers.Tool) else f"missing: {tool.reason}"
        )
    facts["ours"] = (
        f"`{' '.join(ours.CLI)}` in a subprocess with ARTIFACTS_STORE set (the draft cases and "
        "big_cas: a script in our interpreter, timing only the operation)"
    )
    facts["notes"] = (
        "page cache warm; work trees are copies made untimed (hard links for git and ours, "
        "real copies for DVC, which relinks hard-linked files); git with "
        "gc.auto=0; DVC hash state per repo; W&B and blake3 time only the "
        "operation inside the child (no interpreter start-up); RSS = child peak; "
        "S3 = moto's ThreadedMotoServer inside the harness, requests serialized as in the "
        "tests; clone + download = the sum of the two commands"
    )
    write(rows, facts, checks=checks)


if __name__ == "__main__":
    main()
