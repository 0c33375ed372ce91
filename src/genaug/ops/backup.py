"""``genaug backup TARGET [--keep N]``: one consistent copy of what a genaug installation
cannot rebuild, published whole or not at all (genaug.ops.targets).

    mlflow/tracking.<sqlite|pgdump>   MLflow's runs, registered versions and aliases
    mlflow/auth.<sqlite|pgdump>       MLflow's accounts and grants
    s3/genaug-triton/ledger/...       the promotion ledger: records and events (leases are not state)
    s3/genaug-triton/models/<m>/...   config.pbtxt and the champion's and previous version's folders
    s3/genaug-mlflow/<prefix>/...     the artifacts of every registered version (its run's and source's)
    manifest.json                     what is included, and every file's sha256 and size

The databases are copied first and the ledger before the model files it names: promotion
writes files before the records that name them, so every version the copied ledger serves
has its files in the backup.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from genaug.ops import catalog
from genaug.ops.manifest import NAME as MANIFEST, BackupError, Manifest
from genaug.ops.site import Site
from genaug.ops.targets import new_name
from genaug.services.names import MLFLOW_BUCKET, TRITON_BUCKET, TRITON_MODELS_PREFIX
from genaug.services.store import Store
from genaug.serving.ledger import MODELS_PREFIX

LEDGER_PREFIX = "ledger/"
LEASES_PREFIX = "ledger/locks/"  # who holds a model right now: meaningless in another installation
SERVED = ("champion", "previous")

Out = Callable[[str], None]


def object_path(bucket: str, key: str) -> str:
    """Where object s3://bucket/key lies inside a backup."""
    return f"s3/{bucket}/{key}"


class _Copier:
    """Copies objects of the installation's store into the staged backup, recording each."""

    def __init__(self, store: Store, staged: Path, manifest: Manifest):
        self.store, self.staged, self.manifest = store, staged, manifest

    def copy(self, bucket: str, keys) -> list[str]:
        keys = sorted(set(keys))
        for key in keys:
            relpath = object_path(bucket, key)
            self.store.get_file(bucket, key, self.staged / relpath)
            self.manifest.add(self.staged, relpath)
        return keys


def _served_files(store: Store, staged: Path, ledger_keys: list[str]) -> dict[str, list[str]]:
    """Per model of the copied ledger: config.pbtxt and its champion's and previous version's files."""
    out = {}
    for key in ledger_keys:
        if not (key.startswith(MODELS_PREFIX) and key.endswith(".json")):
            continue
        record = json.loads((staged / object_path(TRITON_BUCKET, key)).read_bytes())
        model = record["model"]
        folder = f"{TRITON_MODELS_PREFIX}/{model}/"
        keys = [f"{folder}config.pbtxt"] if store.exists(TRITON_BUCKET, f"{folder}config.pbtxt") else []
        for version in {record.get(role) for role in SERVED} - {None}:
            keys += store.list(TRITON_BUCKET, f"{folder}{version}/")
        out[model] = keys
    return out


def take(site: Site, staged: Path, out: Out = print) -> Manifest:
    """Write one backup of ``site`` into the empty folder ``staged``; return its manifest."""
    manifest = Manifest.new({"mlflow_backend": site.tracking.backend, "s3_endpoint": site.s3.endpoint,
                             "kind": "local" if site.local else "cluster"})
    for role, database in (("tracking", site.tracking), ("auth", site.auth)):
        relpath = f"mlflow/{role}.{database.suffix}"
        (staged / relpath).parent.mkdir(parents=True, exist_ok=True)
        database.dump(staged / relpath)
        manifest.add(staged, relpath)
        manifest.includes[f"mlflow_{role}_database"] = relpath
    out(f"  MLflow: {manifest.includes['mlflow_tracking_database']} and {manifest.includes['mlflow_auth_database']}")

    store = site.store()
    copier = _Copier(store, staged, manifest)
    ledger = copier.copy(TRITON_BUCKET, [k for k in store.list(TRITON_BUCKET, LEDGER_PREFIX)
                                         if not k.startswith(LEASES_PREFIX)])
    manifest.includes["ledger"] = ledger
    served = _served_files(store, staged, ledger)
    for keys in served.values():
        copier.copy(TRITON_BUCKET, keys)
    manifest.includes["triton"] = {m: sorted({k.split("/")[2] for k in keys if k.count("/") >= 3})
                                   for m, keys in served.items()}
    out(f"  ledger: {len(ledger)} object(s); Triton: " + (", ".join(
        f"{m} " + ("v" + "+v".join(v) if v else "(nothing served)") for m, v in manifest.includes["triton"].items())
        or "no served models"))

    prefixes = sorted({p for ps in catalog.registered_artifact_prefixes(staged_uri(site, staged, manifest)).values()
                       for p in ps})
    # A prefix names a folder or one file; "run1" must not take "run10" along; each object once
    # (a source inside its run's folder names the same objects twice).
    artifacts = sorted({k for prefix in prefixes for k in store.list(MLFLOW_BUCKET, prefix)
                        if k == prefix or k.startswith(prefix + "/")})
    copier.copy(MLFLOW_BUCKET, artifacts)
    manifest.includes["mlflow_artifacts"] = prefixes
    out(f"  MLflow artifacts: {len(artifacts)} object(s) under {len(prefixes)} registered version folder(s)")
    (staged / MANIFEST).write_bytes(manifest.to_json())
    return manifest


def staged_uri(site: Site, staged: Path, manifest: Manifest) -> str:
    """The database to list registered versions from: the SQLite copy just taken (the list then
    matches it exactly); PostgreSQL's live database, read after its dump (a superset of it)."""
    if site.tracking.backend == "sqlite":
        return f"sqlite:///{staged / manifest.includes['mlflow_tracking_database']}"
    return site.tracking.uri


def backup(site: Site, target, keep: int | None = None, out: Out = print) -> str:
    """Back ``site`` up into a new backup under ``target``; keep the ``keep`` newest there
    (None: all). Returns where the backup was published."""
    if keep is not None and keep < 1:
        raise BackupError(f"--keep {keep} would delete the backup just made; give 1 or more")
    name = new_name()
    out(f"genaug backup of {site.describe()} -> {target}/{name}")
    with tempfile.TemporaryDirectory(prefix="genaug-backup-") as tmp:
        manifest = take(site, Path(tmp), out)
        where = target.publish(name, Path(tmp))
    size = sum(f["size"] for f in manifest.files.values())
    out(f"  published {where}: {len(manifest.files)} file(s), {size / 1e6:.1f} MB")
    if keep is not None:
        for old in target.backups()[:-keep]:
            target.remove(old)
            out(f"  retention (--keep {keep}): removed {old}")
    return where
