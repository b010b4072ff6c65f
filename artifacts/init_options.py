"""W&B's ``init`` options that configure its own process or server (``reinit``,
``save_code``, ``fork_from``…): taken so that a script runs; one whose effect is lost
here says so, naming it; a name W&B's ``init`` does not take is refused, as W&B's is,
so that a typo is not dropped unsaid."""

from __future__ import annotations

import warnings
from typing import Any

# How W&B's process starts and logs in: nothing a run here loses without them.
_NOTHING_LOST = ("force", "anonymous", "reinit")
# What is lost, and what to do instead.
_NOT_KEPT = {
    "resume_from": "a run here keeps no history to rewind: this is a run of its own",
    "fork_from": "a run here keeps no history to fork: this is a run of its own",
    "save_code": "no code is saved with a run here: log it with run.log_code()",
    "tensorboard": "no metric history is kept: TensorBoard's logs stay where written",
    "sync_tensorboard": "no metric history is kept: TensorBoard's logs stay where written",
    "monitor_gym": "no media are kept: gym's videos stay where written",
}


def check_options(options: dict[str, Any]) -> None:
    """Refuse a name W&B's init does not take; warn of each given whose effect is lost."""
    for name, value in options.items():
        if name not in _NOTHING_LOST and name not in _NOT_KEPT:
            raise TypeError(f"init() got an unexpected keyword argument {name!r}")
        if name in _NOT_KEPT and value not in (None, False):
            warnings.warn(f"init({name}=...) is not kept: {_NOT_KEPT[name]}", stacklevel=3)
