"""MLflow's databases, dumped and restored whole: SQLite locally, PostgreSQL on a cluster.

SQLite is copied with its online backup API (``sqlite3.Connection.backup``), which gives a
consistent snapshot while the MLflow server keeps it open. PostgreSQL goes through
``pg_dump --format=custom`` and ``pg_restore``; the password reaches both as PGPASSWORD in
their environment (the caller's, e.g. from Secret genaug-postgres), never on their command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from genaug.atomic import atomic_path
from genaug.ops.manifest import BackupError


@dataclass(frozen=True)
class SqliteDatabase:
    path: Path
    backend = "sqlite"
    suffix = "sqlite"

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.path}"

    def exists(self) -> bool:
        return self.path.is_file()

    def dump(self, dest: Path) -> None:
        """A consistent copy of the database at ``dest``, taken while writers may be active."""
        if not self.path.is_file():
            raise BackupError(f"no SQLite database at {self.path}; is this the stack's state folder "
                              "(--state-dir, $GENAUG_STATE_DIR)?")
        source = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()

    def restore(self, dump: Path) -> None:
        """Replace the database with ``dump`` in one rename. Its server must be stopped: a
        process holding the old file open would keep writing to the replaced inode."""
        with atomic_path(self.path) as tmp:
            shutil.copyfile(dump, tmp)
        # A journal beside the new file would be replayed into it as if it were the old one's.
        for suffix in ("-journal", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


# pg_dump's flags; the backup CronJob's init container passes the same (a test compares them).
DUMP_FLAGS = ("--format=custom", "--no-owner")


def _pg_tool(name: str) -> str:
    """``name`` on PATH, else Debian's newest release of it (a dump needs pg_dump >= the server)."""
    debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                    key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    found = shutil.which(name) or (debian[-1] if debian else None)
    if not found:
        raise BackupError(f"{name} is not installed; install PostgreSQL's client programs (Debian: "
                          "apt-get install postgresql-client; `make postgresql` installs the server and them)")
    return str(found)


@dataclass(frozen=True)
class PostgresDatabase:
    host: str
    port: int
    user: str
    name: str
    # A dump pg_dump already wrote with DUMP_FLAGS (the CronJob's init container, which runs
    # the server's own release of pg_dump); None: run this machine's pg_dump.
    dumped: Path | None = None
    backend = "postgresql"
    suffix = "pgdump"

    @property
    def uri(self) -> str:
        """SQLAlchemy's URI, without the password (psycopg reads PGPASSWORD)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.name}"

    def _connection(self) -> list[str]:
        # -w: never prompt; a missing PGPASSWORD fails at once instead of hanging a CronJob.
        return ["-w", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.name]

    def dump_command(self, dest: Path) -> list[str]:
        return [_pg_tool("pg_dump"), *DUMP_FLAGS, *self._connection(), "-f", str(dest)]

    def restore_command(self, dump: Path) -> list[str]:
        # One transaction: a failing restore leaves the database as it was.
        return [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                *self._connection(), str(dump)]

    def _run(self, argv: list[str], what: str) -> None:
        if not os.environ.get("PGPASSWORD"):
            raise BackupError(f"PGPASSWORD is not set; {what} needs the password of PostgreSQL user {self.user!r} "
                              "(on a cluster: Secret genaug-postgres, key POSTGRES_PASSWORD)")
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise BackupError(f"{what} of database {self.name!r} on {self.host}:{self.port} failed "
                              f"(exit {result.returncode}): {result.stderr.strip()[-800:]}")

    def exists(self) -> bool:
        with self._connect("postgres") as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone() is not None

    def dump(self, dest: Path) -> None:
        if self.dumped is None:
            self._run(self.dump_command(dest), "pg_dump")
        elif self.dumped.is_file() and self.dumped.stat().st_size:
            shutil.copyfile(self.dumped, dest)
        else:
            raise BackupError(f"no dump of database {self.name!r} at {self.dumped}: the pg-dump init container "
                              "writes it (manifests/base/services/backup.yaml); read its log")

    def restore(self, dump: Path) -> None:
        """Load ``dump`` into the database (created when missing), replacing its objects."""
        if not self.exists():
            import psycopg

            with self._connect("postgres") as conn:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(self.name)))
        self._run(self.restore_command(dump), "pg_restore")

    def other_sessions(self) -> int:
        """Connections to the database other than this one (a running MLflow holds some)."""
        with self._connect(self.name) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                               (self.name,)).fetchone()
        return int(row[0])

    def _connect(self, dbname: str):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname=dbname, autocommit=True,
                               connect_timeout=10)
