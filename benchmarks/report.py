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


def seconds(value: float) -> str:
    return f"{value:.3g} s" if value >= 1 else f"{value * 1e3:.3g} ms"


@dataclass(frozen=True, slots=True)
class Goal:
    """A target of ours, checked in the report: our seconds <= `limit` (peer None), our
    seconds / the peer's <= `limit` (peer: its label), our peak RSS <= `limit` bytes, or
    the count our run reported (`count`: what it counts, e.g. "objects sent") <= `limit`."""

    limit: float
    peer: str | None = None
    rss: bool = False
    count: str = ""

    def describe(self) -> str:
        if self.count:
            return f"≤ {self.limit:g} {self.count}"
        if self.rss:
            return f"peak RSS ≤ {self.limit / 1e6:g} MB"
        if self.peer is not None:
            return f"≤ {self.limit:g} × {self.peer}"
        return f"≤ {seconds(self.limit)}"

    def judge(self, ours: Outcome, theirs: Outcome | None) -> tuple[str, str]:
        """(status, measured value): status is "met", "MISSED" or "not measured"."""
        value: float | None = None
        shown = ""
        if ours.sample is not None:
            if self.count:
                value, shown = ours.sample.count, f"{ours.sample.count} {self.count}"
            elif self.rss:
                value = ours.sample.peak_rss or None
                shown = f"{ours.sample.peak_rss / 1e6:.0f} MB" if value else ""
            elif self.peer is None:
                value, shown = ours.sample.seconds, seconds(ours.sample.seconds)
            elif theirs is not None and theirs.sample is not None:
                value = ours.sample.seconds / max(theirs.sample.seconds, 1e-9)
                shown = f"{value:.2f} ×"
        if value is None:
            return "not measured", ""
        return ("met" if value <= self.limit else "MISSED"), shown


@dataclass(frozen=True, slots=True)
class Check:
    case: str
    goal: str
    status: str
    value: str


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
        return seconds(self.sample.seconds)

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
    check: str = ""  # the goals judged on this row: "≤ 0.25 × git: MISSED (0.93 ×)"

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
        "met?",
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
            r.check,
            r.ours.rss() if first else "",
            r.theirs.rss(),
            r.command,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(checks: list[Check]) -> list[str]:
    """The goals, one line each, and a count of met / missed / not measured."""
    counts = {s: sum(c.status == s for c in checks) for s in ("met", "MISSED", "not measured")}
    lines = [
        "## Targets",
        "",
        f"{counts['met']} met, {counts['MISSED']} missed, {counts['not measured']} not measured.",
        "",
        "| case | target | ours | met? |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.case} | {c.goal} | {c.value} | {c.status} |" for c in checks]
    return lines


def write(
    rows: list[Row],
    header: dict[str, str],
    out: Path = HERE / "results.md",
    checks: list[Check] | None = None,
) -> str:
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
            *(targets(checks) + [""] if checks else []),
        ]
    )
    print(text)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "facts": facts,
                "rows": [asdict(r) for r in rows],
                "targets": [asdict(c) for c in checks or []],
            },
            indent=1,
        )
        + "\n"
    )
    return text
