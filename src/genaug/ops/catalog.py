"""What MLflow's tracking database says a backup must carry, read from the database itself.

The registered model versions name their files by URI: the run's artifact folder
(``runs.artifact_uri``), and a ``source`` that is ``runs:/<run>/<path>``, ``models:/m-<id>``
(an MLflow 3 logged model, ``logged_models.artifact_location``), ``mlflow-artifacts:/<path>``
(what the server proxies into s3://genaug-mlflow/<path>) or ``s3://<bucket>/<key>``. Read
from the database, not the API, so that the list matches the snapshot taken beside it and
the backup needs no MLflow account.
"""

from __future__ import annotations

from genaug.services.names import MLFLOW_BUCKET


def _engine(uri: str):
    import sqlalchemy

    return sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)


def mlflow_key(uri: str | None) -> str | None:
    """The genaug-mlflow key prefix an artifact URI points at, or None when it lies elsewhere."""
    if not uri:
        return None
    for scheme in ("mlflow-artifacts:", f"s3://{MLFLOW_BUCKET}/"):
        if uri.startswith(scheme):
            path = uri[len(scheme):]
            # mlflow-artifacts://host:port/path names a server; the path is the same.
            if path.startswith("//"):
                path = path[2:].partition("/")[2]
            return path.strip("/")
    return None


def registered_artifact_prefixes(database_uri: str) -> dict[str, list[str]]:
    """For each registered version ("<model>/<version>"), the genaug-mlflow prefixes of its run's
    artifacts and of its source (empty when they lie outside genaug-mlflow)."""
    import sqlalchemy

    text = sqlalchemy.text
    out: dict[str, list[str]] = {}
    with _engine(database_uri).connect() as conn:
        def run_uri(run_id):
            row = conn.execute(text("SELECT artifact_uri FROM runs WHERE run_uuid = :r"), {"r": run_id}).fetchone()
            return row[0] if row else None

        def logged_model_uri(model_id):
            row = conn.execute(text("SELECT artifact_location FROM logged_models WHERE model_id = :m"),
                               {"m": model_id}).fetchone()
            return row[0] if row else None

        rows = conn.execute(text("SELECT name, version, source, run_id FROM model_versions")).fetchall()
        for name, version, source, run_id in rows:
            uris = [run_uri(run_id)] if run_id else []
            if source and source.startswith("runs:/"):
                run, _, path = source[len("runs:/"):].partition("/")
                base = run_uri(run)
                uris.append(f"{base}/{path}" if base else None)
            elif source and source.startswith("models:/m-"):
                uris.append(logged_model_uri(source[len("models:/"):].split("/")[0]))
            else:
                uris.append(source)
            out[f"{name}/{version}"] = sorted({k for k in map(mlflow_key, uris) if k})
    return out


def content_counts(database_uri: str) -> dict[str, int]:
    """How many runs and registered models the database holds (a new stack: none; a database
    MLflow has not started on yet has no tables: none either)."""
    import sqlalchemy

    with _engine(database_uri).connect() as conn:
        tables = set(sqlalchemy.inspect(conn).get_table_names())
        return {table: int(conn.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}")).scalar())
                for table in ("runs", "registered_models") if table in tables}
