"""``artifacts tag add|rm`` and ``artifacts edit``: change what a version says of itself
(its tags, description, metadata and TTL), never its files."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cas.errors import UsageError

from .. import ttl
from . import context
from .commands import Commands
from .output import printable


def cmd_tag(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    artifact = context.load(registry, context.spec(args, args.spec))
    if args.tag_cmd == "add":
        artifact.tags = artifact.tags + [t for t in args.tags if t not in artifact.tags]
    else:
        absent = [t for t in args.tags if t not in artifact.tags]
        if absent:
            raise UsageError(f"{artifact.qualified_name} has no tag {absent[0]!r}")
        artifact.tags = [t for t in artifact.tags if t not in args.tags]
    artifact.save()
    tags = ", ".join(artifact.tags) or "(none)"
    print(f"{artifact.qualified_name} tags: {printable(tags)}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    if args.description is None and not args.metadata and not args.unset and args.ttl is None:
        raise UsageError(
            "nothing to edit: give --description, --metadata KEY=VALUE, --unset KEY or --ttl"
        )
    policy = ttl.parse(args.ttl) if args.ttl is not None else None
    registry = context.open_registry(args)
    artifact = context.load(registry, context.spec(args, args.spec))
    if args.description is not None:
        artifact.description = args.description
    for key in args.unset:
        if key not in artifact.metadata:
            raise UsageError(f"{artifact.qualified_name} has no metadata key {key!r}")
        del artifact.metadata[key]
    artifact.metadata.update(_metadata_item(item) for item in args.metadata)
    if args.ttl is not None:
        artifact.ttl = ttl.as_timedelta(policy) if isinstance(policy, int) else policy
    artifact.save()
    print(f"edited {artifact.qualified_name}")
    return 0


def _metadata_item(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``: VALUE as JSON when it is JSON (``3``, ``0.9``, ``true``,
    ``[1,2]``), else the string itself."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--metadata takes KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def register(commands: Commands) -> None:
    p = commands.add("tag", cmd_tag, "add or remove tags", "artifacts tag add model:v3 reviewed")
    below = commands.below(p, dest="tag_cmd", metavar="add|rm")
    for action, summary, example in (
        ("add", "add TAG… to a version", "artifacts tag add model:v3 reviewed baseline"),
        ("rm", "remove TAG… from a version", "artifacts tag rm model:v3 baseline"),
    ):
        a = below.add(action, cmd_tag, summary, example)
        a.add_argument("spec", metavar="NAME:VER")
        a.add_argument("tags", metavar="TAG", nargs="+")
    p = commands.add(
        "edit",
        cmd_edit,
        "edit a version's description, metadata and TTL (its files never change)",
        "artifacts edit model:v3 --description 'after eval' --metadata accuracy=0.93",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("-d", "--description", help="the new description")
    p.add_argument(
        "--metadata",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="set a metadata key (VALUE read as JSON if it is JSON, else as a string); repeatable",
    )
    p.add_argument(
        "--unset", metavar="KEY", action="append", default=[], help="remove a metadata key"
    )
    p.add_argument(
        "--ttl",
        metavar="DURATION",
        help="time to live from when the version was logged: 30d, 12h, 90m, 45s, 2w; "
        "none (never expires); inherit (the project's default)",
    )
