"""Object storage through the minio SDK: MinIO on a cluster, any S3 server locally.

Endpoint, keys and TLS come from the environment (GENAUG_S3_ENDPOINT host:port,
GENAUG_S3_ACCESS_KEY, GENAUG_S3_SECRET_KEY, GENAUG_S3_SECURE). Every object written here
carries its sha256 in its metadata, and:
- uploads are atomic: the bytes go to a staging key, are read back and hashed, and only
  then copied to the final key, so a reader never sees a partial or corrupt object;
- downloads are hashed and checked against the recorded sha256;
- buckets are created on first use;
- a server that is down or refuses the credentials gives a StoreError naming the
  endpoint and the fix, within a bounded time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from genaug.atomic import atomic_path
from genaug.services.endpoints import load_admin_env, require

SHA_KEY = "sha256"  # user metadata key (sent as x-amz-meta-sha256)
# The identity that may change what Triton serves, where it differs from the steps' (the
# local stack's admin.env). On a cluster the promote step's GENAUG_S3_* already is that identity.
PROMOTE_ACCESS_ENV, PROMOTE_SECRET_ENV = "GENAUG_PROMOTE_S3_ACCESS_KEY", "GENAUG_PROMOTE_S3_SECRET_KEY"
STAGING = ".staging"
CHUNK = 1 << 20
PART_SIZE = 16 << 20  # multipart above this size


class StoreError(RuntimeError):
    """An object-storage failure; the message names the endpoint or object and the fix."""


@dataclass(frozen=True)
class S3Config:
    endpoint: str      # host:port
    access_key: str
    secret_key: str
    secure: bool = False

    @classmethod
    def from_env(cls) -> "S3Config":
        endpoint, access, secret = require(["GENAUG_S3_ENDPOINT", "GENAUG_S3_ACCESS_KEY", "GENAUG_S3_SECRET_KEY"],
                                           "the S3 endpoint and keys", StoreError)
        return cls(endpoint, access, secret, os.environ.get("GENAUG_S3_SECURE", "false").lower() in ("1", "true", "yes"))

    @classmethod
    def for_promotion(cls) -> "S3Config":
        """The endpoint with the promote identity: GENAUG_PROMOTE_S3_* when set (locally, from
        .genaug/admin.env), else GENAUG_S3_* (the promote step's and the reconciler's on a cluster)."""
        config = cls.from_env()
        load_admin_env()
        if os.environ.get(PROMOTE_ACCESS_ENV) and os.environ.get(PROMOTE_SECRET_ENV):
            return cls(config.endpoint, os.environ[PROMOTE_ACCESS_ENV], os.environ[PROMOTE_SECRET_ENV], config.secure)
        return config


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def optional_store() -> "Store | None":
    """The object store when one is configured (always, in a pipeline run), else None, so
    that a step run by hand works without servers. Here rather than in genaug.steps.context
    so that the steps that need no torch (data_version, prepare_data) do not import it."""
    from genaug.services.endpoints import load_stack_env

    load_stack_env()
    return Store() if os.environ.get("GENAUG_S3_ENDPOINT") else None


def promotion_store(**kwargs) -> "Store":
    """A Store with the identity that may write Triton's repository and the ledger."""
    return Store(S3Config.for_promotion(), **kwargs)


class Store:
    """A bucket-and-key store with verified, atomic writes and verified reads."""

    def __init__(self, config: S3Config | None = None, timeout_s: float = 10.0, retries: int = 2):
        self.config = config or S3Config.from_env()
        # Bounded connect/read timeouts and few retries: a dead server must fail a step
        # in seconds, not hang it (urllib3's defaults retry for minutes).
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=max(timeout_s, 60.0)),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
            maxsize=8,
        )
        self.client = Minio(self.config.endpoint, access_key=self.config.access_key,
                            secret_key=self.config.secret_key, secure=self.config.secure, http_client=http)
        self._buckets: set[str] = set()

    # -- errors ----------------------------------------------------------------------
    def _explain(self, err: Exception, what: str) -> StoreError:
        where = f"S3 server {self.config.endpoint}"
        if isinstance(err, S3Error):
            if err.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                return StoreError(f"{where} refused access key {self.config.access_key!r} ({err.code}) "
                                  f"while {what}; check GENAUG_S3_ACCESS_KEY / GENAUG_S3_SECRET_KEY "
                                  f"(locally: .genaug/stack.env, written by `make up`)")
            if err.code in ("NoSuchKey", "NoSuchBucket"):
                return StoreError(f"missing object while {what} on {where} ({err.code}); "
                                  f"rerun the step that writes it")
            return StoreError(f"{where} answered {err.code} while {what}: {err.message}")
        if isinstance(getattr(err, "reason", None), urllib3.exceptions.ResponseError):
            # Retries ran out on 5xx answers: the server is up, so `make up` is the wrong advice.
            return StoreError(f"{where} kept failing while {what} ({err.reason}); it is running but cannot "
                              f"serve this: read its log (local stack: .genaug/logs/s3.log, where a full "
                              f"disk or 'no free volumes left' are the usual causes)")
        return StoreError(f"cannot reach {where} while {what} ({type(err).__name__}: {err}); "
                          f"start it with `make up` or fix GENAUG_S3_ENDPOINT")

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except (S3Error, urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            raise self._explain(err, what) from err

    # -- buckets and listing ---------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        if bucket in self._buckets:
            return
        if not self._call(f"checking bucket {bucket}", self.client.bucket_exists, bucket):
            try:
                self.client.make_bucket(bucket)
            except S3Error as err:
                # Another process may have created it between the check and the create.
                if err.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise self._explain(err, f"creating bucket {bucket}") from err
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise self._explain(err, f"creating bucket {bucket}") from err
        self._buckets.add(bucket)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.stat_object(bucket, key)
            return True
        except S3Error as err:
            if err.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return False
            raise self._explain(err, f"looking up s3://{bucket}/{key}") from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise self._explain(err, f"looking up s3://{bucket}/{key}") from err

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        """Object keys under ``prefix`` (recursive), staging area excluded."""
        self.ensure_bucket(bucket)
        objs = self._call(f"listing s3://{bucket}/{prefix}",
                          lambda: list(self.client.list_objects(bucket, prefix=prefix, recursive=True)))
        return [o.object_name for o in objs if not o.object_name.startswith(STAGING + "/")]

    def listing(self, bucket: str, prefix: str = "") -> dict[str, dict]:
        """Objects under ``prefix`` (recursive, staging excluded): key -> {"size", "etag"}."""
        self.ensure_bucket(bucket)
        objs = self._call(f"listing s3://{bucket}/{prefix}",
                          lambda: list(self.client.list_objects(bucket, prefix=prefix, recursive=True)))
        return {o.object_name: {"size": o.size, "etag": (o.etag or "").strip('"')}
                for o in objs if not o.object_name.startswith(STAGING + "/")}

    def aged(self, bucket: str, prefix: str = "") -> list[tuple[str, int, float]]:
        """(key, size in bytes, last modified in unix seconds) of every object under ``prefix``,
        the staging area included when ``prefix`` names it: what retention needs."""
        self.ensure_bucket(bucket)
        objs = self._call(f"listing s3://{bucket}/{prefix}",
                          lambda: list(self.client.list_objects(bucket, prefix=prefix, recursive=True)))
        return [(o.object_name, int(o.size or 0), o.last_modified.timestamp() if o.last_modified else 0.0)
                for o in objs if prefix.startswith(STAGING + "/") or not o.object_name.startswith(STAGING + "/")]

    def delete(self, bucket: str, key: str) -> None:
        self._call(f"deleting s3://{bucket}/{key}", self.client.remove_object, bucket, key)

    # -- writes ----------------------------------------------------------------------
    def put_file(self, bucket: str, key: str, path: str | Path, metadata: dict | None = None) -> str:
        """Upload ``path`` to s3://bucket/key atomically; return its sha256 (hex)."""
        self.ensure_bucket(bucket)
        digest = sha256_file(path)
        staging = f"{STAGING}/{key}.{uuid.uuid4().hex}"
        meta = {**(metadata or {}), SHA_KEY: digest}
        try:
            self._call(f"uploading {path} to s3://{bucket}/{key}", self.client.fput_object, bucket, staging,
                       str(path), metadata=meta, part_size=PART_SIZE)
            got = self._hash_object(bucket, staging)
            if got != digest:
                raise StoreError(f"upload of {path} to s3://{bucket}/{key} arrived corrupt "
                                 f"(sha256 {got} != {digest}); nothing was published, retry the step")
            self._call(f"publishing s3://{bucket}/{key}", self.client.copy_object, bucket, key,
                       CopySource(bucket, staging), metadata=meta, metadata_directive="REPLACE")
        finally:
            try:
                self.client.remove_object(bucket, staging)
            except Exception:  # best effort: the staging key is never read by anyone
                pass
        return digest

    def put_content(self, bucket: str, key: str, data: bytes, metadata: dict | None = None) -> str:
        """Upload ``data`` (below PART_SIZE: one PUT) to s3://bucket/key; return its sha256.

        For content-addressed keys, which every reader checks against the hash the key names:
        no staging copy and read-back, one request instead of four. A single PUT is atomic (the
        object appears whole or not at all) and SigV4 signs the payload's sha256 (over TLS,
        TLS protects it), so the server refuses bytes that changed on the way; a plain-MD5
        ETag that differs from the data's is refused here too, and the object removed."""
        if len(data) >= PART_SIZE:
            return self.put_bytes(bucket, key, data, metadata)
        self.ensure_bucket(bucket)
        digest = hashlib.sha256(data).hexdigest()
        result = self._call(f"uploading s3://{bucket}/{key}", self.client.put_object, bucket, key, io.BytesIO(data),
                            len(data), metadata={**(metadata or {}), SHA_KEY: digest})
        etag = (result.etag or "").strip('"')
        if len(etag) == 32 and "-" not in etag and etag != hashlib.md5(data).hexdigest():
            self.delete(bucket, key)
            raise StoreError(f"upload to s3://{bucket}/{key} arrived corrupt (ETag {etag} is not the data's MD5); "
                             "it was removed, retry")
        return digest

    def put_bytes(self, bucket: str, key: str, data: bytes, metadata: dict | None = None) -> str:
        import tempfile

        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            return self.put_file(bucket, key, tmp.name, metadata)

    def put_json(self, bucket: str, key: str, value) -> str:
        return self.put_bytes(bucket, key, json.dumps(value, indent=2, sort_keys=True).encode())

    # -- reads -----------------------------------------------------------------------
    def recorded_sha256(self, bucket: str, key: str) -> str | None:
        stat = self._call(f"reading s3://{bucket}/{key}", self.client.stat_object, bucket, key)
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        return meta.get(f"x-amz-meta-{SHA_KEY}")

    def _hash_object(self, bucket: str, key: str, sink=None) -> str:
        h = hashlib.sha256()
        resp = self._call(f"reading s3://{bucket}/{key}", self.client.get_object, bucket, key)
        try:
            for block in resp.stream(CHUNK):
                h.update(block)
                if sink is not None:
                    sink.write(block)
        finally:
            resp.close()
            resp.release_conn()
        return h.hexdigest()

    def get_file(self, bucket: str, key: str, dest: str | Path, expected_sha256: str | None = None) -> str:
        """Download to ``dest`` (atomically) after checking the bytes' sha256; return it.

        The check is against ``expected_sha256`` if given, else the hash recorded at upload.
        """
        recorded = expected_sha256 or self.recorded_sha256(bucket, key)
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as f:
                got = self._hash_object(bucket, key, f)
            if recorded and got != recorded:
                raise StoreError(f"s3://{bucket}/{key} is corrupt: sha256 {got} != recorded {recorded}; "
                                 f"delete it and rerun the step that writes it")
        return got

    def get_bytes(self, bucket: str, key: str, expected_sha256: str | None = None) -> bytes:
        """The object's bytes, checked against ``expected_sha256`` if given (one request),
        else against the hash recorded at upload."""
        buf = io.BytesIO()
        recorded = expected_sha256 or self.recorded_sha256(bucket, key)
        got = self._hash_object(bucket, key, buf)
        if recorded and got != recorded:
            raise StoreError(f"s3://{bucket}/{key} is corrupt: sha256 {got} != recorded {recorded}; "
                             f"delete it and rerun the step that writes it")
        return buf.getvalue()

    def get_json(self, bucket: str, key: str, default=None):
        if default is not None and not self.exists(bucket, key):
            return default
        return json.loads(self.get_bytes(bucket, key))
