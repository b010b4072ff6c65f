"""One page of a long list (a directory's entries, an artifact's versions), and where
the pages beside it start.

The pager's state is in the URL, as the item a page follows (``?after=KEY``: the next
page) or precedes (``?before=KEY``: the previous one), never as an offset: a link to a
page shows the same items after new ones are logged, and reading a page costs the
same wherever it is in the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# read(after, before, limit): at most ``limit`` items, in list order, of those after
# the key ``after``, or the last ones before the key ``before``, or the first ones.
Read = Callable[[Any, Any, int], Sequence[Any]]


@dataclass
class Page:
    items: Sequence[Any]
    previous: bool  # items come before this page
    more: bool  # items come after it


def page_of(read: Read, after: Any, before: Any, size: int) -> Page:
    """The page after ``after``, or before ``before``, or else the first page. A page
    before which fewer than ``size`` items are left is the first page."""
    if before is not None:
        items = read(None, before, size + 1)
        if len(items) > size:
            return Page(items[1:], True, True)
    elif after is not None:
        items = read(after, None, size + 1)
        return Page(items[:size], True, len(items) > size)
    items = read(None, None, size + 1)
    return Page(items[:size], False, len(items) > size)
