"""``artifacts rm``: delete a version, or every version of an artifact (artifacts.deletion)."""

from __future__ import annotations

import argparse

from cas.errors import UsageError

from ..deletion import delete_collection, delete_version
from . import context
from .commands import Commands
from .output import print_json


def cmd_rm(args: argparse.Namespace) -> int:
    if not args.spec:
        raise UsageError("an empty NAME (an unset variable?): give NAME:VER, or NAME --all")
    whole = ":" not in args.spec
    if whole and not args.all:
        raise UsageError(
            f"`rm {args.spec}` would delete every version: add --all, or name one ({args.spec}:v0)"
        )
    if not whole and args.all:
        raise UsageError(
            f"--all deletes a whole artifact: give its name without ':', not {args.spec}"
        )
    registry = context.open_registry(args)
    spec = context.spec(args, args.spec)
    if whole:
        deleted = delete_collection(registry, spec.entity, spec.project, spec.name)
        if not deleted and registry.head(spec.entity, spec.project, spec.name) is None:
            registry.resolve(spec, deleted=True)  # no such artifact: say so
    else:
        version = registry.resolve(spec, deleted=True)
        delete_version(registry, version, args.delete_aliases)
        deleted = [version]
    labels = [v.label for v in deleted]
    if args.json:
        print_json({"deleted": labels})
    elif not labels:
        print(f"every version of {spec.entity}/{spec.project}/{spec.name} was deleted already")
    for label in [] if args.json else labels:
        print(f"deleted {label}")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "rm",
        cmd_rm,
        "delete a version (or, with --all, every version): gc then frees its data",
        "artifacts rm model:v3\nartifacts rm scratch --all",
        json=True,
    )
    p.add_argument("spec", metavar="NAME[:VER]")
    p.add_argument(
        "--delete-aliases",
        action="store_true",
        help="delete a version that has aliases, and its aliases (else it is refused)",
    )
    p.add_argument("--all", action="store_true", help="delete every version of NAME")
