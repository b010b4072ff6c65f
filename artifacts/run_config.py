"""W&B's ``run.config``: a run's hyperparameters, read as a dict or by attribute, and
changed as W&B's are (``config.lr = 0.1``, ``config["lr"]``, ``update()``,
``setdefaults()``), each change in the run's record at once, so that none is lost."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import ConfigError
from .metadata import normalize_metadata

# Records the given keys (converted) in the run's record; gives back the whole config.
Write = Callable[[dict[str, Any]], dict[str, Any]]


def config_items(config: Any) -> dict[str, Any]:
    """A config as W&B takes one: a mapping, or an object such as argparse's Namespace
    (its attributes); keys lose their dashes (``--lr`` is ``lr``), values converted as
    metadata is (artifacts.metadata), or refused."""
    if config is not None and not isinstance(config, Mapping) and hasattr(config, "__dict__"):
        config = vars(config)
    items = normalize_metadata(config, "config")
    return {key.strip("-"): value for key, value in items.items()}


class RunConfig(Mapping[str, Any]):
    def __init__(self, items: dict[str, Any], write: Write) -> None:
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_write", write)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

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
            raise AttributeError(f"the run's config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, config: Any, allow_val_change: bool | None = None) -> None:
        """Set these keys; one already set keeps its value unless ``allow_val_change``."""
        changed = config_items(config)
        if not allow_val_change:
            for key, value in changed.items():
                if key in self._items and self._items[key] != value:
                    raise ConfigError(
                        f"config key {key!r} is {self._items[key]!r}: pass "
                        f"allow_val_change=True to config.update() to make it {value!r}"
                    )
        self._record(changed)

    def setdefaults(self, config: Any) -> None:
        """Set the keys not set yet."""
        changed = config_items(config)
        self._record({k: v for k, v in changed.items() if k not in self._items})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def _record(self, changed: dict[str, Any]) -> None:
        if changed and any(self._items.get(k, ...) != v for k, v in changed.items()):
            object.__setattr__(self, "_items", self._write(changed))
