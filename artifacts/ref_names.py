"""The name of every ref the artifacts layer writes, and how people name them.

Every ref lives under its team's namespace ``<entity>/<project>/``::

    <e>/<p>/artifacts/<name>/latest          the newest version's commit
    <e>/<p>/artifacts/<name>/aliases/<alias> the version holding that alias
    <e>/<p>/artifacts/<name>/annotations/<commit> the version's newest annotation record
    <e>/<p>/artifacts/<name>/deleted/<commit> the version's deletion record (a blob)
    <e>/<p>/artifacts/<name>/collection      the artifact's description and tags (a blob)
    <e>/<p>/dist/<name>/<distributed_id>/<run> one run's part of a distributed version
    <e>/<p>/runs/<run>                       the run's record (a msgpack blob)
    <org>/wandb-registry-<r>/registry        a registry's settings (artifacts.registries)
"""

from __future__ import annotations

from cas import ObjectId


def head_ref(entity: str, project: str, name: str) -> str:
    return f"{entity}/{project}/artifacts/{name}/latest"


def alias_ref(entity: str, project: str, name: str, alias: str) -> str:
    return f"{entity}/{project}/artifacts/{name}/aliases/{alias}"


def annotation_ref(entity: str, project: str, name: str, commit_id: ObjectId) -> str:
    """The newest annotation record of a version (artifacts.annotations)."""
    return f"{entity}/{project}/artifacts/{name}/annotations/{commit_id.hex()}"


def collection_ref(entity: str, project: str, name: str) -> str:
    """The artifact's own record: its description and tags (artifacts.collection_info)."""
    return f"{entity}/{project}/artifacts/{name}/collection"


def dist_prefix(entity: str, project: str, name: str, distributed_id: str) -> str:
    return f"{entity}/{project}/dist/{name}/{distributed_id}/"


def run_ref(entity: str, project: str, run_id: str) -> str:
    return f"{entity}/{project}/runs/{run_id}"


def registry_settings_ref(organization: str, project: str) -> str:
    """The settings record of the registry whose namespace is ``organization/project``."""
    return f"{organization}/{project}/registry"


def project_of(ref: str) -> str | None:
    """The project whose artifacts or runs ``ref`` is of, else None."""
    parts = ref.split("/")
    return parts[1] if len(parts) > 3 and parts[2] in ("artifacts", "runs") else None


def ref_label(ref: str) -> str:
    """How a user names a version ref: ``e/p/artifacts/n/latest`` -> ``e/p/n``,
    ``e/p/artifacts/n/aliases/a`` -> ``e/p/n:a``, ``e/p/artifacts/n/annotations/<id>`` ->
    ``e/p/n@<id> (annotations)``; any other ref as it is."""
    parts = ref.split("/")
    if len(parts) == 5 and parts[2] == "artifacts" and parts[4] == "latest":
        return "/".join(parts[:2] + parts[3:4])
    if len(parts) == 6 and parts[2] == "artifacts" and parts[4] == "aliases":
        return f"{'/'.join(parts[:2] + parts[3:4])}:{parts[5]}"
    if len(parts) == 6 and parts[2] == "artifacts" and parts[4] == "annotations":
        return f"{'/'.join(parts[:2] + parts[3:4])}@{parts[5][:12]} (annotations)"
    return ref
