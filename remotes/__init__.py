"""remotes: push, fetch, pull and clone between repositories, git-style.

Words used here:

- **remote**: another repository, named in the local store's config
  (``origin`` → ``s3://team-bucket/prefix``), or given by URL.
- **push**: send the objects the remote lacks, then move its refs by
  compare-and-swap; refused if it would drop versions the remote has.
- **fetch**: bring the remote's objects here and record its refs as
  **remote-tracking refs** (``remotes/<remote>/…``); **pull** = fetch, then
  fast-forward local versions.
- **diverged**: both sides logged versions the other lacks; **rebase**
  re-applies the local-only ones on top of the remote's.
- **ref policy**: what the caller's refs are for (heads, refs that belong with
  a head, records); push, pull, rebase and clone take one (see :mod:`remotes.policy`).
"""

from .clone import clone
from .config import add_remote, list_remotes, remove_remote, set_remote_url
from .errors import (
    PushRejectedError,
    RemoteAccessDeniedError,
    RemoteExistsError,
    RemoteNotFoundError,
)
from .policy import RefPolicy
from .sync import FetchResult, PullResult, PushResult, fetch, pull, push, rebase
from .transfer import RepairResult, repair

__all__ = [
    "FetchResult",
    "PullResult",
    "PushRejectedError",
    "PushResult",
    "RefPolicy",
    "RemoteAccessDeniedError",
    "RemoteExistsError",
    "RemoteNotFoundError",
    "RepairResult",
    "add_remote",
    "clone",
    "fetch",
    "list_remotes",
    "pull",
    "push",
    "rebase",
    "remove_remote",
    "repair",
    "set_remote_url",
]
