"""The benchmark cases: one operation on one dataset, done by us and by each peer.

The order of CASES matters within a dataset: the "add" cases leave the prepared repository
(in `ctx.shared`) that the incremental and push cases reuse.

`goals` are the issue's targets, judged in the report ("met?" column and the Targets list);
`target` is the same in words, plus context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from benchmarks import ours
from benchmarks import peers as p
from benchmarks.report import Goal
from benchmarks.timing import Ctx, Sample

OursFn = Callable[[Ctx], Sample | float]


@dataclass(frozen=True, slots=True)
class Case:
    """name: unique id ("d2_add"); dataset: "d1", "d2", "big" or "m1"; what: one line for the
    report; ours: our timed function (None: not applicable); peers: label -> how a peer does
    it; target: what we aim for, shown in the report; goals: the targets the report checks;
    slow: run `--slow-runs` times, not `--runs`.
    """

    name: str
    dataset: str
    what: str
    ours: OursFn | None
    peers: Mapping[str, p.PeerOp] = field(default_factory=dict)
    target: str = ""
    slow: bool = False
    goals: tuple[Goal, ...] = ()


CP = p.PeerOp("cp", p.raw_cp, "cp -r <data> <dst>")
# The same, timed again right beside the case instead of reused from the first log's:
# creating 100,000 files here drifts from 9 s to over 60 s as the disk's backlog grows.
CP_SYNC = p.PeerOp("cp", p.raw_cp_sync, "cp -r <data> <dst> && sync (a durable copy)")
CP_BESIDE = p.PeerOp("cp", p.raw_cp, "cp -r <data> <dst>, timed beside this case", reuse=False)
BLAKE3 = p.PeerOp("raw", p.raw_blake3, "blake3 of every file, 1 thread, 8 MiB reads")
GIT_ADD = p.PeerOp("git", p.git_add, p.GIT_COMMIT)
DVC_ADD = p.PeerOp("dvc", p.dvc_add, "dvc add <dir>")
RESTIC = p.PeerOp("restic", p.restic_backup, "restic init (untimed); restic backup <data>")
WANDB = p.PeerOp("wandb", p.wandb_add_dir, 'Artifact("x","dataset").add_dir(<dir>), offline')

PUT_PER_FILE = p.PeerOp("ours", p.s3_put_per_file, p.PUT_COMMAND)
DRAFT_10K = p.PeerOp(
    "ours",
    lambda tool, ctx: ours.draft_10k(ctx),
    "ours, the same draft of a 10-directory version (10k entries at full scale)",
)

DRAFT_10K_ALONE = p.PeerOp(
    "ours",
    lambda tool, ctx: ours.draft_10k(ctx),
    "ours, the same drafts with no gc running",
)

NESTED_LOG = p.PeerOp(
    "ours",
    lambda tool, ctx: ours.nested_100k_add(ctx),
    "ours, the same files as D2 has them (100 directories x 1,000), timed beside",
    reuse=False,
)
NESTED_DRAFT = p.PeerOp(
    "ours",
    lambda tool, ctx: ours.draft_100k(ctx),
    "ours, the same drafts of D2 as it is (100 directories x 1,000)",
    reuse=False,
)
ONE_PROCESS = p.PeerOp(
    "ours",
    lambda tool, ctx: ours.d2_one_process_s3_log(ctx),
    "ours, one process: log D2 into a fresh bucket (in-process; root id checked equal)",
    reuse=False,
)

CASES: list[Case] = [
    Case(
        "d1_add",
        "d1",
        "first log of D1 (4 x 256 MiB)",
        ours.d1_add,
        {
            "git": GIT_ADD,
            "dvc": DVC_ADD,
            "wandb": WANDB,
            "raw cp": CP,
            "raw cp+sync": CP_SYNC,
            "raw blake3": BLAKE3,
        },
        target="≤ 1.3 × cp -r; < every peer; near the blake3 stream limit",
        goals=(Goal(1.3, "raw cp"),),
    ),
    Case(
        "d2_add",
        "d2",
        "first log of D2 (100k small files)",
        ours.d2_add,
        {"git": GIT_ADD, "dvc": DVC_ADD, "wandb": WANDB, "raw cp": CP, "raw blake3": BLAKE3},
        target="≤ 0.25 × git; ≤ 0.1 × DVC and × W&B",
        slow=True,
        goals=(Goal(0.25, "git"), Goal(0.1, "dvc"), Goal(0.1, "wandb")),
    ),
    Case(
        "d2_nothing_changed",
        "d2",
        "D2 logged again, nothing changed",
        ours.d2_nothing_changed,
        {
            "git": p.PeerOp("git", p.git_status, "git status"),
            "dvc": p.PeerOp("dvc", p.dvc_readd, "dvc add <dir> (again)"),
        },
        target="≤ 1 s and ≤ 3 × git status (stat only, no reads)",
        goals=(Goal(1.0), Goal(3.0, "git")),
    ),
    Case(
        "d2_one_changed",
        "d2",
        "D2 with one file changed, logged again",
        ours.d2_one_changed,
        {
            "git": p.PeerOp("git", p.git_one_changed, p.GIT_COMMIT),
            "dvc": p.PeerOp("dvc", p.dvc_one_changed, "dvc add <dir> (again)"),
        },
        target="≤ 1 s (cost of one file + walk)",
        goals=(Goal(1.0),),
    ),
    Case(
        "d2_diff",
        "d2",
        "diff of two 100k-file versions differing in one file",
        ours.d2_diff,
        target="< 0.5 s",
        goals=(Goal(0.5),),
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
        target="< DVC; near cp -r (informal)",
    ),
    Case(
        "d1_download_s3_cached",
        "d1",
        "second download of D1 from an S3 bucket (moto): its files from the download cache",
        ours.d1_download_s3_cached,
        {"raw cp": CP_BESIDE},
        target="≤ 1.2 × cp -r (issue 19)",
        goals=(Goal(1.2, "raw cp"),),
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
        target="< DVC; below cp -r (packed) (informal)",
        slow=True,
    ),
    Case(
        "d2_push_nothing_new",
        "d2",
        "push D2 to the local-directory remote again, nothing new",
        ours.d2_push_nothing_new,
        {"dvc": p.PeerOp("dvc", p.dvc_push_again, "dvc push (again)")},
        target="≤ 1 s (one listing or index compare)",
        goals=(Goal(1.0),),
    ),
    Case(
        "d2_clone_download",
        "d2",
        "clone the local-directory remote + download d2:latest",
        ours.d2_clone_download,
        {"raw cp": CP_BESIDE},
        target="≤ 1.5 × cp -r",
        goals=(Goal(1.5, "raw cp"),),
    ),
    Case(
        "d2_push_s3",
        "d2",
        "push D2 to an empty S3 bucket (moto on loopback)",
        ours.d2_push_s3,
        {"one PUT per file": PUT_PER_FILE},
        target="≥ 10 × faster than one PUT per file",
        slow=True,
        goals=(Goal(0.1, "one PUT per file"),),
    ),
    Case(
        "d2_push_s3_nothing_new",
        "d2",
        "push D2 to the S3 bucket again, nothing new",
        ours.d2_push_s3_nothing_new,
        target="≤ 1 s",
        goals=(Goal(1.0),),
    ),
    Case(
        "draft_100k",
        "d2",
        "use_artifact + new_draft + add_file (one change) + log_artifact, 100k entries "
        f"(in-process, median of {ours.DRAFT_REPS})",
        ours.draft_100k,
        {"10k entries": DRAFT_10K},
        target="≤ 50 ms, and ≤ 1.5 × the 10k case",
        goals=(Goal(0.05), Goal(1.5, "10k entries")),
    ),
    Case(
        "flat_100k_add",
        "d2",
        "first log of D2's 100k files in one directory (hard links)",
        ours.flat_100k_add,
        {"nested": NESTED_LOG},
        target="≤ 1.2 × the same files nested (issue 21)",
        slow=True,
        goals=(Goal(1.2, "nested"),),
    ),
    Case(
        "flat_100k_draft",
        "d2",
        "the drafts of draft_100k, one file of the flat 100k-file version "
        f"(in-process, median of {ours.DRAFT_REPS})",
        ours.flat_100k_draft,
        {"nested": NESTED_DRAFT},
        target="≤ 50 ms, and ≤ 2 × nested (issue 21)",
        goals=(Goal(0.05), Goal(2.0, "nested")),
    ),
    Case(
        "flat_1m_draft",
        "d2",
        "the drafts of draft_100k, one file of a flat 1M-entry version built by trees "
        f"(in-process, median of {ours.DRAFT_REPS})",
        ours.flat_1m_draft,
        target="≤ 50 ms (issue 21)",
        goals=(Goal(0.05),),
    ),
    Case(
        "flat_1m_diff",
        "d2",
        "diff of two flat 1M-entry versions differing in 10 entries "
        f"(in-process, median of {ours.DRAFT_REPS})",
        ours.flat_1m_diff,
        target="≤ 100 ms (issue 21)",
        goals=(Goal(0.1),),
    ),
    Case(
        "flat_1m_push",
        "d2",
        "push to a directory remote of a flat 1M-entry version with 10 entries changed, "
        "10 pages apart (the remote has the version before)",
        ours.flat_1m_push,
        target="≤ 20 objects sent (issue 21)",
        goals=(Goal(20, count="objects sent"),),
    ),
    Case(
        "d2_dask_parts",
        "d2",
        f"D2 as {ours.DASK_WORKERS} parts upserted by {ours.DASK_WORKERS} Dask worker "
        "processes into a fresh bucket (moto), then a finish (in-process, cluster start "
        "untimed)",
        ours.d2_dask_parts,
        {"one process": ONE_PROCESS},
        target="the same root id as one process; time reported (issue 21)",
        slow=True,
    ),
    Case(
        "draft_10k_beside_gc",
        "d2",
        "the 10k-entry drafts with gc (grace 0) running in a loop in another process "
        f"(in-process, median of {ours.DRAFT_REPS})",
        ours.draft_10k_beside_gc,
        {"alone": DRAFT_10K_ALONE},
        target="≤ 1.2 × the same drafts alone (writers never wait for gc)",
        goals=(Goal(1.2, "alone"),),
    ),
    Case(
        "draft_10k_beside_paced_gc",
        "d2",
        "the same, with the gc loop kept to a share of one CPU "
        f"(`artifacts gc --max-cpu {ours.GC_SHARE}`)",
        ours.draft_10k_beside_paced_gc,
        {"alone": DRAFT_10K_ALONE},
        target="≤ 1.2 × the same drafts alone",
        goals=(Goal(1.2, "alone"),),
    ),
    Case(
        "ui_versions_100k",
        "d2",
        "artifacts ui: the versions page of 100 versions of 100k files, the version's page "
        "and a directory's (slowest median of 5 first views, each by a new app)",
        ours.ui_versions_100k,
        target="≤ 300 ms each",
        goals=(Goal(0.3),),
    ),
    Case(
        "ui_lineage_1000",
        "d2",
        "artifacts ui: the lineage graph of 200 runs and 1,000 versions, laid out and drawn "
        "(median of 5 first views, each by a new app)",
        ours.ui_lineage_1000,
        target="≤ 1 s",
        goals=(Goal(1.0),),
    ),
    Case(
        "big_log",
        "big",
        "artifacts log of one 4 GiB file (peak memory)",
        ours.big_log,
        {"raw cp": CP},
        target="peak RSS ≤ 200 MB",
        goals=(Goal(200e6, rss=True),),
    ),
    Case(
        "big_cas",
        "big",
        "cas only: ObjectStore.put_blob_file of the 4 GiB file (peak memory)",
        ours.big_cas,
        target="peak RSS ≤ 200 MB",
        goals=(Goal(200e6, rss=True),),
    ),
    Case(
        "big_chunked",
        "big",
        "cas only: put_blob_file of the 4 GiB file stored as chunks (peak memory)",
        ours.big_chunked,
        target="peak RSS ≤ 200 MB (issue 22)",
        goals=(Goal(200e6, rss=True),),
    ),
    Case(
        "big_range_read_s3",
        "big",
        "1 MiB from the middle of the 4 GiB file stored as chunks in a moto bucket, read "
        "through artifacts://: bytes the server sent",
        ours.big_range_read_s3,
        target="≤ 2 × the range + one chunk (2.25 MiB; issue 22)",
        goals=(Goal(ours.RANGE_BOUND, count="bytes fetched"),),
    ),
    Case(
        "f512_log",
        "f512",
        "first log of one 512 MiB file",
        ours.f512_log,
        {"raw cp": CP, "raw cp+sync": CP_SYNC, "restic": RESTIC},
        target="≤ 1.3 × cp; ≤ 0.25 × restic's first backup (issue 22)",
        goals=(Goal(1.3, "raw cp"), Goal(0.25, "restic")),
    ),
    Case(
        "f512_edit_middle",
        "f512",
        "the 512 MiB file logged again with 1 MiB rewritten in its middle: bytes the store grew",
        ours.f512_edit_middle,
        target="≤ 2 MiB (restic: +3 MiB; issue 22)",
        goals=(Goal(2 << 20, count="bytes stored"),),
    ),
    Case(
        "f512_insert_start",
        "f512",
        "the 512 MiB file logged again with 100 bytes inserted at its start: bytes the store grew",
        ours.f512_insert_start,
        target="≤ 1 MiB (restic: +0 MiB; issue 22)",
        goals=(Goal(1 << 20, count="bytes stored"),),
    ),
    Case(
        "f512_edit_push_s3",
        "f512",
        "push to a moto bucket holding the 512 MiB file of the version with 1 MiB rewritten "
        "in its middle: bytes sent",
        ours.f512_edit_push_s3,
        target="≤ 2 MiB (issue 22)",
        goals=(Goal(2 << 20, count="bytes sent"),),
    ),
    Case(
        "m1_log",
        "m1",
        "first log of 1,000,000 files of 16 bytes (peak memory)",
        ours.m1_log,
        target="peak RSS ≤ 300 MB (issue 21; W&B: 4.3 GiB at 1M entries)",
        slow=True,
        goals=(Goal(300e6, rss=True),),
    ),
    Case(
        "m1_diff",
        "m1",
        f"diff of two 1,000,000-file versions differing in {ours.M1_CHANGED} files (peak memory)",
        ours.m1_diff,
        target="peak RSS ≤ 300 MB (issue 21)",
        goals=(Goal(300e6, rss=True),),
    ),
    Case(
        "m1_push",
        "m1",
        "push a 1,000,000-file version to an empty local-directory remote (peak memory)",
        ours.m1_push,
        target="peak RSS ≤ 300 MB (issue 21)",
        slow=True,
        goals=(Goal(300e6, rss=True),),
    ),
]
