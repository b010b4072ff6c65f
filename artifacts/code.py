"""What W&B's ``run.log_code()`` logs: a run's source files, found below a root by
``include_fn`` and ``exclude_fn`` (W&B's defaults: Python files, ``requirements.txt`` and
``Dockerfile*``), as an artifact of type ``code`` named after the project and program."""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator

from cas.storage.store_dirs import STORE_DIR

# W&B's test of a file: with the path alone, or with the root too
PathTest = Callable[[str, str], bool] | Callable[[str], bool]


def is_code(path: str) -> bool:
    """W&B's default ``include_fn``: a program, its requirements or its image."""
    name = os.path.basename(path)
    return name.endswith(".py") or name.startswith("Dockerfile") or name == "requirements.txt"


def never(path: str, root: str) -> bool:
    """The default ``exclude_fn``: W&B's leaves out its own directories, which are not
    made here (a store is never walked)."""
    return False


def code_files(root: str, include_fn: PathTest, exclude_fn: PathTest) -> Iterator[str]:
    """Every file below ``root`` that ``include_fn`` takes and ``exclude_fn`` does not."""
    include, exclude = _two_args(include_fn), _two_args(exclude_fn)
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != STORE_DIR)
        for name in sorted(files):
            path = os.path.join(directory, name)
            if include(path, root) and not exclude(path, root):
                yield path


def code_name(project: str) -> str:
    """W&B's default name: ``source-<project>-<program's path>``, made a valid name."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "unknown"
    name = re.sub(r"[^a-zA-Z0-9_\-.]", "_", f"source-{project}-{os.path.relpath(program)}")
    return name if len(name) <= 128 else f"{name[:63]}..{name[-63:]}"


def _two_args(test: PathTest) -> Callable[[str, str], bool]:
    """W&B takes a test of the path alone, or of the path and the root."""
    if len(inspect.signature(test).parameters) == 2:
        return test  # type: ignore[return-value]
    return lambda path, _root: test(path)  # type: ignore[call-arg]
