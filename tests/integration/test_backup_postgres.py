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


def _mlflow_cluster(pg: dict, database: str) -> tuple[str, str]:
    """A cluster's MLflow databases made by MLflow's own stores: a run, a registered version
    with the alias champion, and an account; the run's id and the version's source."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as Accounts
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    with _connect(pg, "postgres", autocommit=True) as conn:
        for name in (database, f"{database}_auth"):
            conn.execute(f"CREATE DATABASE {name}")
    uri = _database(pg, database).uri
    tracking = Tracking(uri, "mlflow-artifacts:/")
    experiment = tracking.create_experiment("genaug", artifact_location="mlflow-artifacts:/7")
    run = tracking.create_run(experiment, "genaug-pipeline", 0, [], "dcgan-quick")
    tracking.log_param(run.info.run_id, __import__("mlflow").entities.Param("generator", "dcgan"))
    registry = Registry(uri)
    registry.create_registered_model("cluster-classifier")
    source = f"{run.info.artifact_uri}/model"
    registry.create_model_version("cluster-classifier", source, run.info.run_id)
    registry.set_registered_model_alias("cluster-classifier", "champion", "1")
    accounts = Accounts()
    accounts.init_db(_database(pg, f"{database}_auth").uri)
    accounts.create_user("alice", "alices-password-1")
    accounts.create_user("genaug-reader", "old-reader-password")
    for store in (tracking, registry, accounts):
        store.engine.dispose()
    return run.info.run_id, source


def test_a_cluster_backup_restores_mlflow_into_a_new_database(postgres, stack, tmp_path, monkeypatch):
    """The cluster's path end to end, but for the pods: cluster_site from the CronJob's
    environment, pg_dump of both databases, restore into a new installation's databases (which
    refuses while MLflow is connected), and genaug's accounts re-keyed to the new Secrets."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as Accounts
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    from genaug.ops.backup import backup
    from genaug.ops.restore import restore
    from genaug.ops.site import cluster_site
    from genaug.ops.targets import FolderTarget
    from genaug.services.names import MLFLOW_BUCKET

    for key, value in postgres.items():
        monkeypatch.setenv(key, value)
    admin = stack.keys("admin")  # a stand-in for the CronJob's read-only MinIO user
    monkeypatch.setenv("GENAUG_S3_ACCESS_KEY", admin.access_key)
    monkeypatch.setenv("GENAUG_S3_SECRET_KEY", admin.secret_key)
    run_id, source = _mlflow_cluster(postgres, "cluster_old")
    monkeypatch.setenv("POSTGRES_DB", "cluster_old")
    old = cluster_site()
    artifact = source.removeprefix("mlflow-artifacts:/") + "/model.onnx"
    old.store().put_bytes(MLFLOW_BUCKET, artifact, b"onnx bytes")

    target = FolderTarget(tmp_path / "backups")
    backup(old, target, keep=3)
    (name,) = target.backups()
    assert f"s3/{MLFLOW_BUCKET}/{artifact}" in (target.root / name / "manifest.json").read_text()

    monkeypatch.setenv("POSTGRES_DB", "cluster_new")
    monkeypatch.setenv("GENAUG_MLFLOW_READER_PASSWORD", "new-reader-password")
    new = cluster_site()
    # As a new cluster's MLflow leaves them: its schema, its empty experiment, its admin account.
    with _connect(postgres, "postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE cluster_new")
        conn.execute("CREATE DATABASE cluster_new_auth")
    Tracking(new.tracking.uri, "mlflow-artifacts:/").engine.dispose()
    fresh = Accounts()
    fresh.init_db(new.auth.uri)
    fresh.create_user("genaug-admin", "new-admin-password", is_admin=True)
    fresh.engine.dispose()
    # The store is shared with the session's stack here, so it is not empty: --force.
    with _connect(postgres, "cluster_new"):  # a running MLflow
        with pytest.raises(BackupError, match=r"other sessions use database 'cluster_new' \(1\).*--replicas=0"):
            restore(new, target, force=True)
    restore(new, target, force=True)

    uri = new.tracking.uri
    run = Tracking(uri, "mlflow-artifacts:/").get_run(run_id)
    assert run.data.params == {"generator": "dcgan"}
    registry = Registry(uri)
    assert registry.get_model_version_by_alias("cluster-classifier", "champion").source == source
    accounts = Accounts()
    accounts.init_db(new.auth.uri)
    assert accounts.authenticate_user("alice", "alices-password-1")  # other people's accounts come back
    assert accounts.authenticate_user("genaug-reader", "new-reader-password")
    assert not accounts.authenticate_user("genaug-reader", "old-reader-password")
    for store in (registry, accounts):
        store.engine.dispose()
