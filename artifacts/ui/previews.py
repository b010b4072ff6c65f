"""What the file page shows of a file: text, JSON, the first rows of a CSV or
parquet table, an image, or only its size and digest.

Only files up to ``PREVIEW_BYTES`` are previewed, read whole so that every byte shown
is verified against the logged id (a prefix of a large file cannot be); larger files
and external references show their size and digest, and download.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from dataclasses import dataclass, field
from typing import Any

PREVIEW_BYTES = 4 << 20
TEXT_CHARS = 100_000  # of a text file, at most this much is shown
ROWS = 50  # of a table
LINE_DIFF_BYTES = 256 << 10  # each side of a line diff at most
# Raster images only: a browser runs the scripts of an SVG opened from the same origin.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


@dataclass
class Preview:
    kind: str  # "text", "table", "image", or "none"
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""  # why there is no preview, or that it is cut


def image_type(path: str) -> str | None:
    dot = path.rfind(".")
    return IMAGE_TYPES.get(path[dot:].lower()) if dot >= 0 else None


def as_text(data: bytes) -> str | None:
    """``data`` as text, if it is UTF-8 with no NUL; else None."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _cut(text: str) -> tuple[str, str]:
    if len(text) <= TEXT_CHARS:
        return text, ""
    return text[:TEXT_CHARS], f"the first {TEXT_CHARS:,} characters"


def _csv(text: str, delimiter: str) -> Preview:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = [row for _, row in zip(range(ROWS + 1), reader, strict=False)]
    except csv.Error:  # a field past the module's limit: shown as the text it is
        shown, note = _cut(text)
        return Preview("text", shown, note=note)
    if not rows:
        return Preview("text", text)
    return Preview("table", header=rows[0], rows=rows[1:], note=f"the first {ROWS} rows")


def _parquet(data: bytes) -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return Preview("none", note="install pyarrow to preview parquet files")
    try:
        # The first rows only: a few MiB of parquet can hold billions of compressed rows.
        parquet = pq.ParquetFile(io.BytesIO(data))
        batch = next(parquet.iter_batches(batch_size=ROWS), None)
    except Exception as exc:  # pyarrow's errors have no common base of their own
        return Preview("none", note=f"not a readable parquet file: {exc}")
    columns = parquet.schema_arrow.names
    rows = [[row[c] for c in columns] for row in (batch.to_pylist() if batch else [])]
    return Preview("table", header=columns, rows=rows, note=f"the first {ROWS} rows")


def preview(path: str, size: int, read: Any) -> Preview:
    """The preview of the file at ``path`` of ``size`` bytes; ``read()`` gives its bytes."""
    if image_type(path):
        return Preview("image")
    if size > PREVIEW_BYTES:
        return Preview("none", note=f"larger than {PREVIEW_BYTES >> 20} MiB: no preview")
    data = read()
    lower = path.lower()
    if lower.endswith(".parquet"):
        return _parquet(data)
    text = as_text(data)
    if text is None:
        return Preview("none", note="binary file")
    if lower.endswith((".csv", ".tsv")):
        return _csv(text, "\t" if lower.endswith(".tsv") else ",")
    if lower.endswith(".json"):
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):  # not JSON, or nested past what json parses
            pass  # shown as it is
    shown, note = _cut(text)
    return Preview("text", shown, note=note)


def line_diff(old: bytes, new: bytes, old_name: str, new_name: str) -> str | None:
    """A unified diff of two small text files; None if either is not text."""
    before, after = as_text(old), as_text(new)
    if before is None or after is None:
        return None
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), old_name, new_name
    )
    return _cut("".join(lines))[0]
