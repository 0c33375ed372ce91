"""Small JSON records in S3 with compare-and-set: the primitive under the lock and the ledger.

S3 conditional writes (AWS S3 since 2024-08, MinIO, SeaweedFS >= 3.97) make a PUT atomic
against a precondition the server checks:

- ``If-None-Match: *`` creates the object only if the key is absent;
- ``If-Match: <etag>`` replaces it only if nobody wrote it since that ETag was read.

Either fails with 412 PreconditionFailed (here: ``Conflict``) when another writer got
there first, so a read-modify-write loop on one record never loses an update. The minio
SDK turns unknown headers into user metadata, so these calls go through boto3, whose
``IfNoneMatch``/``IfMatch`` arguments are S3's own.

Each record carries its sha256 in its metadata and is checked on every read, like every
object that genaug.services.store writes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from genaug.services.store import S3Config, StoreError

SHA_META = "sha256"


class Conflict(RuntimeError):
    """A conditional write lost: the record was created or changed by another writer."""


@dataclass(frozen=True)
class Record:
    """A record as read: its value and the ETag a conditional write must name."""

    value: dict
    etag: str


class Records:
    """Conditional reads and writes of JSON records in one bucket."""

    def __init__(self, bucket: str, config: S3Config | None = None, timeout_s: float = 10.0):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.config = config or S3Config.from_env()
        scheme = "https" if self.config.secure else "http"
        # No retries inside the client: a retried conditional PUT whose first try did land
        # would report a Conflict against its own write. Callers loop on Conflict instead.
        self.client = boto3.client(
            "s3", endpoint_url=f"{scheme}://{self.config.endpoint}", region_name="us-east-1",
            aws_access_key_id=self.config.access_key, aws_secret_access_key=self.config.secret_key,
            config=Config(connect_timeout=timeout_s, read_timeout=max(timeout_s, 30.0),
                          retries={"max_attempts": 1}, s3={"addressing_style": "path"}))

    # -- errors --------------------------------------------------------------------------
    def _explain(self, err: Exception, what: str) -> Exception:
        from botocore.exceptions import ClientError

        where = f"S3 server {self.config.endpoint}"
        if isinstance(err, ClientError):
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return Conflict(f"s3://{self.bucket}/{what} was changed by another writer")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
                return StoreError(f"{where} refused access key {self.config.access_key!r} ({code}) on "
                                  f"s3://{self.bucket}/{what}; check GENAUG_S3_ACCESS_KEY / GENAUG_S3_SECRET_KEY")
            return StoreError(f"{where} answered {code} on s3://{self.bucket}/{what}: {err}")
        return StoreError(f"cannot reach {where} for s3://{self.bucket}/{what} ({type(err).__name__}: {err}); "
                          f"start it with `make up` or fix GENAUG_S3_ENDPOINT")

    # -- reads ---------------------------------------------------------------------------
    def read(self, key: str) -> Record | None:
        """The record at ``key``, or None when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
            body = resp["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                return None
            raise self._explain(err, key) from err
        except (BotoCoreError, OSError) as err:
            raise self._explain(err, key) from err
        recorded = (resp.get("Metadata") or {}).get(SHA_META)
        got = hashlib.sha256(body).hexdigest()
        if recorded and recorded != got:
            raise StoreError(f"s3://{self.bucket}/{key} is corrupt: sha256 {got} != recorded {recorded}; "
                             f"restore it from a backup or delete it")
        try:
            value = json.loads(body)
        except ValueError as err:
            raise StoreError(f"s3://{self.bucket}/{key} is not JSON ({err}); restore it from a backup") from err
        return Record(value, resp["ETag"])

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""
        from botocore.exceptions import BotoCoreError, ClientError

        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [o["Key"] for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError, OSError) as err:
            raise self._explain(err, prefix) from err
        return sorted(out)

    # -- conditional writes ----------------------------------------------------------------
    def _put(self, key: str, value: dict, **condition) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        body = json.dumps(value, indent=1, sort_keys=True).encode()
        try:
            resp = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                                          Metadata={SHA_META: hashlib.sha256(body).hexdigest()}, **condition)
        except (ClientError, BotoCoreError, OSError) as err:
            raise self._explain(err, key) from err
        return resp["ETag"]

    def create(self, key: str, value: dict) -> str:
        """Write ``value`` only if ``key`` does not exist; return the new ETag, or raise Conflict."""
        return self._put(key, value, IfNoneMatch="*")

    def replace(self, key: str, value: dict, etag: str) -> str:
        """Write ``value`` only if ``key`` still has ``etag``; return the new ETag, or raise Conflict."""
        return self._put(key, value, IfMatch=etag)

    def write(self, key: str, value: dict, etag: str | None) -> str:
        """create() when ``etag`` is None (the record was absent when read), else replace()."""
        return self.create(key, value) if etag is None else self.replace(key, value, etag)

    def put(self, key: str, value: dict) -> str:
        """An unconditional write, for records that only one writer ever makes (events)."""
        return self._put(key, value)

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError, OSError) as err:
            raise self._explain(err, key) from err
