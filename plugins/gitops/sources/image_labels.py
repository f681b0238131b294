"""An image's labels as its registry holds them, for what an image upgrade brings: the manifest
under a tag (an image index: its linux/amd64 image, else its first, and which one it was is said),
then that image's config blob, bounded in size and checked against its digest, read through the
host's ``OciRegistry`` (the one door, the host's own credentials). The labels come back as plain
data; nothing here decides what they mean (``preview.images`` does)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
import oras.container
import requests

from ..errors import RegistryUnavailable, UnreadableDocument
from ..model import ChartLocation
from ..safeyaml import load_json
from .oci import NotFound, OciRegistry, container_of

MAX_CONFIG_BYTES = 1024 * 1024  # an image config with a long history is tens of KiB
CHUNK = 64 * 1024
PREFERRED_PLATFORM = "linux/amd64"  # what most clusters run; an index without it: its first image
INDEX_MEDIA_TYPES = ("application/vnd.oci.image.index.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json")
OCI_LABEL = "org.opencontainers.image."


@dataclass(frozen=True)
class ImageLabels:
    """One tag's image: the manifest read (``digest``), its platform and how it was chosen, and
    its config labels as ((key, value), …) sorted."""

    image: str  # host/repository
    tag: str
    digest: str  # the image's own manifest (an index's child, when the tag names an index)
    platform: str  # os/architecture, "" when the config does not say
    from_index: str  # "" for a single image; else how the platform was chosen
    labels: tuple = ()

    def label(self, name: str) -> str:
        """The label ``org.opencontainers.image.<name>`` (or a full key), "" when absent."""
        key = name if "." in name else OCI_LABEL + name
        return dict(self.labels).get(key, "")


def platform_of(entry: dict) -> str:
    """``os/architecture[/variant]`` of an index entry or an image config, "" when it says none."""
    platform = entry.get("platform") if isinstance(entry.get("platform"), dict) else entry
    os_name, arch = platform.get("os"), platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return ""
    variant = platform.get("variant")
    return "/".join([os_name, arch] + ([variant] if isinstance(variant, str) and variant else []))


def chosen_image(index: dict, where: str) -> tuple[dict, str]:
    """The entry of an image index Ferry reads labels from, and how it was chosen: linux/amd64,
    else the first image (attestations and other artifacts are not images)."""
    entries = [e for e in index.get("manifests") or () if isinstance(e, dict)
               and isinstance(e.get("digest"), str)
               and platform_of(e) not in ("unknown/unknown",)]
    if not entries:
        raise RegistryUnavailable(f"{where} is an image index without any image: no labels to read.")
    for entry in entries:
        if platform_of(entry) == PREFERRED_PLATFORM:
            return entry, f"{PREFERRED_PLATFORM} of {len(entries)} platforms"
    return entries[0], f"the first of {len(entries)} platforms (none is {PREFERRED_PLATFORM})"


def read_image_labels(registry: OciRegistry, location: ChartLocation, tag: str,
                      max_config_bytes: int = MAX_CONFIG_BYTES) -> ImageLabels:
    """The labels of ``location``'s image under ``tag``. The caller holds the host's turn
    (``registry.turn()``); a missing tag is ``NotFound``."""
    container = container_of(location)
    where = f"Image {location.ref}:{tag}"
    manifest, digest = registry.manifest(container, tag)
    from_index = ""
    if manifest.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in manifest:
        entry, from_index = chosen_image(manifest, where)
        manifest, digest = registry.manifest(container, entry["digest"])
    descriptor = manifest.get("config")
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        raise RegistryUnavailable(f"{where} has a manifest without a config: no labels to read.")
    config = _config(registry, container, descriptor, where, max_config_bytes)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    labels = inner.get("Labels") if isinstance(inner.get("Labels"), dict) else {}
    return ImageLabels(location.ref, tag, digest, platform_of(config), from_index,
                       tuple(sorted((str(k), v) for k, v in labels.items() if isinstance(v, str))))


def _config(registry: OciRegistry, container: oras.container.Container, descriptor: dict,
            where: str, limit: int) -> dict:
    """The config blob as JSON: refused before the download when its descriptor says it is past
    ``limit``, and during it when the registry sends more than that (or than it said)."""
    source = f"The config of {where[0].lower()}{where[1:]}"
    size = descriptor.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size > limit:
        raise UnreadableDocument(source, f"is {_mib(size)}, past Ferry's bound of {_mib(limit)}")
    digest = descriptor["digest"]
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise RegistryUnavailable(f"{source} is named by a {algorithm or 'bare'} digest Ferry cannot check.")
    try:
        response = registry.blob(container, digest)
    except NotFound:  # the tag is there (its manifest was read): not a missing tag
        raise RegistryUnavailable(f"{source} is missing from the registry (404): no labels to read.") from None
    with response:
        data = bytearray()
        try:
            for chunk in response.iter_content(CHUNK):
                data += chunk
                if len(data) > limit:
                    raise UnreadableDocument(source, f"is past Ferry's bound of {_mib(limit)}")
        except requests.RequestException as e:
            raise registry.unreachable(e) from e
    if hashlib.new(algorithm, bytes(data)).hexdigest() != expected:
        raise RegistryUnavailable(f"{source} does not match its digest: the registry sent another blob.")
    value = load_json(bytes(data), source)
    if not isinstance(value, dict):
        raise UnreadableDocument(source, "is not a JSON object")
    return value


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"

