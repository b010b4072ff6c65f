"""The lineage graph around a version or a run: the runs and versions upstream (what it
was made from) and downstream (what was made from it), across projects, with the
registry links of its versions.

Built from one read of every run record (who logged and who used which commit) and
one listing of each entity's links, not from a look-up per version: a graph of
thousands of nodes costs a few reads per node. Deleted versions stay in the graph,
marked so: they are where a lineage went through.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from cas.errors import CasError

from . import links
from .deletion_records import deleted_ids
from .public_runs import version_of
from .registry import Registry, RunRecord, Version

NODE_LIMIT = 5000  # a graph past this is cut (and says so): a page must stay readable


@dataclass(frozen=True)
class LineageNode:
    key: str  # "run:ENTITY/PROJECT/ID" or "version:COMMIT_HEX"
    kind: str  # "run" or "version"
    entity: str
    project: str
    name: str  # the run's id, or the artifact's name
    label: str  # the run's name, or NAME:vN
    type: str | None  # the run's job type, or the artifact's type
    number: int | None = None  # the version's number
    deleted: bool = False  # a version deleted (or gone from this store)


@dataclass
class LineageGraph:
    focus: str
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)  # (from, to, what)
    truncated: bool = False  # more than NODE_LIMIT nodes: the farthest are left out


def run_key(entity: str, project: str, run_id: str) -> str:
    return f"run:{entity}/{project}/{run_id}"


def version_key(commit_hex: str) -> str:
    return f"version:{commit_hex}"


class _Index:
    """Every run's record, and who logged and used each commit."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.runs = {run_key(r.entity, r.project, r.id): r for r in registry.all_runs()}
        self.maker: dict[str, str] = {}
        self.users: dict[str, list[str]] = {}
        for key, record in self.runs.items():
            for commit in record.logged:
                self.maker.setdefault(commit, key)
            for commit in record.used:
                self.users.setdefault(commit, []).append(key)
        self._links: dict[str, dict[bytes, list[Version]]] = {}
        self._deleted: dict[tuple[str, str, str], set[bytes]] = {}
        self.versions: dict[str, Version | None] = {}

    def version(self, commit_hex: str, entity: str, project: str) -> Version | None:
        if commit_hex not in self.versions:
            try:
                found: Version | None = version_of(self.registry, commit_hex, entity, project)
            except (CasError, ValueError):  # freed by gc after its deletion, or not pulled
                found = None
            self.versions[commit_hex] = found
        return self.versions[commit_hex]

    def links_of(self, version: Version) -> list[Version]:
        if version.entity not in self._links:
            self._links[version.entity] = links.links_by_source(self.registry, version.entity)
        return self._links[version.entity].get(version.commit_id, [])

    def is_deleted(self, version: Version) -> bool:
        where = (version.entity, version.project, version.name)
        if where not in self._deleted:
            self._deleted[where] = deleted_ids(self.registry.repo, *where)
        return version.commit_id in self._deleted[where]


def _version_node(index: _Index, commit_hex: str, entity: str, project: str) -> LineageNode:
    version = index.version(commit_hex, entity, project)
    key = version_key(commit_hex)
    if version is None:
        return LineageNode(key, "version", entity, project, "?", commit_hex[:12], None, None, True)
    return LineageNode(
        key,
        "version",
        version.entity,
        version.project,
        version.name,
        f"{version.name}:v{version.number}",
        version.type,
        version.number,
        index.is_deleted(version),
    )


def _run_node(key: str, record: RunRecord) -> LineageNode:
    label = record.name or record.id
    return LineageNode(key, "run", record.entity, record.project, record.id, label, record.job_type)


def _neighbours(index: _Index, node: LineageNode, upstream: bool) -> list[tuple[str, str, str]]:
    """(from, to, what) of the edges one step up or down from ``node``."""
    if node.kind == "run":
        record = index.runs[node.key]
        commits = record.used if upstream else record.logged
        what = "used" if upstream else "logged"
        return [
            (version_key(c), node.key, what) if upstream else (node.key, version_key(c), what)
            for c in commits
        ]
    commit_hex = node.key.removeprefix("version:")
    version = index.versions.get(commit_hex)
    found: list[tuple[str, str, str]] = []
    if upstream:
        maker = index.maker.get(commit_hex)
        if maker is not None:
            found.append((maker, node.key, "logged"))
        source = links.source_of(version) if version is not None else None
        if source is not None:
            found.append((version_key(source.commit_id.hex()), node.key, "link"))
    else:
        found += [(node.key, user, "used") for user in index.users.get(commit_hex, [])]
        if version is not None:
            found += [
                (node.key, version_key(v.commit_id.hex()), "link") for v in index.links_of(version)
            ]
    return found


def lineage_graph(registry: Registry, focus: str) -> LineageGraph:
    """The graph of everything upstream and downstream of ``focus`` (a key from
    :func:`run_key` or :func:`version_key`), nearest first up to ``NODE_LIMIT`` nodes."""
    index = _Index(registry)
    graph = LineageGraph(focus)

    def node(key: str, near: LineageNode) -> LineageNode | None:
        if key.startswith("run:"):
            record = index.runs.get(key)
            return _run_node(key, record) if record is not None else None
        return _version_node(index, key.removeprefix("version:"), near.entity, near.project)

    start = node(focus, LineageNode(focus, "", "", "", "", "", None))
    if start is None:
        return graph
    graph.nodes[focus] = start
    for upstream in (True, False):
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for edge in _neighbours(index, here, upstream):
                key = edge[0] if upstream else edge[1]
                if key not in graph.nodes:
                    if len(graph.nodes) >= NODE_LIMIT:
                        graph.truncated = True
                        continue
                    found = node(key, here)
                    if found is None:
                        continue
                    graph.nodes[key] = found
                    queue.append(found)
                graph.edges.add(edge)
    return graph
