"""`make pin-images` (images/pin.py) against a recording stand-in of the Docker Registry HTTP
API v2 as Docker Hub serves it (no registry is reachable from these machines): the requests
it makes, the Dockerfile lines it writes, and what it leaves alone when it cannot finish."""

import json
import shutil
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import REPO

PIN = REPO / "images" / "pin.py"
MANIFEST_TYPES = {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"}
PYTHON_TAG, TORCH_TAG = "3.11.11-slim-bookworm", "2.14.1-cuda12.8-cudnn9-runtime"


class Registry:
    """Manifests by (repository, tag) -> digest. A HEAD without a token gets 401 and a Bearer
    challenge naming the token service (here too) and the repository's pull scope; the token
    is good for that repository only. Every request lands in ``requests``."""

    def __init__(self):
        self.digests = {("library/python", PYTHON_TAG): "sha256:" + "1" * 64,
                        ("pytorch/pytorch", TORCH_TAG): "sha256:" + "2" * 64}
        self.requests = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                registry.requests.append((self.command, self.path, self.headers.get("Accept"),
                                          self.headers.get("Authorization")))

            def do_GET(self):
                self._record()
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                body = json.dumps({"token": f"anon:{query['scope']}", "expires_in": 300}).encode()
                self.send_response(200 if url.path == "/token" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self):
                self._record()
                repository, _, tag = self.path.removeprefix("/v2/").partition("/manifests/")
                scope = f"repository:{repository}:pull"
                if self.headers.get("Authorization") != f"Bearer anon:{scope}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", f'Bearer realm="{registry.url}/token",'
                                                         f'service="registry.stand-in",scope="{scope}"')
                elif (repository, tag) in registry.digests:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
                    self.send_header("Docker-Content-Digest", registry.digests[repository, tag])
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def registry():
    stand_in = Registry()
    thread = threading.Thread(target=stand_in.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def dockerfiles(tmp_path):
    """Copies of both Dockerfiles (gpu first: it resolves before cpu's)."""
    return [shutil.copy(REPO / "images" / name, tmp_path / name) for name in ("gpu.Dockerfile", "cpu.Dockerfile")]


def _pin(registry_url, files):
    return subprocess.run([sys.executable, str(PIN), "--registry", registry_url, *map(str, files)],
                          capture_output=True, text=True)


def test_pins_each_base_image_to_its_digest_asking_with_an_anonymous_token(registry, dockerfiles):
    gpu, cpu = dockerfiles
    before = {path: path.read_text() for path in dockerfiles}
    out = _pin(registry.url, dockerfiles)
    assert out.returncode == 0, out.stderr

    python, torch = f"/v2/library/python/manifests/{PYTHON_TAG}", f"/v2/pytorch/pytorch/manifests/{TORCH_TAG}"
    assert [(method, path, auth) for method, path, _, auth in registry.requests] == [
        ("HEAD", torch, None),
        ("GET", "/token?service=registry.stand-in&scope=repository%3Apytorch%2Fpytorch%3Apull", None),
        ("HEAD", torch, "Bearer anon:repository:pytorch/pytorch:pull"),
        ("HEAD", python, None),
        ("GET", "/token?service=registry.stand-in&scope=repository%3Alibrary%2Fpython%3Apull", None),
        ("HEAD", python, "Bearer anon:repository:library/python:pull"),
    ]
    for method, _, accept, _ in registry.requests:
        if method == "HEAD":
            assert set(accept.split(", ")) == MANIFEST_TYPES  # an index, a list or a single manifest
    line = {gpu: f"ARG BASE_IMAGE=pytorch/pytorch:{TORCH_TAG}", cpu: f"ARG BASE_IMAGE=python:{PYTHON_TAG}"}
    digest = {gpu: "sha256:" + "2" * 64, cpu: "sha256:" + "1" * 64}
    for path in dockerfiles:
        assert f"{line[path]}\n" in before[path]
        assert path.read_text() == before[path].replace(f"{line[path]}\n", f"{line[path]}@{digest[path]}\n")
    assert out.stdout.splitlines() == [f"pin-images: pytorch/pytorch:{TORCH_TAG}@{digest[gpu]}",
                                       f"pin-images: python:{PYTHON_TAG}@{digest[cpu]}"]


def test_a_pinned_line_is_resolved_again_and_replaced(registry, dockerfiles):
    _, cpu = dockerfiles
    assert _pin(registry.url, [cpu]).returncode == 0
    registry.digests["library/python", PYTHON_TAG] = "sha256:" + "3" * 64  # the tag moved (a rebuilt image)
    out = _pin(registry.url, [cpu])
    assert out.returncode == 0, out.stderr
    assert f"ARG BASE_IMAGE=python:{PYTHON_TAG}@sha256:{'3' * 64}\n" in cpu.read_text()
    assert registry.requests[-1][1] == f"/v2/library/python/manifests/{PYTHON_TAG}"  # by tag, not by old digest


def test_an_unknown_tag_is_named_and_no_dockerfile_changes(registry, dockerfiles):
    gpu, cpu = dockerfiles
    cpu.write_text(cpu.read_text().replace(PYTHON_TAG, "3.11.99-slim-bookworm"))
    before = {path: path.read_bytes() for path in dockerfiles}
    out = _pin(registry.url, dockerfiles)
    assert out.returncode == 1
    assert (f"pin-images: python:3.11.99-slim-bookworm: {registry.url} has no tag 3.11.99-slim-bookworm of "
            "library/python; fix the tag in its ARG BASE_IMAGE line (no Dockerfile was changed)") in out.stderr
    # gpu's tag resolved, yet nothing is written unless every image resolves.
    assert {path: path.read_bytes() for path in dockerfiles} == before
    assert sorted(p.name for p in gpu.parent.iterdir()) == ["cpu.Dockerfile", "gpu.Dockerfile"]


def test_an_unreachable_registry_is_named_with_what_to_do_and_the_dockerfiles_stay():
    """Through make, on the repository's own Dockerfiles: port 9 on loopback refuses at once."""
    files = sorted((REPO / "images").glob("*.Dockerfile"))
    before = {path: path.read_bytes() for path in files}
    try:
        out = subprocess.run(["make", "--no-print-directory", "pin-images", "PIN_REGISTRY=http://127.0.0.1:9"],
                             cwd=REPO, capture_output=True, text=True)
    finally:
        changed = {path: path.write_bytes(data) for path, data in before.items() if path.read_bytes() != data}
    assert not changed
    assert out.returncode != 0
    assert "cannot reach the registry http://127.0.0.1:9 for python:3.11.11-slim-bookworm" in out.stderr
    assert "no Dockerfile was changed" in out.stderr
    assert "--build-arg BASE_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>" in out.stderr
