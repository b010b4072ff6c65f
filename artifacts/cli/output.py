"""What commands print: tables, sizes, times, JSON, escaped names, progress bars,
warnings, and the one line that says why a command failed."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cas.errors import CasError

PROG = "artifacts"
# C0 and C1 controls, DEL, the line/paragraph separators, and the bidirectional marks,
# embeddings, overrides and isolates (which turn the rest of a line around): none belongs
# in a terminal line; and the surrogates that stand for a path's bytes that are no UTF-8.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\udc80-\udcff]")


class Failed(CasError):
    """The command ran, and found something wrong (its output says what)."""


def progress_shown() -> bool:
    return sys.stderr.isatty()


def bar(total: int | None, desc: str, unit: str = "B") -> Any:
    """A progress bar on stderr, drawn only on a terminal."""
    from tqdm import tqdm  # imported late: most commands never draw a bar

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        file=sys.stderr,
        disable=not progress_shown(),
        leave=False,
        dynamic_ncols=True,
    )


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def when(ns: int | None) -> str:
    if not ns:
        return "-"
    try:
        return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # past datetime's end (a TTL of ages)
        return "after 9999-12-31" if ns > 0 else "before 0001-01-01"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def printable(text: object) -> str:
    """``text`` with control characters escaped (``\\x1b``), so a name can't drive the
    terminal, and a path's bytes that are no UTF-8 as those bytes (``\\xff``)."""
    return _CONTROL.sub(_escaped, str(text))


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if "\udc80" <= char <= "\udcff":  # os.fsdecode's stand-in for the byte char - 0xdc00
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


def table(headers: Sequence[str], rows: list[Sequence[str]]) -> None:
    rows = [[printable(c) for c in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def warn(message: str) -> None:
    print(f"{PROG}: warning: {printable(message)}", file=sys.stderr)


def show_warning(message: Any, *_args: Any, **_kwargs: Any) -> None:
    warn(str(message))  # one line, not Python's two-line file:line format


def one_line(exc: BaseException) -> str:
    """What went wrong, in one line."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
