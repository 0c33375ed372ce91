"""Make Triton serve what the promotion ledger says: the champions, at their versions.

Triton in explicit mode starts empty, so after every (re)start the stack calls
``reconcile``; promotion may call it too. The ledger is the object
``s3://genaug-triton/ledger/champions.json``:

    {"models": {"<model name>": {"version": <int>, "previous": <int or null>}}}

An absent ledger means nothing to load. Each listed model is loaded over gRPC with the
admin key unless it already serves its ledger version; ``config.pbtxt`` in the
repository pins which version Triton serves, and a mismatch with the ledger is reported.
Failures are collected per model, never raised, so one bad model cannot block the rest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import urllib3
from minio import Minio
from minio.error import S3Error

from genaug.stack.config import LEDGER_KEY, TRITON_BUCKET
from genaug.stack.credentials import admin_headers

_MODEL_NAME = re.compile(r"^[0-9A-Za-z._-]+$")  # what a path segment of Triton's S3 repository allows


@dataclass
class ReconcileReport:
    """Outcome per model: loaded now, already serving, or failed with the reason."""

    loaded: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    ledger_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.ledger_error is None

    def lines(self) -> list[str]:
        out = []
        if self.ledger_error:
            out.append(f"ledger unreadable: {self.ledger_error}")
        out += [f"loaded {name}" for name in self.loaded]
        out += [f"already serving {name}" for name in self.already]
        out += [f"FAILED {name}: {reason}" for name, reason in self.failed.items()]
        return out or ["ledger lists no models"]


def read_ledger(s3: Minio, bucket: str = TRITON_BUCKET, key: str = LEDGER_KEY) -> dict[str, dict]:
    """The ledger's ``models`` map; {} when the object does not exist.

    Raises ValueError for a ledger that exists but is not in the documented format.
    """
    try:
        response = s3.get_object(bucket, key)
    except S3Error as err:
        if err.code in ("NoSuchKey", "NoSuchBucket"):
            return {}
        raise
    try:
        raw = response.read()
    finally:
        response.close()
        response.release_conn()
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ValueError(f"s3://{bucket}/{key} is not JSON ({err})") from err
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"s3://{bucket}/{key} has no 'models' object; expected "
                         '{"models": {"<name>": {"version": <int>, "previous": <int or null>}}}')
    return models


def _wanted_version(name: str, entry) -> int:
    if not _MODEL_NAME.match(name):
        raise ValueError(f"model name {name!r} has characters Triton's S3 repository cannot hold; use [0-9A-Za-z._-]")
    version = entry.get("version") if isinstance(entry, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"ledger entry {entry!r} has no positive integer 'version'")
    return version


def reconcile(triton_grpc: str, admin_key: str, s3: Minio, *, bucket: str = TRITON_BUCKET,
              ledger_key: str = LEDGER_KEY, load_timeout_s: float = 120.0) -> ReconcileReport:
    """Load into Triton at ``triton_grpc`` (host:port) every model the ledger lists.

    ``s3`` reads the ledger; ``admin_key`` unlocks load calls. ``load_timeout_s`` bounds
    each load (a load downloads every version folder of the model from S3).
    """
    import tritonclient.grpc as grpcclient  # heavy; only needed here
    from tritonclient.utils import InferenceServerException

    report = ReconcileReport()
    try:
        models = read_ledger(s3, bucket, ledger_key)
    except (ValueError, S3Error, urllib3.exceptions.HTTPError, OSError) as err:
        report.ledger_error = (str(err) if isinstance(err, ValueError)
                               else f"s3://{bucket}/{ledger_key}: {type(err).__name__}: {err}")
        return report

    headers = admin_headers(admin_key, "grpc")
    with grpcclient.InferenceServerClient(triton_grpc) as triton:
        for name, entry in models.items():
            try:
                version = _wanted_version(name, entry)
                if triton.is_model_ready(name, str(version), client_timeout=10):
                    report.already.append(name)
                    continue
                triton.load_model(name, headers=headers, client_timeout=load_timeout_s)
                if triton.is_model_ready(name, str(version), client_timeout=10):
                    report.loaded.append(name)
                    continue
                served = triton.get_model_metadata(name, client_timeout=10).versions
                report.failed[name] = (f"loaded, but serves version(s) {list(served)} instead of the "
                                       f"ledger's {version}; fix version_policy in {name}/config.pbtxt "
                                       "or the ledger")
            except ValueError as err:
                report.failed[name] = str(err)
            except InferenceServerException as err:
                report.failed[name] = str(err).strip().splitlines()[0]
    return report
