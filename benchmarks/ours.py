"""Our tool's side of each benchmark case: one function per case, filled in by the lead.

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
"""

from __future__ import annotations

from benchmarks.timing import Ctx, Sample


def d1_add(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")


def d2_add(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")


def d2_nothing_changed(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")


def d2_one_changed(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")


def d1_push(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")


def d2_push(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")


def d2_push_nothing_new(ctx: Ctx) -> Sample | float:
    raise NotImplementedError("pending")
