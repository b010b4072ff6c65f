"""The lineage graph laid out for an SVG: igraph's Sugiyama layout (layers, fewer
crossings, coordinates), runs and versions alternating from left to right.

The layers are given to igraph: each node one right of the farthest node upstream of
it, from a topological order. igraph's own layering solves a feedback arc set, which
takes seconds on a thousand nodes; a lineage is almost always acyclic (a cycle needs a
run that uses what it logged), and the edges igraph's quick Eades heuristic picks are
left out of the layering when it is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import igraph

from ..lineage_graph import LineageGraph, LineageNode

NODE_WIDTH, NODE_HEIGHT = 180, 34
LAYER_GAP, ROW_GAP = 220, 50  # px between layers (left to right), rows (top to bottom)
MARGIN = 20


@dataclass(frozen=True)
class Placed:
    node: LineageNode
    x: float  # the box's top left corner
    y: float


@dataclass(frozen=True)
class Line:
    points: list[tuple[float, float]]  # from the right of one box to the left of another
    kind: str  # "used", "logged" or "link"


@dataclass(frozen=True)
class Drawing:
    nodes: list[Placed]
    lines: list[Line]
    width: float
    height: float


def _layers(graph: igraph.Graph) -> list[int]:
    acyclic = graph
    if not graph.is_dag():
        acyclic = graph.copy()
        acyclic.delete_edges(graph.feedback_arc_set(method="eades"))
    layer = [0] * graph.vcount()
    for vertex in acyclic.topological_sorting():
        for after in acyclic.successors(vertex):
            layer[after] = max(layer[after], layer[vertex] + 1)
    return layer


def lay_out(lineage: LineageGraph) -> Drawing:
    keys = sorted(lineage.nodes)
    number = {key: i for i, key in enumerate(keys)}
    edges = sorted(lineage.edges)
    pairs = [(number[a], number[b]) for a, b, _ in edges]
    graph = igraph.Graph(n=len(keys), edges=pairs, directed=True)
    layout = graph.layout_sugiyama(layers=_layers(graph), maxiter=20)

    # igraph: x along a layer, y the layer; drawn with the layers as columns.
    def point(x: float, y: float) -> tuple[float, float]:
        return MARGIN + y * LAYER_GAP, MARGIN + x * ROW_GAP

    points = [point(x, y) for x, y in layout.coords]
    placed = [Placed(lineage.nodes[key], *points[number[key]]) for key in keys]
    lines = []
    for (a, b), (_, _, kind), bends in zip(pairs, edges, layout.edge_routing, strict=True):
        (x1, y1), (x2, y2) = points[a], points[b]
        middle = [point(x, y) for x, y in bends]  # where the edge passes a layer
        route = [(x1 + NODE_WIDTH, y1), *middle, (x2, y2)]
        lines.append(Line([(x, y + NODE_HEIGHT / 2) for x, y in route], kind))
    width = max((x for x, _ in points), default=0) + NODE_WIDTH + 2 * MARGIN
    height = max((y for _, y in points), default=0) + NODE_HEIGHT + 2 * MARGIN
    return Drawing(placed, lines, width, height)


def prepare_layout() -> None:
    """Make igraph import what it imports on its first graph (numpy, when installed)."""
    igraph.Graph()
