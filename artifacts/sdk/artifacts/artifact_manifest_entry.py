"""``from wandb.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry``, with
``artifacts``: an entry of a manifest is an ``Entry`` here."""

from artifacts.entries import Entry as ArtifactManifestEntry

__all__ = ["ArtifactManifestEntry"]
