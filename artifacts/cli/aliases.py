"""``artifacts alias add|rm``: move the names of versions."""

from __future__ import annotations

import argparse

from ..annotations import move_aliases
from . import context
from .commands import Commands


def cmd_alias(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    version = registry.resolve(context.spec(args, args.spec))
    # As an edit of the version's aliases: 'latest' is refused where it would not stay
    # the newest version's (set_alias takes it as already in place).
    if args.alias_cmd == "add":
        move_aliases(registry, version, (), (args.alias,))
        print(f"{version.label} is now {args.alias!r}")
    else:
        move_aliases(registry, version, (args.alias,), ())
        print(f"removed alias {args.alias!r} from {version.label}")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "alias", cmd_alias, "add or remove an alias", "artifacts alias add model:v3 production"
    )
    below = commands.below(p, dest="alias_cmd", metavar="add|rm")
    for action, summary, example in (
        ("add", "point ALIAS at a version", "artifacts alias add model:v3 production"),
        ("rm", "remove ALIAS from a version", "artifacts alias rm model:v3 production"),
    ):
        a = below.add(action, cmd_alias, summary, example)
        a.add_argument("spec", metavar="NAME:VER")
        a.add_argument("alias", metavar="ALIAS")
