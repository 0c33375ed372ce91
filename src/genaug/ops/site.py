"""The installation a backup is taken from or restored into: its object store, MLflow's two
databases and the passwords its own MLflow accounts have.

- local: the stack in a state folder (--state-dir, $GENAUG_STATE_DIR, ./.genaug): SQLite
  files, its S3 endpoint from ports.json and its S3 admin keys (an operator's command);
- cluster (when GENAUG_POSTGRES_HOST is set, as in the backup CronJob): GENAUG_S3_* (an
  identity that reads, for restore writes, genaug-mlflow and genaug-triton), PostgreSQL from
  POSTGRES_USER, POSTGRES_DB, GENAUG_POSTGRES_HOST, GENAUG_POSTGRES_PORT and PGPASSWORD, the
  auth database ``<POSTGRES_DB>_auth`` (genaug.deploy.mlflow_accounts), and for restore the
  accounts' passwords MLFLOW_AUTH_ADMIN_PASSWORD and GENAUG_MLFLOW_<ROLE>_PASSWORD;
  GENAUG_BACKUP_PG_DUMPS names a folder of dumps already taken (the CronJob's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from genaug.ops.databases import PostgresDatabase, SqliteDatabase
from genaug.ops.manifest import BackupError
from genaug.services import mlflow_access
from genaug.services.store import S3Config, Store

POSTGRES_HOST_ENV = "GENAUG_POSTGRES_HOST"
# A folder where tracking.pgdump and auth.pgdump were already written (the CronJob's init
# container runs the server's release of pg_dump; the genaug image's could be older).
DUMPS_ENV = "GENAUG_BACKUP_PG_DUMPS"


@dataclass
class Site:
    s3: S3Config
    tracking: SqliteDatabase | PostgresDatabase
    auth: SqliteDatabase | PostgresDatabase
    # username -> password of genaug's own MLflow accounts here (given back after a restore)
    passwords: dict[str, str] = field(default_factory=dict)
    state_dir: Path | None = None  # the local stack's; None on a cluster

    @property
    def local(self) -> bool:
        return self.state_dir is not None

    def store(self) -> Store:
        return Store(self.s3)

    def describe(self) -> str:
        return f"the local stack in {self.state_dir}" if self.local else \
            f"the cluster's PostgreSQL {self.tracking.host}:{self.tracking.port} and S3 {self.s3.endpoint}"


def cluster_site() -> Site:
    from genaug.deploy.mlflow_accounts import AUTH_DB_SUFFIX, password_env

    names = ["POSTGRES_USER", "POSTGRES_DB", POSTGRES_HOST_ENV, "PGPASSWORD"]
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise BackupError(f"{', '.join(missing)} not set; on a cluster they come from Secret genaug-postgres "
                          "and ConfigMap genaug-services (manifests/base/services/backup.yaml)")
    user, name, host = (os.environ[n] for n in names[:3])
    port = int(os.environ.get("GENAUG_POSTGRES_PORT") or 5432)
    passwords = {}
    if os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
        passwords[mlflow_access.ADMIN_USERNAME] = os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
    passwords.update({user_: os.environ[password_env(role)] for role, user_ in mlflow_access.USERNAMES.items()
                      if os.environ.get(password_env(role))})
    dumps = Path(os.environ[DUMPS_ENV]) if os.environ.get(DUMPS_ENV) else None
    return Site(S3Config.from_env(),
                PostgresDatabase(host, port, user, name, dumps and dumps / "tracking.pgdump"),
                PostgresDatabase(host, port, user, name + AUTH_DB_SUFFIX, dumps and dumps / "auth.pgdump"), passwords)


def site_from_env(state_dir: Path | None) -> Site:
    """The cluster when GENAUG_POSTGRES_HOST is set, else the local stack in ``state_dir``
    (default: $GENAUG_STATE_DIR or ./.genaug)."""
    if os.environ.get(POSTGRES_HOST_ENV) and state_dir is None:
        return cluster_site()
    from genaug.ops import local_stack

    return local_stack.site(state_dir)
