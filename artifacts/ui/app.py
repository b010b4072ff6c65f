"""The UI's routes: each reads through the public API and renders one template.

Handlers are plain functions, which Starlette runs in its thread pool (the store is
read with blocking calls). GET only: Starlette answers any other method with 405, and
the UI never writes. Names come from the URL's segments and go to the API's parsers,
which refuse what no store holds; nothing is read from the server's file system.
Jinja2 escapes every value, and the pages carry no script at all, which the
Content-Security-Policy makes sure of.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from cas.errors import CasError, InvalidNameError, NotFoundError, UsageError

from ..api import Api
from ..artifact import Artifact
from ..cli.output import human
from ..fs import ArtifactsFileSystem
from ..names import VERSION
from ..public import iso_time
from . import urls
from .graph import lay_out, prepare_layout
from .paging import Page, page_of
from .previews import LINE_DIFF_BYTES, image_type, line_diff, preview

PAGE = 200  # entries of a directory per page
VERSIONS_PAGE = 50  # versions of an artifact per page
DIFF_ROWS = 2000  # changes listed, at most
LINE_DIFFS = 20  # modified text files shown line by line, at most
CHUNK = 1 << 20
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# Characters a page would hide (NUL, ESC) or that change how the text around them
# reads (a right-to-left override shows "\u202etxt.exe" as "exe.txt"): shown as escapes.
HIDDEN = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _visible(value: Any) -> Any:
    """Every value a template shows, before it is escaped (markup the templates make, such
    as ``tojson``'s, holds none of these)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return HIDDEN.sub(lambda found: f"\\u{ord(found.group()):04x}", value)
    return value


# One for every app: the templates are compiled once, when the first app starts.
TEMPLATES = Environment(
    loader=PackageLoader("artifacts.ui"),
    autoescape=select_autoescape(default=True),
    finalize=_visible,
)
TEMPLATES.globals.update(urls=urls, human=human, iso_time=iso_time)


class UI:
    def __init__(self, store: str) -> None:
        self.api = Api(store=store)
        self.files = ArtifactsFileSystem(store=store)
        self.templates = TEMPLATES

    def page(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(store=self.api.store_url, **values)
        return HTMLResponse(html, status, headers=HEADERS)

    def version(self, request: Request) -> Artifact:
        p = request.path_params
        return self.api.artifact(f"{p['entity']}/{p['project']}/{p['name']}:{p['version']}")

    def read(self, artifact: Artifact, path: str) -> bytes:
        """A file's bytes, whole and verified (artifacts://)."""
        return self.files.cat_file(self._fs_path(artifact, path))

    def _fs_path(self, artifact: Artifact, path: str) -> str:
        return f"{artifact.entity}/{artifact.project}/{artifact.name}/{path}"

    # ---- pages -----------------------------------------------------------

    def home(self, request: Request) -> Response:
        projects: dict[str, list[str]] = {}
        for entity, project in self.api.namespaces():
            projects.setdefault(entity, []).append(project)
        return self.page("home.html", projects=projects)

    def project(self, request: Request) -> Response:
        entity, project = request.path_params["entity"], request.path_params["project"]
        types = self.api.artifact_types(f"{entity}/{project}")
        if not types:
            raise NotFoundError(f"no artifacts in {entity}/{project}")
        by_type = {t.type: t.collections() for t in types}
        return self.page("project.html", entity=entity, project=project, by_type=by_type)

    def versions(self, request: Request) -> Response:
        p = request.path_params
        latest = self.api.artifact(f"{p['entity']}/{p['project']}/{p['name']}:latest")
        every = latest.collection.versions()  # newest first
        numbers = [int(v.version[1:]) for v in every]

        def read(after: int | None, before: int | None, limit: int) -> list[int]:
            if after is not None:
                return [at for at, n in enumerate(numbers) if n < after][:limit]
            if before is not None:
                return [at for at, n in enumerate(numbers) if n > before][-limit:]
            return list(range(min(limit, len(numbers))))

        q = request.query_params
        page = page_of(read, _number(q, "after"), _number(q, "before"), VERSIONS_PAGE)
        # Each row with the version before it, for its diff link (also the page's last).
        rows = [(every[at], every[at + 1] if at + 1 < len(every) else None) for at in page.items]

        def link(after: str = "", before: str = "") -> str:
            return urls.artifact(latest.entity, latest.project, p["name"], after, before)

        pager = _pager(page, link, lambda at: every[at].version)
        return self.page("versions.html", artifact=latest, rows=rows, pager=pager)

    def files_page(self, request: Request) -> Response:
        artifact = self.version(request)
        path = request.path_params.get("path", "").strip("/")
        q = request.query_params
        page = None
        try:
            page = page_of(
                lambda after, before, limit: artifact.list_dir(path, after, limit, before),
                q.get("after") or None,
                q.get("before") or None,
                PAGE,
            )
        except NotFoundError:
            if not path:
                raise
        if page is not None:

            def link(after: str = "", before: str = "") -> str:
                a = artifact
                return urls.files(
                    a.entity, a.project, a.collection.name, a.version, path, after, before
                )

            return self.page(
                "version.html",
                artifact=artifact,
                path=path,
                entries=page.items,
                pager=_pager(page, link, lambda entry: entry.name),
                logged_by=artifact.logged_by(),
            )
        entry = artifact.get_entry(path)
        shown = None
        if entry.ref is None:
            shown = preview(path, entry.size, lambda: self.read(artifact, path))
        return self.page(
            "file.html", artifact=artifact, path=path, entry=entry, preview=shown, logged_by=None
        )

    def raw(self, request: Request) -> Response:
        artifact = self.version(request)
        path = request.path_params["path"]
        entry = artifact.get_entry(path)
        if entry.ref is not None:
            raise UsageError(f"{path} is a reference to {entry.ref}: fetch it from there")
        kind = image_type(path) if request.query_params.get("inline") else None
        name = path.rsplit("/", 1)[-1]
        disposition = "inline" if kind else f"attachment; filename*=UTF-8''{quote(name)}"
        headers = {**HEADERS, "Content-Disposition": disposition}
        headers["Content-Length"] = str(entry.size)
        opened = self.files.open(self._fs_path(artifact, path), "rb", cache_type="none")

        def chunks() -> Iterator[bytes]:
            # The last read checks the whole file; if it was not the logged bytes it
            # raises and the response stops short of its Content-Length.
            with opened:
                while chunk := opened.read(CHUNK):
                    yield chunk

        return StreamingResponse(
            chunks(), media_type=kind or "application/octet-stream", headers=headers
        )

    def diff(self, request: Request) -> Response:
        p = request.path_params
        base = f"{p['entity']}/{p['project']}/{p['name']}"
        latest = self.api.artifact(f"{base}:latest")
        versions = [v.version for v in latest.collection.versions()]
        old_sel = request.query_params.get("from") or (
            versions[1] if len(versions) > 1 else "latest"
        )
        new_sel = request.query_params.get("to") or "latest"
        old, new = self.api.artifact(f"{base}:{old_sel}"), self.api.artifact(f"{base}:{new_sel}")
        changes = old.diff_files(new)
        rows = [("added", path, None, new) for path in changes.added]
        rows += [("removed", path, old, None) for path in changes.removed]
        rows += [("modified", path, old, new) for path in changes.modified]
        rows.sort(key=lambda row: row[1])
        listed = [self._change(*row) for row in rows[:DIFF_ROWS]]
        diffs = []
        for kind, path, before, after in listed:
            if kind == "modified" and len(diffs) < LINE_DIFFS:
                if (
                    before.ref is None
                    and after.ref is None
                    and max(before.size, after.size) <= LINE_DIFF_BYTES
                ):
                    text = line_diff(
                        self.read(old, path),
                        self.read(new, path),
                        f"{old.version}/{path}",
                        f"{new.version}/{path}",
                    )
                    if text:
                        diffs.append((path, text))
        return self.page(
            "diff.html",
            old=old,
            new=new,
            versions=versions,
            rows=listed,
            total=len(rows),
            diffs=diffs,
        )

    def _change(self, kind: str, path: str, old: Artifact | None, new: Artifact | None) -> tuple:
        before = old.get_entry(path) if old is not None else None
        after = new.get_entry(path) if new is not None else None
        return kind, path, before, after

    def lineage(self, request: Request) -> Response:
        artifact = self.version(request)
        return self._lineage(artifact.qualified_name, self.api.lineage_graph(artifact))

    def run(self, request: Request) -> Response:
        p = request.path_params
        run = self.api.run(f"{p['entity']}/{p['project']}/{p['run_id']}")
        return self._lineage(f"run {run.name or run.id}", self.api.lineage_graph(run), run=run)

    def _lineage(self, title: str, graph: Any, run: Any = None) -> Response:
        return self.page("lineage.html", title=title, graph=graph, drawing=lay_out(graph), run=run)

    # ---- errors ----------------------------------------------------------

    def error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, (NotFoundError, InvalidNameError)):
            status = 404
        elif isinstance(exc, UsageError):
            status = 400
        else:
            status = 500
        return self.page("error.html", status, message=str(exc))


def _number(query: Any, key: str) -> int | None:
    """The version number of ``?key=vN``; None if it is not given."""
    text = query.get(key)
    if not text:
        return None
    if not VERSION.fullmatch(text):
        raise UsageError(f"?{key}= takes a version such as v3, not {text!r}")
    return int(text[1:])


def _pager(page: Page, link: Any, key: Any) -> dict[str, str | None]:
    """The URLs of the first, previous and next pages of ``page`` (None: no such page);
    ``link(after=, before=)`` makes one from the key of an item, ``key(item)``."""
    shown = page.items
    return {
        "first": link() if page.previous else None,
        "previous": link(before=key(shown[0])) if page.previous and shown else None,
        "next": link(after=key(shown[-1])) if page.more else None,
    }


def create_app(store: str) -> Starlette:
    """The UI over the store at URL ``store`` (a directory or a bucket)."""
    ui = UI(store)
    # Paid here, not by the first page a user opens: compiling the templates, and the
    # imports igraph makes on its first graph (about 40 and 90 ms).
    for name in TEMPLATES.list_templates():
        TEMPLATES.get_template(name)
    prepare_layout()
    version = "/{entity}/{project}/{name}/{version}"
    routes = [
        Route("/", ui.home),
        Route("/{entity}/{project}", ui.project),
        Route("/{entity}/{project}/~runs/{run_id}", ui.run),
        Route("/{entity}/{project}/{name}", ui.versions),
        Route("/{entity}/{project}/{name}/~diff", ui.diff),
        Route(version, ui.files_page),
        Route(version + "/~lineage", ui.lineage),
        Route(version + "/files/{path:path}", ui.files_page),
        Route(version + "/raw/{path:path}", ui.raw),
    ]
    app = Starlette(routes=routes, exception_handlers={CasError: ui.error, OSError: ui.error})
    return app
