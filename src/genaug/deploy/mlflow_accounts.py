"""MLflow's accounts on a cluster: the server's start and the set-up Job.

    python -m genaug.deploy.mlflow_accounts serve -- <mlflow server arguments>
    python -m genaug.deploy.mlflow_accounts provision

``serve`` (the MLflow Deployment's command) writes basic_auth.ini for the auth database
beside the tracking database, ``<POSTGRES_DB>_auth`` on the same PostgreSQL server, creates
that database if it is missing, then becomes ``mlflow server --app-name basic-auth``. The
password reaches PostgreSQL as PGPASSWORD, never the file or the command line.

``provision`` (the genaug-mlflow-setup Job) makes each role's account with its grants
(genaug.services.mlflow_access), retrying while MLflow starts.

Environment: POSTGRES_USER, POSTGRES_DB, PGPASSWORD, GENAUG_POSTGRES_HOST and optionally
GENAUG_POSTGRES_PORT (serve);
MLFLOW_TRACKING_URI, MLFLOW_AUTH_ADMIN_PASSWORD and GENAUG_MLFLOW_<ROLE>_PASSWORD for each
role (provision).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from genaug.services import mlflow_access

AUTH_DB_SUFFIX = "_auth"
PROVISION_TIMEOUT_S = 600.0


def password_env(role: str) -> str:
    """Where a role's password is given: GENAUG_MLFLOW_PIPELINE_PASSWORD, ..."""
    return f"GENAUG_MLFLOW_{role.upper()}_PASSWORD"


def _required(names: list[str]) -> dict[str, str]:
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"mlflow_accounts: {', '.join(missing)} not set; they come from Secrets genaug-postgres "
                         "and genaug-mlflow-auth (manifests/base/services/mlflow.yaml)")
    return {name: os.environ[name] for name in names}


def auth_database_uri(user: str, host: str, port: int, database: str) -> str:
    """The auth database's SQLAlchemy URI, without the password (PGPASSWORD gives it)."""
    return f"postgresql+psycopg://{user}@{host}:{port}/{database}{AUTH_DB_SUFFIX}"


def ensure_database(user: str, host: str, port: int, database: str) -> bool:
    """Create ``<database>_auth`` unless it exists (the official image makes POSTGRES_USER
    a superuser); True when it was created. CREATE DATABASE cannot run in a transaction."""
    import psycopg

    name = f"{database}{AUTH_DB_SUFFIX}"
    with psycopg.connect(host=host, port=port, user=user, dbname=database, autocommit=True,
                         connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return True


def serve(mlflow_args: list[str], ini: Path) -> None:
    env = _required(["POSTGRES_USER", "POSTGRES_DB", "PGPASSWORD", "GENAUG_POSTGRES_HOST"])
    user, database, host = env["POSTGRES_USER"], env["POSTGRES_DB"], env["GENAUG_POSTGRES_HOST"]
    port = int(os.environ.get("GENAUG_POSTGRES_PORT") or 5432)
    if ensure_database(user, host, port, database):
        print(f"mlflow_accounts: created database {database}{AUTH_DB_SUFFIX} for MLflow's accounts", flush=True)
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text(mlflow_access.auth_config(auth_database_uri(user, host, port, database)))
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    argv = ["mlflow", "server", *mlflow_args, "--app-name", "basic-auth"]
    os.execvp(argv[0], argv)


def provision(experiment: str, timeout_s: float = PROVISION_TIMEOUT_S) -> str:
    """Every role's account and grants; retried while MLflow is not reachable yet."""
    names = ["MLFLOW_TRACKING_URI", "MLFLOW_AUTH_ADMIN_PASSWORD", *map(password_env, mlflow_access.USERNAMES)]
    env = _required(names)
    admin = mlflow_access.MlflowAdmin(env["MLFLOW_TRACKING_URI"], env["MLFLOW_AUTH_ADMIN_PASSWORD"])
    passwords = {role: env[password_env(role)] for role in mlflow_access.USERNAMES}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return mlflow_access.provision(admin, passwords, experiment)
        except mlflow_access.Refused:
            raise
        except mlflow_access.AccessError as err:
            if "cannot reach" not in str(err) or time.monotonic() > deadline:
                raise
            print(f"mlflow_accounts: waiting for MLflow ({err})", flush=True)
            time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genaug.deploy.mlflow_accounts", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="write basic_auth.ini, create the auth database, exec mlflow server")
    run.add_argument("--ini", type=Path, default=Path("/tmp/mlflow-auth/basic_auth.ini"))
    run.add_argument("mlflow_args", nargs=argparse.REMAINDER, help="after --: mlflow server's arguments")
    setup = sub.add_parser("provision", help="make each role's account with its grants")
    setup.add_argument("--experiment", default=os.environ.get("GENAUG_EXPERIMENT", "genaug"))
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve([a for a in args.mlflow_args if a != "--"], args.ini)
        return 0  # not reached: exec
    try:
        experiment_id = provision(args.experiment)
    except mlflow_access.AccessError as err:
        print(f"mlflow_accounts: {err}", file=sys.stderr)
        return 1
    print(f"mlflow_accounts: accounts {', '.join(mlflow_access.USERNAMES.values())} set up; "
          f"experiment {args.experiment!r} is {experiment_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
