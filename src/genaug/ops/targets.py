"""Where backups go: a folder, or an S3 prefix on ANOTHER store than the stack's.

    TARGET/<name>/manifest.json + files     one backup; <name> = backup-<UTC time>, so names sort by age

A backup is staged in a local folder, then published under its name with its manifest last:
a folder target copies it to ``TARGET/.partial-<name>`` and renames that (one atomic step);
an S3 target uploads every file, then the manifest. A backup without its manifest is
unfinished and is neither listed, restored nor counted by retention.

An S3 target's endpoint and keys come from GENAUG_BACKUP_S3_ENDPOINT (host:port),
GENAUG_BACKUP_S3_ACCESS_KEY, GENAUG_BACKUP_S3_SECRET_KEY and GENAUG_BACKUP_S3_SECURE.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from genaug.ops.manifest import NAME as MANIFEST, BackupError
from genaug.services.names import BUCKETS
from genaug.services.store import S3Config, Store

PREFIX = "backup-"
PARTIAL = ".partial-"
ENDPOINT_ENV, ACCESS_ENV, SECRET_ENV, SECURE_ENV = ("GENAUG_BACKUP_S3_ENDPOINT", "GENAUG_BACKUP_S3_ACCESS_KEY",
                                                    "GENAUG_BACKUP_S3_SECRET_KEY", "GENAUG_BACKUP_S3_SECURE")


def new_name() -> str:
    """backup-20261205T172233123456Z: UTC, microseconds, so names sort by age."""
    return PREFIX + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _host(endpoint: str) -> str:
    host, _, port = endpoint.lower().rpartition(":")
    return f"{'127.0.0.1' if host in ('localhost', '::1', '[::1]') else host}:{port}"


class FolderTarget:
    def __init__(self, root: Path):
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def backups(self) -> list[str]:
        """Names of the finished backups, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.name.startswith(PREFIX) and (p / MANIFEST).is_file())

    def publish(self, name: str, staged: Path) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f"{PARTIAL}{name}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staged, partial)
        os.rename(partial, self.root / name)
        return str(self.root / name)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.root / name)

    def has_manifest(self, name: str | None) -> bool:
        return ((self.root / name) if name else self.root).joinpath(MANIFEST).is_file()

    def fetch(self, name: str | None, scratch: Path) -> Path:
        """The folder that holds the backup (read in place: nothing to download)."""
        return self.root / name if name else self.root


class S3Target:
    def __init__(self, store: Store, bucket: str, prefix: str):
        self.store, self.bucket, self.prefix = store, bucket, prefix.strip("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} on {self.store.config.endpoint}"

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def backups(self) -> list[str]:
        keys = self.store.list(self.bucket, self._key() + "/" if self.prefix else "")
        start = len(self._key()) + 1 if self.prefix else 0
        return sorted({k[start:].split("/")[0] for k in keys
                       if k[start:].startswith(PREFIX) and k[start:].endswith("/" + MANIFEST)
                       and k[start:].count("/") == 1})

    def publish(self, name: str, staged: Path) -> str:
        for path in sorted(p for p in staged.rglob("*") if p.is_file() and p != staged / MANIFEST):
            self.store.put_file(self.bucket, self._key(name, path.relative_to(staged).as_posix()), path)
        self.store.put_file(self.bucket, self._key(name, MANIFEST), staged / MANIFEST)
        return f"s3://{self.bucket}/{self._key(name)}"

    def remove(self, name: str) -> None:
        # The manifest first: a backup stops counting before its files go.
        self.store.delete(self.bucket, self._key(name, MANIFEST))
        for key in self.store.list(self.bucket, self._key(name) + "/"):
            self.store.delete(self.bucket, key)

    def has_manifest(self, name: str | None) -> bool:
        return self.store.exists(self.bucket, self._key(name or "", MANIFEST))

    def fetch(self, name: str | None, scratch: Path) -> Path:
        """Download the manifest and every file it lists into ``scratch``; return it."""
        from genaug.ops.manifest import Manifest

        key = self._key(name or "", MANIFEST)
        self.store.get_file(self.bucket, key, scratch / MANIFEST)
        manifest = Manifest.from_json((scratch / MANIFEST).read_bytes(), f"s3://{self.bucket}/{key}")
        for relpath in manifest.files:
            self.store.get_file(self.bucket, self._key(name or "", relpath), scratch / relpath)
        return scratch


def _s3_target(text: str, stack_endpoint: str | None) -> S3Target:
    bucket, _, prefix = text[len("s3://"):].partition("/")
    missing = [n for n in (ENDPOINT_ENV, ACCESS_ENV, SECRET_ENV) if not os.environ.get(n)]
    if not bucket or missing:
        raise BackupError(f"target {text!r} needs " + (f"{', '.join(missing)} (the backup store's endpoint "
                          "and keys)" if missing else "a bucket: s3://bucket/prefix"))
    endpoint = os.environ[ENDPOINT_ENV]
    if stack_endpoint and _host(endpoint) == _host(stack_endpoint) and bucket in BUCKETS:
        raise BackupError(f"target {text!r} is bucket {bucket!r} of the stack's own store {endpoint}: a backup "
                          "must live elsewhere, where losing the stack cannot take it along; set "
                          f"{ENDPOINT_ENV} to another store (or use a bucket that is not one of {', '.join(BUCKETS)})")
    secure = os.environ.get(SECURE_ENV, "false").lower() in ("1", "true", "yes")
    return S3Target(Store(S3Config(endpoint, os.environ[ACCESS_ENV], os.environ[SECRET_ENV], secure)), bucket, prefix)


def open_target(text: str, stack_endpoint: str | None, state_dir: Path | None = None):
    """The target named by ``text`` (a folder or s3://bucket/prefix), refusing the stack itself."""
    if text.startswith("s3://"):
        return _s3_target(text, stack_endpoint)
    root = Path(text).expanduser().resolve()
    if state_dir is not None and root.is_relative_to(state_dir.resolve()):
        raise BackupError(f"target {root} is inside the stack's state folder {state_dir}, which is lost with the "
                          "stack; choose a folder outside it")
    return FolderTarget(root)
