"""The UI's URLs, one place for both the routes and the links that lead to them.

Shareable: ``/ENTITY/PROJECT/NAME/VERSION/files/PATH``. Names of artifacts, projects
and versions cannot hold ``~``, so the pages that are not a name (``~diff``,
``~lineage``, ``~runs``) cannot collide with one. Each path segment is
percent-encoded: an entry name may hold any character a tree allows.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _join(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="") for s in segments)


def project(entity: str, project: str) -> str:
    return _join(entity, project)


def _paged(url: str, after: str, before: str) -> str:
    """``url`` at the page after item ``after`` or before item ``before`` (paging.py)."""
    query = urlencode({k: v for k, v in (("after", after), ("before", before)) if v})
    return f"{url}?{query}" if query else url


def artifact(entity: str, project: str, name: str, after: str = "", before: str = "") -> str:
    return _paged(_join(entity, project, name), after, before)


def version(entity: str, project: str, name: str, selector: str) -> str:
    return _join(entity, project, name, selector)


def files(
    entity: str,
    project: str,
    name: str,
    selector: str,
    path: str,
    after: str = "",
    before: str = "",
) -> str:
    url = _join(entity, project, name, selector, "files", *path.split("/")) if path else ""
    return _paged(url or version(entity, project, name, selector), after, before)


def raw(
    entity: str, project: str, name: str, selector: str, path: str, inline: bool = False
) -> str:
    url = _join(entity, project, name, selector, "raw", *path.split("/"))
    return url + "?inline=1" if inline else url


def diff(entity: str, project: str, name: str, old: str, new: str) -> str:
    return _join(entity, project, name, "~diff") + "?" + urlencode({"from": old, "to": new})


def lineage(entity: str, project: str, name: str, selector: str) -> str:
    return _join(entity, project, name, selector, "~lineage")


def run(entity: str, project: str, run_id: str) -> str:
    return _join(entity, project, "~runs", run_id)
