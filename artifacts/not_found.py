"""What a spec that names no version is told: the versions and aliases there are, of
those left (a deleted version, a removed alias, is none of them)."""

from __future__ import annotations

from .errors import ArtifactNotFoundError
from .names import VERSION, Spec


def version_not_found(spec: Spec, newest: int | None, aliases: list[str]) -> ArtifactNotFoundError:
    """The error for ``spec``, a version number or an alias naming no version of an
    artifact whose newest version left is v``newest`` (None: none is left), whose
    aliases are ``aliases``."""
    if newest is None:
        where = f"{spec.entity}/{spec.project}/{spec.name}"
        return ArtifactNotFoundError(f"{spec} not found: every version of {where} was deleted")
    if VERSION.fullmatch(spec.selector):
        return ArtifactNotFoundError(f"{spec} not found: the latest version is v{newest}")
    numbers = "v0" if newest == 0 else f"v0 to v{newest}"
    return ArtifactNotFoundError(
        f"{spec} not found: no version has alias {spec.selector!r} "
        f"(its aliases: {', '.join(aliases) or 'none'}; or latest, {numbers})"
    )
