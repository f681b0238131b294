"""Image tags as pins: where a release's values (or a kustomization's ``images:``) pin the tag of
an image, and which pin an app is tracked by.

Pure functions over what discovery built. A HelmRelease's values are read as Flux builds them
(``Unit.document``: patches, then postBuild variables), and each tag's one line is found the way
chart versions are (``discovery``'s field reader: ``patches.origin``, then substitution). The
shapes read:

- ``image: {repository, tag}`` (``registry:`` too, as Bitnami charts split it) and
  ``image: repo:tag`` at the top of the values, or one level down (``server.image``);
- generic charts (bjw-s app-template): ``controllers.<c>.containers.<n>.image`` (and
  ``initContainers``), named after the container;
- any scalar marked with Flux's image-automation setter, ``# {"$imagepolicy": "ns:policy:tag"}``
  (the tag), ``…:name`` (the repository) or ``ns:policy`` (the whole ``repo:tag``);
- kustomize's ``images:`` (``newTag``) in a kustomization.yaml or a Flux Kustomization's
  ``spec.images``, for apps without a chart (``overlay_images``).

A tag Flux may not take from that line is a pin with a ``refusal``: a digest (``digest:``, or a
tag written ``1.0.0@sha256:…``), values that ``spec.valuesFrom`` may override (a Secret's are
unknown), an image set in two kustomizations neither of which includes the other. An overlay's
``images:`` decides over those of what it includes, wherever its kustomization sits.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Callable, Optional

from .kustomize import Resource
from .manifests import DEFAULT_CACHE, DocumentCache, dig
from ..errors import UnreadableDocument
from ..model import CHART, ChartLocation, Pin
from ..safeyaml import load_round_trip
from ..settings import Settings

VALUES = ("spec", "values")
DOCKER_HUB = "registry-1.docker.io"  # docker.io's registry API host
_MARKER = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}')


# ---- image references ------------------------------------------------------------------------

def split_reference(ref: str) -> tuple:
    """(name, tag, digest) of ``host/path/name:tag@sha256:…`` as written ("" when absent)."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
        name = name[:len(name) - len(tag) - 1]
    return name, tag, digest


def location(name: str, settings: Optional[Settings] = None) -> Optional[ChartLocation]:
    """The registry repository of an image name, with Docker's defaults: a first component
    without a dot, a colon or ``localhost`` is a Docker Hub path (``nginx`` is
    ``library/nginx``). Plain HTTP only for loopback hosts and hosts the settings mark insecure."""
    name = name.strip().strip("/")
    if not name or "${" in name or " " in name:
        return None
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, name if rest else f"library/{name}"
    if host in ("docker.io", "index.docker.io"):
        host = DOCKER_HUB
        path = path if "/" in path else f"library/{path}"
    return ChartLocation(host, path.lower(), _insecure(host, settings))


def _insecure(host: str, settings: Optional[Settings]) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        if ipaddress.ip_address(name.strip("[]")).is_loopback:
            return True
    except ValueError:
        if name == "localhost":
            return True
    if settings is None:
        return False
    registries = [settings.registry] + [a.registry for a in settings.apps.values()]
    return any(r is not None and r.insecure and r.location("x").host == host for r in registries)


# ---- images in a release's values ------------------------------------------------------------

def release_images(base: Pin, res: Resource, doc: dict, tree, field: Callable,
                   settings: Settings, cache: Optional[DocumentCache] = None) -> list:
    """(pin, variable) for each image tag the release's values pin. ``base``: the chart pin,
    whose release fields the image pins share; ``field(path)``: discovery's reading of one field
    as Flux builds it; ``tree``: the files (the release file's setter markers)."""
    values = dig(doc, *VALUES)
    if not isinstance(values, dict):
        values = {}
    found = {}  # name -> (path to the image node, the key of its tag)
    repositories = {}  # holder -> path of a scalar marked `…:name` (the repository)
    for name, path in _shapes(values):
        found.setdefault(name, (VALUES + path, "tag"))
    for path, kind in markers(tree, res.file, cache).get(res.index, ()):
        if path[:2] != VALUES or kind not in ("tag", "name", ""):
            continue
        holder = path[:-1] if kind in ("tag", "name") else path
        if kind == "name":
            repositories[holder] = path  # the repository: read next to the tag
            continue
        name = next((n for n, (p, _) in found.items() if p == holder), None)
        if name is None:
            name = (_name_of(holder[2:]) or str(path[-2])) if len(path) > 2 else "image"
            name = name if name not in found else ".".join(str(k) for k in holder[2:])
        found[name] = (holder, path[-1] if kind == "tag" else "tag")
    if not found:
        return []
    names = list(found)
    single = len(names) == 1
    refusal = _values_from(doc)
    pins = []
    for name in names:
        holder, tag_key = found[name]
        node = dig(doc, *holder)
        marked = repositories.get(holder)
        repo = dig(doc, *marked) if marked else None
        part = "image" if single or not name else f"image:{name}"
        pins.append(_image_pin(base, part, holder, node, tag_key, repo, field, settings, refusal))
    return [p for p in pins if p is not None]


def _shapes(values: dict):
    """(name, path in the values) of the image nodes of the common shapes."""
    if "image" in values:
        yield "", ("image",)
    for key, sub in values.items():
        if key != "controllers" and isinstance(sub, dict) and isinstance(sub.get("image"), (dict, str)):
            yield str(key), (key, "image")
    controllers = values.get("controllers")
    if not isinstance(controllers, dict):
        return
    seen = set()
    for controller, spec in controllers.items():
        for group in ("containers", "initContainers"):
            containers = dig(spec, group) if isinstance(spec, dict) else None
            for container, conf in (containers or {}).items() if isinstance(containers, dict) else ():
                if isinstance(conf, dict) and "image" in conf:
                    name = str(container) if container not in seen else f"{controller}.{container}"
                    seen.add(container)
                    yield name, ("controllers", controller, group, container, "image")


def _name_of(path: tuple) -> str:
    if "containers" in path or "initContainers" in path:
        return str(path[path.index("containers" if "containers" in path else "initContainers") + 1])
    keys = [str(k) for k in path if k != "image"]
    return ".".join(keys)


def _image_pin(base: Pin, part: str, holder: tuple, node, tag_key, marked_repo, field: Callable,
               settings: Settings, refusal: tuple) -> Optional[Pin]:
    prefix = ""
    if isinstance(node, dict):
        if node.get("digest"):
            return _pin(base, part, field(holder + ("digest",)), "", None, refusal=(
                f"a digest (`{_dotted(holder)}.digest`), which Ferry does not set", False))
        repo = marked_repo or node.get("repository") or node.get("name")
        registry = node.get("registry")
        if isinstance(repo, str) and isinstance(registry, str) and registry:
            repo = f"{registry.rstrip('/')}/{repo}"
        tag_field = field(holder + (tag_key,))
        if tag_field.text is None:
            return None  # the chart's default tag: nothing pinned here
        source = location(repo, settings) if isinstance(repo, str) else None
        if "@" in tag_field.text:  # `tag: 1.0.0@sha256:…`: the digest decides, not the tag
            return _pin(base, part, tag_field, str(repo or ""), None, refusal=(
                f"a digest (`{_dotted(holder + (tag_key,))}: {tag_field.text[:80]}`), which Ferry "
                "does not set", False))
        return _pin(base, part, tag_field, str(repo or ""), source, refusal=refusal)
    if not isinstance(node, str):
        return None
    whole = field(holder)
    if whole.text is None:
        return None
    name, tag, digest = split_reference(whole.text)
    if digest:
        return _pin(base, part, whole, name, None, refusal=(
            f"a digest (`{whole.text[:80]}`), which Ferry does not set", False))
    if not tag:
        return _pin(base, part, whole, name, None, refusal=(
            f"`{whole.text[:80]}`, an image without a tag (Kubernetes takes `latest`)", False))
    prefix = whole.text[:len(whole.text) - len(tag)]
    return _pin(base, part, whole, name, location(name, settings), prefix=prefix, refusal=refusal)


def _pin(base: Pin, part: str, found, repo: str, source, prefix: str = "", refusal: tuple = ()) -> Pin:
    text = found.text
    tag = text[len(prefix):] if text is not None and prefix and text.startswith(prefix) else text
    why, unknown = refusal if refusal else ("", False)
    return Pin(app=base.app, environment=base.environment, version=tag, is_range=False,
               location=found.location, kind=found.kind if found.kind != "helmrelease" else "values",
               chart=repo or "(the chart's default image)", namespace=base.namespace,
               release_file=base.release_file, source=source, source_url=repo,
               values_files=base.values_files, origin=found.origin,
               refusal=found.refusal or why, unknown=found.unknown or unknown,
               values_unknown=base.values_unknown, values_from=base.values_from, part=part,
               written_prefix=prefix), found.variable


def _values_from(doc: dict) -> tuple:
    """Why ``spec.valuesFrom`` makes a tag in ``spec.values`` unsure: (refusal, unknown)."""
    sources = dig(doc, "spec", "valuesFrom")
    if not isinstance(sources, list) or not sources:
        return ()
    named = [f"{s.get('kind')} {s.get('name')}" for s in sources if isinstance(s, dict)]
    secret = any(isinstance(s, dict) and s.get("kind") == "Secret" for s in sources)
    where = ", ".join(named) or "valuesFrom"
    if secret:
        return (f"`spec.valuesFrom` ({where}): a Secret's values are unknown to Ferry and come after "
                "`spec.values`", True)
    return (f"`spec.valuesFrom` ({where}), which Helm merges over `spec.values`", False)


def _dotted(path: tuple) -> str:
    return ".".join(str(k) for k in path)


# ---- setter markers ---------------------------------------------------------------------------

def markers(tree, path: str, cache: Optional[DocumentCache] = None) -> dict:
    """{document: [(path, kind)]} of the scalars of a file marked ``# {"$imagepolicy": …}``; kind:
    "tag", "name", "digest" or "" (the whole image). Setter markers are comments: only the text
    has them, so it is read once per blob (``cache``: kept beside the file's documents)."""
    found = (DEFAULT_CACHE if cache is None else cache).fact(tree, path, "markers", _markers, _restored_markers)
    return found if found is not None else {}


def _restored_markers(plain: dict) -> dict:
    return {document: [(tuple(path), kind) for path, kind in marked] for document, marked in plain.items()}


def _markers(text: str) -> dict:
    if "$imagepolicy" not in text:
        return {}
    lines = {}
    for number, line in enumerate(text.splitlines()):
        match = _MARKER.search(line)
        if match:
            parts = match.group(1).split(":")
            lines[number] = parts[2] if len(parts) >= 3 else ""
    try:
        docs = load_round_trip(text, "A manifest")
    except UnreadableDocument:  # discovery reports broken YAML; markers are then not read
        return {}
    found: dict = {}
    for document, doc in enumerate(docs):
        for path, line in _scalar_lines(doc, ()):
            if line in lines:
                found.setdefault(document, []).append((path, lines[line]))
    return found


def _scalar_lines(node, path: tuple):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _scalar_lines(value, path + (key,))
            continue
        try:
            line = node.lc.value(key)[0] if isinstance(node, dict) else node.lc.item(key)[0]
        except (AttributeError, KeyError, TypeError):
            continue
        yield path + (key,), line


# ---- what an app is tracked by ---------------------------------------------------------------

MAIN_CONTAINERS = ("main", "app")


def tracked(parts: list, track: Optional[str] = None) -> Pin:
    """The pin an app is tracked by in one environment, among its ``parts`` (chart first):
    what the settings say (``apps.<app>.track``); else its chart version, unless that is shared
    with other apps or pins nothing while an image tag is pinned; then its image (the container
    named after the app, ``main`` or ``app``, else the first)."""
    chart = next((p for p in parts if p.part == CHART), None)
    images = [p for p in parts if p.part != CHART]
    if track and track != CHART:
        wanted = [p for p in images if p.part == track] or (images if track == "image" else [])
        if wanted:
            return _main(wanted)
    if track == CHART and chart is not None:
        return chart
    if chart is None:
        return _main(images)
    image = _main(images) if images else None
    if image is None or image.shared or image.refusal or image.unknown:
        return chart  # no image pin that is one line of its own: the chart stays what is tracked
    if chart.shared_by or (chart.version is None and chart.location is None):
        return image  # the chart pin is shared with other apps (or pins nothing)
    return chart


def _main(images: list) -> Pin:
    app = images[0].app.rsplit("/", 1)[-1]
    for wanted in (f"image:{app}", *(f"image:{m}" for m in MAIN_CONTAINERS), "image"):
        for p in images:
            if p.part == wanted:
                return p
    return images[0]


def split(pins, settings: Settings) -> tuple:
    """(tracked, others): one tracked pin per app and environment, and the rest."""
    groups: dict = {}
    for p in pins:
        groups.setdefault((p.app, p.environment), []).append(p)
    chosen = set()
    for (app, _), parts in groups.items():
        if len(parts) == 1:  # most apps pin one thing: it is what they are tracked by
            chosen.add(id(parts[0]))
            continue
        conf = settings.apps.get(app) or settings.apps.get(app.rsplit("/", 1)[-1])
        chosen.add(id(tracked(parts, conf.track if conf else None)))
    return (tuple(p for p in pins if id(p) in chosen), tuple(p for p in pins if id(p) not in chosen))


def find_part(parts: list, part: str) -> Optional[Pin]:
    """The pin of ``part`` ("chart", "image", "image:<container>") among one app's parts;
    "image" names the app's image when it has one, or its main container's."""
    exact = next((p for p in parts if p.part == part), None)
    if exact is not None or part != "image":
        return exact
    images = [p for p in parts if p.part != CHART]
    if len(images) == 1:
        return images[0]
    return None


def written(pin: Pin, tag: str) -> str:
    """The text a tag is written as at the pin's line (``repo:tag`` in one string)."""
    return pin.written_prefix + tag


def read_tag(pin: Pin, text: Optional[str]) -> Optional[str]:
    """The tag in the text at the pin's line, or None when the line no longer has its prefix."""
    if text is None or not pin.written_prefix:
        return text
    return text[len(pin.written_prefix):] if text.startswith(pin.written_prefix) else None


def marker_json(policy: str) -> str:
    """A setter marker as Flux writes it (for docs and tests)."""
    return "# " + json.dumps({"$imagepolicy": policy})
