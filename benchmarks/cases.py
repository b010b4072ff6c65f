"""The benchmark cases: one operation on one dataset, done by us and by each peer.

The order of CASES matters within a dataset: the "add" cases leave the prepared repository
(in `ctx.shared`) that the incremental and push cases reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from benchmarks import ours
from benchmarks import peers as p
from benchmarks.timing import Ctx, Sample

OursFn = Callable[[Ctx], Sample | float]


@dataclass(frozen=True, slots=True)
class Case:
    """name: unique id ("d2_add"); dataset: "d1" or "d2"; what: one line for the report;
    ours: our timed function (None: not applicable); peers: label -> how a peer does it;
    target: what we aim for, shown in the report; slow: run `--slow-runs` times, not `--runs`.
    """

    name: str
    dataset: str
    what: str
    ours: OursFn | None
    peers: Mapping[str, p.PeerOp] = field(default_factory=dict)
    target: str = ""
    slow: bool = False


CP = p.PeerOp("cp", p.raw_cp, "cp -r <data> <dst>")
BLAKE3 = p.PeerOp("raw", p.raw_blake3, "blake3 of every file, 1 thread, 8 MiB reads")
GIT_ADD = p.PeerOp("git", p.git_add, p.GIT_COMMIT)
DVC_ADD = p.PeerOp("dvc", p.dvc_add, "dvc add <dir>")
WANDB = p.PeerOp("wandb", p.wandb_add_dir, 'Artifact("x","dataset").add_dir(<dir>), offline')

CASES: list[Case] = [
    Case(
        "d1_add",
        "d1",
        "first add of D1 (4 x 256 MiB)",
        ours.d1_add,
        {"git": GIT_ADD, "dvc": DVC_ADD, "wandb": WANDB, "raw cp": CP, "raw blake3": BLAKE3},
        target="< every peer; near the blake3 stream limit",
    ),
    Case(
        "d2_add",
        "d2",
        "first add of D2 (100k small files)",
        ours.d2_add,
        {"git": GIT_ADD, "dvc": DVC_ADD, "wandb": WANDB, "raw cp": CP, "raw blake3": BLAKE3},
        target="< every peer; below cp -r (pack small objects)",
        slow=True,
    ),
    Case(
        "d2_nothing_changed",
        "d2",
        "D2 again, nothing changed",
        ours.d2_nothing_changed,
        {
            "git": p.PeerOp("git", p.git_status, "git status"),
            "dvc": p.PeerOp("dvc", p.dvc_readd, "dvc add <dir> (again)"),
        },
        target="<= git status (stat only, no reads)",
    ),
    Case(
        "d2_one_changed",
        "d2",
        "D2 with one file changed, re-add",
        ours.d2_one_changed,
        {
            "git": p.PeerOp("git", p.git_one_changed, p.GIT_COMMIT),
            "dvc": p.PeerOp("dvc", p.dvc_one_changed, "dvc add <dir> (again)"),
        },
        target="<= git (cost of one file + walk)",
    ),
    Case(
        "d1_push",
        "d1",
        "push D1 to an empty local-directory remote",
        ours.d1_push,
        {
            "dvc": p.PeerOp("dvc", p.dvc_push, "dvc push (to dvc remote add -d r <dir>)"),
            "raw cp": CP,
        },
        target="< DVC; near cp -r",
    ),
    Case(
        "d2_push",
        "d2",
        "push D2 to an empty local-directory remote",
        ours.d2_push,
        {
            "dvc": p.PeerOp("dvc", p.dvc_push, "dvc push (to dvc remote add -d r <dir>)"),
            "raw cp": CP,
        },
        target="< DVC; below cp -r (packed)",
        slow=True,
    ),
    Case(
        "d2_push_nothing_new",
        "d2",
        "push D2 again, nothing new",
        ours.d2_push_nothing_new,
        {"dvc": p.PeerOp("dvc", p.dvc_push_again, "dvc push (again)")},
        target="< 1 s (one listing or index compare)",
    ),
]
