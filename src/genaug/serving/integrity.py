"""What Triton may load: exactly the files the gates approved, checked against the ledger.

Triton downloads a model's whole folder and runs whatever backend its config names, so
anyone who can write the repository could serve arbitrary code. Before promotion, rollback
or the reconciler loads a version, ``verify`` checks that:

- ``config.pbtxt`` and every file of the version match the sha256 the ledger recorded;
- the model's folder holds nothing but ``config.pbtxt`` and ``<version>/model.onnx``,
  ``<version>/metadata.json`` and a classifier's ``<version>/labels.txt`` (an extra
  ``model.py`` is refused wherever it is);
- the config names genaug's ONNX backend: the ``onnxruntime_onnx`` platform, with no
  other backend (on a cluster NVIDIA's native onnxruntime backend; locally the stack's
  adapter in ``triton_repo/backends/onnxruntime``, which Triton finds under that name).

``deep=False`` compares sizes and ETags instead of downloading the model: the reconciler's
periodic pass, which still loads nothing without a deep check.
"""

from __future__ import annotations

import hashlib
import re

from genaug.serving.repository import Repository

ONNX_PLATFORM = "onnxruntime_onnx"
ALLOWED_BACKENDS = ("", "onnxruntime")
VERSION_FILES = ("model.onnx", "metadata.json", "labels.txt")
_VERSION_FILE = re.compile(r"^(\d+)/(model\.onnx|metadata\.json|labels\.txt)$")


class IntegrityError(RuntimeError):
    """A version's files differ from what the ledger approved; nothing was loaded."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(repo: Repository, name: str, version: int, config_text: str) -> dict:
    """The ledger's record of a version as it now lies in the repository: per file its
    sha256 (hashed from the bytes read back), size and ETag; config.pbtxt is the text given."""
    listed = repo.objects(name)
    if f"{version}/model.onnx" not in listed:
        raise IntegrityError(f"s3://{repo.bucket}/{repo.prefix}/{name}/{version}/model.onnx does not exist")
    files = {"config.pbtxt": {"sha256": sha256(config_text.encode()), "size": len(config_text.encode())}}
    for rel in (f"{version}/{base}" for base in VERSION_FILES if f"{version}/{base}" in listed):
        files[rel] = {"sha256": sha256(repo.read_file(name, rel)), **listed[rel]}
    return files


def backend_problem(config_text: str) -> str | None:
    """Why ``config_text`` may not be served, or None when it names the ONNX backend only."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        config = text_format.Parse(config_text, model_config_pb2.ModelConfig())
    except text_format.ParseError as err:
        return f"config.pbtxt does not parse ({err})"
    if config.platform != ONNX_PLATFORM or config.backend not in ALLOWED_BACKENDS:
        return (f"config.pbtxt names platform {config.platform!r} and backend {config.backend!r}; "
                f"only platform {ONNX_PLATFORM!r} (backend onnxruntime) is served")
    return None


def problems(repo: Repository, name: str, record: dict, version: int, deep: bool = True) -> list[str]:
    """Every way ``name`` version ``version`` differs from its ledger ``record``; [] when it may load."""
    entry = (record.get("versions") or {}).get(str(version))
    where = f"s3://{repo.bucket}/{repo.prefix}/{name}"
    if not entry or not entry.get("files"):
        return [f"the ledger has no file hashes for {name} v{version}; it was never approved"]
    found = repo.objects(name)
    out = [f"unexpected file {where}/{rel}" for rel in sorted(found)
           if rel != "config.pbtxt" and not _VERSION_FILE.match(rel)]
    for rel, want in sorted(entry["files"].items()):
        if rel not in found:
            out.append(f"{where}/{rel} is missing")
            continue
        if rel == "config.pbtxt" or deep:
            data = repo.read_file(name, rel)
            if sha256(data) != want["sha256"]:
                out.append(f"{where}/{rel} has sha256 {sha256(data)[:12]}..., the ledger approved "
                           f"{want['sha256'][:12]}...")
            elif rel == "config.pbtxt" and (why := backend_problem(data.decode())):
                out.append(why)
        elif (found[rel]["size"], found[rel]["etag"]) != (want.get("size"), want.get("etag")):
            out.append(f"{where}/{rel} changed since it was approved (size or ETag differ)")
    extra = {rel for rel in found if rel.startswith(f"{version}/")} - set(entry["files"])
    out += [f"unexpected file {where}/{rel}" for rel in sorted(extra) if _VERSION_FILE.match(rel)]
    return out


def verify(repo: Repository, name: str, record: dict, version: int) -> None:
    """Raise IntegrityError naming every problem unless ``version`` may be loaded."""
    found = problems(repo, name, record, version, deep=True)
    if found:
        raise IntegrityError(f"refusing to load {name} v{version}: " + "; ".join(found)
                             + ". Nothing was loaded; the served version is unchanged. Remove the unexpected "
                               "files or promote again")
