"""Pin each Dockerfile's base image to the digest its tag names today (`make pin-images`).

    python pin.py [--registry URL] DOCKERFILE...

Reads every ``ARG BASE_IMAGE=name:tag[@sha256:...]`` line, asks the image's registry (Docker
Registry HTTP API v2: ``HEAD /v2/<repository>/manifests/<tag>``) for the tag's digest, and
writes ``name:tag@sha256:<digest>`` back: the tag stays for the reader, the digest is what a
build pulls. A line pinned already is resolved again. All or nothing: every digest is
resolved before any file is written, and each file is replaced whole.

``--registry`` sends every request to that API base URL instead of each image's own
registry (a mirror, or a test's stand-in). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BASE_IMAGE = re.compile(r"^ARG BASE_IMAGE=(\S+)[ \t]*$", re.M)
# A tag names a multi-platform index or a single manifest; the digest is of whichever the
# registry holds, and a build pulls its platform's image through it.
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])
DOCKER_HUB = "https://registry-1.docker.io"
TIMEOUT_S = 30


class PinError(Exception):
    """A base image whose digest could not be resolved; no Dockerfile was changed."""


def locate(image: str) -> tuple[str, str, str]:
    """(registry API base URL, repository, tag) of ``name:tag[@digest]``, as docker reads a
    name: a first part with a dot, a colon or ``localhost`` is a registry; otherwise Docker Hub,
    where a one-part name lives under ``library/``."""
    name, _, _ = image.partition("@")
    name, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        raise PinError(f"BASE_IMAGE={image} has no tag; write it as name:tag so that the digest has a name")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return f"https://{first}", rest, tag
    return DOCKER_HUB, name if slash else f"library/{name}", tag


def _bearer_token(challenge: str, repository: str) -> str:
    """An anonymous pull token from the realm of a ``WWW-Authenticate: Bearer ...`` challenge."""
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    query = {"service": fields.get("service", ""), "scope": fields.get("scope", f"repository:{repository}:pull")}
    url = f"{fields.get('realm', '')}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        try:
            body = json.load(response)
            return body.get("token") or body["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise PinError(f"the token service {url} answered without a token") from None


def _content_digest(url: str, headers: dict[str, str]) -> str | None:
    request = urllib.request.Request(url, method="HEAD", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return response.headers.get("Docker-Content-Digest")


def digest(image: str, registry: str | None = None) -> str:
    """``sha256:<hex>`` of the manifest that ``image``'s tag names now."""
    api, repository, tag = locate(image)
    api = (registry or api).rstrip("/")
    url = f"{api}/v2/{repository}/manifests/{tag}"
    headers = {"Accept": MANIFEST_TYPES}
    try:
        try:
            found = _content_digest(url, headers)
        except urllib.error.HTTPError as err:
            challenge = err.headers.get("WWW-Authenticate", "")
            if err.code != 401 or not challenge.lower().startswith("bearer "):
                raise
            # Docker Hub answers 401 until asked again with a (free, anonymous) pull token.
            headers["Authorization"] = f"Bearer {_bearer_token(challenge, repository)}"
            found = _content_digest(url, headers)
    except urllib.error.HTTPError as err:
        if err.code == 404 and err.url == url:
            raise PinError(f"{image}: {api} has no tag {tag} of {repository}; fix the tag in its "
                           "ARG BASE_IMAGE line (no Dockerfile was changed)") from None
        raise PinError(f"{image}: {err.url} answered {err.code} {err.reason} (no Dockerfile was changed)") from None
    except (urllib.error.URLError, OSError) as err:
        bare = image.partition("@")[0]
        raise PinError(f"cannot reach the registry {api} for {image} ({getattr(err, 'reason', err)}); no Dockerfile "
                       "was changed. Builds use the tag meanwhile; to pin by hand, write "
                       f"{bare}@sha256:<digest> into its ARG BASE_IMAGE line or pass --build-arg "
                       f"BASE_IMAGE={bare}@sha256:<digest> to its build (where a registry is reachable, "
                       f"`docker buildx imagetools inspect {bare}` prints the digest)") from None
    if not found or not re.fullmatch(r"sha256:[0-9a-f]{64}", found):
        raise PinError(f"{image}: {api} gave no sha256 Docker-Content-Digest for {url} (got {found!r}); "
                       "no Dockerfile was changed")
    return found


def pinned_text(text: str, digests: dict[str, str]) -> str:
    """The Dockerfile with each BASE_IMAGE line as ``name:tag@<digest>``."""
    return BASE_IMAGE.sub(lambda m: f"ARG BASE_IMAGE={m[1].partition('@')[0]}@{digests[m[1]]}", text)


def pin(dockerfiles: list[Path], registry: str | None = None) -> dict[str, str]:
    """Pin every file's base image; returns {image as written: digest}. Raises PinError, with
    every file untouched, if any image cannot be resolved."""
    texts = {path: path.read_text() for path in dockerfiles}
    images = {path: BASE_IMAGE.findall(text) for path, text in texts.items()}
    for path, found in images.items():
        if not found:
            raise PinError(f"{path} has no ARG BASE_IMAGE=name:tag line to pin")
    digests = {image: digest(image, registry) for found in images.values() for image in found}
    staged = []
    try:
        for path, text in texts.items():
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".partial", delete=False) as out:
                out.write(pinned_text(text, digests))
            os.chmod(out.name, path.stat().st_mode & 0o777)
            staged.append((Path(out.name), path))
        for part, path in staged:
            os.replace(part, path)
    finally:
        for part, _ in staged:
            part.unlink(missing_ok=True)
    return digests


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pin.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("dockerfiles", nargs="+", type=Path)
    parser.add_argument("--registry", default=None,
                        help="registry API base URL for every image (default: each image's own registry)")
    args = parser.parse_args(argv)
    try:
        digests = pin(args.dockerfiles, args.registry or None)
    except PinError as err:
        print(f"pin-images: {err}", file=sys.stderr)
        return 1
    for image, found in digests.items():
        print(f"pin-images: {image.partition('@')[0]}@{found}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
