"""A real PostgreSQL (Debian's, which `make test` installs) for the session: one server on a
free loopback port in a temporary folder, user "mlflow" with a random password, stopped at
the end of the session, leaving no process behind. Tests make their own databases in it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from genaug.stack.ports import free_port
from tests.stack_fixture import _alive

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as Debian's postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


@pytest.fixture(scope="session")
def postgres():
    """The server's settings, as the cluster's MLflow reads them: POSTGRES_USER, POSTGRES_DB
    (a database "mlflow"), PGPASSWORD, GENAUG_POSTGRES_HOST and GENAUG_POSTGRES_PORT."""
    if not PG_BIN:
        pytest.skip("PostgreSQL is not installed: `make test` installs Debian's postgresql as root")
    # Not under pytest's temporary folder, which only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="genaug-postgres-"))
    password, port = secrets.token_hex(12), free_port()
    (folder / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
    bin_dir, data = PG_BIN[-1], folder / "data"
    pid = None
    try:
        subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow",
                                     "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}"]),
                       check=True, capture_output=True)
        (folder / "pw").unlink()
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                                     "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"]),
                       check=True, capture_output=True)
        pid = _postmaster_pid(data)
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="mlflow", password=password, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow")
        yield {"POSTGRES_USER": "mlflow", "POSTGRES_DB": "mlflow", "PGPASSWORD": password,
               "GENAUG_POSTGRES_HOST": "127.0.0.1", "GENAUG_POSTGRES_PORT": str(port)}
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
        # pg_ctl returns once the server removed its pid file; the process itself ends just after.
        deadline = time.monotonic() + 30  # a hang guard, not a timing claim
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid is None or not _alive(pid), f"PostgreSQL (PID {pid}) survived its stop"
