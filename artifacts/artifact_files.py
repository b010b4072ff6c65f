"""What ``Artifact.files()`` gives, as W&B's does: ``ArtifactFiles``, a sized,
indexable collection (W&B's pages them; here every file comes at once, a store
needs no pages), of files that download as W&B's ``File`` does."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

from .entries import Entry
from .errors import LocalFileExistsError
from .names import split_path


class ArtifactFile(Entry):
    """A file as ``files()`` lists it: an ``Entry`` (``name``, ``size``, ``path``…)
    whose ``download`` is W&B's ``File.download``."""

    def download(  # type: ignore[override]
        self, root: str = ".", replace: bool = False, exist_ok: bool = False, api: Any = None
    ) -> IO[str]:
        """Write this file, verified, at its path below ``root``, and give it back open
        for reading (text), as W&B's. A file already there is refused unless
        ``replace`` (written again) or ``exist_ok`` (given back as it is)."""
        path = os.path.join(root, *split_path(self.path))
        if os.path.lexists(path) and not replace:
            if not exist_ok:
                raise LocalFileExistsError(
                    f"{path} already exists: pass replace=True to overwrite it, or "
                    "exist_ok=True to leave it as it is"
                )
        else:
            super().download(root)
        return open(path)  # the caller closes it, as with W&B's


class ArtifactFiles(Sequence[ArtifactFile]):
    """A version's files in path order: ``len()``, ``[i]``, ``[i:j]``, iteration, and
    ``next()``, as W&B's paginator (its own iterator) gives them."""

    def __init__(self, artifact: Any, files: list[ArtifactFile], per_page: int = 50) -> None:
        self.artifact = artifact
        self.per_page = per_page  # W&B's page size, kept as given
        self._files = files
        self._next = 0

    @property
    def path(self) -> list[str]:
        """The version's ``[entity, project, name:vN]``, as W&B's."""
        return [self.artifact.entity, self.artifact.project, self.artifact.name]

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: Any) -> Any:  # an int: a file; a slice: a list of them
        return self._files[index]

    def __iter__(self) -> Iterator[ArtifactFile]:
        return iter(self._files)

    def __next__(self) -> ArtifactFile:
        if self._next == len(self._files):
            raise StopIteration
        self._next += 1
        return self._files[self._next - 1]

    def __repr__(self) -> str:
        return f"<ArtifactFiles {'/'.join(self.path)} ({len(self)})>"
