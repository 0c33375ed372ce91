"""``genaug restore TARGET [--force]``: put a backup back into a new installation.

TARGET is a backup (a folder or prefix holding manifest.json) or a folder of backups, of
which the newest is taken. In order, and nothing is changed before steps 1-3 pass:

1. every file the manifest lists is fetched and its size and sha256 checked;
2. the backup's MLflow backend must be this installation's (SQLite locally, PostgreSQL on a cluster);
3. the installation must be empty (no run, registered model or ledger record) unless ``force``;
4. MLflow's databases are replaced while no MLflow server uses them:
   - locally restore stops the stack's MLflow itself (genaug.stack.launcher.stop_server),
     replaces mlflow.db and basic_auth.db each in one rename, and starts it again at the end;
   - on a cluster it refuses while anything else is connected to the tracking database:
     scale the mlflow Deployment to 0 first, and back to 1 after;
   then genaug's own accounts get this installation's passwords (genaug.ops.accounts);
5. the objects go back to their buckets: MLflow's artifacts, Triton's files, the ledger last;
6. locally ``python -m genaug.stack up`` restarts MLflow and runs one reconcile pass, which
   loads the champions into Triton and re-pins the aliases; on a cluster the reconciler
   sidecar does the same on its next pass.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genaug.ops import catalog, local_stack
from genaug.ops.accounts import reset_passwords
from genaug.ops.backup import LEDGER_PREFIX
from genaug.ops.manifest import NAME as MANIFEST, BackupError, Manifest
from genaug.ops.site import Site
from genaug.services.mlflow_access import ADMIN_USERNAME
from genaug.services.names import TRITON_BUCKET
from genaug.serving.ledger import MODELS_PREFIX

Out = Callable[[str], None]


@dataclass
class Restored:
    backup: str                  # which backup, as the target names it
    manifest: Manifest
    reconcile: list[str]         # what the restart's reconcile pass reported (local only)


def choose(target) -> str | None:
    """The backup to restore: TARGET itself when it holds a manifest (None), else its newest."""
    if target.has_manifest(None):
        return None
    names = target.backups()
    if not names:
        raise BackupError(f"no finished backup in {target} (none holds {MANIFEST}); check TARGET, "
                          "or list the folder: backups are named backup-<UTC time>")
    return names[-1]


def contents(site: Site) -> dict[str, int]:
    """What the installation already holds: runs, registered models, ledger records."""
    counts = catalog.content_counts(site.tracking.uri) if site.tracking.exists() else {}
    counts["ledger records"] = len(site.store().list(TRITON_BUCKET, MODELS_PREFIX))
    return {what: n for what, n in counts.items() if n}


def _check(site: Site, manifest: Manifest, force: bool) -> None:
    backend = manifest.source.get("mlflow_backend")
    if backend != site.tracking.backend:
        raise BackupError(f"the backup holds MLflow's {backend} database and {site.describe()} runs "
                          f"{site.tracking.backend}; restore it into an installation of the same kind")
    held = contents(site)
    if held and not force:
        raise BackupError(f"{site.describe()} is not empty ({', '.join(f'{n} {w}' for w, n in held.items())}); "
                          "restoring replaces MLflow's databases. Restore into a new stack (make down, move the "
                          "state folder away, make up), or pass --force to replace them")


def _put_objects(site: Site, root: Path, manifest: Manifest, out: Out) -> None:
    store = site.store()
    relpaths = [p for p in manifest.files if p.startswith("s3/")]
    # The ledger last: a record must never name files that are not back yet.
    ledger = f"s3/{TRITON_BUCKET}/{LEDGER_PREFIX}"
    for relpath in sorted(relpaths, key=lambda p: (p.startswith(ledger), p)):
        _, bucket, key = relpath.split("/", 2)
        store.put_file(bucket, key, root / relpath)
    out(f"  objects: {len(relpaths)} put back")


def _release_databases(site: Site, out: Out) -> None:
    """No MLflow may hold the databases while they are replaced: the local stack's is stopped
    here; on a cluster any other session on either database is refused."""
    if site.local:
        out(f"  mlflow: {local_stack.stop_mlflow(site.state_dir)} (its databases are about to be replaced)")
        return
    busy = {db.name: db.other_sessions() for db in (site.tracking, site.auth) if db.exists()}
    busy = {name: n for name, n in busy.items() if n}
    if busy:
        raise BackupError("other sessions use " + ", ".join(f"database {name!r} ({n})" for name, n in busy.items())
                          + "; stop MLflow first: kubectl -n genaug scale deploy/mlflow --replicas=0, and back to 1 "
                          "after the restore")


def restore(site: Site, target, force: bool = False, out: Out = print) -> Restored:
    """Restore the backup ``target`` names into ``site`` (module docstring: the steps)."""
    name = choose(target)
    where = f"{target}/{name}" if name else str(target)
    out(f"genaug restore {where} -> {site.describe()}")
    with tempfile.TemporaryDirectory(prefix="genaug-restore-") as tmp:
        root = target.fetch(name, Path(tmp))
        manifest = Manifest.from_json((root / MANIFEST).read_bytes(), f"{where}/{MANIFEST}")
        manifest.verify(root)
        out(f"  checked {len(manifest.files)} file(s) against the manifest of {manifest.created}")
        _check(site, manifest, force)
        _release_databases(site, out)
        site.tracking.restore(root / manifest.includes["mlflow_tracking_database"])
        site.auth.restore(root / manifest.includes["mlflow_auth_database"])
        if site.passwords:
            users = reset_passwords(site.auth.uri, site.passwords, ADMIN_USERNAME)
            out(f"  MLflow: databases replaced; accounts {', '.join(users)} take this installation's passwords")
        _put_objects(site, root, manifest, out)
    report = local_stack.restart(site.state_dir, out) if site.local else []
    if not site.local:
        out("  now: kubectl -n genaug scale deploy/mlflow --replicas=1; the reconciler serves the champions "
            "on its next pass (30 s)")
    return Restored(where, manifest, report)
