"""``artifacts ui``: a read-only web view of a store (docs/ui.md).

Pages for projects, artifacts, versions, a version's files with previews, the diff of
two versions and the lineage graph, all built on the public read API (``Api()``,
``Artifact``, ``artifacts://``). Nothing here writes to the store. Needs the ``ui``
extra: Starlette, Jinja2, uvicorn and igraph.
"""

from .app import create_app

__all__ = ["create_app"]
