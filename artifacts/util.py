"""W&B's ``wandb.util`` calls that scripts make: ``generate_id()``, the id of a run to
resume (``init(id=generate_id(), resume="allow")``)."""

from __future__ import annotations

import secrets
import string

_ID_ALPHABET = string.ascii_lowercase + string.digits  # base 36, as W&B's run ids


def generate_id(length: int = 8) -> str:
    """A random id of ``length`` lowercase letters and digits, from a secure source."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))
