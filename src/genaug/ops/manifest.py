"""A backup's manifest: what it holds and the sha256 of every file, checked before restore.

    manifest.json = {"format": "genaug-backup", "format_version": 1, "created": "<UTC ISO time>",
                     "source": {"mlflow_backend": "sqlite" | "postgresql", ...},
                     "includes": {"mlflow_database": "mlflow/tracking.<ext>", "mlflow_auth_database": ...,
                                  "ledger": [keys], "triton": {model: [versions]},
                                  "mlflow_artifacts": [prefixes in genaug-mlflow]},
                     "files": {"<path in the backup>": {"sha256": "<hex>", "size": <bytes>}}}

A backup is written under a temporary name and published last (genaug.ops.targets), so a
manifest exists only for a complete backup; restore reads nothing but what it lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from genaug.services.store import sha256_file

NAME = "manifest.json"
FORMAT = "genaug-backup"
FORMAT_VERSION = 1


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message names the value and the fix."""


@dataclass
class Manifest:
    created: str
    source: dict
    includes: dict = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def new(cls, source: dict) -> "Manifest":
        return cls(datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), source)

    def add(self, root: Path, relpath: str) -> None:
        """Record ``root/relpath``'s sha256 and size (bytes)."""
        path = root / relpath
        self.files[relpath] = {"sha256": sha256_file(path), "size": path.stat().st_size}

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "created": self.created,
                           "source": self.source, "includes": self.includes, "files": self.files},
                          indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Manifest":
        try:
            value = json.loads(data)
        except ValueError as err:
            raise BackupError(f"{where} is not a genaug backup manifest ({err}); pick another backup") from err
        if value.get("format") != FORMAT or value.get("format_version") != FORMAT_VERSION:
            raise BackupError(f"{where} has format {value.get('format')!r} version {value.get('format_version')!r}; "
                              f"this genaug reads {FORMAT!r} version {FORMAT_VERSION} only: restore it with the "
                              "genaug release that wrote it")
        return cls(value["created"], value["source"], value["includes"], value["files"])

    def verify(self, root: Path) -> None:
        """Raise BackupError naming every file under ``root`` that is missing or whose
        size or sha256 differs from the manifest; nothing is read beyond the listed files."""
        bad = []
        for relpath, want in sorted(self.files.items()):
            path = root / relpath
            if not path.is_file():
                bad.append(f"{relpath}: missing")
            elif path.stat().st_size != want["size"] or sha256_file(path) != want["sha256"]:
                bad.append(f"{relpath}: sha256 differs from the manifest")
        if bad:
            raise BackupError(f"the backup at {root} is damaged; nothing was restored. " + "; ".join(bad[:10])
                              + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")
                              + ". Restore an older backup (genaug restore TARGET/<name>)")
