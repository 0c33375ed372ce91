"""The cluster's half of a backup for real: pg_dump of a PostgreSQL database with rows, and
pg_restore into a fresh database, with the password in the environment only."""

import psycopg
import pytest

from genaug.ops.databases import PostgresDatabase
from genaug.ops.manifest import BackupError

ROWS = [(1, "champion", 0.91), (2, "previous", 0.88), (3, "it's \"quoted\"", None)]


def _connect(pg: dict, database: str, autocommit: bool = False):
    return psycopg.connect(host=pg["GENAUG_POSTGRES_HOST"], port=int(pg["GENAUG_POSTGRES_PORT"]),
                           user=pg["POSTGRES_USER"], password=pg["PGPASSWORD"], dbname=database, autocommit=autocommit)


def _rows(pg: dict, database: str) -> list[tuple]:
    with _connect(pg, database) as conn:
        return conn.execute("SELECT id, alias, score FROM versions ORDER BY id").fetchall()


def _database(pg: dict, name: str) -> PostgresDatabase:
    return PostgresDatabase(pg["GENAUG_POSTGRES_HOST"], int(pg["GENAUG_POSTGRES_PORT"]), pg["POSTGRES_USER"], name)


def test_pg_dump_backup_restores_into_a_fresh_database(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", postgres["PGPASSWORD"])
    with _connect(postgres, "postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE backup_source")
    with _connect(postgres, "backup_source") as conn:
        conn.execute("CREATE TABLE versions (id int PRIMARY KEY, alias text, score double precision)")
        conn.cursor().executemany("INSERT INTO versions VALUES (%s, %s, %s)", ROWS)

    source, fresh = _database(postgres, "backup_source"), _database(postgres, "backup_fresh")
    dump = tmp_path / "tracking.pgdump"
    assert not any(postgres["PGPASSWORD"] in arg for arg in source.dump_command(dump) + fresh.restore_command(dump))
    source.dump(dump)
    assert not fresh.exists()
    fresh.restore(dump)
    assert _rows(postgres, "backup_fresh") == ROWS

    # Restoring again replaces what changed since (pg_restore --clean), in one transaction.
    with _connect(postgres, "backup_fresh") as conn:
        conn.execute("DELETE FROM versions WHERE id = 1")
        conn.execute("INSERT INTO versions VALUES (9, 'stray', 0)")
    fresh.restore(dump)
    assert _rows(postgres, "backup_fresh") == ROWS


def test_pg_dump_without_a_password_says_where_it_comes_from(postgres, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(BackupError, match="PGPASSWORD is not set.*genaug-postgres"):
        _database(postgres, "mlflow").dump(tmp_path / "x.pgdump")
    assert not (tmp_path / "x.pgdump").exists()
