"""The results table: one row per (case, peer) with ours, the peer, ours/peer and the target.

Printed to stdout and written to `benchmarks/results.md` (plus `results.json` for scripts).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.timing import Sample

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Outcome:
    """A measured median (`sample`, over `runs` runs) or why there is none (`note`:
    "pending", "missing: <reason>", "failed: <error>", "n/a")."""

    sample: Sample | None = None
    runs: int = 0
    note: str = ""

    def cell(self) -> str:
        if self.sample is None:
            return self.note
        return f"{self.sample.seconds:.3g} s"

    def rss(self) -> str:
        if self.sample is None or not self.sample.peak_rss:
            return ""
        return f"{self.sample.peak_rss / 2**20:.0f} MiB"


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    peer: str
    command: str
    ours: Outcome
    theirs: Outcome
    target: str

    def ratio(self) -> str:
        if self.ours.sample is None or self.theirs.sample is None:
            return ""
        return f"{self.ours.sample.seconds / max(self.theirs.sample.seconds, 1e-9):.2f}"


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[Row]) -> str:
    head = [
        "case",
        "peer",
        "ours",
        "peer time",
        "ours/peer",
        "target",
        "ours RSS",
        "peer RSS",
        "peer command",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last_case = ""
    for r in rows:
        first = r.case != last_case
        last_case = r.case
        cells = [
            r.case if first else "",
            r.peer,
            r.ours.cell() if first else "",
            _short(r.theirs.cell()),
            r.ratio(),
            r.target if first else "",
            r.ours.rss() if first else "",
            r.theirs.rss(),
            r.command,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(rows: list[Row], header: dict[str, str], out: Path = HERE / "results.md") -> str:
    """Print the table and write it (with the run's facts) to `out` and `out`.json."""
    facts = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "host": platform.node(),
        "python": platform.python_version(),
        **header,
    }
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            *(f"- {k}: {v}" for k, v in facts.items()),
            "",
            "Times are medians; ours/peer < 1 means we are faster. Compare ratios within one run.",
            "",
            table(rows),
            "",
        ]
    )
    print(text)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({"facts": facts, "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
    )
    return text
