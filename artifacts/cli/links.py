"""``artifacts link`` and ``artifacts registry ls|create``: links of versions into
registries (artifacts.links, artifacts.registries)."""

from __future__ import annotations

import argparse

from ..artifact import Artifact
from ..errors import RegistryNotFoundError
from ..org_registry import OrgRegistry, registries_of
from ..registries import create
from . import context
from .commands import Commands
from .output import PROG, print_json, printable, table


def cmd_link(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    artifact = context.load(registry, context.spec(args, args.spec))
    try:
        linked = artifact.link(args.target, args.alias)
    except RegistryNotFoundError as exc:  # its message names the Python call
        how = f"`{PROG} registry create {exc.name} --org {exc.organization}`"
        raise RegistryNotFoundError(exc.organization, exc.name, how) from None
    if args.json:
        print_json({"linked": linked.qualified_name, "source": artifact.qualified_name})
    else:
        aliases = ", ".join(linked.aliases)
        print(f"linked {artifact.qualified_name} as {linked.qualified_name} ({aliases})")
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    registry = context.open_registry(args)
    org = context.organization(args)
    if args.registry_cmd == "create":
        create(registry, org, args.name, args.visibility, args.description, args.type)
        print(f"created registry {args.name!r} in organization {org!r}")
        return 0
    found = registries_of(registry, org, None, Artifact.from_version)
    if args.json:
        print_json([_summary(r) for r in found])
        return 0
    rows = [
        [
            r.name,
            r.visibility,
            ", ".join(r.artifact_types) or "(any)",
            str(len(r.collections())),
            printable(r.description or ""),
        ]
        for r in found
    ]
    table(["REGISTRY", "VISIBILITY", "TYPES", "COLLECTIONS", "DESCRIPTION"], rows)
    return 0


def _summary(found: OrgRegistry) -> dict[str, object]:
    return {
        "name": found.name,
        "organization": found.organization,
        "namespace": "/".join(found.path),
        "visibility": found.visibility,
        "artifact_types": found.artifact_types,
        "description": found.description,
        "collections": [c.name for c in found.collections()],
    }


def register(commands: Commands) -> None:
    p = commands.add(
        "link",
        cmd_link,
        "link a version into a registry's collection (no data is copied)",
        "artifacts link model:v3 wandb-registry-model/classifier --alias production",
        json=True,
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument(
        "target",
        metavar="REGISTRY/COLLECTION",
        help="wandb-registry-R/C, ORG/wandb-registry-R/C or model-registry/C",
    )
    p.add_argument("--alias", action="append", default=[], help="an alias of the link; repeatable")
    p = commands.add("registry", cmd_registry, "list or create registries", "artifacts registry ls")
    below = commands.below(p, dest="registry_cmd", metavar="ls|create")
    a = below.add(
        "ls", cmd_registry, "list an organization's registries", "artifacts registry ls", json=True
    )
    a.add_argument("--org", help="the organization (default: the entity)")
    a = below.add(
        "create",
        cmd_registry,
        "create a registry",
        "artifacts registry create fine-tuned --type model --description 'ours'",
    )
    a.add_argument("name", metavar="NAME")
    a.add_argument("--org", help="the organization (default: the entity)")
    a.add_argument("--visibility", choices=("organization", "restricted"), default="organization")
    a.add_argument("--description")
    a.add_argument(
        "--type",
        action="append",
        default=[],
        help="an accepted artifact type; repeatable (default: any)",
    )
