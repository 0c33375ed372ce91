"""The MLflow tracking server: sqlite in the state folder, artifacts proxied into S3, and
MLflow's basic-auth app with one account per role (genaug.services.mlflow_access).

Clients only talk to MLflow (``mlflow-artifacts:`` URIs); the server alone holds the S3
keys and writes into ``s3://genaug-mlflow``. The auth database (``basic_auth.db``) sits
beside the tracking database; the admin password and the Flask secret key reach the server
through its environment, never its command line.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from genaug.atomic import atomic_path
from genaug.services import mlflow_access
from genaug.services.names import MLFLOW_BUCKET
from genaug.stack.config import StackConfig
from genaug.stack.credentials import MlflowAccounts, S3Credentials
from genaug.stack.errors import StackError


def mlflow_binary() -> Path:
    path = Path(sys.executable).parent / "mlflow"
    if not path.exists():
        raise StackError(f"no `mlflow` beside {sys.executable}; run `make venv` (pyproject pins mlflow==3.17.2)")
    return path


@dataclass(frozen=True)
class ServerAuth:
    """MLflow's basic-auth app: its basic_auth.ini (mlflow_access.auth_config), the admin's
    password (read when the auth database is created) and the Flask secret key."""

    config: Path
    admin_password: str
    secret_key: str


def server_command(backend_store: str, artifacts: str, host: str, port: int,
                   auth: ServerAuth | None) -> tuple[list[str], dict[str, str]]:
    """argv and environment of one ``mlflow server`` worker on ``host:port``: runs in
    ``backend_store`` (a database URI), artifacts proxied to ``artifacts`` (s3://bucket or a
    folder); ``auth`` None: no accounts. Secrets go in the environment, never in argv."""
    argv = [str(mlflow_binary()), "server", "--backend-store-uri", backend_store,
            "--artifacts-destination", artifacts, "--host", host, "--port", str(port), "--workers", "1"]
    env = dict(os.environ)
    # MLflow 3.17's job runner (GenAI judges, trace rollups; nothing this project uses)
    # starts 8 extra ~240 MB processes and doubles start-up on 2 cores. Export
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to get it back.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if auth is not None:
        argv += ["--app-name", "basic-auth"]
        env.update({"MLFLOW_AUTH_CONFIG_PATH": str(auth.config), "MLFLOW_AUTH_ADMIN_PASSWORD": auth.admin_password,
                    "MLFLOW_FLASK_SERVER_SECRET_KEY": auth.secret_key})
    # The caller's own MLflow login (e.g. from a sourced stack.env) is not the server's.
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_ADMIN_USERNAME"):
        env.pop(name, None)
    return argv, env


class MlflowServer:
    name = "mlflow"
    port_names = ("mlflow",)
    # ~14 s on a new database and ~5 s on restart with 2 idle cores; the CPU may be shared.
    ready_timeout_s = 180.0

    def __init__(self, cfg: StackConfig, creds: S3Credentials, accounts: MlflowAccounts):
        self.cfg = cfg
        self.creds = creds
        self.accounts = accounts
        self.db = cfg.paths.mlflow_db
        self.auth_db = cfg.paths.mlflow_auth_db
        self.auth_config = cfg.paths.mlflow / "basic_auth.ini"

    @property
    def hint(self) -> str:
        return (f"read the log above: alembic/database errors mean {self.db} is damaged or from "
                "another MLflow version (move it away to start a new one); 'address already in use' "
                "means a port clash (set GENAUG_MLFLOW_PORT or use --free-ports)")

    @property
    def url(self) -> str:
        return f"http://{self.cfg.address('mlflow')}"

    def describe(self) -> str:
        return f"{self.url} (log in: {mlflow_access.USERNAMES['reader']}, see {self.cfg.paths.mlflow_reader_env.name})"

    def prepare(self) -> None:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.auth_config) as tmp:
            Path(tmp).write_text(mlflow_access.auth_config(f"sqlite:///{self.auth_db}"))

    def command(self) -> tuple[list[str], dict[str, str]]:
        # Read when the admin account is first created; later starts keep the stored one.
        auth = ServerAuth(self.auth_config, self.accounts.passwords["admin"], self.accounts.secret_key)
        argv, env = server_command(f"sqlite:///{self.db}", f"s3://{MLFLOW_BUCKET}", self.cfg.host,
                                   self.cfg.ports["mlflow"], auth)
        env.update({
            "MLFLOW_S3_ENDPOINT_URL": f"http://{self.cfg.address('s3')}",
            "AWS_ACCESS_KEY_ID": self.creds.access_key,
            "AWS_SECRET_ACCESS_KEY": self.creds.secret_key,
        })
        return argv, env

    def admin(self) -> mlflow_access.MlflowAdmin:
        return mlflow_access.MlflowAdmin(self.url, self.accounts.passwords["admin"])

    def after_ready(self, experiment: str) -> None:
        """Give every role its account and grants on ``experiment`` (idempotent, ~0.2 s)."""
        try:
            mlflow_access.provision(self.admin(), {role: self.accounts.passwords[role]
                                                   for role in mlflow_access.USERNAMES}, experiment)
        except mlflow_access.AccessError as err:
            raise StackError(f"setting up MLflow's accounts failed: {err}") from err

    def runs_without_auth(self) -> bool:
        """True when a running server answers an anonymous API call: an MLflow that an
        older genaug started without the basic-auth app, to be restarted with it."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/2.0/mlflow/experiments/search?max_results=1",
                                        timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def healthy(self) -> tuple[bool, str]:
        """GET /health answers 200 'OK'."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                body = response.read().decode(errors="replace").strip()
                return response.status == 200, f"/health: {response.status} {body[:40]}"
        except (urllib.error.URLError, OSError) as err:
            return False, f"/health: {err}"
