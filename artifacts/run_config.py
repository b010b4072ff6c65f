"""W&B's ``run.config``: a run's hyperparameters, read as a dict or by attribute, and
changed as W&B's are (``config.lr = 0.1``, ``config["lr"]``, ``update()``,
``setdefaults()``), each change in the run's record at once, so that none is lost. Also
how ``init`` takes one: a dict, an object, or a config file in W&B's format, over
``config-defaults.yaml``, its keys chosen by ``config_include_keys``/``_exclude_keys``."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from cas.errors import UsageError

from .errors import ConfigError
from .keyed import KeysAsAttributes
from .metadata import normalize_metadata

DEFAULTS_FILE = "config-defaults.yaml"  # W&B's: a run's config starts from it

# Records the given keys (converted) in the run's record; gives back the whole config.
Write = Callable[[dict[str, Any]], dict[str, Any]]


def config_items(config: Any) -> dict[str, Any]:
    """A config as W&B takes one: a mapping, an object such as argparse's Namespace
    (its attributes) or the path of a config file; keys lose their dashes (``--lr`` is
    ``lr``), values converted as metadata is (artifacts.metadata), or refused."""
    if isinstance(config, str | os.PathLike):
        config = config_file(config)
    if config is not None and not isinstance(config, Mapping) and hasattr(config, "__dict__"):
        config = vars(config)
    items = normalize_metadata(config, "config")
    return {key.strip("-"): value for key, value in items.items()}


def chosen_keys(config: Any, include: Any, exclude: Any) -> dict[str, Any]:
    """W&B's config_include_keys and config_exclude_keys: the keys kept (a secret left
    out is never recorded)."""
    if include and exclude:
        raise UsageError("give config_include_keys or config_exclude_keys, not both")
    items = config_items(config)
    if include:
        items = {k: v for k, v in items.items() if k in include}
    return {k: v for k, v in items.items() if k not in (exclude or ())}


def config_defaults() -> dict[str, Any]:
    """W&B's ``config-defaults.yaml`` in the working directory, which every run's config
    starts from; none if there is no such file."""
    return config_items(DEFAULTS_FILE) if os.path.isfile(DEFAULTS_FILE) else {}


def config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A config file as W&B reads one: YAML (or JSON), each key's value under ``value``
    (``lr: {value: 0.1, desc: ...}``), ``wandb_version: 1`` allowed."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            loaded = _parsed(name, f.read())
    except FileNotFoundError:
        raise ConfigError(
            f"no config file {name}: give a YAML or JSON file's path, or a dict"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {name}: {e.strerror}") from None
    if loaded is None:  # as W&B: said, and no keys from it
        warnings.warn(f"config file {name} is empty: no config taken from it", stacklevel=4)
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {name} holds no keys: give each as `key: {{value: ...}}`")
    if loaded.pop("wandb_version", 1) != 1:
        raise ConfigError(f"config file {name}: W&B's format is wandb_version 1, the only one")
    for key, item in loaded.items():
        if not isinstance(item, dict) or "value" not in item:
            raise ConfigError(
                f"config file {name}: give key {key!r} as W&B's files do, {key}: {{value: {item}}}"
            )
    return {key: item["value"] for key, item in loaded.items()}


def _parsed(name: str, text: str) -> Any:
    if name.endswith(".json"):
        try:
            return json.loads(text) if text.strip() else None
        except ValueError as e:
            raise ConfigError(f"config file {name} is not JSON: {e}") from None
    try:
        import yaml  # not a dependency: only YAML config files need it
    except ImportError:
        raise ConfigError(
            f"reading {name} needs PyYAML: pip install pyyaml, or give the config as JSON"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {name} is not YAML: {str(e).splitlines()[0]}") from None


class RunConfig(KeysAsAttributes):
    _what = "the run's config"

    def __init__(self, items: dict[str, Any], write: Write) -> None:
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_write", write)
        object.__setattr__(self, "_allow", False)  # init(allow_val_change=True)

    def update(self, config: Any, allow_val_change: bool | None = None) -> None:
        """Set these keys; one already set keeps its value unless ``allow_val_change``."""
        changed = config_items(config)
        if not (allow_val_change or self._allow):
            for key, value in changed.items():
                if key in self._items and self._items[key] != value:
                    raise ConfigError(
                        f"config key {key!r} is {self._items[key]!r}: pass "
                        f"allow_val_change=True to config.update() to make it {value!r}"
                    )
        self._record(changed)

    def allow_changes(self, allow: bool) -> None:
        """W&B's ``init(allow_val_change=True)``: every key may take another value."""
        object.__setattr__(self, "_allow", allow)

    def setdefaults(self, config: Any) -> None:
        """Set the keys not set yet."""
        changed = config_items(config)
        self._record({k: v for k, v in changed.items() if k not in self._items})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def _record(self, changed: dict[str, Any]) -> None:
        if changed and any(self._items.get(k, ...) != v for k, v in changed.items()):
            object.__setattr__(self, "_items", self._write(changed))
