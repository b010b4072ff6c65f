"""The part W&B's ``run.config`` and ``run.summary`` share: a mapping over ``_items``
whose keys read as attributes too (``config.lr``) and whose attributes, and items, are
set through the subclass's ``update`` (``config.lr = 0.1``, ``summary["acc"] = 0.9``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class KeysAsAttributes(Mapping[str, Any]):
    """Subclasses set ``_items`` (with ``object.__setattr__``) and define ``update``."""

    _items: dict[str, Any]
    _what = "mapping"  # named in the error for a key it lacks: "the run's config"

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):  # not a key: copy and pickle ask before _items is set
            raise AttributeError(key)
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"{self._what} has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})
